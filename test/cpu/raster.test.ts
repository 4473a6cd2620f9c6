import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { render, renderBackward, interpolate, interpolateBackward, shShade, defaultSh, type RasterMesh, type RenderOptions } from '../../lib/raster';
import { lookAt, intrinsicsFromFov, meshBounds, orbitCameras, type PinholeCamera } from '../../lib/camera';
import { readImage, writePng } from '../../lib/io/image';
import { finiteDiff, relErr, assertClose, tmpDir, hasShared, ICT_DIR } from '../helpers';
import { identityCamera, bumpGrid, randomTexture, refPixel, hashRand, maskFdScenes, maskLossFd, keepOnly } from './raster_scenes';
import { FaceG2EError } from '../../lib/errors';

const NEAR = 0.1;

function compareToReference(mesh: RasterMesh, cam: PinholeCamera, what: string) {
  const r = render(mesh, [cam], { near: NEAR, sh: null, antialias: false });
  const T = mesh.tri.length / 3;
  let covered = 0;
  for (let y = 0; y < cam.height; y++)
    for (let x = 0; x < cam.width; x++) {
      const pix = y * cam.width + x;
      let best = -1;
      let bestZ = Infinity;
      let ambiguous = false;
      for (let t = 0; t < T; t++) {
        const q = refPixel(cam, mesh.positions, mesh.tri, t, x, y, NEAR);
        if (q.margin < 1e-5) ambiguous = true;
        if (q.hit && q.z < bestZ) { bestZ = q.z; best = t; }
      }
      if (ambiguous) continue;
      assert.equal(r.triId[pix], best, `${what}: pixel (${x},${y}) id`);
      if (best >= 0) {
        covered++;
        const q = refPixel(cam, mesh.positions, mesh.tri, best, x, y, NEAR);
        assert.ok(Math.abs(r.bary[2 * pix] - q.b0) < 1e-4 && Math.abs(r.bary[2 * pix + 1] - q.b1) < 1e-4, `${what}: bary at (${x},${y})`);
        assert.ok(Math.abs(r.depth[pix] - q.z) < 1e-4 * q.z, `${what}: depth at (${x},${y}): ${r.depth[pix]} vs ${q.z}`);
        assert.ok(r.depth[pix] >= NEAR);
        assert.equal(r.mask[pix], 1);
      } else {
        assert.equal(r.depth[pix], 0);
        assert.equal(r.mask[pix], 0);
      }
    }
  return { r, covered };
}

test('a single triangle: exact coverage, perspective-correct barycentrics and depth', () => {
  const cam = identityCamera(40, 32, 30, 19.3, 15.7);
  const mesh: RasterMesh = { positions: Float32Array.from([-0.9, -0.7, 2.1, 1.1, -0.4, 3.3, 0.05, 0.95, 2.6]), tri: Uint32Array.from([0, 1, 2]) };
  const { covered } = compareToReference(mesh, cam, 'triangle');
  assert.ok(covered > 150, `covered ${covered}`);
});

test('two triangles sharing an edge through pixel centres: no gaps, no double coverage', () => {
  // camera with f = 1 at z = 1: pixel coordinates are the world x, y; the diagonal passes through centres (k+.5, k+.5)
  const cam = identityCamera(12, 12, 1, 0, 0);
  const positions = Float32Array.from([1, 1, 1, 9, 1, 1, 9, 9, 1, 1, 9, 1]);
  const both = render({ positions, tri: Uint32Array.from([0, 1, 2, 0, 2, 3]) }, [cam], { sh: null, antialias: false });
  const a = render({ positions, tri: Uint32Array.from([0, 1, 2]) }, [cam], { sh: null, antialias: false });
  const b = render({ positions, tri: Uint32Array.from([0, 2, 3]) }, [cam], { sh: null, antialias: false });
  let n = 0;
  for (let y = 0; y < 12; y++)
    for (let x = 0; x < 12; x++) {
      const p = y * 12 + x;
      const inside = x >= 1 && x <= 8 && y >= 1 && y <= 8;
      const ca = a.triId[p] === 0 ? 1 : 0, cb = b.triId[p] === 0 ? 1 : 0;
      assert.equal(ca + cb, inside ? 1 : 0, `pixel (${x},${y}) covered ${ca + cb} times`);
      assert.equal(both.triId[p], inside ? (ca ? 0 : 1) : -1);
      if (inside) n++;
    }
  assert.equal(n, 64);
  // the same with the shared edge in the other direction (other triangle order and winding)
  const flip = render({ positions, tri: Uint32Array.from([2, 0, 3, 2, 1, 0]) }, [cam], { sh: null, antialias: false });
  let m = 0;
  for (let p = 0; p < 144; p++) if (flip.triId[p] >= 0) m++;
  assert.equal(m, 64);
});

