import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  validateManifest, readManifest, profileFor, planKey, targetDenoise, codecEncode, codecDecode, codecInfo, tensorrtInfo, buildEngines,
  inspectEngineFolder, checkCompatibility, MANIFEST_FILE, type EngineManifest,
} from '../../lib/engines';
import { FaceG2EError } from '../../lib/errors';
import { doctorReport } from '../../lib/cli/doctor';
import { main } from '../../lib/cli/main';
import { loadNative } from '../../lib/native';
import * as rng from '../../lib/rng';
import { ROOT, tmpDir, assertClose } from '../helpers';

const res = (prefix: string) => Array.from({ length: 12 }, (_, i) => `${prefix}_${i}`);
const resShape = (i: number): (number | string)[] => {
  const ch = [320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280, 1280, 1280][i];
  const s = i < 3 ? '' : i < 6 ? '/2' : i < 9 ? '/4' : '/8';
  return ['2B', ch, `h${s}`, `w${s}`];
};

export function sd15Manifest(): EngineManifest {
  const lat = (n: string) => ({ name: n, dtype: 'float32' as const, shape: ['2B', 4, 'h', 'w'] as any });
  const common = [lat('sample'), { name: 'timestep', dtype: 'float32' as const, shape: [1] }, { name: 'encoder_hidden_states', dtype: 'float32' as const, shape: ['2B', 77, 768] as any }];
  const cn = (file: string) => ({
    onnx: file,
    inputs: [...common, { name: 'controlnet_cond', dtype: 'float32' as const, shape: ['2B', 3, 'H', 'W'] as any }, { name: 'conditioning_scale', dtype: 'float32' as const, shape: [1] }],
    outputs: [...res('down_block_res_sample').map((n, i) => ({ name: n, dtype: 'float16' as const, shape: resShape(i) as any })), { name: 'mid_block_res_sample', dtype: 'float16' as const, shape: ['2B', 1280, 'h/8', 'w/8'] as any }],
  });
  return {
    format: 'faceg2e-engines',
    version: 1,
    model: { id: 'test/sd15', latentChannels: 4, downsampleFactor: 8, scalingFactor: 0.18215, textEmbedDim: 768, maxTokens: 77, prediction: 'epsilon', numTrainTimesteps: 1000 },
    engines: {
      text_encoder: { onnx: 'text_encoder.onnx', inputs: [{ name: 'input_ids', dtype: 'int32', shape: ['B', 77] }], outputs: [{ name: 'text_embeddings', dtype: 'float32', shape: ['B', 77, 768] }] },
      unet: {
        onnx: 'unet/model.onnx',
        inputs: [...common, ...res('down_block_additional_residual').map((n, i) => ({ name: n, dtype: 'float16' as const, shape: resShape(i) as any })), { name: 'mid_block_additional_residual', dtype: 'float16', shape: ['2B', 1280, 'h/8', 'w/8'] }],
        outputs: [lat('noise_pred')],
      },
      controlnet_depth: cn('controlnet_depth.onnx'),
      controlnet_canny: cn('controlnet_canny.onnx'),
      vae_encoder: { onnx: 'vae_encoder.onnx', inputs: [{ name: 'images', dtype: 'float32', shape: ['B', 3, 'H', 'W'] }], outputs: [{ name: 'latent', dtype: 'float32', shape: ['B', 4, 'h', 'w'] }] },
      vae_decoder: { onnx: 'vae_decoder.onnx', inputs: [{ name: 'latent', dtype: 'float32', shape: ['B', 4, 'h', 'w'] }], outputs: [{ name: 'images', dtype: 'float32', shape: ['B', 3, 'H', 'W'] }] },
    },
  };
}

function writeFolder(m: unknown, files: string[] = []): string {
  const d = tmpDir('fg-engines-');
  fs.writeFileSync(path.join(d, MANIFEST_FILE), JSON.stringify(m));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), 'x');
  }
  return d;
}

function formatError(fn: () => unknown): FaceG2EError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FaceG2EError, `expected a FaceG2EError, got ${e}`);
    return e;
  }
  assert.fail('expected a throw');
}

