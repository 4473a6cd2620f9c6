/**
 * GPU suite, core: the addon sees the GPU, and the Philox twin gives bit-identical draws on CPU and CUDA.
 * Run with `npm run test:gpu` on a machine with an NVIDIA GPU (see tools/device/README.md).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { requireGpu } from './gpu-helpers';
import { loadNative, type NativeCore } from '../../lib/native';
import * as rng from '../../lib/rng';

requireGpu();

function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

test('doctor-level info: at least one supported GPU with a name and memory', () => {
  const info = loadNative<NativeCore>().cudaInfo();
  assert.ok(info.gpus.length >= 1);
  assert.ok(info.gpus[0].supported, `GPU ${info.gpus[0].name} not supported by this build (${info.builtArchitectures})`);
  assert.ok(info.gpus[0].totalMemory > 1e9);
  assert.ok(info.driverVersion >= info.runtimeVersion || info.driverVersion > 0);
});

const N = 12_000_000; // > 10^7 draws of each kind

test(`Philox raw words: CPU == CUDA over ${N} draws (several seeds, streams, offsets)`, () => {
  for (const [seed, stream, offset] of [[0, 0, 0], [0xdeadbeefcafen, 7, 3], [2n ** 64n - 1n, 2n ** 63n, 2n ** 40n + 1n]] as const) {
    const c = rng.raw(N / 3, { seed, stream, offset, device: 'cpu' });
    const g = rng.raw(N / 3, { seed, stream, offset, device: 'cuda' });
    assert.equal(firstMismatch(c, g), -1, `seed ${seed} stream ${stream} offset ${offset}`);
  }
});

test(`Philox uniform floats: CPU == CUDA bit for bit over ${N} draws`, () => {
  const c = rng.uniform(N, { seed: 1234, stream: 1, device: 'cpu' });
  const g = rng.uniform(N, { seed: 1234, stream: 1, device: 'cuda' });
  assert.equal(firstMismatch(new Uint32Array(c.buffer), new Uint32Array(g.buffer)), -1);
});

test(`Philox normal floats: CPU == CUDA bit for bit over ${N} draws`, () => {
  const c = rng.normal(N, { seed: 99, stream: 5, offset: 17, device: 'cpu' });
  const g = rng.normal(N, { seed: 99, stream: 5, offset: 17, device: 'cuda' });
  const i = firstMismatch(new Uint32Array(c.buffer), new Uint32Array(g.buffer));
  assert.equal(i, -1, i >= 0 ? `first mismatch at ${i}: cpu ${c[i]} cuda ${g[i]}` : '');
  const scaledC = rng.normal(1 << 20, { seed: 5, mean: 0.5, std: 3, device: 'cpu' });
  const scaledG = rng.normal(1 << 20, { seed: 5, mean: 0.5, std: 3, device: 'cuda' });
  assert.equal(firstMismatch(new Uint32Array(scaledC.buffer), new Uint32Array(scaledG.buffer)), -1);
});
