import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  MorphModel, evalMorph, morphBackward, vertexNormals, vertexNormalsBackward, coefL2, boundsPenalty, projectBounds,
  floatToHalf, halfToFloat, type MorphCoeffs,
} from '../../lib/morph';
import { FaceG2EError } from '../../lib/errors';
import { assertClose, finiteDiff, relErr, hasShared, ICT_DIR } from '../helpers';
import { syntheticModel, refForward, refNormals, prng, rodrigues, npyHalf, type RefModel, type RefParams } from './morph_reference';

function randArr(n: number, amp: number, seed: number): Float64Array {
  const r = prng(seed);
  return Float64Array.from({ length: n }, () => amp * r());
}

/** Flat parameter vector x = [coeffs, pose, rotation, translation, scale] <-> MorphCoeffs / RefParams. */
function layout(ref: RefModel, rotLen: number) {
  const K = ref.Ki + ref.Ke, P3 = 3 * ref.J;
  const at = { coeffs: 0, pose: K, rot: K + P3, trans: K + P3 + rotLen, scale: K + P3 + rotLen + 3, n: K + P3 + rotLen + 4 };
  const toParams = (x: Float64Array): RefParams => ({
    coeffs: x.subarray(0, K),
    pose: x.subarray(at.pose, at.rot),
    rotation: rotLen ? x.subarray(at.rot, at.trans) : null,
    translation: x.subarray(at.trans, at.scale),
    scale: x[at.scale],
  });
  const toCoeffs = (x: Float64Array): MorphCoeffs => ({
    identity: x.subarray(0, ref.Ki),
    expression: x.subarray(ref.Ki, K),
    pose: ref.J ? x.subarray(at.pose, at.rot) : undefined,
    rotation: rotLen ? x.subarray(at.rot, at.trans) : undefined,
    translation: x.subarray(at.trans, at.scale),
    scale: x[at.scale],
  });
  return { at, toParams, toCoeffs };
}

function initParams(ref: RefModel, rotLen: number, seed: number): Float64Array {
  const { at } = layout(ref, rotLen);
  const x = randArr(at.n, 0.5, seed);
  for (let i = at.pose; i < at.rot; i++) x[i] *= 0.6;
  if (rotLen === 6) x.set([1, 0.1, -0.2, 0.05, 0.9, 0.3], at.rot);
  x[at.scale] = 1.3;
  return x;
}

test('float16 helpers round-trip and round to nearest even', () => {
  for (const v of [0, 1, -2.5, 65504, 6.1e-5, 5.96e-8, 0.1, -0.333]) assert.ok(Math.abs(halfToFloat(floatToHalf(v)) - v) <= Math.abs(v) * 1e-3 + 3e-8);
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(floatToHalf(1e6), 0x7c00);
});