test('a lattice mesh with many edges through pixel centres is watertight', () => {
  const cam = identityCamera(16, 16, 1, 0, 0);
  const N = 7;
  const pos: number[] = [];
  const jitter = hashRand(N * N * 2, 9);
  for (let j = 0; j < N; j++)
    for (let i = 0; i < N; i++) {
      const interior = i > 0 && j > 0 && i < N - 1 && j < N - 1;
      pos.push(1 + 2 * i + (interior ? Math.round(jitter[2 * (j * N + i)] * 2 - 1) * 0.5 : 0), 1 + 2 * j + (interior ? Math.round(jitter[2 * (j * N + i) + 1] * 2 - 1) * 0.5 : 0), 1);
    }
  const tri: number[] = [];
  for (let j = 0; j + 1 < N; j++)
    for (let i = 0; i + 1 < N; i++) {
      const a = j * N + i;
      if ((i + j) % 2) tri.push(a, a + 1, a + N + 1, a, a + N + 1, a + N);
      else tri.push(a, a + 1, a + N, a + 1, a + N + 1, a + N);
    }
  const positions = Float32Array.from(pos);
  const count = new Int32Array(256);
  for (let t = 0; t < tri.length / 3; t++) {
    const r = render({ positions, tri: Uint32Array.from(tri.slice(3 * t, 3 * t + 3)) }, [cam], { sh: null, antialias: false });
    for (let p = 0; p < 256; p++) if (r.triId[p] === 0) count[p]++;
  }
  for (let y = 0; y < 16; y++)
    for (let x = 0; x < 16; x++) {
      const inside = x >= 1 && x <= 12 && y >= 1 && y <= 12;
      assert.equal(count[y * 16 + x], inside ? 1 : 0, `pixel (${x},${y})`);
    }
});

test('a triangle crossing the near plane is clipped per pixel; one behind the camera is invisible', () => {
  const cam = identityCamera(48, 40, 12, 23.7, 19.2);
  const crossing: RasterMesh = { positions: Float32Array.from([-1.2, -0.6, 2.2, 1.3, -0.4, 2.9, 0.1, 0.8, -1.5]), tri: Uint32Array.from([0, 1, 2]) };
  const { covered } = compareToReference(crossing, cam, 'crossing');
  assert.ok(covered > 100, `covered ${covered}`);
  // entirely behind the camera: its naive projection would land on the image
  const behind: RasterMesh = { positions: Float32Array.from([-1, -1, -2, 1, -1, -2, 0, 1, -2.5]), tri: Uint32Array.from([0, 1, 2]) };
  const r = render(behind, [cam], { near: NEAR, sh: null });
  assert.ok(r.triId.every((t) => t === -1));
  assert.ok(r.mask.every((m) => m === 0));
  // in front of the camera but nearer than the near plane
  const tooNear = render({ positions: Float32Array.from([-1, -1, 0.05, 1, -1, 0.05, 0, 1, 0.05]), tri: Uint32Array.from([0, 1, 2]) }, [cam], { near: NEAR, sh: null });
  assert.ok(tooNear.triId.every((t) => t === -1));
  compareToReference(bumpGrid(5), identityCamera(32, 32, 20), 'grid');
});

test('occlusion: the nearer triangle wins; equal depth goes to the lower id', () => {
  const cam = identityCamera(16, 16, 8);
  const positions = Float32Array.from([-1, -1, 3, 1, -1, 3, 0, 1, 3, -1, -1, 2, 1, -1, 2, 0, 1, 2]);
  const r = render({ positions, tri: Uint32Array.from([0, 1, 2, 3, 4, 5]) }, [cam], { sh: null, antialias: false });
  assert.equal(r.triId[8 * 16 + 8], 1);
  const same = render({ positions: positions.slice(0, 9), tri: Uint32Array.from([0, 1, 2, 0, 1, 2]) }, [cam], { sh: null, antialias: false });
  assert.equal(same.triId[8 * 16 + 8], 0);
});

