/** Rasteriser on CUDA vs the CPU twin: identical triangle ids, close values and gradients, determinism. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { render, renderBackward, interpolate, mipPyramid, type RenderOptions, type RasterMesh } from '../../lib/raster';
import { intrinsicsFromFov, lookAt, meshBounds, orbitCameras, type PinholeCamera } from '../../lib/camera';
import { readObj, triangulate } from '../../lib/io/obj';
import { assertClose, relErr, finiteDiff, hasShared, ICT_DIR } from '../helpers';
import { identityCamera, bumpGrid, randomTexture, hashRand, maskFdScenes, maskLossFd, keepOnly, frontQuad, checkerboard } from '../cpu/raster_scenes';

async function ictMesh(): Promise<RasterMesh> {
  return triangulate(await readObj(path.join(ICT_DIR, 'generic_neutral_mesh.obj')));
}

function compareForward(mesh: RasterMesh, cams: PinholeCamera[], o: RenderOptions, what: string) {
  const a = render(mesh, cams, { ...o, device: 'cpu' });
  const b = render(mesh, cams, { ...o, device: 'cuda' });
  let diff = 0;
  for (let i = 0; i < a.triId.length; i++) if (a.triId[i] !== b.triId[i]) diff++;
  assert.equal(diff, 0, `${what}: ${diff} triangle ids differ between CPU and CUDA`);
  assert.deepEqual(Buffer.from(b.bary.buffer), Buffer.from(a.bary.buffer), `${what}: barycentrics must be bit-identical`);
  assert.deepEqual(Buffer.from(b.depth.buffer), Buffer.from(a.depth.buffer), `${what}: depth must be bit-identical`);
  assertClose(b.mask, a.mask, 1e-5, 0, `${what}: mask`);
  assertClose(b.normal, a.normal, 1e-4, 0, `${what}: normal`);
  assertClose(b.depthImage, a.depthImage, 1e-5, 0, `${what}: depthImage`);
  if (a.grey) assertClose(b.grey!, a.grey, 1e-4, 0, `${what}: grey`);
  if (a.color) assertClose(b.color!, a.color, 1e-4, 0, `${what}: color`);
  return { a, b };
}

/**
 * Three close-up cameras (lookAt from 1.2 bounding radii, 40° field of view) and a near plane at 0.8 radii that
 * cuts through the visible head in every view (checked: it changes the coverage of each view, on the CPU).
 */
function closeUpCameras(mesh: RasterMesh): { close: PinholeCamera[]; near: number } {
  const box = meshBounds(mesh.positions);
  const c: [number, number, number] = [0, 1, 2].map((i) => (box.min[i] + box.max[i]) / 2) as [number, number, number];
  const r = Math.hypot(box.max[0] - box.min[0], box.max[1] - box.min[1], box.max[2] - box.min[2]) / 2;
  const near = 0.8 * r;
  const close = [20, 140, 260].map((deg): PinholeCamera => {
    const a = (deg * Math.PI) / 180;
    const eye: [number, number, number] = [c[0] + 1.2 * r * Math.sin(a), c[1] + 0.2 * r, c[2] + 1.2 * r * Math.cos(a)];
    return { width: 224, height: 224, intrinsics: intrinsicsFromFov(40, 224, 224), extrinsics: lookAt(eye, c), eye };
  });
  close.forEach((cam, v) => {
    const clipped = render(mesh, [cam], { near, sh: null, device: 'cpu' }).triId;
    const full = render(mesh, [cam], { near: 1e-3 * r, sh: null, device: 'cpu' }).triId;
    let diff = 0;
    for (let i = 0; i < full.length; i++) if (full[i] !== clipped[i]) diff++;
    assert.ok(diff >= 100, `close-up view ${v}: the near plane must cut the visible head (${diff} pixels change)`);
  });
  return { close, near };
}

test('CUDA == CPU: triangle ids (bit-identical), barycentrics, depth and shading on the ICT head, 4 views at 512', { skip: !hasShared }, async () => {
  const mesh = await ictMesh();
  const cams = orbitCameras(meshBounds(mesh.positions), { views: 4, width: 512 });
  const tex = randomTexture(256, 256, 3, 5);
  const { a } = compareForward(mesh, cams, { texture: tex }, 'ict');
  assert.ok(a.triId.filter((t) => t >= 0).length > 4 * 512 * 512 * 0.15);
  // close-up views with the near plane cutting through the head, and a 4-channel latent texture
  const { close, near } = closeUpCameras(mesh);
  compareForward(mesh, close, { texture: randomTexture(64, 64, 4, 6), near, wrap: 'repeat' }, 'near-plane close-up');
});