test('blendshapes + rigid transform match a float64 reference (no joints)', () => {
  const { data, ref } = syntheticModel({ J: 0 });
  const model = MorphModel.create(data);
  assert.equal(model.info.numIdentity, 5);
  assert.equal(model.info.numJoints, 0);
  const { toParams, toCoeffs } = layout(ref, 3);
  const x = initParams(ref, 3, 11);
  const out = evalMorph(model, toCoeffs(x), { normals: true });
  const r = refForward(ref, toParams(x));
  assertClose(out.vertices, r.vertices, 2e-5, 1e-5, 'vertices');
  assertClose(out.normals!, r.normals, 1e-5, 0, 'normals');
  // the isolated vertex has a zero normal
  assert.deepEqual(Array.from(out.normals!.slice(-3)), [0, 0, 0]);
  // identity defaults: no rotation/translation/scale -> template + B c
  const plain = evalMorph(model, { identity: x.subarray(0, 5) });
  const rp = refForward(ref, { coeffs: Float64Array.from([...x.subarray(0, 5), 0, 0, 0]), pose: new Float64Array(0), rotation: null, translation: new Float64Array(3), scale: 1 });
  assertClose(plain.vertices, rp.vertices, 1e-5, 1e-5, 'plain vertices');
  model.dispose();
  assert.throws(() => evalMorph(model, {}), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT');
});

test('FLAME-style skinning (joint regression, Rodrigues, chain, posedirs, LBS) matches the reference', () => {
  const { data, ref } = syntheticModel({ J: 5 });
  const model = MorphModel.create(data);
  assert.equal(model.info.numPoseCorrectives, 36);
  for (const rotLen of [3, 6]) {
    const { toParams, toCoeffs } = layout(ref, rotLen);
    const x = initParams(ref, rotLen, 21 + rotLen);
    const out = evalMorph(model, toCoeffs(x), { normals: true });
    const r = refForward(ref, toParams(x));
    assertClose(out.vertices, r.vertices, 5e-5, 1e-5, `vertices (rotation ${rotLen})`);
    assertClose(out.normals!, r.normals, 5e-5, 0, `normals (rotation ${rotLen})`);
  }
  // rest pose with zero coefficients reproduces the template exactly (weights sum to 1, A = [I | 0])
  const rest = evalMorph(model, {});
  assertClose(rest.vertices, data.template, 2e-6, 0, 'rest pose');
});

test('Rodrigues: exact at zero, stable small-angle branch, and agrees with the closed form', () => {
  const { data, ref } = syntheticModel({ J: 2, Ki: 1, Ke: 0, posedirs: false });
  const model = MorphModel.create(data);
  // the global rotation through a skinning-free path: rotate the template
  for (const r of [[0, 0, 0], [1e-7, -2e-7, 3e-7], [0.05, -0.02, 0.01], [0.09, 0.04, 0], [0.2, 0.1, -0.3], [2.5, -1, 0.5]]) {
    const out = evalMorph(model, { rotation: r });
    const R = rodrigues(r);
    const exp = new Float64Array(out.vertices.length);
    const t = ref.template;
    for (let v = 0; v < ref.V; v++)
      for (let i = 0; i < 3; i++) exp[3 * v + i] = R[i * 3] * t[3 * v] + R[i * 3 + 1] * t[3 * v + 1] + R[i * 3 + 2] * t[3 * v + 2];
    assertClose(out.vertices, exp, 3e-6, 3e-6, `rotation ${r}`);
  }
});

function gradCheck(J: number, rotLen: number, withNormals: boolean, seed: number) {
  const { data, ref } = syntheticModel({ J, seed });
  const model = MorphModel.create(data);
  const { at, toParams, toCoeffs } = layout(ref, rotLen);
  const x = initParams(ref, rotLen, seed + 100);
  const N = 3 * ref.V;
  const wv = randArr(N, 1, seed + 200);
  const wn = randArr(N, 1, seed + 300);
  const loss = (xx: Float64Array) => {
    const r = refForward(ref, toParams(xx));
    let s = 0;
    for (let i = 0; i < N; i++) s += wv[i] * r.vertices[i] + (withNormals ? wn[i] * r.normals[i] : 0);
    return s;
  };
  const fd = finiteDiff(loss, x, 1e-5);
  const g = morphBackward(model, toCoeffs(x), { vertices: Float32Array.from(wv), normals: withNormals ? Float32Array.from(wn) : undefined });
  const parts: [string, ArrayLike<number>, number, number][] = [
    ['identity', g.identity, 0, ref.Ki],
    ['expression', g.expression, ref.Ki, at.pose],
    ['translation', g.translation, at.trans, at.scale],
    ['scale', [g.scale], at.scale, at.n],
  ];
  if (J) parts.push(['pose', g.pose!, at.pose, at.rot]);
  if (rotLen) parts.push(['rotation', g.rotation!, at.rot, at.trans]);
  for (const [name, got, a, b] of parts) {
    const want = fd.subarray(a, b);
    const e = relErr(got, want, 1e-6);
    assert.ok(e < 2e-3, `${name} (J=${J}, rotation ${rotLen}, normals ${withNormals}): rel err ${e}\n got ${Array.from(got).slice(0, 6)}\n fd  ${Array.from(want).slice(0, 6)}`);
  }
}

test('gradients vs central finite differences: blendshapes + rigid (axis-angle), through normals', () => gradCheck(0, 3, true, 3));
test('gradients vs central finite differences: skinned model, axis-angle rotation', () => gradCheck(5, 3, false, 5));
test('gradients vs central finite differences: skinned model, 6D rotation, through normals', () => gradCheck(5, 6, true, 7));

test('pose gradient is finite and correct at the rest pose (small-angle branch)', () => {
  const { data, ref } = syntheticModel({ J: 3, seed: 9 });
  const model = MorphModel.create(data);
  const { at, toParams, toCoeffs } = layout(ref, 0);
  const x = initParams(ref, 0, 99);
  x.fill(0, at.pose, at.rot);
  x[at.pose + 4] = 1e-4;
  const N = 3 * ref.V;
  const wv = randArr(N, 1, 5);
  const loss = (xx: Float64Array) => refForward(ref, toParams(xx)).vertices.reduce((s, v, i) => s + wv[i] * v, 0);
  const fd = finiteDiff(loss, x, 1e-5);
  const g = morphBackward(model, toCoeffs(x), { vertices: Float32Array.from(wv) });
  assert.ok(g.pose!.every(Number.isFinite));
  assert.ok(relErr(g.pose!, fd.subarray(at.pose, at.rot), 1e-6) < 2e-3, `pose ${g.pose} vs ${fd.subarray(at.pose, at.rot)}`);
});

test('vertex normals (standalone): forward matches the reference; deterministic gather == twin; backward vs finite differences', () => {
  const { ref } = syntheticModel({ J: 0, seed: 4 });
  const pos = Float32Array.from(ref.template);
  const n = vertexNormals(pos, ref.triangles);
  assertClose(n, refNormals(pos, ref.triangles), 1e-6, 0, 'normals');
  const w = randArr(pos.length, 1, 8);
  const fd = finiteDiff((p) => refNormals(p, ref.triangles).reduce((s, v, i) => s + w[i] * v, 0), pos, 1e-6);
  const g = vertexNormalsBackward(pos, ref.triangles, Float32Array.from(w));
  assert.ok(relErr(g, fd) < 1e-3, `normals backward rel err ${relErr(g, fd)}`);
  assert.deepEqual(Array.from(g.slice(-3)), [0, 0, 0]);
  assert.throws(() => vertexNormals(pos, Int32Array.from([0, 1, 9999])), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT' && /triangles/.test(e.message));
});

test('regularisers: std-scaled L2 and bound penalties (value, gradient), projection', () => {
  const x = Float32Array.from([0.5, -2, 3, 0.25]);
  const std = Float32Array.from([1, 2, 0.5, 4]);
  const r = coefL2(x, { std, weight: 0.3 });
  let want = 0;
  for (let i = 0; i < 4; i++) want += 0.3 * (x[i] / std[i]) ** 2;
  assert.ok(Math.abs(r.value - want) < 1e-5);
  assertClose(r.grad, Array.from(x, (v, i) => (0.6 * v) / std[i] ** 2), 1e-6, 1e-6, 'coefL2 grad');
  const b = boundsPenalty(x, { lo: 0, hi: 1, weight: 2 });
  assert.ok(Math.abs(b.value - 2 * (4 + 4)) < 1e-5, `bounds value ${b.value}`);
  assertClose(b.grad, [0, -8, 8, 0], 1e-6, 0, 'bounds grad');
  const fd = finiteDiff((v) => v.reduce((s, xi) => s + 2 * (xi < 0 ? xi * xi : xi > 1 ? (xi - 1) ** 2 : 0), 0), x, 1e-4);
  assertClose(b.grad, fd, 1e-3, 1e-3, 'bounds grad vs fd');
  const lo = Float32Array.from([-1, -1, -1, 0.5]);
  const bb = boundsPenalty(x, { lo, hi: 2, weight: 1 });
  assertClose(bb.grad, [0, -2, 2, -0.5], 1e-6, 0, 'per-element bounds');
  assert.deepEqual(Array.from(projectBounds(x, { lo: 0, hi: 1 })), [0.5, 0, 1, 0.25]);
  assert.deepEqual(Array.from(x), [0.5, -2, 3, 0.25], 'projection returns a copy');
});

test('bad model data is E_INVALID_ARGUMENT naming the field', () => {
  const { data } = syntheticModel({ J: 3 });
  const bad = (mut: (d: typeof data) => void, re: RegExp) => {
    const d = { ...data, skinning: { ...data.skinning! } };
    mut(d);
    assert.throws(() => MorphModel.create(d), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT' && re.test(e.message), String(re));
  };
  bad((d) => (d.skinning!.parents = Int32Array.from([-1, 2, 0])), /parents\[1\]/);
  bad((d) => (d.skinning!.parents = Int32Array.from([0, 0, 0])), /parents\[0\]/);
  bad((d) => (d.skinning!.weights = new Float32Array(7)), /weights/);
  bad((d) => (d.identityBasis = new Uint16Array(10)), /identityBasis/);
  bad((d) => (d.triangles = Int32Array.from([0, 1, -1])), /triangles/);
  bad((d) => (d.identityStd = new Float32Array(5)), /identityStd/);
  const model = MorphModel.create(data);
  assert.throws(() => evalMorph(model, { identity: [1, 2] }), /identity: expected 5/);
  assert.throws(() => evalMorph(model, { rotation: [1, 2] }), /rotation/);
  assert.throws(() => evalMorph(model, { pose: new Float32Array(9).fill(NaN) }), /pose: non-finite/);
  assert.throws(() => evalMorph(model, {}, {}) && evalMorph(model, { translation: [0, 0] }), /translation/);
  assert.throws(() => evalMorph(model, {}, {}) && MorphModel.create(data, { device: 'tpu' as never }), /device/);
});

test('ICT-FaceKit arrays: blendshapes and dL/dcoefficients on the real float16 bases', { skip: !hasShared && 'no ../shared' }, () => {
  const id = npyHalf(fs.readFileSync(path.join(ICT_DIR, 'identity_deltas.npy')));
  const ex = npyHalf(fs.readFileSync(path.join(ICT_DIR, 'expression_deltas.npy')));
  assert.deepEqual(id.shape, [100, 26719, 3]);
  assert.deepEqual(ex.shape, [57, 26719, 3]);
  const V = 26719, N = 3 * V, K = 157;
  const rnd = prng(77);
  const template = Float32Array.from({ length: N }, () => 10 * rnd());
  const model = MorphModel.create({ template, identityBasis: id.data, expressionBasis: ex.data });
  const identity = Float32Array.from({ length: 100 }, () => rnd());
  const expression = Float32Array.from({ length: 57 }, () => 0.5 + 0.5 * rnd());
  const g = Float32Array.from({ length: N }, () => rnd());
  const r = morphBackward(model, { identity, expression }, { vertices: g });
  const table = new Float64Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = halfToFloat(h);
  const c = [...identity, ...expression];
  const rows = (k: number) => (k < 100 ? id.data.subarray(k * N, (k + 1) * N) : ex.data.subarray((k - 100) * N, (k - 99) * N));
  // vertices on a sample of rows
  for (let rr = 0; rr < N; rr += 97) {
    let v = template[rr];
    for (let k = 0; k < K; k++) v += c[k] * table[rows(k)[rr]];
    assert.ok(Math.abs(r.vertices[rr] - v) < 1e-4 + 1e-5 * Math.abs(v), `row ${rr}: ${r.vertices[rr]} vs ${v}`);
  }
  // basis^T g for every mode
  const dc = [...r.identity, ...r.expression];
  let worst = 0;
  for (let k = 0; k < K; k++) {
    const row = rows(k);
    let s = 0, sa = 0;
    for (let i = 0; i < N; i++) {
      const t = table[row[i]] * g[i];
      s += t;
      sa += Math.abs(t);
    }
    worst = Math.max(worst, Math.abs(dc[k] - s) / (sa + 1e-12));
  }
  assert.ok(worst < 1e-5, `dL/dcoeffs relative error ${worst}`);
  model.dispose();
});
