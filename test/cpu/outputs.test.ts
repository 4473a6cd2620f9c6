import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { NodeIO } from '@gltf-transform/core';
import { FaceG2EError } from '../../lib/errors';
import { parseObj, parseMtl, triangulate, readObj } from '../../lib/io/obj';
import { defaultConfig } from '../../lib/config/validate';
import {
  writeObjBundle,
  writeGlb,
  splitAtUvSeams,
  vertexNormals,
  writeGridPng,
  gridLayout,
  writeTurntableWebp,
  writeCoefficients,
  readCoefficients,
  parseCoefficients,
  writeRunJson,
  collectVersions,
  packageVersion,
  writeAtomic,
  isTempName,
  writeRunOutputs,
  checkOutputs,
  type MeshData,
  type ImageInput,
} from '../../lib/outputs';
import { tmpDir, hasShared, ICT_DIR, assertClose } from '../helpers';

/**
 * A unit cube with a cross-shaped UV layout: 8 positions, 12 triangles, 14 UVs; corners on the layout's cuts
 * have several UVs, so glTF needs more than 8 vertices.
 */
function cube(): MeshData {
  const positions = new Float32Array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1]);
  // faces as quads (position indices, counter-clockwise seen from outside)
  const quads = [
    [0, 3, 2, 1], // z=0
    [4, 5, 6, 7], // z=1
    [0, 1, 5, 4], // y=0
    [3, 7, 6, 2], // y=1
    [0, 4, 7, 3], // x=0
    [1, 2, 6, 5], // x=1
  ];
  // each face gets its own 4 UVs except that faces share nothing: simplest seam-heavy layout, 24 UVs
  const uvs: number[] = [];
  const tri: number[] = [];
  const uvTri: number[] = [];
  quads.forEach((q, f) => {
    const u0 = (f % 3) / 3;
    const v0 = Math.floor(f / 3) / 2;
    const base = uvs.length / 2;
    uvs.push(u0, v0, u0 + 1 / 3, v0, u0 + 1 / 3, v0 + 0.5, u0, v0 + 0.5);
    tri.push(q[0], q[1], q[2], q[0], q[2], q[3]);
    uvTri.push(base, base + 1, base + 2, base, base + 2, base + 3);
  });
  return { positions, tri: Uint32Array.from(tri), uvs: Float32Array.from(uvs), uvTri: Uint32Array.from(uvTri) };
}

/** A W×H RGB float image with a gradient and a marker colour per image. */
function image(w: number, h: number, seed = 0): ImageInput {
  const data = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      data[i] = x / Math.max(1, w - 1);
      data[i + 1] = y / Math.max(1, h - 1);
      data[i + 2] = (seed * 37) % 256 / 255;
    }
  return { data, width: w, height: h, channels: 3 };
}

function solid(w: number, h: number, rgb: [number, number, number]): ImageInput {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, 3 * i);
  return { data, width: w, height: h, channels: 3 };
}

function noTemps(dir: string) {
  const temps = fs.readdirSync(dir).filter(isTempName);
  assert.deepEqual(temps, [], `temporary files left in ${dir}`);
}

test('OBJ bundle: mesh.obj parses back to the same mesh, mesh.mtl points at texture.png, the PNG decodes', async () => {
  const dir = tmpDir('fg-out-');
  const m = cube();
  const tex = image(8, 4);
  const files = await writeObjBundle(dir, m, tex, { comment: 'prompt: a cube' });
  assert.deepEqual(files.map((f) => path.basename(f)), ['mesh.obj', 'mesh.mtl', 'texture.png']);
  const obj = parseObj(fs.readFileSync(path.join(dir, 'mesh.obj'), 'utf8'), 'mesh.obj');
  assert.deepEqual(obj.mtllib, ['mesh.mtl']);
  assert.deepEqual(obj.materials, ['head']);
  const t = triangulate(obj);
  assertClose(t.positions, m.positions, 1e-6, 0, 'positions');
  assert.deepEqual(Array.from(t.tri), Array.from(m.tri));
  assert.deepEqual(Array.from(t.uvTri), Array.from(m.uvTri!));
  assertClose(t.uvs, m.uvs!, 1e-6, 0, 'uvs');
  const mtl = parseMtl(fs.readFileSync(path.join(dir, 'mesh.mtl'), 'utf8'), dir);
  assert.equal(mtl.get('head')?.mapKd, path.join(dir, 'texture.png'));
  const { data, info } = await sharp(path.join(dir, 'texture.png')).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.format, 'raw');
  assert.deepEqual([info.width, info.height, info.channels], [8, 4, 3]);
  for (let i = 0; i < data.length; i++) assert.equal(data[i], Math.round((tex.data as Float32Array)[i] * 255), `texel ${i}`);
  noTemps(dir);
});

