// Head-model format and importers: ICT-FaceKit (../shared), FLAME / BFM / HIFI3D++ (synthetic files written here).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { importIct, importFlame, importBfm, importHifi3d, loadModel, saveModel, modelInfo, type HeadModel } from '../../lib/models/index';
import { readObj, triangulate } from '../../lib/io/obj';
import { readNpy, float16ToFloat32, halfToFloat } from '../../lib/io/npy';
import { writeHdf5 } from '../../lib/models/hdf5';
import { formatMatV5 } from '../../lib/models/mat';
import { FaceG2EError } from '../../lib/errors';
import { tmpDir, hasShared, ICT_DIR, ROOT, assertClose } from '../helpers';
import { Pickler } from './models-pickle-writer';

const isCode = (code: string, re: RegExp) => (e: unknown) => e instanceof FaceG2EError && e.code === code && re.test(e.message);
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const noShared = !hasShared && 'no ../shared';

let ictModel: HeadModel | undefined;
async function ict(): Promise<HeadModel> {
  ictModel ??= await importIct(ICT_DIR);
  return ictModel;
}

test('ICT bundle import: default parts, counts, UVs, remap, landmarks', { skip: noShared }, async () => {
  const m = await ict();
  // face + head/neck + eye sockets + eyeballs
  assert.equal(m.vertexCount, 9409 + 1839 + 384 * 2 + 1570 * 2);
  assert.equal(m.sourceVertexCount, 26719);
  assert.equal(m.identityNames.length, 100);
  assert.equal(m.expressionNames.length, 57);
  assert.ok(m.expressionNames.includes('jawOpen'));
  assert.equal(m.units, 'cm');
  assert.deepEqual(m.parts.filter((p) => p.kind === 'geometry').map((p) => p.name), ['face', 'head_neck', 'eye_socket_left', 'eye_socket_right', 'eyeball_left', 'eyeball_right']);
  // every triangle is inside the kept vertices; no teeth (source vertices 17039..21450) or lashes
  for (const s of m.sourceVertex) assert.ok(!(s >= 11248 && s <= 13293) && !(s >= 14062 && s <= 21450) && s < 24591);
  // the neutral positions are the source's, through the remap
  const neutral = await readObj(path.join(ICT_DIR, 'generic_neutral_mesh.obj'));
  for (const i of [0, 100, 9409, m.vertexCount - 1]) {
    for (let c = 0; c < 3; c++) assert.equal(m.template[3 * i + c], neutral.positions[3 * m.sourceVertex[i] + c]);
  }
  // UV topology covers every triangle; ICT's UVs use tiles u in [0,2) (UDIM-style)
  assert.equal(m.uvTri.length, m.tri.length);
  for (const u of m.uv) assert.ok(u >= 0 && u < 2);
  // triangle parts match the vertices' parts
  const partOfVertex = new Int32Array(m.vertexCount).fill(-1);
  m.parts.forEach((p, i) => { if (p.kind === 'geometry') for (const v of p.vertices) partOfVertex[v] = i; });
  for (let t = 0; t < m.triangleCount; t++) {
    const p = m.triPart![t];
    const n = [0, 1, 2].filter((k) => partOfVertex[m.tri[3 * t + k]] === p).length;
    assert.ok(p >= 0 && n >= 1, `triangle ${t}: part ${p}`);
  }
  assert.equal(m.landmarks?.vertex?.length, 68);
  // identity basis = the npy deltas at the kept vertices (float16 bits copied)
  const idn = await readNpy(path.join(ICT_DIR, 'identity_deltas.npy'));
  const raw = idn.data as Uint16Array;
  for (const [k, i] of [[0, 5], [37, 9000], [99, m.vertexCount - 1]]) {
    for (let c = 0; c < 3; c++) assert.equal(m.identityBasis[(k * m.vertexCount + i) * 3 + c], raw[(k * 26719 + m.sourceVertex[i]) * 3 + c]);
  }
});

