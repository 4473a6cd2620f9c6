/**
 * The native FaceG2E pipeline on the CPU with the target denoiser and a small synthetic morphable head:
 * geometry and texture recovery, reproducibility, cancel + exact resume, and input errors.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runPipelineNative, shPresets, type PipelineNativeInput, type PipelineNativeResult, type PipelineProgress } from '../../lib/pipeline-native';
import { FaceG2EError } from '../../lib/errors';
import { cudaStatus } from '../../lib/device';
import { syntheticHead } from './pipeline-fixture';

const head = syntheticHead();
const fixedCameras = [0, 60, -60, 120, -120, 180].flatMap((azimuth) => [0, 35].map((elevation) => ({ elevation, azimuth, distance: 1.4 })));

function input(over: { geometry?: PipelineNativeInput['geometry']; texture?: PipelineNativeInput['texture']; seed?: number } = {}): PipelineNativeInput {
  return {
    device: 'cpu',
    seed: over.seed ?? 7,
    model: head.model,
    diffusion: { denoiser: 'target', codec: 'identity' },
    geometry: {
      iterations: 200,
      renderSize: 64,
      views: 2,
      learningRate: 0.05,
      camera: { elevation: { min: -20, max: 20 }, azimuth: { min: -60, max: 60 }, distance: { min: 1.3, max: 1.5 } },
      optimizer: { type: 'adan', maxGradNorm: 0 },
      lrDecay: { type: 'cosine', totalSteps: 200, minFactor: 0.02 },
      regularization: { identity: 0 },
      ...over.geometry,
    },
    texture: {
      iterations: 150,
      latent: { iterations: 30, textureSize: 32, renderSize: 32 },
      rgb: { textureSize: 64, renderSize: 64 },
      views: 3,
      prior: { enabled: false },
      learningRate: 0.03,
      lrDecay: { type: 'step', stepEvery: 40, gamma: 0.6 },
      optimizer: { type: 'adamw', weightDecay: 0 },
      cameras: { mode: 'fixed', fixed: fixedCameras },
      ...over.texture,
    },
    target: { coefficients: head.targetCoefficients, texture: head.texture, textureWidth: head.textureSize, textureHeight: head.textureSize },
    previews: { views: [{ elevation: 0, azimuth: 30, distance: 1.4 }, { elevation: 10, azimuth: -90, distance: 1.4 }], size: 48 },
  };
}

function assertSameResult(a: PipelineNativeResult, b: PipelineNativeResult, what: string): void {
  assert.equal(a.status, 'done', `${what}: first run status`);
  assert.equal(b.status, 'done', `${what}: second run status`);
  assert.deepEqual(Array.from(a.coefficients!), Array.from(b.coefficients!), `${what}: coefficients differ`);
  assert.deepEqual(Array.from(a.vertices!), Array.from(b.vertices!), `${what}: vertices differ`);
  if (a.texture || b.texture) assert.deepEqual(Array.from(a.texture!), Array.from(b.texture!), `${what}: textures differ`);
  assert.deepEqual(Array.from(a.curves!.geometry), Array.from(b.curves!.geometry), `${what}: geometry curves differ`);
  assert.deepEqual(Array.from(a.curves!.texture), Array.from(b.curves!.texture), `${what}: texture curves differ`);
}

test('geometry phase recovers the target coefficients (vertex RMSE < 5% of its start)', async () => {
  const events: PipelineProgress[] = [];
  const r = await runPipelineNative(input({ texture: { enabled: false } }), { onProgress: (p) => events.push(p) });
  assert.equal(r.status, 'done');
  const m = r.metrics!;
  assert.ok(m.vertexRmseInitial! > 1e-3, `the start must be away from the target (RMSE ${m.vertexRmseInitial})`);
  assert.ok(m.vertexRmseRatio! < 0.05, `vertex RMSE ratio ${m.vertexRmseRatio} (final ${m.vertexRmseFinal}, initial ${m.vertexRmseInitial})`);
  assert.equal(r.vertices!.length, head.V * 3);
  assert.equal(r.normals!.length, head.V * 3);
  for (let v = 0; v < head.V; v++) {
    const n = Math.hypot(r.normals![3 * v], r.normals![3 * v + 1], r.normals![3 * v + 2]);
    assert.ok(Math.abs(n - 1) < 1e-3, `normal ${v} has length ${n}`);
  }
  // progress: in order, geometry only, the last one at the end
  assert.ok(events.length >= 5);
  for (let i = 1; i < events.length; i++) assert.ok(events[i].iteration > events[i - 1].iteration);
  assert.equal(events[events.length - 1].iteration, 200);
  assert.ok(events.every((e) => e.phase === 'geometry'));
  // the timestep falls linearly from 0.98 to 0.02 of the schedule
  const g = r.curves!.geometry;
  assert.ok(g[1] > 900 && g[g.length - 3] < 100, `timesteps ${g[1]} .. ${g[g.length - 3]}`);
  // the target-render MSE falls by orders of magnitude
  assert.ok(g[g.length - 1] < g[3] * 1e-2, `target MSE ${g[3]} -> ${g[g.length - 1]}`);
  assert.equal(r.texture, undefined, 'no texture without the texture phase');
  assert.equal(r.previews!.shaded!.length, 2 * 48 * 48 * 3);
});

test('texture phase recovers the target texture (PSNR >= 30 dB over visible texels)', async () => {
  const r = await runPipelineNative(input({ geometry: { enabled: false }, texture: { coefficients: head.targetCoefficients } }));
  assert.equal(r.status, 'done');
  assert.equal(r.textureSize, 64);
  assert.equal(r.texture!.length, 64 * 64 * 3);
  const m = r.metrics!;
  assert.ok(m.visibleTexels > 64 * 64 * 0.5 && m.visibleTexels <= 64 * 64, `visible texels ${m.visibleTexels}`);
  assert.ok(m.psnrDb! >= 30, `PSNR ${m.psnrDb} dB`);
  // the renders match the target renders much more closely than the texels (some visible texels only get a sliver)
  const t = r.curves!.texture;
  assert.ok(t[t.length - 1] < 1e-6, `final render MSE ${t[t.length - 1]}`);
  for (const v of r.texture!) assert.ok(v >= 0 && v <= 1, 'texels are clamped to [0, 1]');
  assert.equal(r.previews!.textured!.length, 2 * 48 * 48 * 3);
  assert.equal(r.metrics!.vertexRmseRatio, null, 'no geometry metric without the geometry phase');
});

test('the texture prior (target UV texture for the target denoiser) also reaches the unseen texels', async () => {
  const r = await runPipelineNative(input({ geometry: { enabled: false }, texture: { coefficients: head.targetCoefficients, iterations: 80, latent: { iterations: 20, textureSize: 32, renderSize: 32 }, prior: { enabled: true, weight: 3 } } }));
  assert.ok(r.metrics!.psnrDb! >= 40, `PSNR with the prior ${r.metrics!.psnrDb} dB`);
});

test('the same seed reproduces a run bit for bit; another seed does not', async () => {
  const small = { geometry: { iterations: 30 }, texture: { iterations: 30, latent: { iterations: 10, textureSize: 32, renderSize: 32 } } };
  const a = await runPipelineNative(input(small));
  const b = await runPipelineNative(input(small));
  assertSameResult(a, b, 'same seed');
  const c = await runPipelineNative(input({ ...small, seed: 8 }));
  assert.notDeepEqual(Array.from(c.coefficients!), Array.from(a.coefficients!), 'a different seed must draw different cameras');
});

async function cancelAndResume(when: (p: PipelineProgress) => boolean, over: Parameters<typeof input>[0]): Promise<void> {
  const full = await runPipelineNative(input(over));
  const ac = new AbortController();
  const first = await runPipelineNative({ ...input(over), progressEvery: 2 }, { signal: ac.signal, onProgress: (p) => { if (when(p)) ac.abort(); } });
  assert.equal(first.status, 'cancelled', 'the run must stop at the abort');
  const ck = first.checkpoint;
  assert.ok(ck.iteration > 0);
  assert.equal(first.coefficients, undefined);
  const resumed = await runPipelineNative({ ...input(over), checkpoint: ck });
  assertSameResult(full, resumed, `resumed from ${ck.phase} iteration ${ck.iteration}`);
}

test('cancel during the geometry phase, then resume: identical to an uninterrupted run', async () => {
  const over = { geometry: { iterations: 120 }, texture: { iterations: 40, latent: { iterations: 15, textureSize: 32, renderSize: 32 } } };
  await cancelAndResume((p) => p.phase === 'geometry' && p.iteration >= 20, over);
});

test('cancel during the texture phase (latent stage), then resume: identical to an uninterrupted run', async () => {
  const over = { geometry: { iterations: 20 }, texture: { iterations: 120, latent: { iterations: 60, textureSize: 32, renderSize: 32 } } };
  await cancelAndResume((p) => p.phase === 'texture' && p.iteration >= 6, over);
});

test('profile: per-op mean times; previews and the SH presets', async () => {
  const r = await runPipelineNative({ ...input({ geometry: { iterations: 6 }, texture: { iterations: 6, latent: { iterations: 3, textureSize: 32, renderSize: 32 } } }), profile: true });
  const ops = Object.keys(r.profile ?? {});
  for (const op of ['pipeline/raster', 'pipeline/morph_backward', 'pipeline/denoise', 'pipeline/optimizer', 'pipeline/render_backward'])
    assert.ok(ops.includes(op), `profile lacks ${op}: ${ops.join(', ')}`);
  for (const s of Object.values(r.profile!)) assert.ok(s.meanMs >= 0 && s.count > 0);
  const shaded = r.previews!.shaded!;
  let lit = 0;
  for (const v of shaded) if (v > 0.05) lit++;
  assert.ok(lit > shaded.length * 0.1, 'the shaded preview shows the head');
  const presets = shPresets();
  assert.ok(presets.length >= 4 && presets.every((p) => p.coefficients.length === 9));
});

test('bad inputs are E_INVALID_ARGUMENT / E_NO_ENGINE / E_NO_CUDA_DEVICE with the field named', async () => {
  const reject = async (i: PipelineNativeInput, code: string, re: RegExp) => {
    await assert.rejects(runPipelineNative(i), (e: unknown) => e instanceof FaceG2EError && e.code === code && re.test(e.message));
  };
  const base = input({ geometry: { iterations: 2 }, texture: { iterations: 2, latent: { iterations: 1, textureSize: 32, renderSize: 32 } } });
  await reject({ ...base, model: { ...base.model, uv: new Float32Array(3) } }, 'E_INVALID_ARGUMENT', /model\.uv/);
  await reject({ ...base, model: { ...base.model, identityBasis: new Uint16Array(5) } }, 'E_INVALID_ARGUMENT', /identityBasis/);
  await reject({ ...base, target: { coefficients: new Float32Array(2) } }, 'E_INVALID_ARGUMENT', /target\.coefficients/);
  await reject({ ...base, geometry: { ...base.geometry, views: 40 } }, 'E_INVALID_ARGUMENT', /geometry\.views/);
  await reject({ ...base, geometry: { ...base.geometry, inputs: ['depth' as 'grey'] } }, 'E_INVALID_ARGUMENT', /geometry\.inputs/);
  await reject({ ...base, diffusion: { denoiser: 'target', codec: 'pooling' }, geometry: { ...base.geometry, renderSize: 60 } }, 'E_INVALID_ARGUMENT', /geometry\.renderSize/);
  await reject({ ...base, diffusion: { denoiser: 'tensorrt' } }, 'E_NO_ENGINE', /target denoiser/);
  await reject({ ...base, checkpoint: { ...((await runPipelineNative(base)).checkpoint), phase: 'geometry', coefficients: new Float32Array(1) } }, 'E_INVALID_ARGUMENT', /checkpoint\.coefficients/);
  if (!cudaStatus().gpus.some((g) => g.supported)) await reject({ ...base, device: 'cuda' }, 'E_NO_CUDA_DEVICE', /./);
});