test('GLB: parses with glTF-Transform; vertices split at UV seams; V flipped; normals unit; PNG texture embedded', async () => {
  const dir = tmpDir('fg-out-');
  const m = cube();
  const file = path.join(dir, 'head.glb');
  await writeGlb(file, m, image(16, 8), { extras: { prompt: 'a cube' } });
  const doc = await new NodeIO().read(file);
  const root = doc.getRoot();
  assert.equal(root.listMeshes().length, 1);
  const prims = root.listMeshes()[0].listPrimitives();
  assert.equal(prims.length, 1);
  const p = prims[0];
  const pos = p.getAttribute('POSITION')!;
  const uv = p.getAttribute('TEXCOORD_0')!;
  const nrm = p.getAttribute('NORMAL')!;
  const idx = p.getIndices()!;
  assert.equal(pos.getCount(), 24, 'every face has its own 4 UVs: 24 split vertices');
  assert.equal(idx.getCount(), 36);
  assert.equal(uv.getCount(), 24);
  assert.deepEqual(pos.getMin([]), [0, 0, 0]);
  assert.deepEqual(pos.getMax([]), [1, 1, 1]);
  // each triangle corner maps back to the source position and (flipped) UV
  const split = splitAtUvSeams(m);
  const P = pos.getArray()!;
  const UV = uv.getArray()!;
  const I = idx.getArray()!;
  for (let c = 0; c < 36; c++) {
    const v = I[c];
    const sp = m.tri[c];
    const su = m.uvTri![c];
    assertClose(P.slice(3 * v, 3 * v + 3), m.positions.slice(3 * sp, 3 * sp + 3), 0, 0, `corner ${c} position`);
    assertClose([UV[2 * v], 1 - UV[2 * v + 1]], m.uvs!.slice(2 * su, 2 * su + 2), 1e-7, 0, `corner ${c} uv`);
    assert.equal(split.sourceVertex[v], sp);
  }
  const N = nrm.getArray()!;
  for (let v = 0; v < 24; v++) assert.ok(Math.abs(Math.hypot(N[3 * v], N[3 * v + 1], N[3 * v + 2]) - 1) < 1e-5);
  const mat = p.getMaterial()!;
  assert.equal(mat.getMetallicFactor(), 0);
  const tex = mat.getBaseColorTexture()!;
  assert.equal(tex.getMimeType(), 'image/png');
  const meta = await sharp(Buffer.from(tex.getImage()!)).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 16, 8]);
  assert.deepEqual(root.getAsset().extras, { prompt: 'a cube' });
});

test('GLB from the ICT-FaceKit mesh: vertex count is the number of distinct (position, uv) corners', { skip: !hasShared && 'needs ../shared' }, async () => {
  const obj = await readObj(path.join(ICT_DIR, 'generic_neutral_mesh.obj'));
  const t = triangulate(obj);
  const m: MeshData = { positions: t.positions, tri: t.tri, uvs: t.uvs, uvTri: t.uvTri };
  const pairs = new Set<string>();
  for (let i = 0; i < t.tri.length; i++) pairs.add(`${t.tri[i]}/${t.uvTri[i]}`);
  const dir = tmpDir('fg-out-');
  await writeGlb(path.join(dir, 'head.glb'), m, solid(64, 64, [200, 150, 120]), { scale: 0.01 });
  const doc = await new NodeIO().read(path.join(dir, 'head.glb'));
  const prim = doc.getRoot().listMeshes()[0].listPrimitives()[0];
  assert.equal(prim.getAttribute('POSITION')!.getCount(), pairs.size);
  assert.equal(prim.getIndices()!.getCount(), t.tri.length);
  assert.ok(pairs.size > t.positions.length / 3, 'the ICT mesh has UV seams');
  const max = prim.getAttribute('POSITION')!.getMax([]);
  assert.ok(Math.max(...max.map(Math.abs)) < 1, 'scaled to metres');
});

