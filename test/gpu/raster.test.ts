/** Rasteriser on CUDA vs the CPU twin: identical triangle ids, close values and gradients, determinism. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { render, renderBackward, interpolate, type RenderOptions, type RasterMesh } from '../../lib/raster';
import { meshBounds, orbitCameras, type PinholeCamera } from '../../lib/camera';
import { readObj, triangulate } from '../../lib/io/obj';
import { assertClose, relErr, finiteDiff, hasShared, ICT_DIR } from '../helpers';
import { identityCamera, bumpGrid, randomTexture, hashRand } from '../cpu/raster_scenes';

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

test('CUDA == CPU: triangle ids (bit-identical), barycentrics, depth and shading on the ICT head, 4 views at 512', { skip: !hasShared }, async () => {
  const mesh = await ictMesh();
  const cams = orbitCameras(meshBounds(mesh.positions), { views: 4, width: 512 });
  const tex = randomTexture(256, 256, 3, 5);
  const { a } = compareForward(mesh, cams, { texture: tex }, 'ict');
  assert.ok(a.triId.filter((t) => t >= 0).length > 4 * 512 * 512 * 0.15);
  // close-up views with the near plane cutting through the head, and a 4-channel latent texture
  const close = orbitCameras(meshBounds(mesh.positions), { views: 3, width: 224, fill: 6, azimuthStart: 20 });
  compareForward(mesh, close, { texture: randomTexture(64, 64, 4, 6), near: 20, wrap: 'repeat' }, 'near-plane close-up');
});

test('CUDA == CPU on the hand-made scenes (near-plane crossing, large triangles that take the queued path)', () => {
  const cam = identityCamera(300, 260, 200, 149.3, 131.1);
  const crossing: RasterMesh = { positions: Float32Array.from([-1.2, -0.6, 2.2, 1.3, -0.4, 2.9, 0.1, 0.8, -1.5, -3, -3, 5, 3, -3, 5, 0, 3, 5]), tri: Uint32Array.from([0, 1, 2, 3, 4, 5]) };
  compareForward(crossing, [cam], { near: 0.1 }, 'crossing');
  compareForward(bumpGrid(9), [identityCamera(64, 64, 40)], { texture: randomTexture(8, 8, 4) }, 'grid');
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
  // finite differences of the mask term through antialiasing, on the GPU
  const mOnly = renderBackward(mesh, [cam], { ...o, device: 'cuda' }, { dMask: g.dMask }).dPositions;
  const fd = finiteDiff((x) => {
    const r = render({ ...mesh, positions: Float32Array.from(x) }, [cam], { ...o, device: 'cuda' });
    let s = 0;
    for (let i = 0; i < n; i++) s += g.dMask[i] * r.mask[i];
    return s;
  }, mesh.positions, 1e-4);
  assert.ok(relErr(mOnly, fd) < 3e-2, `mask gradient vs finite differences: ${relErr(mOnly, fd)}`);
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

test('interpolate on CUDA == CPU', () => {
  const mesh = bumpGrid(6);
  const r = render(mesh, [identityCamera(48, 48, 40)], { sh: null });
  const i = { attr: mesh.uvs!, numAttr: 2, attrTri: mesh.uvTri!, triId: r.triId, bary: r.bary };
  assertClose(interpolate({ ...i, device: 'cuda' }), interpolate({ ...i, device: 'cpu' }), 1e-6, 0, 'uv');
});
