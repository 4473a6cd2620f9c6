/**
 * mesh.obj + mesh.mtl + texture.png, written together and atomically: the three files appear only when all three
 * are complete (see OutputBatch), so an OBJ never points at a missing or half-written texture.
 * The OBJ text comes from lib/io/obj.ts (formatObj), the PNG from sharp.
 */
import * as path from 'node:path';
import { FaceG2EError } from '../errors';
import { formatObj } from '../io/obj';
import { withOutputBatch, type OutputBatch } from './atomic';
import { encodePng, type ImageInput } from './image';
import { checkMesh, type MeshData } from './mesh';

export interface ObjBundleOptions {
  /** Base name of the OBJ and MTL files. Default 'mesh' (mesh.obj, mesh.mtl). */
  name?: string;
  /** File name of the texture. Default 'texture.png'. */
  textureName?: string;
  /** Material name. Default 'head'. */
  material?: string;
  /** Comment at the top of the OBJ (e.g. the prompt). */
  comment?: string;
  /** Write per-vertex normals (`vn`). Default false (viewers compute smooth normals). */
  normals?: boolean;
}

function safeName(n: string, what: string): string {
  if (!n || n.includes('/') || n.includes('\\') || n.startsWith('.') || /\s/.test(n)) {
    throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected a plain file name without spaces or folders, got ${JSON.stringify(n)}`);
  }
  return n;
}

/** The MTL text for one diffuse-textured material. */
export function formatMtl(material: string, textureName?: string): string {
  const lines = [`# faceg2e-native`, `newmtl ${material}`, 'Ka 0 0 0', 'Kd 1 1 1', 'Ks 0 0 0', 'd 1', 'illum 1'];
  if (textureName) lines.push(`map_Kd ${textureName}`);
  return lines.join('\n') + '\n';
}

/** Stage the bundle's files into a batch (for callers that commit several outputs together). */
export async function stageObjBundle(batch: OutputBatch, mesh: MeshData, texture: ImageInput | undefined, options: ObjBundleOptions = {}): Promise<string[]> {
  const name = safeName(options.name ?? 'mesh', 'name');
  const textureName = safeName(options.textureName ?? 'texture.png', 'textureName');
  const material = safeName(options.material ?? 'head', 'material');
  checkMesh(mesh);
  if (texture && !mesh.uvs) throw new FaceG2EError('E_INVALID_ARGUMENT', 'mesh: a texture needs uvs and uvTri');
  const objText = formatObj(
    { positions: mesh.positions, tri: mesh.tri, uvs: mesh.uvs, uvTri: mesh.uvTri, normals: options.normals ? mesh.normals : undefined },
    { mtllib: `${name}.mtl`, material, comment: options.comment ?? 'faceg2e-native' },
  );
  const files = [await batch.add(`${name}.obj`, objText), await batch.add(`${name}.mtl`, formatMtl(material, texture ? textureName : undefined))];
  if (texture) files.push(await batch.add(textureName, await encodePng(texture, 'texture')));
  return files;
}

/** Write `dir`/mesh.obj, mesh.mtl and (with a texture) texture.png atomically; returns the written paths. */
export async function writeObjBundle(dir: string, mesh: MeshData, texture?: ImageInput, options: ObjBundleOptions = {}): Promise<string[]> {
  const { files } = await withOutputBatch(path.resolve(dir), (b) => stageObjBundle(b, mesh, texture, options));
  return files;
}
