/**
 * The native pipeline on CUDA: the same recovery as the CPU suite, CUDA against the CPU twin (same cameras and
 * noise, so the curves and results agree up to float reassociation and atomics), the pipeline's own kernels
 * checked through whole runs, exact resume on CUDA, and the full ICT-size reconstruction.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runPipelineNative, type PipelineNativeInput, type PipelineNativeResult } from '../../lib/pipeline-native';
import { hasShared } from '../helpers';
import { syntheticHead } from '../cpu/pipeline-fixture';

const head = syntheticHead();
const fixedCameras = [0, 60, -60, 120, -120, 180].flatMap((azimuth) => [0, 35].map((elevation) => ({ elevation, azimuth, distance: 1.4 })));

function input(device: 'cpu' | 'cuda', over: { geometry?: PipelineNativeInput['geometry']; texture?: PipelineNativeInput['texture'] } = {}): PipelineNativeInput {
  return {
    device,
    seed: 7,
    model: head.model,
    diffusion: { denoiser: 'target', codec: 'identity' },
    geometry: {
      iterations: 200, renderSize: 64, views: 2, learningRate: 0.05,
      camera: { elevation: { min: -20, max: 20 }, azimuth: { min: -60, max: 60 }, distance: { min: 1.3, max: 1.5 } },
      optimizer: { type: 'adan', maxGradNorm: 0 }, lrDecay: { type: 'cosine', totalSteps: 200, minFactor: 0.02 }, regularization: { identity: 0 },
      ...over.geometry,
    },
    texture: {
      iterations: 150, latent: { iterations: 30, textureSize: 32, renderSize: 32 }, rgb: { textureSize: 64, renderSize: 64 }, views: 3,
      prior: { enabled: false }, learningRate: 0.03, lrDecay: { type: 'step', stepEvery: 40, gamma: 0.6 }, optimizer: { type: 'adamw', weightDecay: 0 },
      cameras: { mode: 'fixed', fixed: fixedCameras },
      ...over.texture,
    },
    target: { coefficients: head.targetCoefficients, texture: head.texture, textureWidth: head.textureSize, textureHeight: head.textureSize },
    previews: { views: [{ elevation: 0, azimuth: 30, distance: 1.4 }], size: 64 },
  };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return m;
}

test('CUDA: geometry recovery and agreement with the CPU twin', async () => {
  const g = await runPipelineNative(input('cuda', { texture: { enabled: false } }));
  const c = await runPipelineNative(input('cpu', { texture: { enabled: false } }));
  assert.ok(g.metrics!.vertexRmseRatio! < 0.05, `CUDA vertex RMSE ratio ${g.metrics!.vertexRmseRatio}`);
  // same timesteps, same cameras: the first iterations' losses agree closely (later ones drift with atomics)
  const gc = g.curves!.geometry, cc = c.curves!.geometry;
  assert.equal(gc.length, cc.length);
  for (let i = 0; i < 4 * 3; i += 4) {
    assert.equal(gc[i + 1], cc[i + 1], 'timesteps are host-side and identical');
    assert.ok(Math.abs(gc[i + 3] - cc[i + 3]) <= 1e-3 * Math.abs(cc[i + 3]) + 1e-9, `target MSE group ${i / 4}: ${gc[i + 3]} vs ${cc[i + 3]}`);
  }
  assert.ok(maxRel(g.coefficients!, c.coefficients!, 0.05) < 0.05, 'final coefficients agree within 5%');
  assert.ok(maxRel(g.normals!, c.normals!, 0.1) < 0.05);
});

test('CUDA: texture recovery (PSNR >= 30 dB over visible texels) and agreement with the CPU twin', async () => {
  const over = { geometry: { enabled: false }, texture: { coefficients: head.targetCoefficients } };
  const g = await runPipelineNative(input('cuda', over));
  const c = await runPipelineNative(input('cpu', over));
  assert.ok(g.metrics!.psnrDb! >= 30, `CUDA PSNR ${g.metrics!.psnrDb}`);
  assert.equal(g.metrics!.visibleTexels, c.metrics!.visibleTexels, 'visibility is decided by identical raster twins');
  let se = 0;
  for (let i = 0; i < g.texture!.length; i++) se += (g.texture![i] - c.texture![i]) ** 2;
  const psnrCpuVsCuda = 10 * Math.log10(g.texture!.length / se);
  assert.ok(psnrCpuVsCuda > 35, `CUDA and CPU textures differ: ${psnrCpuVsCuda} dB`);
  // previews: the same picture
  assert.ok(maxRel(g.previews!.textured!, c.previews!.textured!, 0.05) < 0.1 || psnrCpuVsCuda > 35);
});

test('CUDA: the pooling codec path (latent SDS through the codec adjoint) runs and lowers the target loss', async () => {
  const r = await runPipelineNative({ ...input('cuda', { geometry: { iterations: 60 }, texture: { iterations: 40, latent: { iterations: 20, textureSize: 32, renderSize: 8 } } }), diffusion: { denoiser: 'target', codec: 'pooling' } });
  const g = r.curves!.geometry;
  assert.ok(g[g.length - 1] < g[3], `geometry target MSE ${g[3]} -> ${g[g.length - 1]}`);
  assert.ok(r.metrics!.vertexRmseRatio! < 0.8, `pooling codec geometry ratio ${r.metrics!.vertexRmseRatio}`);
});

async function runCancelled(i: PipelineNativeInput, stopAt: number): Promise<PipelineNativeResult> {
  const ac = new AbortController();
  return runPipelineNative({ ...i, progressEvery: 2 }, { signal: ac.signal, onProgress: (p) => { if (p.phase === 'geometry' && p.iteration >= stopAt) ac.abort(); } });
}

test('CUDA: cancel + resume continues from the checkpoint (same cameras/noise; results within atomics noise)', async () => {
  const over = { geometry: { iterations: 150 }, texture: { iterations: 30, latent: { iterations: 10, textureSize: 32, renderSize: 32 } } };
  const full = await runPipelineNative(input('cuda', over));
  const first = await runCancelled(input('cuda', over), 20);
  assert.equal(first.status, 'cancelled');
  const resumed = await runPipelineNative({ ...input('cuda', over), checkpoint: first.checkpoint });
  assert.ok(maxRel(resumed.coefficients!, full.coefficients!, 0.05) < 0.02, 'resumed coefficients');
  assert.ok(resumed.metrics!.vertexRmseRatio! < 0.1);
});

/** Exact (bitwise, via Float32 bit patterns so -0/NaN count too) equality with the first differing index in the message. */
function assertBitIdentical(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined, what: string): void {
  assert.ok(a && b, `${what}: missing`);
  assert.equal(a.length, b.length, `${what}: lengths ${a.length} vs ${b.length}`);
  const fa = Float32Array.from(a), fb = Float32Array.from(b);
  const ua = new Uint32Array(fa.buffer), ub = new Uint32Array(fb.buffer);
  let diffs = 0, first = -1;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) { diffs++; if (first < 0) first = i; }
  assert.equal(diffs, 0, `${what}: ${diffs} of ${ua.length} values differ, first at ${first}: ${fa[first]} vs ${fb[first]}`);
}

