/**
 * SDS maths against float64 references written from the published equations: scheduler tables
 * (diffusers), timestep schedules (threestudio / FaceG2E), noising and guidance (DreamFusion, Ho & Salimans),
 * v-prediction (Salimans & Ho), the three gradient paths, Adam / AdamW / Adan (Kingma & Ba; Loshchilov &
 * Hutter; Xie et al. with sail-sg/Adan's bias corrections), lr schedules and gradient-norm clipping.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as sds from '../../lib/sds';
import * as rng from '../../lib/rng';
import { FaceG2EError } from '../../lib/errors';
import { assertClose, finiteDiff, relErr, tmpDir } from '../helpers';

const isCode = (code: string, re?: RegExp) => (e: unknown) => e instanceof FaceG2EError && e.code === code && (!re || re.test(e.message));

// ---------------------------------------------------------------- float64 references

function refTables(schedule: 'linear' | 'scaled_linear', b0: number, b1: number, n: number) {
  const betas = new Float64Array(n);
  const ac = new Float64Array(n);
  let p = 1;
  for (let i = 0; i < n; i++) {
    const lin = (a: number, b: number) => a + ((b - a) * i) / (n - 1);
    betas[i] = schedule === 'linear' ? lin(b0, b1) : lin(Math.sqrt(b0), Math.sqrt(b1)) ** 2;
    p *= 1 - betas[i];
    ac[i] = p;
  }
  return { betas, ac };
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  return rng.normal(n, { seed, stream: 0, std: scale });
}

const SD = new sds.NoiseScheduler(sds.SD_SCHEDULER);

// ---------------------------------------------------------------- scheduler config

test('loadSchedulerConfig reads diffusers configs (object, file, folder, model folder) and applies defaults', () => {
  const sdJson = {
    _class_name: 'PNDMScheduler', _diffusers_version: '0.6.0', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
    num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, trained_betas: null, clip_sample: false,
  };
  assert.deepEqual(sds.loadSchedulerConfig(sdJson), sds.SD_SCHEDULER);
  const d = tmpDir('fg-sds-');
  fs.writeFileSync(path.join(d, 'scheduler_config.json'), JSON.stringify({ ...sdJson, prediction_type: 'v_prediction' }));
  assert.equal(sds.loadSchedulerConfig(path.join(d, 'scheduler_config.json')).predictionType, 'v_prediction');
  assert.equal(sds.loadSchedulerConfig(d).betaSchedule, 'scaled_linear');
  const model = tmpDir('fg-sds-model-');
  fs.mkdirSync(path.join(model, 'scheduler'));
  fs.writeFileSync(path.join(model, 'scheduler', 'scheduler_config.json'), JSON.stringify({ beta_schedule: 'linear' }));
  assert.deepEqual(sds.loadSchedulerConfig(model), { ...sds.SCHEDULER_DEFAULTS, betaSchedule: 'linear' });
  assert.deepEqual(sds.loadSchedulerConfig({}), sds.SCHEDULER_DEFAULTS);
});

test('loadSchedulerConfig rejects what it cannot honour, naming the field', () => {
  assert.throws(() => sds.loadSchedulerConfig({ beta_schedule: 'squaredcos_cap_v2' }), isCode('E_CONFIG', /beta_schedule/));
  assert.throws(() => sds.loadSchedulerConfig({ prediction_type: 'sample' }), isCode('E_CONFIG', /prediction_type/));
  assert.throws(() => sds.loadSchedulerConfig({ beta_start: -1 }), isCode('E_CONFIG', /beta_start/));
  assert.throws(() => sds.loadSchedulerConfig({ beta_start: 0.5, beta_end: 0.1 }), isCode('E_CONFIG', /beta_start/));
  assert.throws(() => sds.loadSchedulerConfig({ num_train_timesteps: 10.5 }), isCode('E_CONFIG', /num_train_timesteps/));
  assert.throws(() => sds.loadSchedulerConfig({ trained_betas: [0.1] }), isCode('E_CONFIG', /trained_betas/));
  assert.throws(() => sds.loadSchedulerConfig({ rescale_betas_zero_snr: true }), isCode('E_CONFIG', /rescale_betas_zero_snr/));
  try {
    sds.loadSchedulerConfig({ beta_schedule: 'cosine', prediction_type: 'sample' });
    assert.fail('expected a throw');
  } catch (e) {
    assert.deepEqual((e as FaceG2EError).details.map((x) => x.path).sort(), ['beta_schedule', 'prediction_type']);
  }
  const d = tmpDir('fg-sds-bad-');
  fs.writeFileSync(path.join(d, 'scheduler_config.json'), '{ not json');
  assert.throws(() => sds.loadSchedulerConfig(d), isCode('E_FORMAT', /scheduler_config\.json/));
  assert.throws(() => sds.loadSchedulerConfig(path.join(d, 'missing.json')), isCode('E_IO', /missing\.json/));
});

// ---------------------------------------------------------------- tables

test("scheduler tables: SD's scaled_linear 0.00085→0.012 (float64 reference and published values)", () => {
  const ref = refTables('scaled_linear', 0.00085, 0.012, 1000);
  assertClose(SD.betas, ref.betas, 0, 2e-7, 'betas');
  assertClose(SD.alphasCumprod, ref.ac, 0, 1e-7, 'alphasCumprod');
  // well-known values of SD's alphas_cumprod
  assert.ok(Math.abs(SD.alphaBar(0) - 0.99915) < 1e-7);
  assert.ok(Math.abs(SD.alphaBar(500) - 0.27633268) < 1e-7);
  assert.ok(Math.abs(SD.alphaBar(999) - 0.0046601) < 1e-7);
  for (let t = 1; t < 1000; t++) assert.ok(SD.alphasCumprod[t] < SD.alphasCumprod[t - 1], 'monotone');
  assert.throws(() => SD.alphaBar(1000), isCode('E_INVALID_ARGUMENT', /t:/));
});

test('scheduler tables: linear 1e-4→0.02 and other step counts', () => {
  for (const n of [1000, 50]) {
    const c = { ...sds.SCHEDULER_DEFAULTS, numTrainTimesteps: n };
    const t = sds.schedulerTables(c);
    const ref = refTables('linear', 1e-4, 0.02, n);
    assert.equal(t.alphasCumprod.length, n);
    assertClose(t.betas, ref.betas, 0, 2e-7, `betas n=${n}`);
    assertClose(t.alphasCumprod, ref.ac, 0, 1e-7, `alphasCumprod n=${n}`);
  }
  assert.throws(() => sds.schedulerTables({ ...sds.SD_SCHEDULER, betaSchedule: 'cosine' as never }), isCode('E_INVALID_ARGUMENT', /beta_schedule/));
});

// ---------------------------------------------------------------- timesteps

test('timesteps: uniform in [floor(N tMin), floor(N tMax)], from Philox (seed, timestep stream, iteration)', () => {
  const s: sds.TimestepSchedule = { mode: 'uniform', tMin: 0.02, tMax: 0.98 };
  const ts = sds.sampleTimesteps(s, 42, 0, 4000);
  const u = rng.uniform(4000, { seed: 42, stream: rng.RngStream.timestep });
  let mean = 0;
  for (let i = 0; i < ts.length; i++) {
    assert.equal(ts[i], 20 + Math.min(960, Math.floor(u[i] * 961)), `iteration ${i}`);
    mean += ts[i] / ts.length;
  }
  assert.ok(Math.abs(mean - 500) < 10, `mean ${mean}`);
  assert.ok(Math.min(...ts) === 20 && Math.max(...ts) === 980);
  // deterministic in (seed, iteration): any window reproduces
  assert.deepEqual(Array.from(sds.sampleTimesteps(s, 42, 1234, 10)), Array.from(ts.subarray(1234, 1244)));
  assert.notDeepEqual(Array.from(sds.sampleTimesteps(s, 43, 0, 10)), Array.from(ts.subarray(0, 10)));
});

test("timesteps: FaceG2E's linear schedule 0.98 → 0.02 with optional jitter", () => {
  const iters = 101;
  const lin = sds.sampleTimesteps({ mode: 'linear', tMin: 0.02, tMax: 0.98, totalIterations: iters }, 1, 0, iters + 5);
  for (let i = 0; i < iters + 5; i++) {
    const frac = 0.98 + (0.02 - 0.98) * (Math.min(i, iters - 1) / (iters - 1));
    assert.equal(lin[i], Math.floor(frac * 1000 + 0.5), `iteration ${i}`);
  }
  assert.equal(lin[0], 980);
  assert.equal(lin[iters - 1], 20);
  assert.equal(lin[50], 500);
  const j = 0.05;
  const jit = sds.sampleTimesteps({ mode: 'linear', totalIterations: iters, jitter: j }, 9, 0, iters);
  const u = rng.uniform(iters, { seed: 9, stream: rng.RngStream.timestep });
  let moved = 0;
  for (let i = 0; i < iters; i++) {
    const frac = 0.98 - 0.96 * (i / (iters - 1)) + j * (2 * u[i] - 1);
    const want = Math.min(980, Math.max(20, Math.floor(frac * 1000 + 0.5)));
    assert.equal(jit[i], want, `jittered iteration ${i}`);
    if (jit[i] !== lin[i]) moved++;
  }
  assert.ok(moved > iters / 2);
  assert.deepEqual(sds.sampleTimesteps({ mode: 'linear', totalIterations: iters, jitter: j }, 9, 0, iters), jit);
  assert.throws(() => sds.sampleTimesteps({ mode: 'linear', tMin: 0.9, tMax: 0.1 }, 0), isCode('E_INVALID_ARGUMENT', /tMin/));
  assert.throws(() => sds.sampleTimesteps({ mode: 'cosine' as never }, 0), isCode('E_INVALID_ARGUMENT', /mode/));
});

// ---------------------------------------------------------------- the SDS step

const N = 4 * 16 * 16;

test('noise: eps is Philox stream sdsNoise at iteration*n + i; x_t = sqrt(abar) x0 + sqrt(1-abar) eps, repeated for CFG', () => {
  const x0 = randn(N, 1);
  const t = 700;
  const a = SD.alphaBar(t);
  for (const iteration of [0, 3]) {
    const r = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t, seed: 5, iteration });
    const eps = rng.normal(N, { seed: 5, stream: rng.RngStream.sdsNoise, offset: iteration * N });
    assert.deepEqual(r.eps, eps, 'eps is the Philox draw');
    assert.equal(r.xt!.length, 2 * N);
    const ref = Array.from(x0, (x, i) => Math.sqrt(a) * x + Math.sqrt(1 - a) * eps[i]);
    assertClose(r.xt!.subarray(0, N), ref, 1e-6, 1e-6, 'x_t uncond half');
    assert.deepEqual(r.xt!.subarray(N), r.xt!.subarray(0, N), 'the cond half equals the uncond half');
  }
  const one = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t, seed: 5, iteration: 3, copies: 1 });
  assert.equal(one.xt!.length, N);
  const half = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t, seed: 5, iteration: 3, half: true });
  const full = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t, seed: 5, iteration: 3 });
  assert.deepEqual(half.xtHalf, sds.floatToHalf(full.xt!), 'fp16 x_t is the rounded float32 x_t');
  const off = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t, seed: 5, noiseOffset: 3 * N });
  assert.deepEqual(off.eps, full.eps, 'noiseOffset = iteration * n');
});

interface RefOpts {
  anchor: 'uncond' | 'cond';
  scale: number;
  weighting: sds.Weighting;
  pred: 'epsilon' | 'v_prediction';
  clamp?: number;
  normalize?: boolean;
  copies?: 1 | 2;
}

function refGrad(x0: Float32Array, eps: Float32Array, out: Float32Array, a: number, o: RefOpts) {
  const n = x0.length;
  const sa = Math.sqrt(a);
  const s1a = Math.sqrt(1 - a);
  const w = o.weighting === '1-alpha' ? 1 - a : o.weighting === 'uniform' ? 1 : Math.sqrt(a) * (1 - a);
  const grad = new Float64Array(n);
  const x0p = new Float64Array(n);
  const eh = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xt = sa * x0[i] + s1a * eps[i];
    let c = (o.copies ?? 2) === 2 ? out[n + i] : out[i];
    let u = (o.copies ?? 2) === 2 ? out[i] : c;
    if (o.pred === 'v_prediction') {
      c = sa * c + s1a * xt;
      u = sa * u + s1a * xt;
    }
    eh[i] = (o.copies ?? 2) === 1 ? c : (o.anchor === 'uncond' ? u : c) + o.scale * (c - u);
    let g = w * (eh[i] - eps[i]);
    if (o.clamp) g = Math.min(o.clamp, Math.max(-o.clamp, g));
    grad[i] = g;
    x0p[i] = (xt - s1a * eh[i]) / sa;
  }
  const normSq = grad.reduce((s, g) => s + g * g, 0);
  if (o.normalize) for (let i = 0; i < n; i++) grad[i] /= Math.sqrt(normSq);
  return { grad, x0p, eh, normSq };
}

test('guidance (both anchors), weightings, v-prediction, x0_hat: against the float64 equations', () => {
  const x0 = randn(N, 11);
  const eps = randn(N, 12);
  const out = randn(2 * N, 13);
  for (const t of [20, 500, 980])
    for (const anchor of ['uncond', 'cond'] as const)
      for (const weighting of ['1-alpha', 'uniform', 'fantasia3d'] as const)
        for (const pred of ['epsilon', 'v_prediction'] as const) {
          const scale = anchor === 'uncond' ? 100 : 7.5;
          const r = sds.sdsGrad({
            x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t, guidanceAnchor: anchor, guidanceScale: scale, weighting,
            prediction: pred, x0Pred: true, epsPred: true,
          });
          const ref = refGrad(x0, eps, out, SD.alphaBar(t), { anchor, scale, weighting, pred });
          const what = `t=${t} ${anchor} ${weighting} ${pred}`;
          const gmax = Math.max(...ref.grad.map(Math.abs));
          assertClose(r.grad, ref.grad, 2e-6 * gmax, 1e-5, `grad ${what}`);
          assertClose(r.epsPred!, ref.eh, 1e-4, 1e-5, `eps_hat ${what}`);
          const xmax = Math.max(...ref.x0p.map(Math.abs));
          assertClose(r.x0Pred!, ref.x0p, 2e-6 * xmax, 1e-5, `x0_hat ${what}`);
          assert.ok(Math.abs(r.normSqBefore - ref.normSq) <= 1e-5 * ref.normSq, `norm ${what}`);
          assert.equal(r.normSqAfter, r.normSqBefore);
        }
});

test('guidance conventions differ exactly by (eps_c - eps_u) and scale 0 gives the conditional / unconditional prediction', () => {
  const x0 = randn(N, 1);
  const eps = randn(N, 2);
  const out = randn(2 * N, 3);
  const base = { x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 400, epsPred: true, weighting: 'uniform' as const };
  const u0 = sds.sdsGrad({ ...base, guidanceAnchor: 'uncond', guidanceScale: 0 }).epsPred!;
  const c0 = sds.sdsGrad({ ...base, guidanceAnchor: 'cond', guidanceScale: 0 }).epsPred!;
  assert.deepEqual(u0, out.subarray(0, N));
  assert.deepEqual(c0, out.subarray(N));
  const u1 = sds.sdsGrad({ ...base, guidanceAnchor: 'uncond', guidanceScale: 1 }).epsPred!;
  assertClose(u1, out.subarray(N), 1e-6, 0, 'eps_u + 1 (eps_c - eps_u) = eps_c');
  // no CFG: copies = 1 uses the conditional output as eps_hat
  const single = sds.sdsGrad({ ...base, modelOut: out.subarray(N).slice(), copies: 1, guidanceScale: 100 }).epsPred!;
  assert.deepEqual(single, out.subarray(N));
});

test('clamping and normalisation of the gradient', () => {
  const x0 = randn(N, 21);
  const eps = randn(N, 22);
  const out = randn(2 * N, 23);
  const common = { x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 600, guidanceScale: 10 };
  const c = sds.sdsGrad({ ...common, clamp: 0.5 });
  const ref = refGrad(x0, eps, out, SD.alphaBar(600), { anchor: 'uncond', scale: 10, weighting: '1-alpha', pred: 'epsilon', clamp: 0.5 });
  assertClose(c.grad, ref.grad, 1e-5, 1e-5, 'clamped');
  assert.ok(Math.max(...c.grad.map(Math.abs)) <= 0.5);
  assert.ok(c.grad.some((g) => Math.abs(g) === 0.5), 'some values were clamped');
  const nrm = sds.sdsGrad({ ...common, normalize: true });
  const refN = refGrad(x0, eps, out, SD.alphaBar(600), { anchor: 'uncond', scale: 10, weighting: '1-alpha', pred: 'epsilon', normalize: true });
  assertClose(nrm.grad, refN.grad, 1e-7, 1e-5, 'normalised');
  const sq = nrm.grad.reduce((s, g) => s + g * g, 0);
  assert.ok(Math.abs(sq - 1) < 1e-5, `unit norm (${sq})`);
  assert.ok(Math.abs(nrm.normSqAfter - 1) < 1e-6);
  assert.ok(Math.abs(nrm.normSqBefore - refN.normSq) < 1e-5 * refN.normSq);
  const scaled = sds.sdsGrad({ ...common, normalize: true, normScale: 3, clamp: 0.5 });
  const refC = refGrad(x0, eps, out, SD.alphaBar(600), { anchor: 'uncond', scale: 10, weighting: '1-alpha', pred: 'epsilon', clamp: 0.5, normalize: true });
  assertClose(scaled.grad, Array.from(refC.grad, (g) => 3 * g), 1e-6, 1e-5, 'clamp then normalise to 3');
});

test('NaN / Inf in the denoiser output stop the step with E_NUMERICAL (or set the flag)', () => {
  const x0 = randn(N, 1);
  const eps = randn(N, 2);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const out = randn(2 * N, 3);
    out[N + 17] = bad;
    const o = { x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 500 };
    assert.throws(() => sds.sdsGrad({ ...o, context: 'texture phase iteration 7' }), isCode('E_NUMERICAL', /SDS gradient.*texture phase iteration 7/));
    const r = sds.sdsGrad({ ...o, allowNonFinite: true, clamp: 1 });
    assert.equal(r.flags, sds.NumericalFlag.sds);
  }
  const fine = sds.sdsGrad({ x0, eps, modelOut: randn(2 * N, 3), alphasCumprod: SD.alphasCumprod, t: 500 });
  assert.equal(fine.flags, 0);
  assert.throws(() => sds.checkNumericalFlags(sds.NumericalFlag.optimizer, 'geometry'), isCode('E_NUMERICAL', /optimiser gradient.*geometry/));
});

test('fp16 model output is read as the half-precision values', () => {
  const x0 = randn(N, 1);
  const eps = randn(N, 2);
  const outH = sds.floatToHalf(randn(2 * N, 3));
  const outF = sds.halfToFloat(outH);
  const o = { x0, eps, alphasCumprod: SD.alphasCumprod, t: 300 };
  assert.deepEqual(sds.sdsGrad({ ...o, modelOutHalf: outH }).grad, sds.sdsGrad({ ...o, modelOut: outF }).grad);
});

test('bad SDS arguments are E_INVALID_ARGUMENT naming the field', () => {
  const x0 = randn(N, 1);
  const eps = randn(N, 2);
  const out = randn(2 * N, 3);
  const o = { x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 500 };
  assert.throws(() => sds.sdsGrad({ ...o, t: 1000 }), isCode('E_INVALID_ARGUMENT', /\bt\b/));
  assert.throws(() => sds.sdsGrad({ ...o, modelOut: out.subarray(0, N) }), isCode('E_INVALID_ARGUMENT', /modelOut/));
  assert.throws(() => sds.sdsGrad({ ...o, eps: eps.subarray(1) }), isCode('E_INVALID_ARGUMENT', /eps/));
  assert.throws(() => sds.sdsGrad({ ...o, guidanceAnchor: 'both' as never }), isCode('E_INVALID_ARGUMENT', /guidanceAnchor/));
  assert.throws(() => sds.sdsGrad({ ...o, weighting: 'snr' as never }), isCode('E_INVALID_ARGUMENT', /weighting/));
  assert.throws(() => sds.sdsGrad({ ...o, prediction: 'sample' as never }), isCode('E_INVALID_ARGUMENT', /prediction_type/));
  assert.throws(() => sds.sdsGrad({ ...o, clamp: -1 }), isCode('E_INVALID_ARGUMENT', /clamp/));
  assert.throws(() => sds.sdsGrad({ ...o, modelOutHalf: new Uint16Array(2 * N) }), isCode('E_INVALID_ARGUMENT', /modelOut/));
  assert.throws(() => sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t: -1, seed: 0 }), isCode('E_INVALID_ARGUMENT', /\bt\b/));
});

// ---------------------------------------------------------------- gradient paths

test('path (a) latent: the gradient of the surrogate 0.5||x0 - sg(x0 - grad)||^2 w.r.t. x0 is grad (finite differences)', () => {
  const n = 64;
  const x0 = randn(n, 31);
  const eps = randn(n, 32);
  const out = randn(2 * n, 33);
  const g = sds.sdsGrad({ x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 500 }).grad;
  const target = Float64Array.from(x0, (x, i) => x - g[i]); // stop-gradient target
  const f = (x: Float64Array) => 0.5 * x.reduce((s, xi, i) => s + (xi - target[i]) ** 2, 0);
  const fd = finiteDiff(f, x0, 1e-3);
  assert.ok(relErr(fd, g) < 1e-6, `relErr ${relErr(fd, g)}`);
});

test('path (b) image-space target: x0_hat, loss w||render - sg(decoded)||^2 and its gradient 2w(render - decoded)', () => {
  const x0 = randn(N, 41);
  const r = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t: 10, seed: 1 });
  // with a perfect denoiser (eps_hat = eps), x0_hat recovers x0
  const perfect = new Float32Array(2 * N);
  perfect.set(r.eps, 0);
  perfect.set(r.eps, N);
  const g = sds.sdsGrad({ x0, eps: r.eps, modelOut: perfect, alphasCumprod: SD.alphasCumprod, t: 10, x0Pred: true });
  assertClose(g.x0Pred!, x0, 1e-5, 1e-5, 'x0_hat of a perfect prediction');
  assert.ok(g.grad.every((v) => v === 0));

  const n = 3 * 32 * 32;
  const render = randn(n, 42);
  const decoded = randn(n, 43);
  const w = 0.37;
  const L = sds.imageSpaceLoss({ render, target: decoded, weight: w });
  let ref = 0;
  for (let i = 0; i < n; i++) ref += (render[i] - decoded[i]) ** 2;
  ref *= w;
  assert.ok(Math.abs(L.loss - ref) < 1e-6 * ref, `loss ${L.loss} vs ${ref}`);
  assertClose(L.grad, Array.from(render, (x, i) => 2 * w * (x - decoded[i])), 1e-6, 1e-6, 'grad');
  const coords = [0, 5, 100, 2000, n - 1];
  const fd = finiteDiff((x) => sds.imageSpaceLoss({ render: Float32Array.from(x), target: decoded, weight: w }).loss, render, 1 / 64, coords);
  for (const i of coords) assert.ok(Math.abs(fd[i] - L.grad[i]) < 1e-4 * Math.max(1, Math.abs(L.grad[i])), `fd at ${i}: ${fd[i]} vs ${L.grad[i]}`);
  const nanR = render.slice();
  nanR[3] = NaN;
  assert.throws(() => sds.imageSpaceLoss({ render: nanR, target: decoded, weight: w }), isCode('E_NUMERICAL', /image-space/));
});

test("path (c) linear latent<->RGB: ComfyUI's SD1.x factors, least-squares inverse, encode/decode and the adjoint", () => {
  const m = sds.latentRgbMap();
  assert.deepEqual(Array.from(m.matrix), Array.from(Float32Array.of(0.3512, 0.2297, 0.3227, 0.325, 0.4974, 0.235, -0.2829, 0.1762, 0.2721, -0.212, -0.2616, -0.7177)));
  // M^T P = I3 (P is a right inverse of the decode map) and P = M (M^T M)^-1 has columns in range(M)
  for (let a = 0; a < 3; a++)
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += m.matrix[k * 3 + a] * m.pinv[k * 3 + c];
      assert.ok(Math.abs(s - (a === c ? 1 : 0)) < 1e-5, `M^T P [${a}][${c}] = ${s}`);
    }
  const m01 = sds.latentRgbMap({ range01: true });
  assert.deepEqual(Array.from(m01.bias), [0.5, 0.5, 0.5]);
  assertClose(m01.matrix, Array.from(m.matrix, (v) => v / 2), 1e-8, 0, 'range01 halves M');

  const geo = { batch: 2, latentHeight: 3, latentWidth: 5, factor: 4 };
  const H = 12;
  const W = 20;
  const z = randn(2 * 4 * 15, 51);
  const rgb = sds.latentToRgbLinear(z, geo);
  assert.equal(rgb.length, 2 * 3 * H * W);
  for (const [b, c, y, x] of [[0, 0, 0, 0], [1, 2, 11, 19], [0, 1, 5, 9], [1, 0, 7, 3]]) {
    let ref = 0;
    for (let k = 0; k < 4; k++) ref += z[((b * 4 + k) * 3 + Math.floor(y / 4)) * 5 + Math.floor(x / 4)] * m.matrix[k * 3 + c];
    assert.ok(Math.abs(rgb[((b * 3 + c) * H + y) * W + x] - ref) < 1e-6, `decode at ${[b, c, y, x]}`);
  }
  // decode of encode of an image that is constant on each patch and in the decoder's range is the identity
  const zBack = sds.rgbToLatentLinear(rgb, geo);
  const rgb2 = sds.latentToRgbLinear(zBack, geo);
  assertClose(rgb2, rgb, 1e-5, 1e-5, 'decode(encode(decode(z)))');
  // channels-last layout agrees with NCHW
  const rgbL = sds.latentToRgbLinear(z, { ...geo, channelsLast: true });
  for (let b = 0; b < 2; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < H; y += 5)
        for (let x = 0; x < W; x += 3) assert.equal(rgbL[((b * H + y) * W + x) * 3 + c], rgb[((b * 3 + c) * H + y) * W + x]);
  // encode is affine; its backward is the adjoint of the linear part: <E(x) - E(0), g> = <x, E^T g>, and it is the
  // finite-difference gradient of sum(g * E(x))
  const x = randn(2 * 3 * H * W, 52);
  const g = randn(2 * 4 * 15, 53);
  const Ex = sds.rgbToLatentLinear(x, geo);
  const E0 = sds.rgbToLatentLinear(new Float32Array(x.length), geo);
  const Etg = sds.rgbToLatentLinearBackward(g, geo);
  let lhs = 0;
  let rhs = 0;
  for (let i = 0; i < g.length; i++) lhs += (Ex[i] - E0[i]) * g[i];
  for (let i = 0; i < x.length; i++) rhs += x[i] * Etg[i];
  assert.ok(Math.abs(lhs - rhs) < 1e-4 * Math.max(1, Math.abs(lhs)), `adjoint ${lhs} vs ${rhs}`);
  const coords = [0, 17, 400, x.length - 1];
  const fd = finiteDiff((xx) => {
    const e = sds.rgbToLatentLinear(Float32Array.from(xx), geo);
    return e.reduce((s, v, i) => s + v * g[i], 0);
  }, x, 1 / 32, coords);
  for (const i of coords) assert.ok(Math.abs(fd[i] - Etg[i]) < 1e-4, `fd at ${i}: ${fd[i]} vs ${Etg[i]}`);
  assert.throws(() => sds.latentRgbMap({ matrix: new Float32Array(12) }), isCode('E_INVALID_ARGUMENT', /rank 3/));
  assert.throws(() => sds.rgbToLatentLinear(x.subarray(1), geo), isCode('E_INVALID_ARGUMENT', /input/));
});

// ---------------------------------------------------------------- optimisers

interface RefState { p: Float64Array; m: Float64Array; v: Float64Array; d: Float64Array; prev: Float64Array }

function refOptimStep(kind: sds.OptimizerKind, s: RefState, g: ArrayLike<number>, k: number, lr: number, c: { b1: number; b2: number; b3: number; eps: number; wd: number; noProx?: boolean }) {
  const bc1 = 1 - c.b1 ** k;
  const bc2 = 1 - c.b2 ** k;
  const bc3 = 1 - c.b3 ** k;
  for (let i = 0; i < s.p.length; i++) {
    let gi = g[i];
    if (kind === 'adan') {
      // Xie et al. 2022 / sail-sg/Adan: d = g - g_prev (0 on the first step)
      const diff = k === 1 ? 0 : gi - s.prev[i];
      s.m[i] = c.b1 * s.m[i] + (1 - c.b1) * gi;
      s.d[i] = c.b2 * s.d[i] + (1 - c.b2) * diff;
      const u = gi + c.b2 * diff;
      s.v[i] = c.b3 * s.v[i] + (1 - c.b3) * u * u;
      const denom = Math.sqrt(s.v[i]) / Math.sqrt(bc3) + c.eps;
      if (c.noProx) s.p[i] *= 1 - lr * c.wd;
      s.p[i] -= ((lr / bc1) * s.m[i]) / denom + ((lr * c.b2) / bc2) * s.d[i] / denom;
      if (!c.noProx) s.p[i] /= 1 + lr * c.wd;
      s.prev[i] = gi;
      continue;
    }
    if (kind === 'adam') gi += c.wd * s.p[i];
    else s.p[i] *= 1 - lr * c.wd;
    s.m[i] = c.b1 * s.m[i] + (1 - c.b1) * gi;
    s.v[i] = c.b2 * s.v[i] + (1 - c.b2) * gi * gi;
    s.p[i] -= ((lr / bc1) * s.m[i]) / (Math.sqrt(s.v[i]) / Math.sqrt(bc2) + c.eps);
  }
}

for (const kind of ['adam', 'adamw', 'adan'] as const)
  for (const wd of [0, 0.05])
    test(`${kind} (weight decay ${wd}) matches a float64 reference over 8 steps`, () => {
      const n = 1000;
      const p0 = randn(n, 61);
      const cfg: sds.OptimizerConfig = kind === 'adan' ? { optimizer: kind, weightDecay: wd } : { optimizer: kind, weightDecay: wd, beta1: 0.9, beta2: 0.99 };
      const c = kind === 'adan' ? { b1: 0.98, b2: 0.92, b3: 0.99, eps: 1e-8, wd } : { b1: 0.9, b2: 0.99, b3: 0, eps: 1e-8, wd };
      const lrs: sds.LrSchedule = { schedule: 'cosine', lr: 0.05, totalSteps: 8, minLr: 0.001 };
      const opt = new sds.Optimizer(cfg, [p0.slice()], lrs);
      const ref: RefState = { p: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n), d: new Float64Array(n), prev: new Float64Array(n) };
      for (let k = 1; k <= 8; k++) {
        const g = randn(n, 100 + k);
        const { lr } = opt.step([g]);
        refOptimStep(kind, ref, g, k, lr, c);
        assertClose(opt.state[0].param, ref.p, 2e-6, 2e-5, `${kind} param after step ${k}`);
        assertClose(opt.state[0].m, ref.m, 1e-6, 1e-5, `${kind} m after step ${k}`);
        assertClose(opt.state[0].v, ref.v, 1e-7, 1e-5, `${kind} v after step ${k}`);
        if (kind === 'adan') assertClose(opt.state[0].d!, ref.d, 1e-6, 1e-5, `adan d after step ${k}`);
      }
      assert.equal(opt.stepCount, 8);
    });

test('adan no_prox and Adam step 1 magnitude (|dp| = lr for a sign-consistent gradient)', () => {
  const n = 200;
  const p0 = randn(n, 71);
  const ref: RefState = { p: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n), d: new Float64Array(n), prev: new Float64Array(n) };
  const opt = new sds.Optimizer({ optimizer: 'adan', weightDecay: 0.1, noProx: true }, [p0.slice()], { schedule: 'constant', lr: 0.01 });
  for (let k = 1; k <= 4; k++) {
    const g = randn(n, 200 + k);
    opt.step([g]);
    refOptimStep('adan', ref, g, k, 0.01, { b1: 0.98, b2: 0.92, b3: 0.99, eps: 1e-8, wd: 0.1, noProx: true });
  }
  assertClose(opt.state[0].param, ref.p, 2e-6, 2e-5, 'adan no_prox');
  const a = new sds.Optimizer({ optimizer: 'adam' }, [new Float32Array([1, 2, 3])], { schedule: 'constant', lr: 0.1 });
  a.step([new Float32Array([0.5, -7, 1e-3])]);
  assertClose(a.state[0].param, [0.9, 2.1, 2.9], 3e-6, 0, 'first Adam step moves each parameter by lr');
});

test('global gradient-norm clipping over a parameter group', () => {
  const a = randn(300, 81, 3);
  const b = randn(500, 82, 3);
  let sq = 0;
  for (const v of a) sq += v * v;
  for (const v of b) sq += v * v;
  const norm = Math.sqrt(sq);
  const maxNorm = 1.5;
  const pa = randn(300, 83);
  const pb = randn(500, 84);
  const opt = new sds.Optimizer({ optimizer: 'adamw', maxGradNorm: maxNorm, weightDecay: 0.01 }, [pa.slice(), pb.slice()], { schedule: 'constant', lr: 0.01 });
  const r = opt.step([a, b]);
  assert.ok(Math.abs(r.gradNorm! - norm) < 1e-6 * norm, `gradNorm ${r.gradNorm} vs ${norm}`);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  for (const [p0, g, st] of [[pa, a, opt.state[0]], [pb, b, opt.state[1]]] as const) {
    const ref: RefState = { p: Float64Array.from(p0), m: new Float64Array(p0.length), v: new Float64Array(p0.length), d: new Float64Array(0), prev: new Float64Array(0) };
    refOptimStep('adamw', ref, Array.from(g, (x) => x * coef), 1, 0.01, { b1: 0.9, b2: 0.999, b3: 0, eps: 1e-8, wd: 0.01 });
    assertClose(st.m, ref.m, 1e-7, 1e-5, 'm holds the clipped gradient');
    assertClose(st.param, ref.p, 1e-6, 1e-5, 'param');
  }
  // below the threshold nothing changes
  const big = new sds.Optimizer({ optimizer: 'adam', maxGradNorm: 1e6 }, [pa.slice()], { schedule: 'constant', lr: 0.01 });
  const plain = new sds.Optimizer({ optimizer: 'adam' }, [pa.slice()], { schedule: 'constant', lr: 0.01 });
  big.step([a]);
  plain.step([a]);
  assert.deepEqual(big.state[0].param, plain.state[0].param);
  const bad = a.slice();
  bad[9] = NaN;
  assert.throws(() => plain.step([bad]), isCode('E_NUMERICAL', /optimiser gradient.*optimizer step 2/));
});

test('learning-rate schedules: constant, step decay by gamma every N steps, cosine', () => {
  assert.deepEqual(Array.from(sds.lrSchedule({ schedule: 'constant', lr: 0.3 }, 0, 3)), [0.3, 0.3, 0.3]);
  const st = sds.lrSchedule({ schedule: 'step', lr: 1, gamma: 0.5, stepSize: 3 }, 0, 10);
  assert.deepEqual(Array.from(st), [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]);
  const T = 10;
  const cos = sds.lrSchedule({ schedule: 'cosine', lr: 0.1, minLr: 0.01, totalSteps: T }, 0, 13);
  for (let s = 0; s < 13; s++) assert.ok(Math.abs(cos[s] - (0.01 + 0.09 * 0.5 * (1 + Math.cos((Math.PI * Math.min(s, T)) / T)))) < 1e-15);
  assert.equal(cos[0], 0.1);
  assert.ok(Math.abs(cos[T] - 0.01) < 1e-15);
  assert.throws(() => sds.lrAt({ schedule: 'step', lr: 1, stepSize: 0 }, 0), isCode('E_INVALID_ARGUMENT', /stepSize/));
  assert.throws(() => sds.lrAt({ schedule: 'poly' as never, lr: 1 }, 0), isCode('E_INVALID_ARGUMENT', /schedule/));
  assert.throws(() => sds.optimizerStep({ optimizer: 'sgd' as never }, [], { step: 1, lr: 1 }), isCode('E_INVALID_ARGUMENT', /optimizer/));
  assert.throws(() => sds.optimizerStep({ optimizer: 'adan' }, [{ param: new Float32Array(2), grad: new Float32Array(2), m: new Float32Array(2), v: new Float32Array(2) }], { step: 1, lr: 1 }), isCode('E_INVALID_ARGUMENT', /tensors\[0\]\.d/));
  assert.throws(() => sds.optimizerStep({ optimizer: 'adam', beta1: 1 }, [], { step: 1, lr: 1 }), isCode('E_INVALID_ARGUMENT', /beta1/));
});

// ---------------------------------------------------------------- reproducibility, launches, fp16

function iteration(seed: number, it: number, x0: Float32Array, out: Float32Array) {
  const t = sds.sampleTimestep({ mode: 'linear', totalIterations: 100, jitter: 0.02 }, seed, it);
  const nz = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t, seed, iteration: it });
  return sds.sdsGrad({ x0, eps: nz.eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t, normalize: true }).grad;
}

test('the same seed reproduces an iteration bit for bit, at any point of a run (resume)', () => {
  const x0 = randn(N, 91);
  const out = randn(2 * N, 92);
  const run = [0, 1, 2, 3].map((it) => iteration(7, it, x0, out));
  assert.deepEqual(iteration(7, 3, x0, out), run[3], 'iteration 3 alone equals iteration 3 of the run');
  assert.notDeepEqual(iteration(8, 3, x0, out), run[3]);
});

test('the launcher counts kernels: noise + grad + optimiser step = 3 per iteration (clipping adds 1)', () => {
  const x0 = randn(N, 1);
  const out = randn(2 * N, 2);
  sds.resetLaunchCount();
  const nz = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t: 100, seed: 1 });
  const g = sds.sdsGrad({ x0, eps: nz.eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 100, normalize: true, clamp: 1 });
  sds.optimizerStep({ optimizer: 'adam' }, [{ param: x0.slice(), grad: g.grad, m: new Float32Array(N), v: new Float32Array(N) }], { step: 1, lr: 0.01 });
  assert.equal(sds.launchCount(), 3);
  sds.optimizerStep({ optimizer: 'adam', maxGradNorm: 1 }, [{ param: x0.slice(), grad: g.grad, m: new Float32Array(N), v: new Float32Array(N) }], { step: 1, lr: 0.01 });
  assert.equal(sds.launchCount(), 5);
});

test('fp16 conversion: round to nearest even, subnormals, overflow, NaN; exact round trip of every half', () => {
  const f = Float32Array.of(1, -2, 65504, 65519.99, 65520, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 1.5 * 2 ** -24, 2.5 * 2 ** -24, 2 ** -14, 0.1, -0, NaN, Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11);
  assert.deepEqual(Array.from(sds.floatToHalf(f)), [0x3c00, 0xc000, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x0002, 0x0002, 0x0400, 0x2e66, 0x8000, 0x7e00, 0x7c00, 0x3c00, 0x3c02]);
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = sds.floatToHalf(sds.halfToFloat(all));
  for (let i = 0; i < 65536; i++) {
    const isNaN16 = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
    if (!isNaN16) assert.equal(back[i], i, `half 0x${i.toString(16)}`);
  }
  const v = sds.halfToFloat(Uint16Array.of(0x3c00, 0x0001, 0x7bff, 0xfc00));
  assert.deepEqual(Array.from(v), [1, 2 ** -24, 65504, -Infinity]);
});
