/** Float64 reference of the morph maths (straightforward, no tricks) and synthetic models, for the morph tests. */
import { fromHalf, toHalf, type MorphModelData } from '../../lib/morph';

export interface RefModel {
  V: number;
  Ki: number;
  Ke: number;
  J: number;
  template: Float64Array;
  basis: Float64Array[]; // K rows of N (decoded float16)
  posedirs: Float64Array[]; // P rows of N
  triangles: Int32Array;
  parents: Int32Array;
  weights: Float64Array; // [V, J]
  regressor: Float64Array; // [J, V]
}

export interface RefParams {
  coeffs: Float64Array; // K
  pose: Float64Array; // 3J
  rotation: Float64Array | null; // 3 or 6
  translation: Float64Array;
  scale: number;
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  };
}

/** A bumpy grid surface of gx*gy vertices (plus `extra` isolated vertices) with random bases and skinning. */
export function syntheticModel(o: { gx?: number; gy?: number; Ki?: number; Ke?: number; J?: number; seed?: number; posedirs?: boolean } = {}): {
  data: MorphModelData;
  ref: RefModel;
} {
  const gx = o.gx ?? 7, gy = o.gy ?? 7, Ki = o.Ki ?? 5, Ke = o.Ke ?? 3, J = o.J ?? 5;
  const rnd = prng(o.seed ?? 1);
  const V = gx * gy + 1; // one isolated vertex (normal 0)
  const N = 3 * V;
  const template = new Float32Array(N);
  for (let y = 0; y < gy; y++)
    for (let x = 0; x < gx; x++) {
      const v = y * gx + x;
      template[3 * v] = x * 0.2 + 0.02 * rnd();
      template[3 * v + 1] = y * 0.2 + 0.02 * rnd();
      template[3 * v + 2] = 0.1 * rnd();
    }
  template.set([0.5, 0.5, 1.0], 3 * (V - 1));
  const tris: number[] = [];
  for (let y = 0; y + 1 < gy; y++)
    for (let x = 0; x + 1 < gx; x++) {
      const a = y * gx + x, b = a + 1, c = a + gx, d = c + 1;
      tris.push(a, b, d, a, d, c);
    }
  const basisF = (rows: number, amp: number) => {
    const a = new Float32Array(rows * N);
    for (let i = 0; i < a.length; i++) a[i] = amp * rnd();
    return toHalf(a);
  };
  const identityBasis = basisF(Ki, 0.1);
  const expressionBasis = basisF(Ke, 0.05);
  const data: MorphModelData = {
    template,
    identityBasis,
    expressionBasis,
    identityStd: Float32Array.from({ length: Ki }, (_, i) => 1 + 0.5 * i),
    expressionStd: Float32Array.from({ length: Ke }, () => 1),
    triangles: Int32Array.from(tris),
  };
  const ref: RefModel = {
    V,
    Ki,
    Ke,
    J: 0,
    template: Float64Array.from(template),
    basis: [],
    posedirs: [],
    triangles: Int32Array.from(tris),
    parents: new Int32Array(0),
    weights: new Float64Array(0),
    regressor: new Float64Array(0),
  };
  const idF = fromHalf(identityBasis), exF = fromHalf(expressionBasis);
  for (let k = 0; k < Ki; k++) ref.basis.push(Float64Array.from(idF.subarray(k * N, (k + 1) * N)));
  for (let k = 0; k < Ke; k++) ref.basis.push(Float64Array.from(exF.subarray(k * N, (k + 1) * N)));
  if (J > 0) {
    const parents = Int32Array.from({ length: J }, (_, j) => (j === 0 ? -1 : j === 1 ? 0 : j % 2 === 0 ? j - 1 : Math.max(0, j - 2)));
    const weights = new Float32Array(V * J);
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let j = 0; j < J; j++) {
        const w = j === (v % J) ? 0 : Math.abs(rnd()) + 0.05; // some zeros
        weights[v * J + j] = w;
        s += w;
      }
      for (let j = 0; j < J; j++) weights[v * J + j] /= s;
    }
    const regressor = new Float32Array(J * V);
    for (let j = 0; j < J; j++) {
      let s = 0;
      for (let v = 0; v < V; v++) {
        const w = (v + j) % 3 === 0 ? Math.abs(rnd()) : 0;
        regressor[j * V + v] = w;
        s += w;
      }
      for (let v = 0; v < V; v++) regressor[j * V + v] /= s;
    }
    const P = 9 * (J - 1);
    const posedirs = o.posedirs === false ? undefined : basisF(P, 0.05);
    data.skinning = { parents, weights, regressor, posedirs };
    ref.J = J;
    ref.parents = parents;
    ref.weights = Float64Array.from(weights);
    ref.regressor = Float64Array.from(regressor);
    if (posedirs) {
      const pd = fromHalf(posedirs);
      for (let p = 0; p < P; p++) ref.posedirs.push(Float64Array.from(pd.subarray(p * N, (p + 1) * N)));
    }
  }
  return { data, ref };
}