function assertSameCudaResult(a: PipelineNativeResult, b: PipelineNativeResult, what: string): void {
  assert.equal(a.status, 'done', `${what}: first run status`);
  assert.equal(b.status, 'done', `${what}: second run status`);
  assertBitIdentical(a.curves!.geometry, b.curves!.geometry, `${what}: geometry curves`);
  assertBitIdentical(a.coefficients, b.coefficients, `${what}: coefficients`);
  assertBitIdentical(a.vertices, b.vertices, `${what}: vertices`);
  assertBitIdentical(a.curves!.texture, b.curves!.texture, `${what}: texture curves`);
  assertBitIdentical(a.texture, b.texture, `${what}: texture`);
}

test('CUDA: bit-reproducible (deterministic fixed-point scatters): same seed twice, and cancel + resume equal the uninterrupted run exactly', async () => {
  // grey AND normal geometry renders (the default inputs): the normal render's backward scatters into vertex
  // normals / clip positions, the texture phase through the raster's texture backward
  const over = { geometry: { iterations: 60 }, texture: { iterations: 40, latent: { iterations: 15, textureSize: 32, renderSize: 32 } } };
  const a = await runPipelineNative(input('cuda', over));
  const b = await runPipelineNative(input('cuda', over));
  assertSameCudaResult(a, b, 'same seed, two CUDA runs');
  // cancel in the geometry phase, resume from the checkpoint
  const g = await runCancelled(input('cuda', over), 20);
  assert.equal(g.status, 'cancelled');
  assert.equal(g.checkpoint.phase, 'geometry');
  assert.ok(g.checkpoint.iteration > 0 && g.checkpoint.iteration < 60, `geometry checkpoint at ${g.checkpoint.iteration}`);
  assertSameCudaResult(a, await runPipelineNative({ ...input('cuda', over), checkpoint: g.checkpoint }), `CUDA resume from geometry iteration ${g.checkpoint.iteration}`);
  // cancel in the texture phase (latent stage), resume
  const ac = new AbortController();
  const t = await runPipelineNative({ ...input('cuda', over), progressEvery: 2 }, { signal: ac.signal, onProgress: (p) => { if (p.phase === 'texture' && p.iteration >= 6) ac.abort(); } });
  assert.equal(t.status, 'cancelled');
  assert.ok(t.checkpoint.iteration > 0, `texture checkpoint at ${t.checkpoint.iteration}`);
  assertSameCudaResult(a, await runPipelineNative({ ...input('cuda', over), checkpoint: t.checkpoint }), `CUDA resume from ${t.checkpoint.phase} iteration ${t.checkpoint.iteration}`);
});

