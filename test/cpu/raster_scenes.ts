/** Small hand-made scenes shared by the CPU and GPU rasteriser tests. */
import type { PinholeCamera } from '../../lib/camera';
import { render, type RasterMesh, type RenderOptions, type Texture } from '../../lib/raster';

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
 * Central differences of `loss(render(positions))` that are well posed for the antialiased images, which are only
 * piecewise smooth: a coordinate is skipped (not compared) when its ±h move
 *   * changes the coverage (a pixel centre crosses an edge: the antialiased mask jumps there), or
 *   * crosses a kink (an edge passing midway between two pixel centres, where the blend weight |t - 1/2| turns,
 *     or the crossing edge of a pixel pair switching): detected as one-sided differences that disagree by more
 *     than `kinkTol` (relative) plus `noise` (absolute, float32 rendering noise).
 * Returns the central differences (0 where skipped) and the skipped coordinates; compare only the kept ones
 * (`keepOnly`) and bound the number skipped, so that a wrong gradient is still caught.
 */
export function wellPosedFd(
  positions: Float32Array,
  renderLoss: (p: Float32Array) => { triId: Int32Array; loss: number },
  h: number,
  kinkTol = 0.05,
  noise = 0.05,
): { fd: Float64Array; skipped: number[] } {
  const base = renderLoss(positions);
  const fd = new Float64Array(positions.length);
  const skipped: number[] = [];
  for (let i = 0; i < positions.length; i++) {
    const p = Float32Array.from(positions);
    p[i] = positions[i] + h;
    const a = renderLoss(p);
    const hp = p[i] - positions[i]; // the actual float32 steps
    p[i] = positions[i] - h;
    const b = renderLoss(p);
    const hm = positions[i] - p[i];
    let same = true;
    for (let q = 0; q < base.triId.length && same; q++) same = a.triId[q] === base.triId[q] && b.triId[q] === base.triId[q];
    const dp = (a.loss - base.loss) / hp, dm = (base.loss - b.loss) / hm;
    if (!same || Math.abs(dp - dm) > kinkTol * Math.max(Math.abs(dp), Math.abs(dm)) + noise) {
      skipped.push(i);
      continue;
    }
    fd[i] = (a.loss - b.loss) / (hp + hm);
  }
  return { fd, skipped };
}
/** A copy of `g` with the given coordinates zeroed (to compare gradients on the kept coordinates only). */
export function keepOnly(g: ArrayLike<number>, skipped: number[]): Float64Array {
  const r = Float64Array.from(g);
  for (const i of skipped) r[i] = 0;
  return r;
}

/** Scenes for the silhouette (mask) gradient checks: bump grids whose left/right silhouettes pass close to
 * pixel centres (the first one within 0.0005 px), with three different cameras. */
export function maskFdScenes(): { mesh: ReturnType<typeof bumpGrid>; cam: PinholeCamera }[] {
  return [
    { mesh: bumpGrid(5, 1, 3, 0.2), cam: identityCamera(40, 40, 40, 20.3, 19.6) },
    { mesh: bumpGrid(5, 1, 3, 0.3), cam: identityCamera(40, 40, 38, 19.8, 20.35) },
    { mesh: bumpGrid(4, 0.9, 2.8, 0.15), cam: identityCamera(36, 40, 41, 18.1, 20.7) },
  ];
}

/** wellPosedFd of the weighted mask sum(w * mask) of a maskFdScenes scene, rendered with `o`. */
export function maskLossFd(sc: { mesh: ReturnType<typeof bumpGrid>; cam: PinholeCamera }, w: ArrayLike<number>, o: RenderOptions) {
  const npx = sc.cam.width * sc.cam.height;
  return wellPosedFd(sc.mesh.positions, (x) => {
    const r = render({ ...sc.mesh, positions: x }, [sc.cam], o);
    let s = 0;
    for (let i = 0; i < npx; i++) s += w[i] * r.mask[i];
    return { triId: r.triId, loss: s };
  }, 1e-4);
}