test('a complete SD 1.5 manifest validates, and readManifest checks the files it names', () => {
  const m = sd15Manifest();
  assert.equal(validateManifest(m).model.latentChannels, 4);
  const files = Object.values(m.engines).map((e) => e.onnx!);
  const d = writeFolder(m, files);
  assert.equal(Object.keys(readManifest(d).manifest.engines).length, 6);
  fs.rmSync(path.join(d, 'unet/model.onnx'));
  const e = formatError(() => readManifest(d));
  assert.equal(e.code, 'E_FORMAT');
  assert.match(e.message, /faceg2e-engines\.json/);
  assert.ok(e.details.some((x) => x.path.endsWith('#engines.unet.onnx') && /file not found/.test(x.message)), JSON.stringify(e.details));
});

test('bad manifests: every bad field is named with the file', () => {
  const cases: [(m: any) => void, RegExp][] = [
    [(m) => (m.format = 'other'), /format: expected "faceg2e-engines"/],
    [(m) => (m.version = 2), /version: expected 1/],
    [(m) => (m.model.scalingFactor = -1), /model\.scalingFactor/],
    [(m) => (m.model.prediction = 'v_prediction'), /model\.prediction/],
    [(m) => (m.engines.foo = m.engines.unet), /engines\.foo: unknown engine name/],
    [(m) => (m.engines.unet.inputs[0].dtype = 'float64'), /engines\.unet\.inputs\[0\]\.dtype/],
    [(m) => (m.engines.unet.inputs[0].shape = ['2B', 4, 'q', 'w']), /engines\.unet\.inputs\[0\]\.shape\[2\]/],
    [(m) => m.engines.unet.outputs.pop(), /engines\.unet\.outputs: missing tensor "noise_pred"/],
    [(m) => (m.engines.text_encoder.inputs[0].dtype = 'int64'), /engines\.text_encoder\.inputs\.input_ids\.dtype: expected int32/],
    [(m) => m.engines.unet.inputs.splice(4, 1), /residual inputs must be all present/],
    [(m) => (m.engines.vae_decoder.onnx = '../escape.onnx'), /engines\.vae_decoder\.onnx: expected a relative path/],
    [(m) => (m.engines.controlnet_depth.inputs = m.engines.controlnet_depth.inputs.filter((t: any) => t.name !== 'controlnet_cond')), /controlnet_depth\.inputs: missing tensor "controlnet_cond"/],
    [(m) => (m.build = { tensorrt: 'ten', gpu: {}, key: 'zz', profiles: {} }), /build\.tensorrt.*build\.gpu.*build\.key.*build\.profiles/],
  ];
  for (const [mutate, re] of cases) {
    const m = sd15Manifest();
    mutate(m);
    const e = formatError(() => validateManifest(m, '/x/faceg2e-engines.json'));
    assert.equal(e.code, 'E_FORMAT');
    assert.match(e.message, /^\/x\/faceg2e-engines\.json: invalid engines manifest/);
    assert.match(e.message, re);
  }
  assert.match(formatError(() => validateManifest([], 'f.json')).message, /f\.json: expected a JSON object/);
  const d = tmpDir();
  fs.writeFileSync(path.join(d, MANIFEST_FILE), '{"format":');
  assert.equal(formatError(() => readManifest(d)).code, 'E_FORMAT');
  assert.equal(formatError(() => readManifest(path.join(d, 'nope'))).code, 'E_IO');
  // a folder that was never built is rejected where plans are required
  assert.match(formatError(() => validateManifest(sd15Manifest(), 'm.json', { requirePlans: true })).message, /engines\.unet\.plan: missing .*engines build/);
});

test('profiles resolve symbolic dims from batch and resolutions; plan keys change with every input', () => {
  const m = sd15Manifest();
  const p = profileFor(m, 'unet', [1, 2, 4], [[512, 512], [768, 512]]);
  const sample = p.find((x) => x.name === 'sample')!;
  assert.deepEqual(sample.min, [2, 4, 64, 64]);
  assert.deepEqual(sample.opt, [4, 4, 64, 64]);
  assert.deepEqual(sample.max, [8, 4, 96, 64]);
  assert.deepEqual(p.find((x) => x.name === 'down_block_additional_residual_11')!.max, [8, 1280, 12, 8]);
  assert.deepEqual(profileFor(m, 'controlnet_depth', [1, 1, 1], [[512, 512]]).find((x) => x.name === 'controlnet_cond')!.opt, [2, 3, 512, 512]);
  assert.throws(() => profileFor(m, 'unet', [1, 1, 1], [[500, 512]]), /multiples of 8/);
  const base = { tensorrt: '10.16.0', gpuName: 'H100', computeCapability: '9.0', engine: 'unet', onnxSize: 10, onnxMtimeMs: 5, profiles: p, optLevel: 3 };
  const k = planKey(base);
  assert.match(k, /^[0-9a-f]{16}$/);
  for (const change of [{ tensorrt: '11.1.0' }, { computeCapability: '8.9' }, { gpuName: 'A100' }, { onnxSize: 11 }, { profiles: profileFor(m, 'unet', [1, 1, 4], [[512, 512]]) }])
    assert.notEqual(planKey({ ...base, ...change }), k);
});