test('vertex normals are area-weighted and unit length', () => {
  const m = cube();
  const n = vertexNormals(m.positions, m.tri);
  // corner (0,0,0) touches faces -x, -y, -z equally: normal along -(1,1,1)/sqrt(3)
  const s = 1 / Math.sqrt(3);
  assertClose(n.slice(0, 3), [-s, -s, -s], 1e-6, 0, 'corner normal');
});

test('preview grid: layout and pixels land in their cells', async () => {
  const dir = tmpDir('fg-out-');
  const colours: Array<[number, number, number]> = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]];
  const imgs = colours.map((c) => solid(16, 8, c));
  const layout = gridLayout(imgs, { columns: 3, gap: 2 });
  assert.deepEqual([layout.width, layout.height, layout.rows, layout.columns], [3 * 16 + 4 * 2, 2 * 8 + 3 * 2, 2, 3]);
  const file = path.join(dir, 'preview.png');
  await writeGridPng(file, imgs, { columns: 3, gap: 2, background: [10, 10, 10] });
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [layout.width, layout.height]);
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  layout.cells.forEach((c, i) => assert.deepEqual(px(c.left + 8, c.top + 4), colours[i], `cell ${i}`));
  assert.deepEqual(px(0, 0), [10, 10, 10]);
  await assert.rejects(writeGridPng(file, [], {}), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT');
});

test('turntable: an animated WebP with one page per frame at the given rate', async () => {
  const dir = tmpDir('fg-out-');
  const colours: Array<[number, number, number]> = [[250, 10, 10], [10, 250, 10], [10, 10, 250], [240, 240, 20], [128, 128, 128]];
  const file = path.join(dir, 'turntable.webp');
  await writeTurntableWebp(file, colours.map((c) => solid(32, 24, c)), { fps: 25, quality: 90 });
  const meta = await sharp(file, { animated: true }).metadata();
  assert.equal(meta.format, 'webp');
  assert.equal(meta.pages, 5);
  assert.equal(meta.width, 32);
  assert.equal(meta.pageHeight, 24);
  assert.deepEqual(meta.delay, [40, 40, 40, 40, 40]);
  assert.equal(meta.loop, 0);
  for (let f = 0; f < 5; f++) {
    const { data } = await sharp(file, { page: f }).raw().toBuffer({ resolveWithObject: true });
    const mid = (12 * 32 + 16) * (data.length / (32 * 24));
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(data[mid + k] - colours[f][k]) < 12, `frame ${f} channel ${k}: ${data[mid + k]} vs ${colours[f][k]}`);
  }
  await assert.rejects(writeTurntableWebp(file, [solid(32, 24, [0, 0, 0]), solid(16, 24, [0, 0, 0])]), /frame 1: expected 32×24/);
});