test('ICT --parts selection and unknown parts', { skip: noShared }, async () => {
  const m = await importIct(ICT_DIR, { parts: ['face'] });
  assert.equal(m.vertexCount, 9409);
  // the face polygons (mostly quads) fan into about two triangles each, all within the face part
  // (plus the odd polygon of another part whose vertices all lie in the face: tri_part -1)
  assert.ok(m.triangleCount >= 9230 * 2 - countTrianglesInFace() && m.triangleCount <= 9230 * 2 - countTrianglesInFace() + 5, String(m.triangleCount));
  assert.ok(m.triPart!.every((p) => p === 0));
  await assert.rejects(importIct(ICT_DIR, { parts: ['face', 'nose'] }), isCode('E_INVALID_ARGUMENT', /unknown ICT part 'nose'/));
  const all = await importIct(ICT_DIR, { parts: ['all'] });
  assert.equal(all.vertexCount, 26719);
});
function countTrianglesInFace(): number {
  // face polygons 0..9229 are all quads except the triangles among them: count them from the OBJ
  const text = fs.readFileSync(path.join(ICT_DIR, 'generic_neutral_mesh.obj'), 'utf8');
  let f = 0;
  let tris = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('f ')) continue;
    if (f < 9230 && line.trim().split(/\s+/).length === 4) tris++;
    f++;
  }
  return tris;
}

test('ICT original OBJ layout gives the same bases as the arrays bundle', { skip: noShared }, async () => {
  const d = tmpDir();
  const x = path.join(d, 'FaceXModel');
  fs.mkdirSync(x);
  for (const f of ['generic_neutral_mesh.obj', 'vertex_indices.json']) fs.copyFileSync(path.join(ICT_DIR, f), path.join(x, f));
  fs.copyFileSync(path.join(ICT_DIR, 'raw', 'identity000.obj'), path.join(x, 'identity000.obj'));
  fs.copyFileSync(path.join(ICT_DIR, 'raw', 'jawOpen.obj'), path.join(x, 'jawOpen.obj'));
  const o = await importIct(d); // the folder above FaceXModel works too
  assert.equal(o.extra.ict_layout, 'original');
  assert.deepEqual(o.identityNames, ['identity000']);
  assert.deepEqual(o.expressionNames, ['jawOpen']);
  const b = await ict();
  assert.equal(o.vertexCount, b.vertexCount);
  const V = b.vertexCount;
  const jaw = b.expressionNames.indexOf('jawOpen');
  // both are float16 of (mode - neutral): equal up to float16 rounding of differently-rounded inputs
  assertClose(float16ToFloat32(o.identityBasis), float16ToFloat32(b.identityBasis.subarray(0, V * 3)), 2e-3, 2e-3, 'identity000');
  assertClose(float16ToFloat32(o.expressionBasis), float16ToFloat32(b.expressionBasis.subarray(jaw * V * 3, (jaw + 1) * V * 3)), 2e-3, 2e-3, 'jawOpen');
  let moved = 0;
  for (const v of float16ToFloat32(o.expressionBasis)) if (Math.abs(v) > 0.1) moved++;
  assert.ok(moved > 100, 'jawOpen moves vertices');
});