type M3 = number[]; // row-major 9

export function rodrigues(r: ArrayLike<number>): M3 {
  const th = Math.hypot(r[0], r[1], r[2]);
  const K = [0, -r[2], r[1], r[2], 0, -r[0], -r[1], r[0], 0];
  const K2 = mm(K, K);
  const a = th < 1e-8 ? 1 - (th * th) / 6 : Math.sin(th) / th;
  const b = th < 1e-8 ? 0.5 - (th * th) / 24 : (1 - Math.cos(th)) / (th * th);
  return K.map((k, i) => (i % 4 === 0 ? 1 : 0) + a * k + b * K2[i]);
}

export function rot6d(p: ArrayLike<number>): M3 {
  const a1 = [p[0], p[1], p[2]], a2 = [p[3], p[4], p[5]];
  const n1 = Math.hypot(...a1);
  const b1 = a1.map((x) => x / n1);
  const s = b1[0] * a2[0] + b1[1] * a2[1] + b1[2] * a2[2];
  const u = a2.map((x, i) => x - s * b1[i]);
  const n2 = Math.hypot(...u);
  const b2 = u.map((x) => x / n2);
  const b3 = [b1[1] * b2[2] - b1[2] * b2[1], b1[2] * b2[0] - b1[0] * b2[2], b1[0] * b2[1] - b1[1] * b2[0]];
  return [b1[0], b2[0], b3[0], b1[1], b2[1], b3[1], b1[2], b2[2], b3[2]];
}

export function mm(A: M3, B: M3): M3 {
  const C = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) C[i * 3 + j] += A[i * 3 + k] * B[k * 3 + j];
  return C;
}
function mv(A: M3, v: number[]): number[] {
  return [0, 1, 2].map((i) => A[i * 3] * v[0] + A[i * 3 + 1] * v[1] + A[i * 3 + 2] * v[2]);
}

/** World transforms of the chain: [R (9), t (3)] per joint, with rest joints Jr. */
export function chain(parents: Int32Array, Rs: M3[], Jr: number[][]): { R: M3; t: number[] }[] {
  const G: { R: M3; t: number[] }[] = [];
  for (let j = 0; j < parents.length; j++) {
    const p = parents[j];
    if (p < 0) G.push({ R: Rs[j], t: Jr[j].slice() });
    else {
      const d = Jr[j].map((x, i) => x - Jr[p][i]);
      const o = mv(G[p].R, d);
      G.push({ R: mm(G[p].R, Rs[j]), t: o.map((x, i) => x + G[p].t[i]) });
    }
  }
  return G;
}