test('CUDA == CPU on the hand-made scenes (near-plane crossing, large triangles that take the queued path, a chunk-list overflow)', () => {
  const cam = identityCamera(300, 260, 200, 149.3, 131.1);
  const crossing: RasterMesh = { positions: Float32Array.from([-1.2, -0.6, 2.2, 1.3, -0.4, 2.9, 0.1, 0.8, -1.5, -3, -3, 5, 3, -3, 5, 0, 3, 5]), tri: Uint32Array.from([0, 1, 2, 3, 4, 5]) };
  compareForward(crossing, [cam], { near: 0.1 }, 'crossing');
  compareForward(bumpGrid(9), [identityCamera(64, 64, 40)], { texture: randomTexture(8, 8, 4) }, 'grid');
  // the chunked raster's fallbacks: 32 tiny triangles (one chunk each) fill the first warp's items, then 60
  // stacked ~30x30-pixel triangles ask for ~57 chunks each, far more than the list holds at 64x64 (4 items per
  // (view, triangle) + pixels/16), so their warps go to the block-per-triangle queue; some share a depth (ties go
  // to the lower id)
  const pos: number[] = [], tri: number[] = [];
  const addTri = (ax: number, ay: number, bx: number, by: number, cx: number, cy: number, z: number) => {
    const i = pos.length / 3;
    pos.push(ax * z, ay * z, z, bx * z, by * z, z, cx * z, cy * z, z);
    tri.push(i, i + 1, i + 2);
  };
  for (let i = 0; i < 32; i++) {
    const x = -0.7 + 0.045 * i, y = -0.75;
    addTri(x, y, x + 0.04, y, x, y + 0.04, 2);
  }
  const r = hashRand(60 * 3, 17);
  for (let i = 0; i < 60; i++) {
    const x = -0.6 + 0.7 * r[3 * i], y = -0.5 + 0.7 * r[3 * i + 1], z = 2 + Math.floor(4 * r[3 * i + 2]) * 0.25;
    addTri(x, y, x + 0.75, y + 0.05, x + 0.1, y + 0.75, z);
  }
  const stacked: RasterMesh = { positions: Float32Array.from(pos), tri: Uint32Array.from(tri) };
  compareForward(stacked, [identityCamera(64, 64, 40)], {}, 'stacked (chunk-list overflow)');
});

test('CUDA gradients match the CPU twin and finite differences', () => {
  const mesh = bumpGrid(5, 1, 3, 0.2);
  const cam = identityCamera(40, 40, 40, 20.3, 19.6);
  const tex = randomTexture(8, 8, 4, 9);
  const o: RenderOptions = { texture: tex, sh: Float32Array.from([0.5, 0.2, -0.4, 0.3, 0.1, -0.1, 0.2, 0.05, -0.1]) };
  const n = 40 * 40;
  const g = { dColor: Float32Array.from(hashRand(n * 4, 1), (v) => v - 0.5), dGrey: Float32Array.from(hashRand(n, 2), (v) => v - 0.5), dMask: Float32Array.from(hashRand(n, 3), (v) => v - 0.5) };
  const c = renderBackward(mesh, [cam], { ...o, device: 'cpu' }, g);
  const d = renderBackward(mesh, [cam], { ...o, device: 'cuda' }, g);
  assert.ok(relErr(d.dPositions, c.dPositions) < 1e-4, `dPositions CUDA vs CPU: ${relErr(d.dPositions, c.dPositions)}`);
  assert.ok(relErr(d.dTexture!, c.dTexture!) < 1e-5, `dTexture CUDA vs CPU: ${relErr(d.dTexture!, c.dTexture!)}`);
  const det = renderBackward(mesh, [cam], { ...o, device: 'cuda' }, g, { deterministic: true });
  assert.ok(relErr(det.dPositions, c.dPositions) < 1e-4);
  assert.ok(relErr(det.dTexture!, c.dTexture!) < 1e-5);
  // finite differences of the mask term through antialiasing, on the GPU, on several scenes. The antialiased
  // mask is piecewise smooth: coordinates whose ±h move crosses a coverage change or a kink are skipped
  // (wellPosedFd; at most 20% of them), so a difference quotient never measures a jump (the old single-scene
  // check had a vertex 0.0005 px from a pixel centre: relErr 1.14 on both devices for that reason alone).
  for (const [si, sc] of maskFdScenes().entries()) {
    const npx = sc.cam.width * sc.cam.height;
    const w = Float32Array.from(hashRand(npx, 3 + si), (v) => v - 0.5);
    const an = renderBackward(sc.mesh, [sc.cam], { ...o, device: 'cuda' }, { dMask: w }).dPositions;
    const anCpu = renderBackward(sc.mesh, [sc.cam], { ...o, device: 'cpu' }, { dMask: w }).dPositions;
    assert.ok(relErr(an, anCpu) < 1e-4, `scene ${si}: mask gradient CUDA vs CPU ${relErr(an, anCpu)}`);
    const { fd, skipped } = maskLossFd(sc, w, { ...o, device: 'cuda' });
    const kept = keepOnly(an, skipped);
    assert.ok(skipped.length <= 0.2 * an.length, `scene ${si}: ${skipped.length} of ${an.length} coordinates skipped`);
    assert.ok(Math.hypot(...kept) > 10, `scene ${si}: silhouette gradients must be non-zero on the kept coordinates`);
    assert.ok(relErr(kept, fd) < 3e-2, `scene ${si}: mask gradient vs finite differences: ${relErr(kept, fd)}`);
  }
});

