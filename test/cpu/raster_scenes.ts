/** Small hand-made scenes shared by the CPU and GPU rasteriser tests. */
import type { PinholeCamera } from '../../lib/camera';
import type { RasterMesh, Texture } from '../../lib/raster';

export function identityCamera(width: number, height: number, f: number, cx = width / 2, cy = height / 2): PinholeCamera {
  return { width, height, intrinsics: [f, f, cx, cy], extrinsics: Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]), eye: [0, 0, 0] };
}

/** Deterministic pseudo-random numbers in [0,1) (no state shared with the Philox tests). */
export function hashRand(n: number, seed = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453;
    out[i] = x - Math.floor(x);
  }
  return out;
}

/** An N×N vertex grid over [-s, s]² at depth z0 with a smooth bump, UVs from x, y; faces the camera at the origin. */
export function bumpGrid(N: number, s = 1, z0 = 3, bump = 0.3): RasterMesh & { uvs: Float32Array; uvTri: Uint32Array } {
  const positions = new Float32Array(N * N * 3);
  const uvs = new Float32Array(N * N * 2);
  for (let j = 0; j < N; j++)
    for (let i = 0; i < N; i++) {
      const x = -s + (2 * s * i) / (N - 1), y = -s + (2 * s * j) / (N - 1);
      const k = j * N + i;
      positions.set([x, y, z0 - bump * Math.cos(1.3 * x) * Math.cos(1.1 * y) + 0.05 * x], 3 * k);
      uvs.set([0.1 + 0.8 * (i / (N - 1)), 0.15 + 0.7 * (j / (N - 1))], 2 * k);
    }
  const tri: number[] = [];
  for (let j = 0; j + 1 < N; j++)
    for (let i = 0; i + 1 < N; i++) {
      const a = j * N + i, b = a + 1, c = a + N, d = c + 1;
      tri.push(a, c, b, b, c, d);
    }
  return { positions, tri: Uint32Array.from(tri), uvs, uvTri: Uint32Array.from(tri) };
}

export function randomTexture(w: number, h: number, c: number, seed = 3): Texture {
  return { data: Float32Array.from(hashRand(w * h * c, seed)), width: w, height: h, channels: c };
}

/** Ray/triangle test in float64 (camera at the origin, identity extrinsics): [hit, b0, b1, z, minimum |edge margin|]. */
export function refPixel(cam: PinholeCamera, p: ArrayLike<number>, tri: ArrayLike<number>, t: number, x: number, y: number, near: number) {
  const [fx, fy, cx, cy] = cam.intrinsics;
  const d = [(x + 0.5 - cx) / fx, (y + 0.5 - cy) / fy, 1];
  const v = [0, 1, 2].map((i) => [p[3 * tri[3 * t + i]], p[3 * tri[3 * t + i] + 1], p[3 * tri[3 * t + i] + 2]]);
  const cr = (a: number[], b: number[]) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const dt = (a: number[], b: number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const e = [dt(d, cr(v[1], v[2])), dt(d, cr(v[2], v[0])), dt(d, cr(v[0], v[1]))];
  const S = e[0] + e[1] + e[2];
  const D = dt(v[0], cr(v[1], v[2]));
  const b = e.map((q) => q / S);
  const z = D / S;
  const scale = Math.max(Math.abs(e[0]), Math.abs(e[1]), Math.abs(e[2]), 1e-30);
  const margin = Math.min(...e.map((q) => Math.abs(q))) / scale;
  const hit = b.every((q) => q >= 0) && z >= near && Number.isFinite(z);
  return { hit, b0: b[0], b1: b[1], z, margin };
}

/**
 * Central differences of `loss(render(positions))` that are well posed for the antialiased (piecewise smooth)
 * images: a coordinate whose ±h move changes the coverage (some pixel centre crosses an edge, so the antialiased
 * mask jumps) is skipped instead of reporting a jump / 2h as a derivative. Returns the differences (0 where
 * skipped) and the skipped coordinates; compare only the kept ones (`keepOnly`).
 */
export function wellPosedFd(
  positions: Float32Array,
  renderIds: (p: Float32Array) => { triId: Int32Array; loss: number },
  h: number,
): { fd: Float64Array; skipped: number[] } {
  const base = renderIds(positions).triId;
  const fd = new Float64Array(positions.length);
  const skipped: number[] = [];
  for (let i = 0; i < positions.length; i++) {
    const p = Float32Array.from(positions);
    p[i] = positions[i] + h;
    const a = renderIds(p);
    p[i] = positions[i] - h;
    const b = renderIds(p);
    let same = true;
    for (let q = 0; q < base.length && same; q++) same = a.triId[q] === base[q] && b.triId[q] === base[q];
    if (!same) { skipped.push(i); continue; }
    // the actual step in float32 (positions are float32 in the renderer)
    const hp = Math.fround(positions[i] + h) - Math.fround(positions[i] - h);
    fd[i] = (a.loss - b.loss) / hp;
  }
  return { fd, skipped };
}

/** A copy of `g` with the given coordinates zeroed (to compare gradients on the kept coordinates only). */
export function keepOnly(g: ArrayLike<number>, skipped: number[]): Float64Array {
  const r = Float64Array.from(g);
  for (const i of skipped) r[i] = 0;
  return r;
}