test('compatibility messages say what built the plans and how to rebuild', () => {
  const build = { tensorrt: '10.16.0', gpu: { name: 'NVIDIA H100', computeCapability: '9.0' }, profiles: { batch: [1, 4] as [number, number], resolutions: [[512, 512]] as [number, number][] }, key: '0123456789abcdef', createdAt: '' };
  const trt = { found: true, version: '11.1.0', library: 'libnvinfer.so.11', error: null };
  const c = checkCompatibility(build, trt, { name: 'NVIDIA L40S', computeCapability: '8.9' }, '/e');
  assert.equal(c.ok, false);
  assert.match(c.reason!, /built for TensorRT 10\.16\.0 on sm_90 .*TensorRT 11\.1\.0 on sm_89.*npx faceg2e-native engines build/);
  assert.equal(checkCompatibility(build, { ...trt, version: '10.16.0' }, { name: 'NVIDIA H100', computeCapability: '9.0' }, '/e').ok, true);
});

const T = 1000;
function alphaBars(): number[] {
  const out: number[] = [];
  let a = 1;
  for (let t = 0; t < T; t++) {
    const b = (Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) * (t / (T - 1))) ** 2;
    a *= 1 - b;
    out.push(Math.fround(a));
  }
  return out;
}

test('target denoiser: x̂0 from its ε equals the target for every t, both CFG orders and any guidance', () => {
  const n = 2, c = 4, h = 5, w = 6;
  const count = n * c * h * w;
  const target = rng.normal(count, { seed: 1 });
  const noise = rng.normal(count, { seed: 2 });
  const ab = alphaBars();
  let worst = 0;
  for (let t = 0; t < T; t += 7) {
    const a = ab[t];
    const xt = new Float32Array(count);
    for (let i = 0; i < count; i++) xt[i] = Math.sqrt(a) * target[i] + Math.sqrt(1 - a) * noise[i];
    for (const cfgOrder of ['uncond-first', 'cond-first'] as const) {
      for (const guidance of [1, 7.5, 100]) {
        const eps = targetDenoise({ xt, target, n, c, h, w, alphaBar: a, guidance, cfgOrder });
        for (let i = 0; i < count; i++) {
          const x0 = (xt[i] - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a);
          // float32 rounding of ε amplified by √(1−ᾱ)/√ᾱ: relative 1e-6 of |x_t|/√ᾱ
          const tol = 4e-7 * (Math.abs(xt[i]) + Math.sqrt(a) * Math.abs(target[i])) / Math.sqrt(a) + 1e-7;
          worst = Math.max(worst, Math.abs(x0 - target[i]) / tol);
          if (!(Math.abs(x0 - target[i]) <= tol)) assert.fail(`t=${t} ${cfgOrder} g=${guidance} i=${i}: x0 ${x0} vs ${target[i]}`);
          // ε itself matches the noise that made x_t (up to rounding of x_t)
          assert.ok(Math.abs(eps[i] - noise[i]) <= 1e-6 * (1 + Math.abs(xt[i])) / Math.sqrt(1 - a) * 4, `ε at t=${t}`);
        }
      }
    }
  }
  assert.ok(worst <= 1);
});

test('target denoiser rejects bad arguments by name', () => {
  const x = new Float32Array(8);
  const n = loadNative<any>();
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e: any) {
      return `${e.code}: ${e.message}`;
    }
    return 'no error';
  };
  assert.match(code(() => n.targetDenoise({ xt: x, target: x, n: 1, c: 2, h: 2, w: 2, alphaBar: 1 })), /E_INVALID_ARGUMENT: .*alphaBar/);
  assert.match(code(() => n.targetDenoise({ xt: x, target: x, n: 1, c: 2, h: 2, w: 2, alphaBar: 0 })), /alphaBar/);
  assert.match(code(() => n.targetDenoise({ xt: x, target: new Float32Array(7), n: 1, c: 2, h: 2, w: 2, alphaBar: 0.5 })), /target: expected 8 elements/);
  assert.match(code(() => n.targetDenoise({ xt: x, target: x, n: 1, c: 2, h: 2, w: 2, alphaBar: 0.5, cfgOrder: 'x' })), /cfgOrder/);
});