test('deterministic mode is bitwise reproducible on the ICT head (4 views, 512)', { skip: !hasShared }, async () => {
  const mesh = await ictMesh();
  const cams = orbitCameras(meshBounds(mesh.positions), { views: 4, width: 512 });
  const tex = randomTexture(1024, 1024, 3, 7);
  const n = 4 * 512 * 512;
  const g = { dColor: Float32Array.from(hashRand(n * 3, 4), (v) => v - 0.5), dGrey: Float32Array.from(hashRand(n, 5), (v) => v - 0.5), dMask: Float32Array.from(hashRand(n, 6), (v) => v - 0.5) };
  const o: RenderOptions = { texture: tex, device: 'cuda' };
  const r1 = renderBackward(mesh, cams, o, g, { deterministic: true });
  const r2 = renderBackward(mesh, cams, o, g, { deterministic: true });
  assert.deepEqual(Buffer.from(r1.dPositions.buffer), Buffer.from(r2.dPositions.buffer));
  assert.deepEqual(Buffer.from(r1.dTexture!.buffer), Buffer.from(r2.dTexture!.buffer));
  const cpu = renderBackward(mesh, cams, { ...o, device: 'cpu' }, g);
  assert.ok(relErr(r1.dPositions, cpu.dPositions) < 1e-3, `dPositions vs CPU ${relErr(r1.dPositions, cpu.dPositions)}`);
  assert.ok(relErr(r1.dTexture!, cpu.dTexture!) < 1e-4, `dTexture vs CPU ${relErr(r1.dTexture!, cpu.dTexture!)}`);
});

test('CUDA float (vector-atomic) texture and position gradients match the CPU twin: 3- and 4-channel textures, clamp and repeat edges', { skip: !hasShared }, async () => {
  // 3 and 4 channels take the warp-staged texture-gradient flush (per-warp shared-memory boxes, aligned float4
  // reductions) and, for warps whose box does not fit (UV seams), the sm_90 float4/float2 atomics (all four
  // alignments of a texel pair occur on a 1024-wide texture); repeat wrapping on a small texture puts bilinear
  // pairs across the texture edge (non-adjacent texels) and clamping makes both texels of a pair the same one.
  const mesh = await ictMesh();
  const cams = orbitCameras(meshBounds(mesh.positions), { views: 4, width: 512 });
  const n = 4 * 512 * 512;
  const dMask = Float32Array.from(hashRand(n, 12), (v) => v - 0.5);
  for (const [what, o] of [
    ['1024x1024x3 clamp', { texture: randomTexture(1024, 1024, 3, 13), sh: null }],
    ['5x7x3 repeat', { texture: randomTexture(5, 7, 3, 14), wrap: 'repeat', sh: null }],
    ['6x4x3 clamp', { texture: randomTexture(6, 4, 3, 15), sh: null }],
    ['1024x1024x4 clamp', { texture: randomTexture(1024, 1024, 4, 16), sh: null }],
    ['3x301x4 repeat', { texture: randomTexture(3, 301, 4, 17), wrap: 'repeat', sh: null }],
  ] as [string, RenderOptions][]) {
    const g = { dColor: Float32Array.from(hashRand(n * o.texture!.channels, 11), (v) => v - 0.5), dMask };
    const cpu = renderBackward(mesh, cams, { ...o, device: 'cpu' }, g);
    const cuda = renderBackward(mesh, cams, { ...o, device: 'cuda' }, g);
    assert.ok(relErr(cuda.dTexture!, cpu.dTexture!) < 1e-4, `${what}: dTexture CUDA vs CPU ${relErr(cuda.dTexture!, cpu.dTexture!)}`);
    // float atomics sum the (heavily cancelling) per-pixel position terms in another order than the CPU's serial
    // loop: 1.7e-3 observed on an H200 for the 1024² texture (the fixed-point path is checked at 1e-3 above)
    assert.ok(relErr(cuda.dPositions, cpu.dPositions) < 5e-3, `${what}: dPositions CUDA vs CPU ${relErr(cuda.dPositions, cpu.dPositions)}`);
    assert.ok(cpu.dTexture!.some((x) => x !== 0), `${what}: texture gradient must be non-zero`);
  }
});