test('CUDA: profile reports per-op event times', async () => {
  const r = await runPipelineNative({ ...input('cuda', { geometry: { iterations: 10 }, texture: { iterations: 10, latent: { iterations: 5, textureSize: 32, renderSize: 32 } } }), profile: true });
  const p = r.profile!;
  for (const op of ['pipeline/raster', 'pipeline/morph', 'pipeline/morph_backward', 'pipeline/render_backward', 'pipeline/optimizer']) assert.ok(p[op] && p[op].count > 0, op);
  assert.ok(Object.values(p).every((s) => s.meanMs >= 0 && s.meanMs < 1000));
});

test('CUDA: the full ICT-FaceKit head (26.7k vertices) at FaceG2E sizes', { skip: !hasShared && 'needs ../shared' }, async () => {
  const { ictInput } = await import('../../bench/pipeline-ict');
  const { input: i } = await ictInput({ device: 'cuda', geometry: 400, texture: 300, size: 224, texSize: 512 });
  i.geometry!.views = 2;
  i.texture!.rgb = { textureSize: 512, renderSize: 512 };
  const r = await runPipelineNative(i);
  assert.equal(r.status, 'done');
  assert.ok(r.metrics!.vertexRmseRatio! < 0.5, `ICT vertex RMSE ratio ${r.metrics!.vertexRmseRatio}`);
  assert.ok(r.metrics!.psnrDb! > 25, `ICT texture PSNR ${r.metrics!.psnrDb}`);
  assert.equal(r.texture!.length, 512 * 512 * 3);
});

test('CUDA: full-size recovery on the ICT-FaceKit head (20 identity modes, 224² geometry renders, 512² texture and renders)', { skip: !hasShared && 'needs ../shared' }, async () => {
  // the recovery bar of the issue at FaceG2E sizes: vertex RMSE < 5% of its start, texture PSNR >= 30 dB over visible texels
  const { ictInput } = await import('../../bench/pipeline-ict');
  const parts = ['face', 'head_neck', 'eye_socket_left', 'eye_socket_right', 'eyeball_left', 'eyeball_right'];
  const { input: i, V } = await ictInput({ device: 'cuda', geometry: 800, texture: 300, size: 224, texSize: 512, parts });
  const K = 20; // the target uses the first 20 identity modes; optimise those (as examples/reconstruct-ict.json does)
  i.model.identityCount = K;
  i.model.identityBasis = i.model.identityBasis!.subarray(0, K * V * 3);
  i.target!.coefficients = i.target!.coefficients.slice(0, K);
  i.geometry!.camera = { ...i.geometry!.camera, azimuth: { min: -60, max: 60 } };
  i.geometry!.views = 2;
  i.geometry!.lrDecay = { type: 'cosine', totalSteps: 800, minFactor: 0.05 };
  i.texture!.rgb = { textureSize: 512, renderSize: 512 };
  i.texture!.latent = { iterations: 100, textureSize: 64, renderSize: 64 };
  i.texture!.lrDecay = { type: 'step', stepEvery: 60, gamma: 0.6 };
  const r = await runPipelineNative(i);
  assert.equal(r.status, 'done');
  process.stdout.write(`# full-size ICT recovery on CUDA: vertexRmseRatio ${r.metrics!.vertexRmseRatio}, psnrDb ${r.metrics!.psnrDb}, visible texels ${r.metrics!.visibleTexels}, geometry ${r.timings.geometryMs.toFixed(0)} ms, texture ${r.timings.textureMs.toFixed(0)} ms\n`);
  assert.ok(r.metrics!.vertexRmseRatio! < 0.05, `ICT vertex RMSE ratio ${r.metrics!.vertexRmseRatio}`);
  assert.ok(r.metrics!.psnrDb! >= 30, `ICT texture PSNR ${r.metrics!.psnrDb}`);
});
