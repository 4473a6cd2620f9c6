/**
 * A small synthetic morphable head for the pipeline tests and benchmark: an ellipsoid (UV sphere with a seam and
 * merged poles, y up, face towards +z, metres) with a few smooth identity modes (radial displacements: a nose-like
 * bump, cheeks, elongation, jaw width, brow) stored as float16, and a procedural RGB texture.
 */
import { float32ToFloat16 } from '../../lib/io/npy';
import type { PipelineModel } from '../../lib/pipeline-native';

export interface SyntheticHead {
  model: PipelineModel;
  V: number;
  T: number;
  targetCoefficients: Float32Array;
  texture: Float32Array;
  textureSize: number;
}

export function syntheticHead(opts: { rings?: number; segments?: number; textureSize?: number; modes?: number } = {}): SyntheticHead {
  const rings = opts.rings ?? 20;
  const segs = opts.segments ?? 28;
  const radii = [0.08, 0.11, 0.095];
  // positions: north pole, (rings-1) rings × segs, south pole
  const pos: number[] = [0, radii[1], 0];
  const dirs: number[][] = [[0, 1, 0]];
  for (let r = 1; r < rings; r++) {
    const th = (Math.PI * r) / rings;
    for (let s = 0; s < segs; s++) {
      const ph = (2 * Math.PI * s) / segs;
      const d = [Math.sin(th) * Math.sin(ph), Math.cos(th), Math.sin(th) * Math.cos(ph)];
      dirs.push(d);
      pos.push(radii[0] * d[0], radii[1] * d[1], radii[2] * d[2]);
    }
  }
  dirs.push([0, -1, 0]);
  pos.push(0, -radii[1], 0);
  const V = pos.length / 3;
  const south = V - 1;
  const vid = (r: number, s: number) => (r === 0 ? 0 : r === rings ? south : 1 + (r - 1) * segs + (s % segs));
  // uv grid (rings+1) × (segs+1); seam column duplicated; origin bottom-left (v = 1 at the north pole)
  const uv: number[] = [];
  for (let r = 0; r <= rings; r++) for (let s = 0; s <= segs; s++) uv.push(s / segs, 1 - r / rings);
  const uid = (r: number, s: number) => r * (segs + 1) + s;
  const tri: number[] = [];
  const uvTri: number[] = [];
  for (let r = 0; r < rings; r++)
    for (let s = 0; s < segs; s++) {
      const a = [r, s], b = [r + 1, s], c = [r + 1, s + 1], d = [r, s + 1];
      // counter-clockwise seen from outside
      const quads = [[a, b, c], [a, c, d]];
      for (const q of quads) {
        const vi = q.map(([rr, ss]) => vid(rr, ss));
        if (vi[0] === vi[1] || vi[1] === vi[2] || vi[0] === vi[2]) continue;
        tri.push(...vi);
        uvTri.push(...q.map(([rr, ss]) => uid(rr, ss)));
      }
    }
  const T = tri.length / 3;
  // identity modes: radial displacement fields (metres)
  const fields: ((d: number[]) => number)[] = [
    (d) => 0.025 * Math.exp(-((d[0] / 0.35) ** 2 + ((d[1] + 0.05) / 0.3) ** 2)) * Math.max(0, d[2]), // nose
    (d) => 0.012 * d[1], // elongation
    (d) => 0.01 * (d[0] * d[0] - 0.3) * (1 - d[1]), // jaw width
    (d) => 0.012 * Math.exp(-((Math.abs(d[0]) - 0.55) ** 2 / 0.08 + d[1] ** 2 / 0.1)) * Math.max(0, d[2]), // cheeks
    (d) => 0.01 * Math.max(0, d[1] - 0.2) * Math.max(0, d[2]), // brow
    (d) => 0.008 * d[0] * d[2], // asymmetry
  ];
  const K = Math.min(opts.modes ?? 5, fields.length);
  const basis = new Float32Array(K * V * 3);
  for (let k = 0; k < K; k++)
    for (let v = 0; v < V; v++) {
      const d = dirs[v];
      const f = fields[k](d);
      for (let c = 0; c < 3; c++) basis[(k * V + v) * 3 + c] = f * d[c];
    }
  const targetCoefficients = Float32Array.from([0.9, -0.8, 0.7, 0.6, -0.7, 0.5].slice(0, K));
  const S = opts.textureSize ?? 64;
  const texture = new Float32Array(S * S * 3);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const u = (x + 0.5) / S;
      const v = 1 - (y + 0.5) / S;
      const i = (y * S + x) * 3;
      texture[i] = 0.5 + 0.3 * Math.sin(2 * Math.PI * 2 * u);
      texture[i + 1] = 0.5 + 0.3 * Math.cos(2 * Math.PI * 1.5 * v);
      texture[i + 2] = 0.45 + 0.2 * Math.sin(2 * Math.PI * (u + v));
    }
  return {
    model: {
      template: Float32Array.from(pos),
      tri: Int32Array.from(tri),
      uv: Float32Array.from(uv),
      uvTri: Int32Array.from(uvTri),
      identityCount: K,
      identityBasis: float32ToFloat16(basis),
      metresPerUnit: 1,
    },
    V,
    T,
    targetCoefficients,
    texture,
    textureSize: S,
  };
}
