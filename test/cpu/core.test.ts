import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadNative, cancelTokenFor, type NativeCore } from '../../lib/native';
import * as rng from '../../lib/rng';
import { cudaStatus, resolveDevice } from '../../lib/device';
import { FaceG2EError, fromNative } from '../../lib/errors';

test('the addon loads without a GPU and reports one cleanly', () => {
  const s = cudaStatus();
  assert.ok(Array.isArray(s.gpus));
  if (s.gpus.length === 0) assert.ok(s.error, 'no GPU must come with a reason');
});

test("device 'cuda' without a GPU is E_NO_CUDA_DEVICE, not a crash", (t) => {
  if (cudaStatus().gpus.some((g) => g.supported)) return t.skip('a GPU is present');
  assert.throws(() => rng.uniform(4, { seed: 1, device: 'cuda' }), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_NO_CUDA_DEVICE');
  assert.throws(() => resolveDevice('cuda'), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_NO_CUDA_DEVICE');
  assert.equal(resolveDevice('auto'), 'cpu');
});

test('Philox4x32-10 matches the Random123 known-answer vectors', () => {
  // kat_vectors: philox4x32 10 <counter x4> <key x2> -> <out x4>; our layout: counter = (block lo, block hi, stream lo, stream hi), key = seed.
  const r0 = rng.raw(4, { seed: 0, stream: 0, offset: 0 });
  assert.deepEqual(Array.from(r0), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  const n = loadNative<NativeCore>();
  const kat = (c: number[], k: number[]) => Array.from(n.philoxBlock(Uint32Array.from(c), Uint32Array.from(k)));
  assert.deepEqual(kat([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  assert.deepEqual(kat([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  assert.deepEqual(kat([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]), [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  // the addressed draws are exactly these blocks: counter = (block lo, block hi, stream lo, stream hi), key = seed
  assert.deepEqual(Array.from(rng.raw(4, { seed: 0x299f31d0a4093822n, stream: 0x0370734413198a2en, offset: 0x243f6a88n * 4n })),
    kat([0x243f6a88, 0, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]));
});

test('draws are addressed by (seed, stream, index): offsets and streams are consistent', () => {
  const a = rng.uniform(1000, { seed: 42, stream: 3 });
  const b = rng.uniform(500, { seed: 42, stream: 3, offset: 500 });
  assert.deepEqual(Array.from(a.subarray(500)), Array.from(b));
  const c = rng.uniform(1000, { seed: 42, stream: 4 });
  assert.notDeepEqual(Array.from(a.subarray(0, 10)), Array.from(c.subarray(0, 10)));
  const n1 = rng.normal(37, { seed: 7, offset: 3 });
  const n2 = rng.normal(40, { seed: 7 });
  assert.deepEqual(Array.from(n1), Array.from(n2.subarray(3)));
  const seq = new rng.RngSequence(42, 3);
  for (let i = 0; i < 300; i++) assert.equal(seq.uniform(), a[i]);
  assert.equal(seq.offset, 300);
});

test('uniform draws lie in (0,1) with the right moments', () => {
  const n = 1 << 20;
  const u = rng.uniform(n, { seed: 123 });
  let s = 0;
  let s2 = 0;
  let min = 1;
  let max = 0;
  for (const v of u) {
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.ok(min > 0 && max < 1);
  assert.ok(Math.abs(s / n - 0.5) < 3e-3);
  assert.ok(Math.abs(s2 / n - s ** 2 / n ** 2 - 1 / 12) < 2e-3);
  const scaled = rng.uniform(1000, { seed: 123, lo: -2, hi: 3 });
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(scaled[i] - (-2 + 5 * u[i])) < 1e-5);
});

test('normal draws: moments, tails and a Kolmogorov-Smirnov test against the normal CDF', () => {
  const n = 1 << 20;
  const z = rng.normal(n, { seed: 2024, stream: 1 });
  let s = 0;
  let s2 = 0;
  let s4 = 0;
  for (const v of z) {
    assert.ok(Number.isFinite(v));
    s += v;
    s2 += v * v;
    s4 += v ** 4;
  }
  const mean = s / n;
  const variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean) < 5e-3, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 5e-3, `variance ${variance}`);
  assert.ok(Math.abs(s4 / n - 3) < 0.03, `kurtosis ${s4 / n}`);
  const sorted = Float64Array.from(z.subarray(0, 100000)).sort();
  const erf = (x: number) => {
    // Abramowitz-Stegun 7.1.26 is too coarse for KS at this n; use a series/continued fraction via Math
    const t = 1 / (1 + 0.5 * Math.abs(x));
    const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? y : -y;
  };
  let d = 0;
  for (let i = 0; i < sorted.length; i++) {
    const cdf = 0.5 * (1 + erf(sorted[i] / Math.SQRT2));
    d = Math.max(d, Math.abs(cdf - (i + 1) / sorted.length), Math.abs(cdf - i / sorted.length));
  }
  assert.ok(d < 1.63 / Math.sqrt(sorted.length), `KS statistic ${d}`); // 1% level
  const scaled = rng.normal(100, { seed: 2024, stream: 1, mean: 5, std: 2 });
  for (let i = 0; i < 100; i++) assert.ok(Math.abs(scaled[i] - (5 + 2 * z[i])) < 1e-5);
});

test('bad RNG arguments are E_INVALID_ARGUMENT naming the field', () => {
  const n = loadNative<NativeCore>();
  assert.throws(() => fromNativeCall(() => n.rngFill({ count: -1 })), /count/);
  assert.throws(() => fromNativeCall(() => n.rngFill({ count: 4, distribution: 'poisson' as never })), /distribution/);
  assert.throws(() => fromNativeCall(() => n.rngFill({ count: 4, device: 'tpu' as never })), /device/);
  try {
    n.rngFill({ count: 1.5 });
    assert.fail('expected a throw');
  } catch (e) {
    assert.equal(fromNative(e).code, 'E_INVALID_ARGUMENT');
  }
});

function fromNativeCall(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

test('long native work runs off the event loop, reports progress in order, and cancels via AbortSignal', async () => {
  const n = loadNative<NativeCore>();
  const seen: number[] = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const done = await n.sleepTask({ steps: 8, stepMs: 15 }, (p) => seen.push(p.step));
  clearInterval(timer);
  assert.equal(done, 8);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(ticks > 3, 'the event loop kept running');

  const ac = new AbortController();
  const { token, dispose } = cancelTokenFor(ac.signal);
  setTimeout(() => ac.abort(), 30);
  await assert.rejects(n.sleepTask({ steps: 1000, stepMs: 5 }, undefined, token), (e: unknown) => fromNative(e).code === 'E_CANCELLED');
  dispose();
});