test('interpolation and bilinear texture sampling match hand computations', () => {
  const mesh = bumpGrid(4);
  const cam = identityCamera(24, 24, 25);
  const tex = randomTexture(5, 4, 3);
  for (const wrap of ['clamp', 'repeat'] as const) {
    const r = render(mesh, [cam], { texture: tex, antialias: false, wrap });
    const uv = interpolate({ attr: mesh.uvs!, numAttr: 2, attrTri: mesh.uvTri!, triId: r.triId, bary: r.bary });
    let checked = 0;
    for (let p = 0; p < 24 * 24; p++) {
      const t = r.triId[p];
      if (t < 0) {
        assert.deepEqual(Array.from(uv.subarray(2 * p, 2 * p + 2)), [0, 0]);
        continue;
      }
      const b = [r.bary[2 * p], r.bary[2 * p + 1], 1 - r.bary[2 * p] - r.bary[2 * p + 1]];
      for (let a = 0; a < 2; a++) {
        let s = 0;
        for (let i = 0; i < 3; i++) s += b[i] * mesh.uvs![2 * mesh.uvTri![3 * t + i] + a];
        assert.ok(Math.abs(uv[2 * p + a] - s) < 1e-6);
      }
      // bilinear sample by hand (v flipped: v = 0 is the last row)
      const tx = uv[2 * p] * tex.width - 0.5, ty = (1 - uv[2 * p + 1]) * tex.height - 0.5;
      const x0 = Math.floor(tx), y0 = Math.floor(ty), fx = tx - x0, fy = ty - y0;
      const idx = (x: number, y: number) => {
        const w = (i: number, n: number) => (wrap === 'repeat' ? ((i % n) + n) % n : Math.min(Math.max(i, 0), n - 1));
        return (w(y, tex.height) * tex.width + w(x, tex.width)) * 3;
      };
      for (let c = 0; c < 3; c++) {
        const v = (1 - fx) * (1 - fy) * tex.data[idx(x0, y0) + c] + fx * (1 - fy) * tex.data[idx(x0 + 1, y0) + c] + (1 - fx) * fy * tex.data[idx(x0, y0 + 1) + c] + fx * fy * tex.data[idx(x0 + 1, y0 + 1) + c];
        assert.ok(Math.abs(r.color![3 * p + c] - v) < 2e-5, `color ${p}/${c}: ${r.color![3 * p + c]} vs ${v}`);
      }
      checked++;
    }
    assert.ok(checked > 200);
  }
  // interpolation backward = transpose
  const ti = Int32Array.from([0, -1, 3]);
  const bary = Float32Array.from([0.2, 0.3, 0, 0, 0.5, 0.5]);
  const attr = Float32Array.from(hashRand(16 * 2, 4));
  const i = { attr, numAttr: 2, attrTri: mesh.tri, triId: ti, bary };
  const dOut = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const g = interpolateBackward(i, dOut);
  const fd = finiteDiff((x) => { const o = interpolate({ ...i, attr: Float32Array.from(x) }); return o.reduce((s, v, k) => s + v * dOut[k], 0); }, attr, 1e-2);
  assertClose(g, fd, 1e-3, 1e-3, 'interpolate backward');
});

test('SH grey shading and camera-space normals follow the formula', () => {
  // a flat, tilted triangle: one normal everywhere
  const P = [[-1, -1, 3], [1.2, -0.8, 3.5], [0, 1, 2.6]];
  const positions = Float32Array.from(P.flat());
  const tri = Uint32Array.from([0, 1, 2]);
  const sh = Float32Array.from([0.7, 0.1, -0.3, 0.2, 0.05, -0.08, 0.12, 0.03, -0.06]);
  const e1 = P[1].map((v, i) => v - P[0][i]), e2 = P[2].map((v, i) => v - P[0][i]);
  let n = [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
  const l = Math.hypot(n[0], n[1], n[2]);
  n = n.map((v) => v / l);
  for (const [frame, cam] of [['camera', identityCamera(20, 20, 14)], ['world', { ...identityCamera(20, 20, 14), extrinsics: lookAt([0.5, -0.3, -0.2], [0, 0, 3]) }]] as const) {
    const r = render({ positions, tri }, [cam], { sh, shFrame: frame, antialias: false });
    const E = cam.extrinsics;
    const nc = [0, 1, 2].map((i) => E[4 * i] * n[0] + E[4 * i + 1] * n[1] + E[4 * i + 2] * n[2]) as [number, number, number];
    const want = shShade(sh, frame === 'camera' ? nc : (n as [number, number, number]));
    let hits = 0;
    for (let p = 0; p < 400; p++) {
      if (r.triId[p] < 0) { assert.equal(r.grey![p], 0); continue; }
      hits++;
      assert.ok(Math.abs(r.grey![p] - want) < 1e-5, `${frame}: grey ${r.grey![p]} vs ${want}`);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(r.normal[3 * p + c] - nc[c]) < 1e-5);
    }
    assert.ok(hits > 20);
  }
  // the default light makes camera-facing surfaces bright
  assert.ok(shShade(defaultSh(), [0, 0, -1]) > 0.6);
});