test('identity codec: latent = image, decode inverts', () => {
  const img = rng.uniform(2 * 3 * 4 * 5, { seed: 3 });
  const z = codecEncode(img, { codec: 'identity', n: 2, height: 4, width: 5 });
  assert.deepEqual(Array.from(z), Array.from(img));
  assert.deepEqual(Array.from(codecDecode(z, { codec: 'identity', n: 2, height: 4, width: 5 })), Array.from(img));
  assert.deepEqual(codecInfo('identity'), { latentChannels: 3, downsampleFactor: 1, scalingFactor: 1, channelMap: [], pseudoInverse: [] });
});

test('pooling codec: shapes, the maths against a JS reference, and its identities', () => {
  const n = 2, H = 24, W = 32, h = 3, w = 4;
  const info = codecInfo('pooling', 0.5);
  assert.equal(info.latentChannels, 4);
  assert.equal(info.downsampleFactor, 8);
  // P·M = I
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < 3; b++) {
      let s = 0;
      for (let c = 0; c < 4; c++) s += info.pseudoInverse[a * 4 + c] * info.channelMap[c * 3 + b];
      assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-6, `PM[${a}][${b}] = ${s}`);
    }
  const img = rng.uniform(n * 3 * H * W, { seed: 4 });
  const z = codecEncode(img, { codec: 'pooling', n, height: H, width: W, scale: 0.5 });
  assert.equal(z.length, n * 4 * h * w);
  for (let b = 0; b < n; b++)
    for (let c = 0; c < 4; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let v = 0;
          for (let k = 0; k < 3; k++) {
            let s = 0;
            for (let dy = 0; dy < 8; dy++) for (let dx = 0; dx < 8; dx++) s += img[((b * 3 + k) * H + y * 8 + dy) * W + x * 8 + dx];
            v += info.channelMap[c * 3 + k] * (s / 64);
          }
          assert.ok(Math.abs(z[((b * 4 + c) * h + y) * w + x] - v) < 1e-5);
        }
  // decode(encode(x)) is the 8×8 block mean (nearest); encode(decode(encode(x))) = encode(x)
  const back = codecDecode(z, { codec: 'pooling', n, height: h, width: w, scale: 0.5 });
  assert.equal(back.length, img.length);
  for (let k = 0; k < 3; k++) {
    let s = 0;
    for (let dy = 0; dy < 8; dy++) for (let dx = 0; dx < 8; dx++) s += img[(k * H + 8 + dy) * W + 16 + dx];
    assert.ok(Math.abs(back[(k * H + 8 + 3) * W + 16 + 5] - s / 64) < 1e-5);
  }
  assertClose(codecEncode(back, { codec: 'pooling', n, height: H, width: W, scale: 0.5 }), z, 1e-5, 1e-5, 'encode∘decode∘encode');
  // bilinear: a constant image stays constant, and on the latent grid centres it matches nearest for smooth input
  const flat = new Float32Array(3 * 16 * 16).fill(0.25);
  const zf = codecEncode(flat, { codec: 'pooling', n: 1, height: 16, width: 16 });
  assertClose(codecDecode(zf, { codec: 'pooling', n: 1, height: 2, width: 2, upsample: 'bilinear' }), flat, 1e-6, 0, 'bilinear of a constant');
  assert.throws(() => codecEncode(new Float32Array(3 * 10 * 16), { codec: 'pooling', n: 1, height: 10, width: 16 }), (e: any) => e.code === 'E_INVALID_ARGUMENT' && /multiples of 8/.test(e.message));
  assert.throws(() => codecEncode(img, { codec: 'vae' as never, n, height: H, width: W }), /codec: expected 'identity' or 'pooling'/);
});

test('tensorrtInfo never throws; without TensorRT it says what it tried, and doctor reports it', (t) => {
  const info = tensorrtInfo();
  assert.equal(typeof info.found, 'boolean');
  const r = doctorReport();
  assert.deepEqual(r.tensorrt, info);
  if (info.found) return t.skip(`TensorRT ${info.version} is installed here`);
  assert.equal(info.version, null);
  assert.equal(info.library, null);
  assert.match(info.error!, /libnvinfer\.so\.11.*libnvinfer\.so\.10/);
  assert.equal(r.canRun.gpuPipeline, false);
});

