/** The programmatic API: generate() runs in parallel without interfering, reproduces with a seed, and cancels. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { generate, RunCancelledError } from '../../lib/pipeline';
import { loadConfig } from '../../lib/config';
import { ROOT, hasShared, tmpDir } from '../helpers';

const small = (seed: number) =>
  loadConfig({
    configPath: path.join(ROOT, 'examples', 'reconstruct-ict.json'),
    cli: {
      device: 'cpu',
      seed,
      out: tmpDir(),
      set: ['geometry.iterations=12', 'texture.iterations=8', 'texture.latent.iterations=4', 'output.files.turntable=false', 'output.files.previews=false'],
    },
  });

test('two generate() calls in parallel give the same results as the same calls one after the other', { skip: !hasShared && 'needs ../shared' }, async () => {
  const [a, b] = await Promise.all([generate(small(1)), generate(small(2))]);
  const a2 = await generate(small(1));
  const b2 = await generate(small(2));
  assert.deepEqual(Array.from(a.coefficients.identity), Array.from(a2.coefficients.identity));
  assert.deepEqual(Array.from(b.coefficients.identity), Array.from(b2.coefficients.identity));
  assert.notDeepEqual(Array.from(a.coefficients.identity), Array.from(b.coefficients.identity), 'different seeds differ');
  assert.ok(Buffer.from(a.texture!.data.buffer).equals(Buffer.from(a2.texture!.data.buffer)), 'same texture');
  assert.ok(a.metrics.geometry.vertexRmseRatio !== null && a.metrics.geometry.vertexRmseRatio < 1);
});

test('generate() with an aborted signal rejects with E_CANCELLED and a checkpoint', { skip: !hasShared && 'needs ../shared' }, async () => {
  const ac = new AbortController();
  const p = generate(small(3), { signal: ac.signal, onProgress: (e) => e.iteration >= 2 && ac.abort() });
  await assert.rejects(p, (e: unknown) => e instanceof RunCancelledError && e.code === 'E_CANCELLED' && e.checkpoint.iteration > 0);
});

test('generate() rejects a bad config with E_CONFIG naming the fields', async () => {
  await assert.rejects(generate({ prompt: 'x', model: 'nope', geometry: { iterations: -1 } }), (e: unknown) => {
    const err = e as { code: string; details: { path: string }[] };
    return err.code === 'E_CONFIG' && err.details.some((d) => d.path === 'geometry.iterations') && err.details.some((d) => d.path === 'model');
  });
});