/** A camera-facing unit quad at z = 1 ([-0.5, 0.5]², two triangles): with identityCamera(32, 32, 32, 16, 16) it fills
 * the image. UVs: u = X + 0.5 + off, v = 0.5 - Y - off (so texture rows and columns follow image rows and columns,
 * and texel x, y = 16·pixel + 8 exactly for a 512² texture with off = 0.5/512). */
export function frontQuad(off = 0): RasterMesh & { uvs: Float32Array; uvTri: Uint32Array } {
  const positions = Float32Array.from([-0.5, -0.5, 1, 0.5, -0.5, 1, -0.5, 0.5, 1, 0.5, 0.5, 1]);
  const uvs = new Float32Array(8);
  for (let i = 0; i < 4; i++) {
    uvs[2 * i] = positions[3 * i] + 0.5 + off;
    uvs[2 * i + 1] = 0.5 - positions[3 * i + 1] - off;
  }
  const tri = Uint32Array.from([0, 2, 1, 1, 2, 3]);
  return { positions, tri, uvs, uvTri: tri };
}

/** A 1-channel checkerboard of 1-texel cells (0 and 1). */
export function checkerboard(w: number, h: number): Texture {
  const data = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (x + y) & 1;
  return { data, width: w, height: h, channels: 1 };
}

/** Reference mip pyramid (float64 means of 2x2 children; level l is max(1, w >> l) x max(1, h >> l); clamped reads). */
export function boxPyramid(tex: Texture, maxLevels = 0): { width: number; height: number; data: Float64Array }[] {
  let L = 1 + Math.floor(Math.log2(Math.max(tex.width, tex.height)));
  if (maxLevels > 0) L = Math.min(L, maxLevels);
  const C = tex.channels;
  const levels = [{ width: tex.width, height: tex.height, data: Float64Array.from(tex.data) }];
  for (let l = 1; l < L; l++) {
    const s = levels[l - 1];
    const w = Math.max(1, tex.width >> l), h = Math.max(1, tex.height >> l);
    const d = new Float64Array(w * h * C);
    const at = (x: number, y: number, c: number) => s.data[(Math.min(y, s.height - 1) * s.width + Math.min(x, s.width - 1)) * C + c];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < C; c++)
          d[(y * w + x) * C + c] = (at(2 * x, 2 * y, c) + at(2 * x + 1, 2 * y, c) + at(2 * x, 2 * y + 1, c) + at(2 * x + 1, 2 * y + 1, c)) / 4;
    levels.push({ width: w, height: h, data: d });
  }
  return levels;
}

/** Reference trilinear lookups (v flipped: v = 0 is the last row) of per-pixel UVs at one lod. */
export function trilinearRef(levels: { width: number; height: number; data: ArrayLike<number> }[], uv: ArrayLike<number>, lod: number, wrap: 'clamp' | 'repeat'): Float64Array {
  const C = levels[0].data.length / (levels[0].width * levels[0].height);
  const n = uv.length / 2;
  const out = new Float64Array(n * C);
  const l0 = Math.floor(lod), f = lod - l0, l1 = Math.min(l0 + 1, levels.length - 1);
  const wr = (i: number, m: number) => (wrap === 'repeat' ? ((i % m) + m) % m : Math.min(Math.max(i, 0), m - 1));
  const bil = (lv: (typeof levels)[number], u: number, v: number, c: number) => {
    const tx = u * lv.width - 0.5, ty = (1 - v) * lv.height - 0.5;
    const x0 = Math.floor(tx), y0 = Math.floor(ty), fx = tx - x0, fy = ty - y0;
    const t = (x: number, y: number) => lv.data[(wr(y, lv.height) * lv.width + wr(x, lv.width)) * C + c];
    return (1 - fx) * (1 - fy) * t(x0, y0) + fx * (1 - fy) * t(x0 + 1, y0) + (1 - fx) * fy * t(x0, y0 + 1) + fx * fy * t(x0 + 1, y0 + 1);
  };
  for (let p = 0; p < n; p++)
    for (let c = 0; c < C; c++) {
      const a = bil(levels[l0], uv[2 * p], uv[2 * p + 1], c);
      out[p * C + c] = f === 0 ? a : (1 - f) * a + f * bil(levels[l1], uv[2 * p], uv[2 * p + 1], c);
    }
  return out;
}