test('CUDA texel gradients: a NaN upstream gradient reaches the same texels as on the CPU (the warp-staged flush falls back)', { skip: !hasShared }, async () => {
  // the staged flush scales each warp's sums to its largest contribution; a NaN makes that scale meaningless, so
  // the warp must add its footprints directly and the NaN must land where the CPU twin puts it
  const mesh = await ictMesh();
  const cams = orbitCameras(meshBounds(mesh.positions), { views: 1, width: 256 });
  const o: RenderOptions = { texture: randomTexture(1024, 1024, 3, 21), sh: null };
  const tri = render(mesh, cams, { ...o, device: 'cpu' }).triId;
  const hit = tri.findIndex((t, i) => t >= 0 && i > tri.length / 2);
  assert.ok(hit > 0, 'a covered pixel');
  const dColor = Float32Array.from(hashRand(tri.length * 3, 22), (v) => v - 0.5);
  dColor[3 * hit + 1] = NaN;
  const cpu = renderBackward(mesh, cams, { ...o, device: 'cpu' }, { dColor });
  const cuda = renderBackward(mesh, cams, { ...o, device: 'cuda' }, { dColor });
  const nanAt = (a: Float32Array) => [...a.keys()].filter((i) => Number.isNaN(a[i]));
  const n = nanAt(cpu.dTexture!);
  assert.ok(n.length > 0, 'the CPU texture gradient has NaNs');
  assert.deepEqual(nanAt(cuda.dTexture!), n, 'NaN texels CUDA vs CPU');
  const finite = (a: Float32Array) => Float32Array.from(a, (x) => (Number.isNaN(x) ? 0 : x));
  assert.ok(relErr(finite(cuda.dTexture!), finite(cpu.dTexture!)) < 1e-4, 'the other texels');
});

test('interpolate on CUDA == CPU', () => {
  const mesh = bumpGrid(6);
  const r = render(mesh, [identityCamera(48, 48, 40)], { sh: null });
  const i = { attr: mesh.uvs!, numAttr: 2, attrTri: mesh.uvTri!, triId: r.triId, bary: r.bary };
  assertClose(interpolate({ ...i, device: 'cuda' }), interpolate({ ...i, device: 'cpu' }), 1e-6, 0, 'uv');
});

