/**
 * `faceg2e-native render MESH.obj --views N --size S --out DIR [--device cpu|cuda]`: render a mesh from orbit
 * cameras around its bounding box and write grey (SH-shaded), normal, depth and mask PNGs per view, plus
 * textured renders when the OBJ's material library references a texture (map_Kd).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { FaceG2EError } from '../errors';
import { readObj, readMtl, triangulate } from '../io/obj';
import { readImageFloat, writePng } from '../io/image';
import { meshBounds, orbitCameras } from '../camera';
import { encodeNormals, render, type Texture } from '../raster';
import type { DeviceName } from '../native';

export interface RenderArgs {
  mesh: string;
  views: number;
  size: number;
  out: string;
  device: DeviceName;
  fov: number;
  elevation: number;
  fill: number;
  antialias: boolean;
}

async function findTexture(objFile: string, mtllib: string[], materials: string[]): Promise<string | undefined> {
  const dir = path.dirname(path.resolve(objFile));
  for (const lib of mtllib) {
    const file = path.resolve(dir, lib);
    try {
      await fsp.access(file);
    } catch {
      continue;
    }
    const mats = await readMtl(file);
    const order = materials.length ? materials : [...mats.keys()];
    for (const m of order) {
      const tex = mats.get(m)?.mapKd;
      if (tex) {
        try {
          await fsp.access(tex);
          return tex;
        } catch {
          process.stderr.write(`faceg2e-native render: texture ${tex} (material ${m}) not found; skipping color renders\n`);
        }
      }
    }
  }
  return undefined;
}

export async function renderMeshToFiles(a: RenderArgs): Promise<string[]> {
  const obj = await readObj(a.mesh);
  const mesh = triangulate(obj);
  if (mesh.tri.length === 0) throw new FaceG2EError('E_FORMAT', `${a.mesh}: the mesh has no faces`);
  const texFile = await findTexture(a.mesh, obj.mtllib, obj.materials);
  let texture: Texture | undefined;
  if (texFile) {
    const im = await readImageFloat(texFile, 3);
    texture = { data: im.data, width: im.width, height: im.height, channels: 3 };
  }
  const cams = orbitCameras(meshBounds(mesh.positions), { views: a.views, width: a.size, fovY: a.fov, elevation: a.elevation, fill: a.fill });
  await fsp.mkdir(a.out, { recursive: true });
  const written: string[] = [];
  const S = a.size;
  const HW = S * S;
  // one view at a time keeps memory flat for many views
  for (let v = 0; v < cams.length; v++) {
    const r = render(mesh, [cams[v]], { device: a.device, texture, antialias: a.antialias });
    const stem = path.join(a.out, `view${String(v).padStart(3, '0')}`);
    const grey = r.grey as Float32Array;
    await writePng(`${stem}_grey.png`, grey.subarray(0, HW), { width: S, height: S, channels: 1 });
    await writePng(`${stem}_normal.png`, encodeNormals(r.normal, r.mask), { width: S, height: S, channels: 3 });
    await writePng(`${stem}_depth.png`, r.depthImage, { width: S, height: S, channels: 1 });
    await writePng(`${stem}_mask.png`, r.mask, { width: S, height: S, channels: 1 });
    written.push(`${stem}_grey.png`, `${stem}_normal.png`, `${stem}_depth.png`, `${stem}_mask.png`);
    if (r.color) {
      await writePng(`${stem}_color.png`, r.color, { width: S, height: S, channels: 3 });
      written.push(`${stem}_color.png`);
    }
  }
  return written;
}

export const renderCommand: CommandModule<object, RenderArgs> = {
  command: 'render <mesh>',
  describe: 'Render a mesh (OBJ) from orbit cameras: grey, normal, depth and mask PNGs per view (and color when textured)',
  builder: (y) =>
    y
      .positional('mesh', { type: 'string', describe: 'the OBJ file', demandOption: true })
      .option('views', { type: 'number', default: 4, describe: 'number of views around the mesh' })
      .option('size', { type: 'number', default: 512, describe: 'image width and height in pixels' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
      .option('device', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as DeviceName, describe: 'where to render' })
      .option('fov', { type: 'number', default: 30, describe: 'vertical field of view, degrees' })
      .option('elevation', { type: 'number', default: 10, describe: 'camera elevation, degrees' })
      .option('fill', { type: 'number', default: 1.1, describe: "fraction of the image the mesh's bounding sphere fills" })
      .option('antialias', { type: 'boolean', default: true, describe: 'silhouette antialiasing' }) as never,
  handler: async (a) => {
    if (!(Number.isInteger(a.views) && a.views >= 1 && a.views <= 1000)) throw new FaceG2EError('E_INVALID_ARGUMENT', `--views: expected an integer 1..1000, got ${a.views}`);
    if (!(Number.isInteger(a.size) && a.size >= 8 && a.size <= 8192)) throw new FaceG2EError('E_INVALID_ARGUMENT', `--size: expected an integer 8..8192, got ${a.size}`);
    const files = await renderMeshToFiles(a);
    process.stdout.write(`wrote ${files.length} images to ${a.out}\n`);
  },
};
