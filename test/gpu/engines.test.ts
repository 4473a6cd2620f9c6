// CUDA vs CPU for the target denoiser and the identity/pooling codecs. The twins share FG_HD maths built from
// exactly rounded operations, so the results must be bit-identical.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { targetDenoise, codecEncode, codecDecode } from '../../lib/engines';
import { cudaAvailable } from '../../lib/device';
import * as rng from '../../lib/rng';

const gpu = cudaAvailable();

function assertBitEqual(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: index ${i}: cuda ${a[i]} vs cpu ${b[i]}`);
}

test('target denoiser: CUDA equals CPU bit for bit (both CFG orders, several t and guidance scales)', { skip: !gpu && 'no usable GPU' }, () => {
  const n = 3, c = 4, h = 64, w = 48;
  const count = n * c * h * w;
  const xt = rng.normal(count, { seed: 11 });
  const target = rng.normal(count, { seed: 12 });
  for (const alphaBar of [0.999, 0.5, 0.0047]) {
    for (const cfgOrder of ['uncond-first', 'cond-first'] as const) {
      for (const guidance of [1, 7.5]) {
        const o = { xt, target, n, c, h, w, alphaBar, guidance, cfgOrder };
        const cpu = targetDenoise({ ...o, device: 'cpu' });
        const cuda = targetDenoise({ ...o, device: 'cuda' });
        assertBitEqual(cuda, cpu, `ᾱ=${alphaBar} ${cfgOrder} g=${guidance}`);
        // and the recovery property holds on the GPU output
        for (let i = 0; i < count; i += 97) {
          const x0 = (xt[i] - Math.sqrt(1 - alphaBar) * cuda[i]) / Math.sqrt(alphaBar);
          assert.ok(Math.abs(x0 - target[i]) < 1e-3 * (1 + Math.abs(xt[i]) / Math.sqrt(alphaBar)), `x0 at ${i}`);
        }
      }
    }
  }
});

test('codecs: CUDA equals CPU bit for bit (identity, pooling encode, pooling decode nearest and bilinear)', { skip: !gpu && 'no usable GPU' }, () => {
  const n = 2, H = 512, W = 384;
  const img = rng.uniform(n * 3 * H * W, { seed: 21 });
  const id = { codec: 'identity' as const, n, height: H, width: W };
  assertBitEqual(codecEncode(img, { ...id, device: 'cuda' }), img, 'identity encode');
  assertBitEqual(codecDecode(img, { ...id, device: 'cuda' }), img, 'identity decode');
  for (const scale of [1, 0.18215]) {
    const enc = { codec: 'pooling' as const, n, height: H, width: W, scale };
    const zc = codecEncode(img, { ...enc, device: 'cpu' });
    const zg = codecEncode(img, { ...enc, device: 'cuda' });
    assertBitEqual(zg, zc, `pooling encode scale ${scale}`);
    for (const upsample of ['nearest', 'bilinear'] as const) {
      const dec = { codec: 'pooling' as const, n, height: H / 8, width: W / 8, scale, upsample };
      assertBitEqual(codecDecode(zc, { ...dec, device: 'cuda' }), codecDecode(zc, { ...dec, device: 'cpu' }), `pooling decode ${upsample} scale ${scale}`);
    }
  }
});