test('depth image: near bright, background 0, range configurable', () => {
  const mesh = bumpGrid(5);
  const cam = identityCamera(24, 24, 20);
  const r = render(mesh, [cam], { depthRange: [2, 4], sh: null });
  for (let p = 0; p < 576; p++) {
    if (r.triId[p] < 0) assert.equal(r.depthImage[p], 0);
    else assert.ok(Math.abs(r.depthImage[p] - (4 - r.depth[p]) / 2) < 1e-6);
  }
});

// ---- gradients --------------------------------------------------------------------------------------------------

function weightedLoss(mesh: RasterMesh, cam: PinholeCamera, o: RenderOptions, w: { c?: Float64Array; g?: Float64Array; m?: Float64Array }): number {
  const r = render(mesh, [cam], o);
  let s = 0;
  if (w.c) for (let i = 0; i < w.c.length; i++) s += w.c[i] * r.color![i];
  if (w.g) for (let i = 0; i < w.g.length; i++) s += w.g[i] * r.grey![i];
  if (w.m) for (let i = 0; i < w.m.length; i++) s += w.m[i] * r.mask[i];
  return s;
}

test('backward to positions through barycentrics, texture and normal shading matches finite differences', () => {
  const mesh = bumpGrid(5);
  const cam = identityCamera(28, 28, 30);
  const tex = randomTexture(6, 6, 3, 11);
  const o: RenderOptions = { texture: tex, antialias: false, sh: Float32Array.from([0.5, 0.2, -0.4, 0.3, 0.1, -0.1, 0.2, 0.05, -0.1]) };
  const r0 = render(mesh, [cam], o);
  // weights only on pixels well inside the silhouette (coverage there does not change under tiny moves)
  const W = 28;
  const interior = (p: number) => {
    const x = p % W, y = Math.floor(p / W);
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
      const xx = x + dx, yy = y + dy;
      if (xx < 0 || yy < 0 || xx >= W || yy >= W || r0.triId[yy * W + xx] < 0) return false;
    }
    return true;
  };
  const rc = hashRand(W * W * 3, 5), rg = hashRand(W * W, 6);
  const wc = new Float64Array(W * W * 3), wg = new Float64Array(W * W);
  for (let p = 0; p < W * W; p++) if (interior(p)) { wg[p] = rg[p] - 0.5; for (let c = 0; c < 3; c++) wc[3 * p + c] = rc[3 * p + c] - 0.5; }
  const { dPositions } = renderBackward(mesh, [cam], o, { dColor: Float32Array.from(wc), dGrey: Float32Array.from(wg) });
  const f = (x: Float64Array) => weightedLoss({ ...mesh, positions: Float32Array.from(x) }, cam, o, { c: wc, g: wg });
  const fd = finiteDiff(f, mesh.positions, 3e-4); // small h: the random texture's bilinear kinks
  const e = relErr(dPositions, fd);
  assert.ok(e < 2e-2, `relative error ${e}`);
  // grey alone (the vertex-normal chain) and color alone
  const gOnly = renderBackward(mesh, [cam], o, { dGrey: Float32Array.from(wg) }).dPositions;
  const fdG = finiteDiff((x) => weightedLoss({ ...mesh, positions: Float32Array.from(x) }, cam, o, { g: wg }), mesh.positions, 2e-3);
  assert.ok(relErr(gOnly, fdG) < 2e-2, `grey: ${relErr(gOnly, fdG)}`);
  assert.ok(Math.hypot(...gOnly) > 0.1);
});