test('coefficients JSON round-trips and malformed files are E_FORMAT naming the field', async () => {
  const dir = tmpDir('fg-out-');
  const file = path.join(dir, 'coefficients.json');
  const c = { model: { file: '/m/ict.safetensors', name: 'ict' }, identity: Float32Array.from([0.5, -1.25, 3e-8]), expression: new Float32Array(3), extras: { seed: 42 } };
  await writeCoefficients(file, c);
  const back = readCoefficients(file);
  assert.deepEqual(back.model, c.model);
  assert.deepEqual(Array.from(back.identity), Array.from(c.identity));
  assert.deepEqual(Array.from(back.expression), [0, 0, 0]);
  assert.deepEqual(back.extras, { seed: 42 });
  assert.throws(() => parseCoefficients('{"format":"faceg2e-coefficients","version":1,"identity":[1,"x"]}', 'c.json'), /c\.json: "identity"\[1\]: expected a finite number/);
  assert.throws(() => parseCoefficients('{"format":"other"}', 'c.json'), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_FORMAT');
  await assert.rejects(writeCoefficients(file, { ...c, identity: Float32Array.from([NaN]) }), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_NUMERICAL');
  assert.deepEqual(Array.from(readCoefficients(file).identity), Array.from(c.identity), 'a failed write keeps the old file');
  noTemps(dir);
});

test('run.json holds the config, versions, timings and metrics', async () => {
  const dir = tmpDir('fg-out-');
  const cfg = defaultConfig({ prompt: 'p', model: 'm', diffusion: { engines: 'e' } });
  const file = path.join(dir, 'run.json');
  const versions = collectVersions();
  assert.equal(versions.package, packageVersion());
  assert.match(versions.package, /^\d+\.\d+\.\d+/);
  assert.equal(versions.node, process.version);
  await writeRunJson(file, {
    status: 'ok',
    startedAt: '2024-01-01T00:00:00.000Z',
    finishedAt: '2024-01-01T00:01:00.000Z',
    seconds: 60,
    config: cfg,
    versions,
    phases: { geometry: { iterations: 200, seconds: 20, itPerSecond: 10, metrics: { loss: 0.5, bad: NaN } } },
    outputs: ['mesh.obj'],
  });
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(j.format, 'faceg2e-run');
  assert.equal(j.config.geometry.iterations, 200);
  assert.equal(j.phases.geometry.metrics.loss, 0.5);
  assert.equal(j.phases.geometry.metrics.bad, null);
  assert.equal(j.versions.node, process.version);
});

test('atomicity: a writer that throws midway leaves neither the target nor a temporary file', async () => {
  const dir = tmpDir('fg-out-');
  const file = path.join(dir, 'out.bin');
  await assert.rejects(
    writeAtomic(file, async (sink) => {
      await sink.write('first half');
      assert.equal(sink.bytesWritten, 10);
      throw new Error('producer failed');
    }),
    /producer failed/,
  );
  assert.ok(!fs.existsSync(file));
  assert.deepEqual(fs.readdirSync(dir), []);

  // an existing file survives a failed rewrite untouched
  fs.writeFileSync(file, 'old');
  await assert.rejects(writeAtomic(file, async (sink) => { await sink.write('new...'); throw new FaceG2EError('E_CANCELLED', 'stop'); }), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_CANCELLED');
  assert.equal(fs.readFileSync(file, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir), ['out.bin']);

  // the OBJ bundle fails at the texture, after mesh.obj and mesh.mtl were written: none of the three appears
  const bundle = tmpDir('fg-out-');
  const tex = image(4, 4);
  (tex.data as Float32Array)[40] = NaN;
  await assert.rejects(writeObjBundle(bundle, cube(), tex), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_NUMERICAL' && /texture: NaN at pixel \(x 1, y 3\)/.test(e.message));
  assert.deepEqual(fs.readdirSync(bundle), []);

  // the same for a GLB with a bad mesh, and a write into a missing folder is E_IO naming the file
  await assert.rejects(writeGlb(path.join(bundle, 'head.glb'), { ...cube(), tri: Uint32Array.from([0, 1, 99]) }), /tri\[2\] = 99/);
  assert.deepEqual(fs.readdirSync(bundle), []);
  await assert.rejects(writeAtomic(path.join(bundle, 'no', 'such', 'x.txt'), 'x'), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_IO' && /x\.txt/.test(e.message));
});

test('writeRunOutputs writes the configured files together; a failure leaves none of them', async () => {
  const dir = tmpDir('fg-out-');
  const cfg = defaultConfig({ prompt: 'p', model: 'm', diffusion: { engines: 'e' }, output: { dir } });
  const views = cfg.output.previews.views.length;
  const kinds = cfg.output.previews.kinds.length;
  const data = {
    mesh: cube(),
    texture: image(32, 32),
    coefficients: { model: { name: 'cube' }, identity: new Float32Array(4), expression: new Float32Array(0) },
    previews: Array.from({ length: views * kinds }, (_, i) => image(16, 16, i)),
    turntable: Array.from({ length: 3 }, (_, i) => image(16, 16, i)),
    run: { status: 'ok' as const, startedAt: '', finishedAt: '', seconds: 1, config: cfg, versions: collectVersions(), phases: {} },
  };
  // a wrong number of previews fails before anything is renamed into place
  await assert.rejects(writeRunOutputs(cfg.output, { ...data, previews: data.previews.slice(1) }), /previews: expected a multiple of 6/);
  assert.deepEqual(fs.readdirSync(dir), []);

  const files = await writeRunOutputs(cfg.output, data);
  assert.deepEqual(files.map((f) => path.basename(f)).sort(), ['coefficients.json', 'head.glb', 'mesh.mtl', 'mesh.obj', 'preview.png', 'run.json', 'texture.png', 'turntable.webp']);
  const meta = await sharp(path.join(dir, 'preview.png')).metadata();
  assert.deepEqual([meta.width, meta.height], [views * 16, kinds * 16]);
  const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
  assert.ok(run.outputs.includes('head.glb') && run.outputs.includes('run.json'));
  noTemps(dir);

  // overwrite: false refuses to replace outputs
  const noOverwrite = { ...cfg.output, overwrite: false };
  assert.throws(() => checkOutputs(noOverwrite), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_IO' && e.details.length === 8);
});
