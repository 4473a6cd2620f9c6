/**
 * SDS on CUDA against the CPU twins: the noise and every elementwise output bit-identical (Philox and the
 * exactly rounded helpers), reductions (norms, losses) to a few ulps, optimisers over several steps, the
 * non-finite flag, the launch count, and a finite-difference check of the linear encoder's adjoint on CUDA.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as sds from '../../lib/sds';
import * as rng from '../../lib/rng';
import { cudaAvailable } from '../../lib/device';
import { FaceG2EError } from '../../lib/errors';
import { assertClose, finiteDiff } from '../helpers';

const gpu = cudaAvailable();
const SD = new sds.NoiseScheduler(sds.SD_SCHEDULER);
const randn = (n: number, seed: number, std = 1) => rng.normal(n, { seed, stream: 0, std });
const N = 4 * 64 * 64;

function bitsEqual(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: index ${i}: ${a[i]} (cuda) vs ${b[i]} (cpu)`);
}

test('noise and the CFG batch: CUDA is bit-identical to the CPU twin (float32 and fp16), at any iteration', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const x0 = randn(N, 1);
  for (const iteration of [0, 1, 12345])
    for (const tt of [20, 500, 980]) {
      const o = { x0, alphasCumprod: SD.alphasCumprod, t: tt, seed: 99, iteration };
      const c = sds.sdsNoise({ ...o, device: 'cpu' });
      const g = sds.sdsNoise({ ...o, device: 'cuda' });
      bitsEqual(g.eps, c.eps, `eps it=${iteration}`);
      bitsEqual(g.xt!, c.xt!, `xt it=${iteration} t=${tt}`);
      const ch = sds.sdsNoise({ ...o, half: true, device: 'cpu' });
      const gh = sds.sdsNoise({ ...o, half: true, device: 'cuda' });
      assert.deepEqual(gh.xtHalf, ch.xtHalf);
    }
  const big = randn(1 << 20, 2);
  const c = sds.sdsNoise({ x0: big, alphasCumprod: SD.alphasCumprod, t: 300, seed: 5, iteration: 7, copies: 1, device: 'cpu' });
  const g = sds.sdsNoise({ x0: big, alphasCumprod: SD.alphasCumprod, t: 300, seed: 5, iteration: 7, copies: 1, device: 'cuda' });
  bitsEqual(g.eps, c.eps, 'eps (1M elements)');
  bitsEqual(g.eps, rng.normal(1 << 20, { seed: 5, stream: rng.RngStream.sdsNoise, offset: 7 * (1 << 20), device: 'cuda' }), 'eps is the Philox draw');
});

test('sdsGrad: every guidance / weighting / prediction / clamp combination matches the CPU twin bit for bit', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const x0 = randn(N, 11);
  const eps = randn(N, 12);
  const out = randn(2 * N, 13);
  for (const tt of [20, 500, 980])
    for (const anchor of ['uncond', 'cond'] as const)
      for (const weighting of ['1-alpha', 'uniform', 'fantasia3d'] as const)
        for (const prediction of ['epsilon', 'v_prediction'] as const)
          for (const clamp of [0, 0.05]) {
            const o = {
              x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: tt, guidanceAnchor: anchor, guidanceScale: 50, weighting, prediction, clamp,
              x0Pred: true, epsPred: true,
            };
            const c = sds.sdsGrad({ ...o, device: 'cpu' });
            const g = sds.sdsGrad({ ...o, device: 'cuda' });
            const what = `t=${tt} ${anchor} ${weighting} ${prediction} clamp=${clamp}`;
            bitsEqual(g.grad, c.grad, `grad ${what}`);
            bitsEqual(g.x0Pred!, c.x0Pred!, `x0_hat ${what}`);
            bitsEqual(g.epsPred!, c.epsPred!, `eps_hat ${what}`);
            assert.ok(Math.abs(g.normSqBefore - c.normSqBefore) <= 1e-6 * c.normSqBefore, `norm ${what}: ${g.normSqBefore} vs ${c.normSqBefore}`);
          }
  const outH = sds.floatToHalf(out);
  const o = { x0, eps, modelOutHalf: outH, alphasCumprod: SD.alphasCumprod, t: 640 };
  bitsEqual(sds.sdsGrad({ ...o, device: 'cuda' }).grad, sds.sdsGrad({ ...o, device: 'cpu' }).grad, 'fp16 model output');
  const one = { x0, eps, modelOut: out.subarray(N).slice(), copies: 1 as const, alphasCumprod: SD.alphasCumprod, t: 640 };
  bitsEqual(sds.sdsGrad({ ...one, device: 'cuda' }).grad, sds.sdsGrad({ ...one, device: 'cpu' }).grad, 'copies = 1');
});

test('sdsGrad normalisation (in-kernel reduction, many blocks): CUDA vs CPU to a few ulps, and deterministic', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  for (const n of [N, 1_000_003]) {
    const x0 = randn(n, 21);
    const eps = randn(n, 22);
    const out = randn(2 * n, 23);
    const o = { x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 420, normalize: true, normScale: 2, clamp: 3 };
    const c = sds.sdsGrad({ ...o, device: 'cpu' });
    const g = sds.sdsGrad({ ...o, device: 'cuda' });
    assertClose(g.grad, c.grad, 1e-12, 1e-6, `normalised grad n=${n}`);
    assert.ok(Math.abs(g.normSqBefore - c.normSqBefore) <= 1e-6 * c.normSqBefore);
    assert.ok(Math.abs(g.normSqAfter - 4) < 1e-5, `after ${g.normSqAfter}`);
    const g2 = sds.sdsGrad({ ...o, device: 'cuda' });
    bitsEqual(g2.grad, g.grad, 'the CUDA reduction is deterministic');
    assert.equal(g2.normSqBefore, g.normSqBefore);
  }
});

test('non-finite detection on CUDA sets the device flag and stops with E_NUMERICAL', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const x0 = randn(N, 1);
  const eps = randn(N, 2);
  const out = randn(2 * N, 3);
  out[2 * N - 1] = NaN;
  const o = { x0, eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 500, device: 'cuda' as const };
  assert.throws(() => sds.sdsGrad(o), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_NUMERICAL');
  assert.equal(sds.sdsGrad({ ...o, allowNonFinite: true, normalize: true }).flags, sds.NumericalFlag.sds);
  const render = randn(1000, 4);
  render[999] = Infinity;
  assert.equal(sds.imageSpaceLoss({ render, target: randn(1000, 5), weight: 1, device: 'cuda', allowNonFinite: true }).flags, sds.NumericalFlag.loss);
  const g = randn(5000, 6);
  g[4321] = -Infinity;
  const r = sds.optimizerStep({ optimizer: 'adam' }, [{ param: randn(5000, 7), grad: g, m: new Float32Array(5000), v: new Float32Array(5000) }], { step: 1, lr: 0.1, device: 'cuda' });
  assert.equal(r.flags, sds.NumericalFlag.optimizer);
});

test('image-space loss (path b): gradient bit-identical, loss to a few ulps', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const n = 512 * 512 * 3;
  const render = randn(n, 31);
  const target = randn(n, 32);
  const c = sds.imageSpaceLoss({ render, target, weight: 0.3, device: 'cpu' });
  const g = sds.imageSpaceLoss({ render, target, weight: 0.3, device: 'cuda' });
  bitsEqual(g.grad, c.grad, 'grad');
  assert.ok(Math.abs(g.loss - c.loss) <= 1e-6 * c.loss, `loss ${g.loss} vs ${c.loss}`);
});

test('linear latent<->RGB (path c): all ops and layouts bit-identical; the encoder adjoint passes finite differences on CUDA', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const geo = { batch: 2, latentHeight: 64, latentWidth: 64, factor: 8 };
  const z = randn(2 * 4 * 64 * 64, 41);
  const rgb = randn(2 * 3 * 512 * 512, 42);
  for (const channelsLast of [false, true])
    for (const range01 of [false, true]) {
      const o = { ...geo, channelsLast, range01 };
      bitsEqual(sds.latentToRgbLinear(z, { ...o, device: 'cuda' }), sds.latentToRgbLinear(z, { ...o, device: 'cpu' }), `decode ${channelsLast} ${range01}`);
      bitsEqual(sds.rgbToLatentLinear(rgb, { ...o, device: 'cuda' }), sds.rgbToLatentLinear(rgb, { ...o, device: 'cpu' }), `encode ${channelsLast} ${range01}`);
      bitsEqual(sds.rgbToLatentLinearBackward(z, { ...o, device: 'cuda' }), sds.rgbToLatentLinearBackward(z, { ...o, device: 'cpu' }), `encodeBackward ${channelsLast}`);
    }
  const small = { batch: 1, latentHeight: 2, latentWidth: 3, factor: 4, device: 'cuda' as const };
  const x = randn(3 * 8 * 12, 43);
  const gz = randn(4 * 6, 44);
  const back = sds.rgbToLatentLinearBackward(gz, small);
  const coords = [0, 7, 100, 287];
  const fd = finiteDiff((xx) => sds.rgbToLatentLinear(Float32Array.from(xx), small).reduce((s, v, i) => s + v * gz[i], 0), x, 1 / 32, coords);
  for (const i of coords) assert.ok(Math.abs(fd[i] - back[i]) < 1e-4, `fd at ${i}: ${fd[i]} vs ${back[i]}`);
});

function runOptimizer(device: 'cpu' | 'cuda', cfg: sds.OptimizerConfig, sizes: number[], steps: number) {
  const params = sizes.map((n, i) => randn(n, 50 + i));
  const opt = new sds.Optimizer(cfg, params, { schedule: 'step', lr: 0.02, gamma: 0.5, stepSize: 2 }, device);
  const norms: number[] = [];
  for (let k = 0; k < steps; k++) {
    const r = opt.step(sizes.map((n, i) => randn(n, 1000 * k + i, 2)));
    if (r.gradNorm !== undefined) norms.push(r.gradNorm);
  }
  return { opt, norms };
}

test('Adam / AdamW / Adan on CUDA equal the CPU twin bit for bit over several steps (multi-tensor groups too)', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const sizes = [512 * 512 * 3, 1000, 7, 1];
  for (const cfg of [
    { optimizer: 'adam', weightDecay: 0.01 },
    { optimizer: 'adamw', weightDecay: 0.05 },
    { optimizer: 'adan', weightDecay: 0.02 },
    { optimizer: 'adan', weightDecay: 0.02, noProx: true },
  ] as sds.OptimizerConfig[]) {
    const c = runOptimizer('cpu', cfg, sizes, 5).opt;
    const g = runOptimizer('cuda', cfg, sizes, 5).opt;
    for (let i = 0; i < sizes.length; i++) {
      bitsEqual(g.state[i].param, c.state[i].param, `${JSON.stringify(cfg)} param ${i}`);
      bitsEqual(g.state[i].m, c.state[i].m, `${cfg.optimizer} m ${i}`);
      bitsEqual(g.state[i].v, c.state[i].v, `${cfg.optimizer} v ${i}`);
      if (cfg.optimizer === 'adan') {
        bitsEqual(g.state[i].d!, c.state[i].d!, `adan d ${i}`);
        bitsEqual(g.state[i].prev!, c.state[i].prev!, `adan prev ${i}`);
      }
    }
  }
  // a group of 20 tensors takes two launches; the result is the same
  const many = Array.from({ length: 20 }, (_, i) => 100 + i * 37);
  const c = runOptimizer('cpu', { optimizer: 'adam' }, many, 3).opt;
  const g = runOptimizer('cuda', { optimizer: 'adam' }, many, 3).opt;
  for (let i = 0; i < many.length; i++) bitsEqual(g.state[i].param, c.state[i].param, `20-tensor group, tensor ${i}`);
});

test('global gradient-norm clipping on CUDA (reduction launch + update): norm and parameters match the CPU twin', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  for (const sizes of [[512 * 512 * 3, 300], Array.from({ length: 19 }, (_, i) => 5000 + i)]) {
    for (const optimizer of ['adam', 'adan'] as const) {
      const cfg: sds.OptimizerConfig = { optimizer, maxGradNorm: 10 };
      const c = runOptimizer('cpu', cfg, sizes, 4);
      const g = runOptimizer('cuda', cfg, sizes, 4);
      assert.equal(g.norms.length, 4);
      assertClose(g.norms, c.norms, 0, 1e-6, `${optimizer} grad norms`);
      for (let i = 0; i < sizes.length; i++) assertClose(g.opt.state[i].param, c.opt.state[i].param, 1e-6, 1e-5, `${optimizer} clipped param ${i}`);
    }
  }
});

test('CUDA launch count: noise + grad + Adam = 3 kernels per iteration; the benchmark loop agrees', (t) => {
  if (!gpu) return t.skip('no CUDA device');
  const x0 = randn(N, 1);
  const out = randn(2 * N, 2);
  sds.resetLaunchCount();
  const nz = sds.sdsNoise({ x0, alphasCumprod: SD.alphasCumprod, t: 100, seed: 1, device: 'cuda' });
  const g = sds.sdsGrad({ x0, eps: nz.eps, modelOut: out, alphasCumprod: SD.alphasCumprod, t: 100, normalize: true, device: 'cuda' });
  sds.optimizerStep({ optimizer: 'adam' }, [{ param: x0.slice(), grad: g.grad, m: new Float32Array(N), v: new Float32Array(N) }], { step: 1, lr: 0.01, device: 'cuda' });
  assert.equal(sds.launchCount(), 3);
  const b = sds.benchTexturePhase({ iterations: 20, warmup: 2 });
  assert.equal(b.launchesPerIter, 3);
  assert.equal(sds.benchTexturePhase({ iterations: 5, warmup: 1, normalize: true, optimizer: 'adan', half: true, x0Pred: true }).launchesPerIter, 3);
  assert.equal(sds.benchTexturePhase({ iterations: 5, warmup: 1, maxGradNorm: 1 }).launchesPerIter, 4);
});