test('antialiasing gives silhouette gradients to positions (finite differences on the mask)', () => {
  const mesh = bumpGrid(3, 1.0, 3, 0.1);
  const cam = identityCamera(24, 24, 26, 12.3, 11.8);
  const o: RenderOptions = { sh: null, antialias: true };
  const r = render(mesh, [cam], o);
  const frac = Array.from(r.mask).filter((m) => m > 0 && m < 1).length;
  assert.ok(frac > 10, `antialiased edge pixels: ${frac}`);
  const wm = Float64Array.from(hashRand(24 * 24, 8), (v) => v - 0.3);
  const { dPositions } = renderBackward(mesh, [cam], o, { dMask: Float32Array.from(wm) });
  const fd = finiteDiff((x) => weightedLoss({ ...mesh, positions: Float32Array.from(x) }, cam, o, { m: wm }), mesh.positions, 1e-4);
  const e = relErr(dPositions, fd);
  assert.ok(e < 3e-2, `relative error ${e}`);
  assert.ok(Math.hypot(...dPositions) > 1, 'silhouette gradients must be non-zero');
  // an interior pair of triangles does not blend: the shared edge is not a silhouette
  const inner = r.mask.filter((m, p) => { const x = p % 24, y = Math.floor(p / 24); return x > 8 && x < 15 && y > 8 && y < 15 && m !== 1; });
  assert.equal(inner.length, 0);
});

test('mask gradients through antialiasing on silhouettes that graze pixel centres (well-posed finite differences)', () => {
  const o: RenderOptions = { sh: null };
  for (const [si, sc] of maskFdScenes().entries()) {
    const npx = sc.cam.width * sc.cam.height;
    const w = Float32Array.from(hashRand(npx, 3 + si), (v) => v - 0.5);
    const an = renderBackward(sc.mesh, [sc.cam], o, { dMask: w }).dPositions;
    const { fd, skipped } = maskLossFd(sc, w, o);
    const kept = keepOnly(an, skipped);
    assert.ok(skipped.length <= 0.2 * an.length, `scene ${si}: ${skipped.length} of ${an.length} coordinates skipped`);
    assert.ok(Math.hypot(...kept) > 10, `scene ${si}: silhouette gradients must be non-zero`);
    assert.ok(relErr(kept, fd) < 3e-2, `scene ${si}: relative error ${relErr(kept, fd)}`);
    // the bound catches a wrong gradient: 10% off fails
    assert.ok(relErr(kept.map((v) => 1.1 * v), fd) > 3e-2);
  }
});

test('antialiased color and grey: gradients to positions match finite differences', () => {
  const mesh = bumpGrid(3, 1.0, 3, 0.1);
  const cam = identityCamera(24, 24, 26, 12.3, 11.8);
  // constant texture and flat-ish lighting: color/grey are continuous where a pixel centre crosses an edge
  const tex = { data: new Float32Array(4 * 4 * 4).fill(0.7), width: 4, height: 4, channels: 4 };
  const o: RenderOptions = { texture: tex, sh: Float32Array.from([2, 0, 0, 0, 0, 0, 0, 0, 0]), background: [0.1, 0.2, 0.3, 0.4] };
  const wc = Float64Array.from(hashRand(24 * 24 * 4, 12), (v) => v - 0.5);
  const wg = Float64Array.from(hashRand(24 * 24, 13), (v) => v - 0.5);
  const { dPositions } = renderBackward(mesh, [cam], o, { dColor: Float32Array.from(wc), dGrey: Float32Array.from(wg) });
  const fd = finiteDiff((x) => weightedLoss({ ...mesh, positions: Float32Array.from(x) }, cam, o, { c: wc, g: wg }), mesh.positions, 1e-4);
  assert.ok(relErr(dPositions, fd) < 3e-2, `relative error ${relErr(dPositions, fd)}`);
});

test('backward to texels (4-channel latent texture) matches finite differences', () => {
  const mesh = bumpGrid(4);
  const cam = identityCamera(20, 20, 22);
  const tex = randomTexture(5, 4, 4, 21);
  for (const wrap of ['clamp', 'repeat'] as const) {
    const o: RenderOptions = { texture: tex, wrap, sh: null };
    const wc = Float64Array.from(hashRand(20 * 20 * 4, 22), (v) => v - 0.5);
    const { dTexture } = renderBackward(mesh, [cam], o, { dColor: Float32Array.from(wc) });
    const fd = finiteDiff((x) => weightedLoss(mesh, cam, { ...o, texture: { ...tex, data: Float32Array.from(x) } }, { c: wc }), tex.data, 0.25);
    assertClose(dTexture!, fd, 2e-3, 1e-3, `dTexture (${wrap})`);
    assert.ok(Math.hypot(...dTexture!) > 0.1);
  }
});

