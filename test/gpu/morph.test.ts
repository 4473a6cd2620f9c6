/**
 * CUDA vs CPU twins of the morph domain on ICT-sized and FLAME-sized data, gradients vs CPU and finite
 * differences, and reproducibility of the deterministic mode. Needs a GPU (npm run test:gpu).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MorphModel, evalMorph, morphBackward, vertexNormals, vertexNormalsBackward, coefL2, boundsPenalty, projectBounds, toHalf, type MorphModelData } from '../../lib/morph';
import { cudaAvailable } from '../../lib/device';
import { assertClose, finiteDiff, relErr, hasShared, ICT_DIR } from '../helpers';
import { syntheticModel, refForward, prng, npyHalf } from '../cpu/morph_reference';

const skip = !cudaAvailable() && 'no CUDA device';

function rand(n: number, amp: number, seed: number, offset = 0): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => offset + amp * r());
}

function bitwiseEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** ICT-sized: the real bases when ../shared is there, else random float16 bases of the same size. */
function ictData(): MorphModelData {
  const V = 26719, N = 3 * V;
  const rnd = prng(5);
  const template = Float32Array.from({ length: N }, () => 10 * rnd());
  let identityBasis: Uint16Array, expressionBasis: Uint16Array;
  if (hasShared) {
    identityBasis = npyHalf(fs.readFileSync(path.join(ICT_DIR, 'identity_deltas.npy'))).data;
    expressionBasis = npyHalf(fs.readFileSync(path.join(ICT_DIR, 'expression_deltas.npy'))).data;
  } else {
    identityBasis = toHalf(rand(100 * N, 0.5, 1));
    expressionBasis = toHalf(rand(57 * N, 0.5, 2));
  }
  // a triangle strip over consecutive vertices, for the normals path
  const T = V - 2;
  const triangles = new Int32Array(3 * T);
  for (let f = 0; f < T; f++) triangles.set(f % 2 ? [f, f + 2, f + 1] : [f, f + 1, f + 2], 3 * f);
  return { template, identityBasis, expressionBasis, triangles };
}

/** FLAME-sized synthetic: 5023 vertices, 300 identity + 100 expression modes, 5 joints, posedirs. */
function flameData(): MorphModelData {
  const V = 5023, N = 3 * V, J = 5;
  const r = prng(9);
  const template = Float32Array.from({ length: N }, () => 0.1 * r());
  const weights = new Float32Array(V * J);
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let j = 0; j < J; j++) s += weights[v * J + j] = Math.abs(r()) + 0.01;
    for (let j = 0; j < J; j++) weights[v * J + j] /= s;
  }
  const regressor = new Float32Array(J * V);
  for (let j = 0; j < J; j++) for (let v = j; v < V; v += 50) regressor[j * V + v] = 1 / Math.ceil((V - j) / 50);
  const T = V - 2;
  const triangles = new Int32Array(3 * T);
  for (let f = 0; f < T; f++) triangles.set(f % 2 ? [f, f + 2, f + 1] : [f, f + 1, f + 2], 3 * f);
  return {
    template,
    identityBasis: toHalf(rand(300 * N, 0.01, 3)),
    expressionBasis: toHalf(rand(100 * N, 0.01, 4)),
    triangles,
    skinning: { parents: Int32Array.from([-1, 0, 1, 1, 1]), weights, regressor, posedirs: toHalf(rand(36 * N, 0.01, 6)) },
  };
}

function compareTwins(data: MorphModelData, label: string, withPose: boolean) {
  const cpu = MorphModel.create(data, { device: 'cpu' });
  const gpu = MorphModel.create(data, { device: 'cuda' });
  const Ki = cpu.info.numIdentity, Ke = cpu.info.numExpression, J = cpu.info.numJoints, N = 3 * cpu.info.numVertices;
  const coeffs = {
    identity: rand(Ki, 1, 11),
    expression: rand(Ke, 0.5, 12, 0.5),
    pose: withPose ? rand(3 * J, 0.4, 13) : undefined,
    rotation: [0.1, -0.2, 0.05],
    translation: [0.3, -1, 2],
    scale: 1.1,
  };
  const up = { vertices: rand(N, 1, 14), normals: rand(N, 1, 15) };
  for (const deterministic of [true, false]) {
    const a = morphBackward(cpu, coeffs, up, { normals: true, deterministic });
    const b = morphBackward(gpu, coeffs, up, { normals: true, deterministic });
    const what = `${label} (deterministic ${deterministic})`;
    assertClose(b.vertices, a.vertices, 1e-4, 1e-5, `${what}: vertices`);
    assertClose(b.normals!, a.normals!, 2e-4, 0, `${what}: normals`);
    for (const k of ['identity', 'expression', 'translation'] as const) assert.ok(relErr(b[k], a[k]) < 1e-4, `${what}: ${k} rel err ${relErr(b[k], a[k])}`);
    assert.ok(Math.abs(b.scale - a.scale) <= 1e-4 * Math.abs(a.scale) + 1e-4, `${what}: scale ${b.scale} vs ${a.scale}`);
    assert.ok(relErr(b.rotation!, a.rotation!) < 1e-4, `${what}: rotation`);
    if (withPose) assert.ok(relErr(b.pose!, a.pose!) < 1e-4, `${what}: pose rel err ${relErr(b.pose!, a.pose!)}`);
  }
  // without joints the blendshape forward twins are bitwise identical (same fma/add order on both sides)
  if (J === 0) {
    const a = evalMorph(cpu, { identity: coeffs.identity, expression: coeffs.expression });
    const b = evalMorph(gpu, { identity: coeffs.identity, expression: coeffs.expression });
    assert.ok(bitwiseEqual(a.vertices, b.vertices), `${label}: blendshape forward twins differ bitwise`);
  }
  // deterministic mode is reproducible bit for bit
  const r1 = morphBackward(gpu, coeffs, up, { normals: true, deterministic: true });
  const r2 = morphBackward(gpu, coeffs, up, { normals: true, deterministic: true });
  for (const k of ['identity', 'expression', 'translation', 'rotation', 'vertices', 'normals'] as const)
    assert.ok(bitwiseEqual(r1[k]!, r2[k]!), `${label}: deterministic ${k} differs between runs`);
  if (withPose) assert.ok(bitwiseEqual(r1.pose!, r2.pose!), `${label}: deterministic pose differs`);
  cpu.dispose();
  gpu.dispose();
}