test('mip-mapping on CUDA == CPU: pyramid (bit-identical), trilinear colour, texel and position gradients (float and deterministic)', { skip: !hasShared }, async () => {
  // pyramid kernels: the same float ops on both twins
  // (up to 4 channels: 5 levels per launch through shared memory; more channels: a launch per level)
  for (const [w, h, c] of [[1024, 1024, 3], [13, 6, 4], [1, 9, 2], [300, 77, 1], [70, 33, 6]] as const) {
    const tex = randomTexture(w, h, c, 50 + w);
    const a = mipPyramid(tex, { device: 'cpu' }), b = mipPyramid(tex, { device: 'cuda' });
    assert.equal(b.length, a.length);
    a.forEach((l, i) => assert.deepEqual(Buffer.from(b[i].data.buffer), Buffer.from(l.data.buffer), `${w}x${h}x${c} level ${i}`));
  }
  const mesh = await ictMesh();
  const cams = orbitCameras(meshBounds(mesh.positions), { views: 4, width: 256 });
  const n = 4 * 256 * 256;
  for (const [what, o] of [
    ['1024x1024x3 clamp (minified: lod > 0 over the head)', { texture: randomTexture(1024, 1024, 3, 61), sh: null, mip: true }],
    ['512x384x4 repeat, bias 0.5, 5 levels', { texture: randomTexture(512, 384, 4, 62), sh: null, mip: true, wrap: 'repeat', lodBias: 0.5, mipLevels: 5 }],
    ['333x200x2 bias -1', { texture: randomTexture(333, 200, 2, 63), sh: null, mip: true, lodBias: -1 }],
  ] as [string, RenderOptions][]) {
    const C = o.texture!.channels;
    const { a } = compareForward(mesh, cams, o, `mip ${what}`);
    const off = render(mesh, cams, { ...o, mip: false, device: 'cpu' }).color!;
    let changed = 0;
    for (let i = 0; i < off.length; i++) if (Math.abs(off[i] - a.color![i]) > 1e-3) changed++;
    assert.ok(changed > 0, `${what}: mip must change the minified render`);
    const g = { dColor: Float32Array.from(hashRand(n * C, 64), (v) => v - 0.5), dMask: Float32Array.from(hashRand(n, 65), (v) => v - 0.5) };
    const cpu = renderBackward(mesh, cams, { ...o, device: 'cpu' }, g);
    const cuda = renderBackward(mesh, cams, { ...o, device: 'cuda' }, g);
    const det = renderBackward(mesh, cams, { ...o, device: 'cuda' }, g, { deterministic: true });
    const det2 = renderBackward(mesh, cams, { ...o, device: 'cuda' }, g, { deterministic: true });
    assert.ok(relErr(cuda.dTexture!, cpu.dTexture!) < 1e-4, `${what}: dTexture CUDA vs CPU ${relErr(cuda.dTexture!, cpu.dTexture!)}`);
    assert.ok(relErr(det.dTexture!, cpu.dTexture!) < 1e-4, `${what}: dTexture deterministic vs CPU ${relErr(det.dTexture!, cpu.dTexture!)}`);
    assert.deepEqual(Buffer.from(det.dTexture!.buffer), Buffer.from(det2.dTexture!.buffer), `${what}: deterministic dTexture reproducible`);
    assert.ok(relErr(cuda.dPositions, cpu.dPositions) < 5e-3, `${what}: dPositions CUDA vs CPU ${relErr(cuda.dPositions, cpu.dPositions)}`);
    assert.ok(relErr(det.dPositions, cpu.dPositions) < 1e-3, `${what}: dPositions deterministic vs CPU ${relErr(det.dPositions, cpu.dPositions)}`);
    assert.ok(cpu.dTexture!.some((x) => x !== 0));
  }
});

test('mip-mapping on CUDA: minified checkerboard gives the mean; texel gradients match finite differences', () => {
  const cam = identityCamera(32, 32, 32, 16, 16);
  const quad = frontQuad(0.5 / 512);
  const mip = render(quad, [cam], { texture: checkerboard(512, 512), sh: null, antialias: false, wrap: 'repeat', mip: true, device: 'cuda' }).color!;
  for (let i = 0; i < mip.length; i++) assert.ok(Math.abs(mip[i] - 0.5) < 1e-3, `pixel ${i}: ${mip[i]}`);
  const mesh = bumpGrid(5, 1, 3, 0.4);
  const small = identityCamera(14, 12, 13);
  const tex = randomTexture(17, 9, 3, 22);
  const o: RenderOptions = { texture: tex, sh: null, mip: true, wrap: 'repeat', lodBias: 0.7, device: 'cuda' };
  const wc = Float64Array.from(hashRand(14 * 12 * 3, 24), (v) => v - 0.5);
  for (const deterministic of [false, true]) {
    const { dTexture } = renderBackward(mesh, [small], o, { dColor: Float32Array.from(wc) }, { deterministic });
    const fd = finiteDiff((x) => {
      const r = render(mesh, [small], { ...o, texture: { ...tex, data: Float32Array.from(x) } });
      let s = 0;
      for (let i = 0; i < wc.length; i++) s += wc[i] * r.color![i];
      return s;
    }, tex.data, 0.25);
    assertClose(dTexture!, fd, 2e-3, 1e-3, `dTexture (deterministic ${deterministic})`);
  }
});