test('save / load round trip is exact; truncated and foreign files are E_FORMAT', { skip: noShared }, async () => {
  const d = tmpDir();
  const m = await ict();
  const f = path.join(d, 'ict.safetensors');
  await saveModel(m, f);
  const l = await loadModel(f);
  for (const k of ['template', 'tri', 'uv', 'uvTri', 'identityBasis', 'expressionBasis', 'identityScale', 'sourceVertex', 'triPart'] as const) {
    assert.deepEqual(Buffer.from(bytesOf(l[k]!)), Buffer.from(bytesOf(m[k]!)), k);
  }
  assert.deepEqual(l.identityNames, m.identityNames);
  assert.deepEqual(l.expressionNames, m.expressionNames);
  assert.deepEqual(l.parts.map((p) => [p.name, p.kind, Array.from(p.vertices)]), m.parts.map((p) => [p.name, p.kind, Array.from(p.vertices)]));
  assert.deepEqual(Array.from(l.landmarks!.vertex!), Array.from(m.landmarks!.vertex!));
  assert.equal(l.extra.ict_layout, 'bundle');
  const info = modelInfo(l);
  assert.equal(info.identityModes, 100);
  assert.equal(info.expressionModes, 57);
  const bytes = fs.readFileSync(f);
  for (const cut of [0, 7, 100, 5000, bytes.length >> 1, bytes.length - 1]) {
    fs.writeFileSync(path.join(d, 't.safetensors'), bytes.subarray(0, cut));
    await assert.rejects(loadModel(path.join(d, 't.safetensors')), isCode('E_FORMAT', /t\.safetensors: /), `cut ${cut}`);
  }
  await assert.rejects(loadModel(path.join(ICT_DIR, 'identity_deltas.npy')), isCode('E_FORMAT', /identity_deltas\.npy: not a safetensors file/));
  // a valid safetensors file that is not a head model
  const { writeSafetensors } = await import('../../lib/models/safetensors');
  await writeSafetensors(path.join(d, 'w.safetensors'), [['weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]]);
  await assert.rejects(loadModel(path.join(d, 'w.safetensors')), isCode('E_FORMAT', /not a faceg2e head model/));
});

test('CLI: models import ict / models info --json; bad files exit non-zero with a message', { skip: noShared }, () => {
  const d = tmpDir();
  const out = path.join(d, 'ict.safetensors');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', '-e', `require('./lib/cli/main').main(['node','faceg2e-native',...${JSON.stringify(args)}]).then((c)=>process.exit(c))`], { cwd: ROOT, encoding: 'utf8' });
  const r = cli('models', 'import', 'ict', ICT_DIR, '-o', out);
  assert.equal(r.status, 0, r.stderr);
  const info = cli('models', 'info', out, '--json');
  assert.equal(info.status, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.vertices, 15156);
  assert.ok(j.triangles > 25000);
  assert.equal(j.identityModes, 100);
  assert.equal(j.expressionModes, 57);
  fs.writeFileSync(path.join(d, 'cut.safetensors'), fs.readFileSync(out).subarray(0, 4000));
  const bad = cli('models', 'info', path.join(d, 'cut.safetensors'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /error E_FORMAT: .*cut\.safetensors: truncated/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  const foreign = cli('models', 'import', 'flame', path.join(ICT_DIR, 'mode_names.json'), '-o', path.join(d, 'x.safetensors'));
  assert.equal(foreign.status, 1);
  assert.match(foreign.stderr, /error E_FORMAT: .*mode_names\.json: not a FLAME pickle/);
});

// ---- synthetic FLAME / BFM / HIFI3D++ --------------------------------------------------------------------

// a 2x3 vertex grid, 4 triangles
const GRID_V = 6;
const GRID_POS = Float64Array.from([0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 1, 1, 0, 2, 1, 0]);
const GRID_TRI = [0, 1, 4, 0, 4, 3, 1, 2, 5, 1, 5, 4];
const detValue = (k: number, v: number, c: number) => Math.sin(1 + k * 7.1 + v * 3.3 + c * 1.7) * 0.01;

function gridUvObj(file: string): void {
  // different triangle order and corner rotation than the model, 8 UVs (a seam: vertex 1 has two UVs)
  const lines = ['# uv template'];
  for (let v = 0; v < GRID_V; v++) lines.push(`v ${GRID_POS[3 * v]} ${GRID_POS[3 * v + 1]} ${GRID_POS[3 * v + 2]}`);
  for (let u = 0; u < 8; u++) lines.push(`vt ${u / 8} ${1 - u / 8}`);
  lines.push('f 5/5 6/6 2/7', 'f 1/1 2/2 5/5', 'f 4/4 1/1 5/5', 'f 2/8 3/3 6/6');
  fs.writeFileSync(file, lines.join('\n'));
}

function writeFlamePickle(file: string, K: number, P: number): void {
  const V = GRID_V;
  const J = 5;
  const p = new Pickler();
  p.dictStart();
  p.key('v_template');
  p.chumpy(() => p.ndarray('<f8', [V, 3], bytesOf(GRID_POS)));
  p.key('f');
  p.ndarray('<u4', [4, 3], bytesOf(Uint32Array.from(GRID_TRI)));
  p.key('shapedirs');
  const sd = new Float64Array(V * 3 * K);
  for (let v = 0; v < V; v++) for (let c = 0; c < 3; c++) for (let k = 0; k < K; k++) sd[(v * 3 + c) * K + k] = detValue(k, v, c);
  p.chumpy(() => p.ndarray('<f8', [V, 3, K], bytesOf(sd)));
  p.key('posedirs');
  const pd = new Float64Array(V * 3 * P);
  for (let i = 0; i < pd.length; i++) pd[i] = (i % 17) * 1e-3;
  p.ndarray('<f8', [V, 3, P], bytesOf(pd));
  p.key('kintree_table');
  p.ndarray('<i8', [2, J], bytesOf(BigInt64Array.from([4294967295n, 0n, 1n, 1n, 1n, 0n, 1n, 2n, 3n, 4n])));
  p.key('weights');
  const w = new Float64Array(V * J);
  for (let v = 0; v < V; v++) { w[v * J + (v % J)] = 0.75; w[v * J + ((v + 1) % J)] = 0.25; }
  p.ndarray('<f8', [V, J], bytesOf(w));
  p.key('J_regressor');
  // joint j = mean of vertices j and j+1 (csc: one column per vertex)
  const data: number[] = [];
  const indices: number[] = [];
  const indptr = [0];
  for (let v = 0; v < V; v++) {
    for (let j = 0; j < J; j++) if (v === j || v === j + 1) { indices.push(j); data.push(0.5); }
    indptr.push(indices.length);
  }
  p.cscMatrix([J, V], Float64Array.from(data), Int32Array.from(indices), Int32Array.from(indptr));
  p.key('bs_style');
  p.str('lbs');
  p.key('bs_type');
  p.str('lrotmin');
  fs.writeFileSync(file, p.finish());
}

test('FLAME pickle import: chumpy, shapedirs split, posedirs, skinning, J_regressor, UV template', async () => {
  const d = tmpDir();
  const pkl = path.join(d, 'generic_model.pkl');
  const K = 7;
  const P = 36;
  writeFlamePickle(pkl, K, P);
  gridUvObj(path.join(d, 'head_template.obj'));
  const m = await importFlame(pkl, { uvTemplate: path.join(d, 'head_template.obj'), identityModes: 4 });
  assert.equal(m.units, 'm');
  assert.equal(m.vertexCount, GRID_V);
  assert.deepEqual(Array.from(m.tri), GRID_TRI);
  assert.deepEqual(Array.from(m.template), Array.from(GRID_POS));
  assert.equal(m.identityNames.length, 4);
  assert.equal(m.expressionNames.length, 3);
  for (let k = 0; k < K; k++) {
    const basis = k < 4 ? m.identityBasis : m.expressionBasis;
    const kk = k < 4 ? k : k - 4;
    for (let v = 0; v < GRID_V; v++) for (let c = 0; c < 3; c++) {
      const x = halfToFloat(basis[(kk * GRID_V + v) * 3 + c]);
      assert.ok(Math.abs(x - detValue(k, v, c)) <= 1e-5, `mode ${k} v ${v} c ${c}: ${x}`);
    }
  }
  const s = m.skinning!;
  assert.deepEqual(s.jointNames, ['global', 'neck', 'jaw', 'eye_left', 'eye_right']);
  assert.deepEqual(Array.from(s.parents), [-1, 0, 1, 1, 1]);
  assert.equal(s.poseBasis!.length, P * GRID_V * 3);
  // pose_basis[p, v, c] = posedirs[v, c, p]
  assert.ok(Math.abs(halfToFloat(s.poseBasis![(5 * GRID_V + 2) * 3 + 1]) - (((2 * 3 + 1) * P + 5) % 17) * 1e-3) < 1e-5);
  for (let j = 0; j < 5; j++) for (let v = 0; v < GRID_V; v++) assert.equal(s.jointRegressor[j * GRID_V + v], v === j || v === j + 1 ? 0.5 : 0);
  assert.equal(s.weights[0], 0.75);
  // UVs: model triangle 0 = (0,1,4) ↔ template 'f 1/1 2/2 5/5' → UVs 0,1,4; triangle 2 = (1,2,5) ↔ 'f 2/8 3/3 6/6' → 7,2,5
  assert.deepEqual(Array.from(m.uvTri.subarray(0, 3)), [0, 1, 4]);
  assert.deepEqual(Array.from(m.uvTri.subarray(6, 9)), [7, 2, 5]);
  assert.equal(m.uvCount, 8);
  // round trip through the file
  await saveModel(m, path.join(d, 'flame.safetensors'));
  const l = await loadModel(path.join(d, 'flame.safetensors'));
  assert.deepEqual(Array.from(l.skinning!.parents), [-1, 0, 1, 1, 1]);
  assert.equal(modelInfo(l).skinning!.poseBasis, P);
  // a UV template of another mesh is refused; a non-FLAME pickle is E_FORMAT
  fs.writeFileSync(path.join(d, 'other.obj'), 'v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n');
  await assert.rejects(importFlame(pkl, { uvTemplate: path.join(d, 'other.obj') }), isCode('E_INVALID_ARGUMENT', /has 3 vertices but the model has 6/));
  const p = new Pickler();
  p.dictStart();
  p.key('a');
  p.int(1);
  fs.writeFileSync(path.join(d, 'x.pkl'), p.finish());
  await assert.rejects(importFlame(path.join(d, 'x.pkl')), isCode('E_FORMAT', /x\.pkl: missing 'v_template'/));
  const full = fs.readFileSync(pkl);
  fs.writeFileSync(path.join(d, 'cut.pkl'), full.subarray(0, full.length >> 1));
  await assert.rejects(importFlame(path.join(d, 'cut.pkl')), isCode('E_FORMAT', /cut\.pkl: /));
});

test('BFM (HDF5) import: scaled PCA bases, expression mean, colour, cells', async () => {
  const d = tmpDir();
  const f = path.join(d, 'model2017-1_bfm_nomouth.h5');
  const V = GRID_V;
  const n = 3 * V;
  const Ki = 3;
  const Ke = 2;
  const basis = (K: number, seed: number) => Float32Array.from({ length: n * K }, (_, i) => Math.cos(i * 0.37 + seed) * 0.3);
  const mean = Float32Array.from(GRID_POS, (x) => x * 100);
  const emean = Float32Array.from({ length: n }, (_, i) => (i % 3 === 2 ? 0.5 : 0));
  await writeHdf5(f, [
    { path: 'shape/model/mean', data: mean },
    { path: 'shape/model/pcaBasis', data: basis(Ki, 0), shape: [n, Ki] },
    { path: 'shape/model/pcaVariance', data: Float32Array.from([4, 1, 0.25]) },
    { path: 'shape/representer/cells', data: Int32Array.from({ length: 12 }, (_, i) => GRID_TRI[(i % 4) * 3 + Math.floor(i / 4)]), shape: [3, 4] },
    { path: 'expression/model/mean', data: emean },
    { path: 'expression/model/pcaBasis', data: basis(Ke, 1), shape: [n, Ke] },
    { path: 'expression/model/pcaVariance', data: Float32Array.from([9, 16]) },
    { path: 'color/model/mean', data: Float32Array.from({ length: n }, () => 0.5) },
    { path: 'color/model/pcaBasis', data: basis(2, 2), shape: [n, 2] },
    { path: 'color/model/pcaVariance', data: Float32Array.from([0.01, 0.04]) },
  ]);
  const m = await importBfm(f);
  assert.equal(m.units, 'mm');
  assert.deepEqual(Array.from(m.tri), GRID_TRI);
  assert.equal(m.identityNames.length, Ki);
  assert.equal(m.expressionNames.length, Ke);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(m.template[i] - (mean[i] + emean[i])) < 1e-4);
  const b = basis(Ki, 0);
  const sd = [2, 1, 0.5];
  for (let k = 0; k < Ki; k++) for (let i = 0; i < n; i++) {
    const x = halfToFloat(m.identityBasis[k * n + i]);
    const want = b[i * Ki + k] * sd[k];
    assert.ok(Math.abs(x - want) <= 1e-3 * Math.abs(want) + 1e-6, `identity ${k} ${i}: ${x} vs ${want}`);
  }
  const e = basis(Ke, 1);
  assert.ok(Math.abs(halfToFloat(m.expressionBasis[1 * n + 4]) - e[4 * Ke + 1] * 4) < 2e-3);
  assert.equal(m.color!.names.length, 2);
  assert.equal(m.extra.uv_source, 'none');
  assert.equal(m.uvCount, 1);
  gridUvObj(path.join(d, 'uv.obj'));
  const mu = await importBfm(f, { uvTemplate: path.join(d, 'uv.obj') });
  assert.equal(mu.uvCount, 8);
  await saveModel(mu, path.join(d, 'bfm.safetensors'));
  assert.equal(modelInfo(await loadModel(path.join(d, 'bfm.safetensors'))).colorModes, 2);
  // a foreign HDF5 file and a non-HDF5 file
  await writeHdf5(path.join(d, 'other.h5'), [{ path: 'x', data: new Float32Array(3) }]);
  await assert.rejects(importBfm(path.join(d, 'other.h5')), isCode('E_FORMAT', /other\.h5: no shape\/model\/mean/));
  fs.writeFileSync(path.join(d, 'names.json'), JSON.stringify({ identity: ['a', 'b'] }));
  await assert.rejects(importBfm(path.join(d, 'names.json')), isCode('E_FORMAT', /not a Basel Face Model/));
  const full = fs.readFileSync(f);
  fs.writeFileSync(path.join(d, 'cut.h5'), full.subarray(0, full.length >> 1));
  await assert.rejects(importBfm(path.join(d, 'cut.h5')), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_FORMAT' && /cut\.h5/.test(e.message));
});

test('HIFI3D++ (.mat v5 and v7.3) import: 1-based indices, UVs, keypoints, units', async () => {
  const d = tmpDir();
  const V = GRID_V;
  const n = 3 * V;
  const Ki = 3;
  const Ke = 2;
  const bs = Array.from({ length: Ki * n }, (_, i) => Math.sin(i) * 0.2);
  const be = Array.from({ length: Ke * n }, (_, i) => Math.cos(i) * 0.1);
  const mu = Array.from(GRID_POS, (x) => x * 10); // a 20-unit-wide "head": centimetres
  const vars = [
    { name: 'mu_shape', dims: [1, n], rowMajor: mu },
    { name: 'basis_shape', dims: [Ki, n], rowMajor: bs },
    { name: 'EVs', dims: [Ki, 1], rowMajor: [3, 2, 1] },
    { name: 'basis_exp', dims: [Ke, n], rowMajor: be },
    { name: 'tri', dims: [4, 3], rowMajor: GRID_TRI.map((x) => x + 1) },
    { name: 'tri_vt', dims: [4, 3], rowMajor: [1, 2, 5, 1, 5, 4, 8, 3, 6, 8, 6, 5] },
    { name: 'vt_list', dims: [8, 2], rowMajor: Array.from({ length: 16 }, (_, i) => i / 16) },
    { name: 'keypoints', dims: [1, 2], rowMajor: [1, 6] },
    { name: 'mask_face', dims: [1, V], rowMajor: [1, 1, 0, 1, 1, 0] },
  ];
  fs.writeFileSync(path.join(d, 'hifi3dpp.mat'), formatMatV5(vars));
  const m = await importHifi3d(path.join(d, 'hifi3dpp.mat'));
  assert.equal(m.units, 'cm');
  assert.deepEqual(Array.from(m.tri), GRID_TRI);
  assert.deepEqual(Array.from(m.uvTri), [0, 1, 4, 0, 4, 3, 7, 2, 5, 7, 5, 4]);
  assert.equal(m.uvCount, 8);
  assert.deepEqual(Array.from(m.landmarks!.vertex!), [0, 5]);
  assert.deepEqual(Array.from(m.parts.find((p) => p.name === 'face')!.vertices), [0, 1, 3, 4]);
  for (let i = 0; i < Ki * n; i++) assert.ok(Math.abs(halfToFloat(m.identityBasis[i]) - bs[i]) < 2e-4);
  for (let i = 0; i < Ke * n; i++) assert.ok(Math.abs(halfToFloat(m.expressionBasis[i]) - be[i]) < 1e-4);
  assert.deepEqual(Array.from(m.template), mu);
  // v7.3: HDF5 with MATLAB dims reversed; column-major data
  const h5vars = vars.map((v) => {
    const [r, c] = v.dims;
    const col = new Float64Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) col[j * r + i] = v.rowMajor[i * c + j];
    return { path: v.name, data: col, shape: [c, r] };
  });
  await writeHdf5(path.join(d, 'hifi73.mat'), h5vars);
  const m73 = await importHifi3d(path.join(d, 'hifi73.mat'), { units: 'mm' });
  assert.equal(m73.units, 'mm');
  assert.deepEqual(Array.from(m73.tri), GRID_TRI);
  assert.deepEqual(Buffer.from(bytesOf(m73.identityBasis)), Buffer.from(bytesOf(m.identityBasis)));
  await saveModel(m, path.join(d, 'h.safetensors'));
  assert.equal(modelInfo(await loadModel(path.join(d, 'h.safetensors'))).identityModes, Ki);
  // missing fields and bad indices
  fs.writeFileSync(path.join(d, 'partial.mat'), formatMatV5(vars.filter((v) => v.name !== 'basis_exp')));
  await assert.rejects(importHifi3d(path.join(d, 'partial.mat')), isCode('E_FORMAT', /partial\.mat: missing variable 'basis_exp'/));
  fs.writeFileSync(path.join(d, 'badtri.mat'), formatMatV5(vars.map((v) => (v.name === 'tri' ? { ...v, rowMajor: [1, 2, 99, 1, 5, 4, 2, 3, 6, 2, 6, 5] } : v))));
  await assert.rejects(importHifi3d(path.join(d, 'badtri.mat')), isCode('E_FORMAT', /badtri\.mat: tri has index 99 out of range/));
});