export function refForward(m: RefModel, p: RefParams): { vertices: Float64Array; normals: Float64Array } {
  const N = 3 * m.V;
  const vs = Float64Array.from(m.template);
  for (let k = 0; k < m.basis.length; k++) {
    const c = p.coeffs[k];
    if (c === 0) continue;
    const row = m.basis[k];
    for (let r = 0; r < N; r++) vs[r] += c * row[r];
  }
  let u = vs;
  if (m.J > 0) {
    const Jr: number[][] = [];
    for (let j = 0; j < m.J; j++) {
      const q = [0, 0, 0];
      for (let v = 0; v < m.V; v++) for (let d = 0; d < 3; d++) q[d] += m.regressor[j * m.V + v] * vs[3 * v + d];
      Jr.push(q);
    }
    const Rs = Array.from({ length: m.J }, (_, j) => rodrigues(p.pose.subarray(3 * j, 3 * j + 3)));
    const vp = Float64Array.from(vs);
    for (let j = 1; j < m.J && m.posedirs.length; j++)
      for (let i = 0; i < 9; i++) {
        const f = Rs[j][i] - (i % 4 === 0 ? 1 : 0);
        const row = m.posedirs[9 * (j - 1) + i];
        for (let r = 0; r < N; r++) vp[r] += f * row[r];
      }
    const G = chain(m.parents, Rs, Jr);
    const A = G.map((g, j) => {
      const rj = mv(g.R, Jr[j]);
      return { R: g.R, t: g.t.map((x, i) => x - rj[i]) };
    });
    u = new Float64Array(N);
    for (let v = 0; v < m.V; v++) {
      const pv = [vp[3 * v], vp[3 * v + 1], vp[3 * v + 2]];
      for (let j = 0; j < m.J; j++) {
        const w = m.weights[v * m.J + j];
        const o = mv(A[j].R, pv);
        for (let d = 0; d < 3; d++) u[3 * v + d] += w * (o[d] + A[j].t[d]);
      }
    }
  }
  const R = p.rotation ? (p.rotation.length === 6 ? rot6d(p.rotation) : rodrigues(p.rotation)) : [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const out = new Float64Array(N);
  for (let v = 0; v < m.V; v++) {
    const o = mv(R, [u[3 * v], u[3 * v + 1], u[3 * v + 2]]);
    for (let d = 0; d < 3; d++) out[3 * v + d] = p.scale * o[d] + p.translation[d];
  }
  return { vertices: out, normals: refNormals(out, m.triangles) };
}

export function refNormals(pos: ArrayLike<number>, tris: Int32Array): Float64Array {
  const V = pos.length / 3;
  const m = new Float64Array(3 * V);
  for (let f = 0; f < tris.length / 3; f++) {
    const [a, b, c] = [tris[3 * f], tris[3 * f + 1], tris[3 * f + 2]];
    const e1 = [0, 1, 2].map((d) => pos[3 * b + d] - pos[3 * a + d]);
    const e2 = [0, 1, 2].map((d) => pos[3 * c + d] - pos[3 * a + d]);
    const n = [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
    for (const v of [a, b, c]) for (let d = 0; d < 3; d++) m[3 * v + d] += n[d];
  }
  for (let v = 0; v < V; v++) {
    const l = Math.hypot(m[3 * v], m[3 * v + 1], m[3 * v + 2]);
    for (let d = 0; d < 3; d++) m[3 * v + d] = l > 0 ? m[3 * v + d] / l : 0;
  }
  return m;
}

/** Parse a little-endian .npy file (float16 / float32 / int32), returning its shape and raw data view. */
export function parseNpy(buf: Buffer): { descr: string; shape: number[]; data: Uint8Array } {
  if (buf.readUInt32BE(0) !== 0x934e554d) throw new Error('not a .npy file');
  const major = buf[6];
  const hlen = major >= 2 ? buf.readUInt32LE(8) : buf.readUInt16LE(8);
  const hstart = major >= 2 ? 12 : 10;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)![1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error('fortran order');
  const off = hstart + hlen;
  const data = new Uint8Array(buf.buffer, buf.byteOffset + off, buf.length - off);
  return { descr, shape, data };
}

export function npyHalf(buf: Buffer): { shape: number[]; data: Uint16Array } {
  const n = parseNpy(buf);
  if (n.descr !== '<f2') throw new Error(`expected <f2, got ${n.descr}`);
  const count = n.shape.reduce((a, b) => a * b, 1);
  const copy = new Uint16Array(count);
  new Uint8Array(copy.buffer).set(n.data.subarray(0, count * 2));
  return { shape: n.shape, data: copy };
}