test('building without TensorRT: E_NO_TENSORRT from the library, the native builder and the CLI', async (t) => {
  if (tensorrtInfo().found) return t.skip('TensorRT is installed here');
  const m = sd15Manifest();
  const d = writeFolder(m, Object.values(m.engines).map((e) => e.onnx!));
  const out = tmpDir();
  await assert.rejects(buildEngines({ onnx: d, out }), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_NO_TENSORRT' && /libnvinfer/.test(e.message) && /pip install tensorrt/.test(e.message));
  // the native loader itself (dlopen path), not only the TypeScript pre-check
  const n = loadNative<any>();
  assert.throws(() => n.trtBuildEngine({ onnx: '/x.onnx', plan: '/x.plan', profiles: [] }), (e: any) => e.code === 'E_NO_TENSORRT' && /tried libnvinfer\.so\.11, libnvinfer\.so\.10, libnvinfer\.so/.test(e.message));
  assert.throws(() => n.trtInspectPlans({ dir: out, engines: [{ name: 'unet', plan: 'u.plan' }] }), (e: any) => e.code === 'E_NO_TENSORRT' || e.code === 'E_NO_CUDA_DEVICE');
  // the CLI: non-zero exit and the code on stderr
  const chunks: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as any).write = (s: string) => (chunks.push(String(s)), true);
  let code: number;
  try {
    code = await main(['node', 'faceg2e-native', 'engines', 'build', '--onnx', d, '--out', out]);
  } finally {
    (process.stderr as any).write = orig;
  }
  assert.notEqual(code, 0);
  assert.match(chunks.join(''), /error E_NO_TENSORRT: TensorRT is not available/);
});

test('`engines build --help` documents the options; `engines info` reports a folder', async () => {
  const cli = spawnSync(process.execPath, ['--import', 'tsx', '-e', "require('./lib/cli/main').main(process.argv.slice(0,1).concat(['x','engines','build','--help'])).then(c=>process.exit(c))"], { cwd: ROOT, encoding: 'utf8', env: process.env });
  assert.equal(cli.status, 0, cli.stderr);
  for (const opt of ['--onnx', '--out', '--resolution', '--batch', '--max-batch', '--force']) assert.ok(cli.stdout.includes(opt), `help lacks ${opt}:\n${cli.stdout}`);
  const m = sd15Manifest();
  const d = writeFolder(m, ['unet/model.onnx']);
  const r = inspectEngineFolder(d);
  assert.equal(r.engines.length, 6);
  assert.ok(r.missing.some((x) => x.endsWith('vae_decoder.onnx')));
  assert.ok(!r.missing.some((x) => x.endsWith('model.onnx')));
  assert.equal(r.compatible, null);
});

test('check-tensorrt.sh compiles the TensorRT code against the headers in .third_party (skipped when absent)', (t) => {
  const dirs = ['trt10', 'trt11'].map((v) => path.join(ROOT, '.third_party', v, 'include')).filter((d) => fs.existsSync(path.join(d, 'NvInfer.h')));
  if (dirs.length === 0 || !fs.existsSync('/usr/local/cuda/include/cuda_runtime_api.h')) return t.skip('TensorRT headers or the CUDA toolkit are not here');
  for (const d of dirs) {
    const r = spawnSync('bash', [path.join(ROOT, 'tools/check-tensorrt.sh'), d], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${d}: ${r.stdout}${r.stderr}`);
  }
  assert.notEqual(spawnSync('bash', [path.join(ROOT, 'tools/check-tensorrt.sh'), '/nonexistent'], { encoding: 'utf8' }).status, 0);
});

test('the manifests tools/export/ writes for stock SD 1.5 / 2.1-base validate here (skipped without python3 or the exporter)', (t) => {
  const script = path.join(ROOT, 'tools/export/manifest.py');
  if (!fs.existsSync(script)) return t.skip('tools/export/manifest.py is absent');
  for (const m of ['sd15', 'sd21-base']) {
    const r = spawnSync('python3', [script, m], { encoding: 'utf8' });
    if (r.error) return t.skip('python3 is not available');
    assert.equal(r.status, 0, r.stderr);
    const doc = validateManifest(JSON.parse(r.stdout), `${m} (tools/export/manifest.py)`);
    assert.ok(doc.engines.unet && doc.engines.controlnet_depth && doc.engines.vae_encoder);
  }
});