test('ICT-sized model: CUDA matches the CPU twin (forward, normals, all gradients), deterministic mode reproducible', { skip }, () =>
  compareTwins(ictData(), 'ICT', false));

test('FLAME-sized model with skinning: CUDA matches the CPU twin, deterministic mode reproducible', { skip }, () =>
  compareTwins(flameData(), 'FLAME', true));

test('CUDA gradients vs central finite differences of the float64 reference (small skinned model, 6D rotation)', { skip }, () => {
  const { data, ref } = syntheticModel({ J: 5, seed: 31 });
  const model = MorphModel.create(data, { device: 'cuda' });
  const K = ref.Ki + ref.Ke, J = ref.J, N = 3 * ref.V;
  const r = prng(3);
  const x = Float64Array.from({ length: K + 3 * J + 6 + 4 }, () => 0.4 * r());
  x.set([1, 0.1, -0.2, 0.05, 0.9, 0.3], K + 3 * J);
  x[x.length - 1] = 0.8;
  const wv = Float64Array.from({ length: N }, () => r());
  const wn = Float64Array.from({ length: N }, () => r());
  const params = (xx: Float64Array) => ({
    coeffs: xx.subarray(0, K), pose: xx.subarray(K, K + 3 * J), rotation: xx.subarray(K + 3 * J, K + 3 * J + 6),
    translation: xx.subarray(K + 3 * J + 6, K + 3 * J + 9), scale: xx[K + 3 * J + 9],
  });
  const loss = (xx: Float64Array) => {
    const o = refForward(ref, params(xx));
    let s = 0;
    for (let i = 0; i < N; i++) s += wv[i] * o.vertices[i] + wn[i] * o.normals[i];
    return s;
  };
  const fd = finiteDiff(loss, x, 1e-5);
  const p = params(x);
  const g = morphBackward(
    model,
    { identity: p.coeffs.subarray(0, ref.Ki), expression: p.coeffs.subarray(ref.Ki), pose: p.pose, rotation: p.rotation, translation: p.translation, scale: p.scale },
    { vertices: Float32Array.from(wv), normals: Float32Array.from(wn) },
  );
  const got = [...g.identity, ...g.expression, ...g.pose!, ...g.rotation!, ...g.translation, g.scale];
  for (const [name, a, b] of [['coeffs', 0, K], ['pose', K, K + 3 * J], ['rotation', K + 3 * J, K + 3 * J + 6], ['translation', K + 3 * J + 6, K + 3 * J + 9], ['scale', K + 3 * J + 9, K + 3 * J + 10]] as const) {
    const e = relErr(got.slice(a, b), fd.subarray(a, b), 1e-6);
    assert.ok(e < 2e-3, `${name}: rel err ${e}`);
  }
  model.dispose();
});

test('standalone normals and regularisers: CUDA == CPU (gather bitwise, atomics within tolerance)', { skip }, () => {
  const data = ictData();
  const pos = data.template;
  const tris = data.triangles as Int32Array;
  const nc = vertexNormals(pos, tris, { device: 'cpu' });
  const ng = vertexNormals(pos, tris, { device: 'cuda', deterministic: true });
  assert.ok(bitwiseEqual(nc, ng), 'gather normals differ bitwise from the CPU twin');
  assertClose(vertexNormals(pos, tris, { device: 'cuda', deterministic: false }), nc, 1e-5, 0, 'atomic normals');
  const dn = rand(pos.length, 1, 3);
  const bc = vertexNormalsBackward(pos, tris, dn, { device: 'cpu' });
  const bg = vertexNormalsBackward(pos, tris, dn, { device: 'cuda', deterministic: true });
  const ba = vertexNormalsBackward(pos, tris, dn, { device: 'cuda', deterministic: false });
  assert.ok(relErr(bg, bc) < 1e-5 && relErr(ba, bc) < 1e-5, `normals backward: ${relErr(bg, bc)} ${relErr(ba, bc)}`);
  assert.ok(bitwiseEqual(bg, vertexNormalsBackward(pos, tris, dn, { device: 'cuda', deterministic: true })), 'gather backward not reproducible');

  const x = rand(1000, 3, 4);
  const std = rand(1000, 0.5, 5, 1);
  const a = coefL2(x, { std, weight: 0.1 }), b = coefL2(x, { std, weight: 0.1, device: 'cuda' });
  assert.ok(Math.abs(a.value - b.value) < 1e-4 * a.value);
  assertClose(b.grad, a.grad, 1e-6, 1e-6, 'coefL2 grad');
  const c = boundsPenalty(x, { lo: -1, hi: 1, weight: 2 }), d = boundsPenalty(x, { lo: -1, hi: 1, weight: 2, device: 'cuda' });
  assert.ok(Math.abs(c.value - d.value) < 1e-4 * c.value);
  assertClose(d.grad, c.grad, 1e-6, 1e-6, 'bounds grad');
  assert.deepEqual(projectBounds(x, { lo: -1, hi: 1, device: 'cuda' }), projectBounds(x, { lo: -1, hi: 1 }));
});