test('bad inputs are E_INVALID_ARGUMENT naming the field', () => {
  const cam = identityCamera(8, 8, 8);
  const positions = Float32Array.from([0, 0, 2, 1, 0, 2, 0, 1, 2]);
  const bad = (fn: () => unknown, field: string) =>
    assert.throws(fn, (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT' && e.message.includes(field));
  bad(() => render({ positions, tri: Uint32Array.from([0, 1, 3]) }, [cam]), 'tri');
  bad(() => render({ positions, tri: Uint32Array.from([0, 1, 2]) }, [cam], { texture: randomTexture(2, 2, 3) }), 'texture');
  bad(() => render({ positions, tri: Uint32Array.from([0, 1, 2]) }, [cam], { sh: [1, 2] }), 'sh');
  bad(() => render({ positions, tri: Uint32Array.from([0, 1, 2]) }, [cam, identityCamera(9, 8, 8)]), 'cameras[1]');
  bad(() => render({ positions, tri: Uint32Array.from([0, 1, 2]) }, [cam], { near: -1 }), 'near');
  bad(() => render({ positions, tri: Uint32Array.from([0, 1, 2]) }, [cam], { wrap: 'mirror' as never }), 'wrap');
});

test('orbit cameras look at the box centre from outside it, OpenCV axes', () => {
  const box = { min: [-1, -2, -1] as [number, number, number], max: [1, 2, 1] as [number, number, number] };
  const cams = orbitCameras(box, { views: 4, width: 64, elevation: 0 });
  for (const c of cams) {
    const E = c.extrinsics;
    // the centre projects to the principal point, in front of the camera
    const z = E[11];
    assert.ok(z > Math.hypot(1, 2, 1));
    assert.ok(Math.abs(E[3]) < 1e-5 && Math.abs(E[7]) < 1e-5);
    // world up (+y) points up in the image (camera -y)
    assert.ok(E[5] < -0.99);
  }
  // first camera sits on +z (the front)
  assert.ok(cams[0].eye[2] > 0 && Math.abs(cams[0].eye[0]) < 1e-6);
  const [f, , cx] = intrinsicsFromFov(90, 64, 64);
  assert.ok(Math.abs(f - 32) < 1e-9 && cx === 32);
});

test('PNG write/read round trip (float and uint8, 1/3/4 channels), atomically', async () => {
  const dir = tmpDir();
  for (const ch of [1, 3, 4] as const) {
    const data = Float32Array.from(hashRand(5 * 3 * ch, ch));
    const file = path.join(dir, `a${ch}.png`);
    await writePng(file, data, { width: 5, height: 3, channels: ch });
    const im = await readImage(file);
    assert.equal(im.width, 5);
    assert.equal(im.height, 3);
    assert.equal(im.channels, ch);
    for (let i = 0; i < data.length; i++) assert.equal(im.data[i], Math.round(data[i] * 255));
  }
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  await assert.rejects(writePng(path.join(dir, 'x.png'), new Uint8Array(5), { width: 2, height: 2, channels: 1 }), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT');
});

test('render command on the ICT-FaceKit head writes centred, sensible images', { skip: !hasShared }, async () => {
  const { renderMeshToFiles } = await import('../../lib/cli/render');
  const out = tmpDir();
  const files = await renderMeshToFiles({ mesh: path.join(ICT_DIR, 'generic_neutral_mesh.obj'), views: 2, size: 96, out, device: 'cpu', fov: 30, elevation: 10, fill: 1.1, antialias: true });
  assert.equal(files.length, 8);
  for (const v of ['000', '001']) {
    const m = await readImage(path.join(out, `view${v}_mask.png`));
    let n = 0, sx = 0, sy = 0;
    for (let y = 0; y < 96; y++) for (let x = 0; x < 96; x++) if (m.data[y * 96 + x] > 127) { n++; sx += x; sy += y; }
    const frac = n / (96 * 96);
    assert.ok(frac > 0.15 && frac < 0.7, `view ${v}: foreground fraction ${frac}`);
    assert.ok(Math.abs(sx / n - 48) < 12 && Math.abs(sy / n - 48) < 20, `view ${v}: centroid ${sx / n}, ${sy / n}`);
    const g = await readImage(path.join(out, `view${v}_grey.png`));
    let gs = 0;
    for (let i = 0; i < g.data.length; i++) if (m.data[i] > 127) gs += g.data[i];
    assert.ok(gs / n > 60, `view ${v}: mean grey ${gs / n}`);
  }
  void meshBounds;
});
