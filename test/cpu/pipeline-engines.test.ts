/**
 * The native pipeline with `diffusion.denoiser: 'tensorrt'` up to where TensorRT is needed (this machine has
 * none): the engines folder and manifest checks (E_NO_ENGINE naming the folder, file or engine), the profile
 * checks, E_NO_TENSORRT for a complete folder, the text-input checks; and the TypeScript side of the conditioning:
 * view prompts, CLIP token ids with the manifest's pad id, canny edges (OpenCV's algorithm) and the UV wireframe.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadNative } from '../../lib/native';
import { tensorrtInfo } from '../../lib/engines';
import {
  runPipelineNative,
  promptSet,
  tokenizePrompts,
  textConditioning,
  cannyEdges,
  uvLayoutEdges,
  texturePriorControl,
  tensorrtConditioning,
  type PipelineNativeInput,
  type TextSlot,
} from '../../lib/pipeline-native';
import { ClipTokenizer } from '../../lib/tokenizer/index';
import { tmpDir, CLIP_VOCAB } from '../helpers';
import { syntheticHead } from './pipeline-fixture';

const head = syntheticHead({ textureSize: 32 });
const haveVocab = fs.existsSync(CLIP_VOCAB);
const trtHere = tensorrtInfo().found;

// ---------------------------------------------------------------------------------------------- fixtures

const tensor = (name: string, dtype: string, shape: (number | string)[]) => ({ name, dtype, shape });
const RES_SPATIAL = ['', '', '', '/2', '/2', '/2', '/4', '/4', '/4', '/8', '/8', '/8'];
const RES_CH = [320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280, 1280, 1280];
const residuals = (prefix: string) => [
  ...RES_CH.map((c, i) => tensor(`${prefix}_${i}`, 'float16', ['2B', c, `h${RES_SPATIAL[i]}`, `w${RES_SPATIAL[i]}`])),
];
const common = [tensor('sample', 'float32', ['2B', 4, 'h', 'w']), tensor('timestep', 'float32', [1]), tensor('encoder_hidden_states', 'float32', ['2B', 77, 768])];
const unetSpec = () => ({
  inputs: [...common, ...residuals('down_block_additional_residual'), tensor('mid_block_additional_residual', 'float16', ['2B', 1280, 'h/8', 'w/8'])],
  outputs: [tensor('noise_pred', 'float32', ['2B', 4, 'h', 'w'])],
});
const controlnetSpec = () => ({
  inputs: [...common, tensor('controlnet_cond', 'float32', ['2B', 3, 'H', 'W']), tensor('conditioning_scale', 'float32', [1])],
  outputs: [...residuals('down_block_res_sample'), tensor('mid_block_res_sample', 'float16', ['2B', 1280, 'h/8', 'w/8'])],
});
const SPECS: Record<string, () => { inputs: unknown[]; outputs: unknown[] }> = {
  text_encoder: () => ({ inputs: [tensor('input_ids', 'int32', ['B', 77])], outputs: [tensor('text_embeddings', 'float32', ['B', 77, 768])] }),
  unet: unetSpec,
  unet_texture: unetSpec,
  controlnet_depth: controlnetSpec,
  controlnet_canny: controlnetSpec,
  vae_encoder: () => ({ inputs: [tensor('images', 'float32', ['B', 3, 'H', 'W'])], outputs: [tensor('latent', 'float32', ['B', 4, 'h', 'w'])] }),
  vae_decoder: () => ({ inputs: [tensor('latent', 'float32', ['B', 4, 'h', 'w'])], outputs: [tensor('images', 'float32', ['B', 3, 'H', 'W'])] }),
};

interface FolderOptions {
  engines?: string[];
  /** engines whose plan file is not written */
  missingPlans?: string[];
  resolutions?: [number, number][];
  batch?: [number, number];
  tokenizer?: { padTokenId: number } | null;
  model?: Record<string, unknown>;
}

/** A built engines folder as `engines build` writes it, with placeholder plan files. */
function engineFolder(o: FolderOptions = {}): string {
  const dir = tmpDir('fg-engines-');
  const names = o.engines ?? ['text_encoder', 'unet', 'controlnet_depth', 'controlnet_canny', 'vae_encoder', 'vae_decoder'];
  const engines: Record<string, unknown> = {};
  for (const n of names) {
    const plan = `${n}-0123456789abcdef.plan`;
    if (!(o.missingPlans ?? []).includes(n)) fs.writeFileSync(path.join(dir, plan), 'not a real plan');
    engines[n] = { plan, ...SPECS[n]() };
  }
  const manifest: Record<string, unknown> = {
    format: 'faceg2e-engines',
    version: 1,
    model: {
      id: 'stable-diffusion-v1-5/stable-diffusion-v1-5',
      latentChannels: 4,
      downsampleFactor: 8,
      scalingFactor: 0.18215,
      textEmbedDim: 768,
      maxTokens: 77,
      prediction: 'epsilon',
      numTrainTimesteps: 1000,
      betaSchedule: 'scaled_linear',
      betaStart: 0.00085,
      betaEnd: 0.012,
      ...o.model,
    },
    engines,
    build: {
      tensorrt: '10.16.0',
      gpu: { name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0' },
      profiles: { batch: o.batch ?? [1, 2], resolutions: o.resolutions ?? [[64, 64]] },
      key: '0123456789abcdef',
      createdAt: '2026-01-01T00:00:00.000Z',
    },
  };
  if (o.tokenizer !== null && haveVocab) {
    fs.mkdirSync(path.join(dir, 'tokenizer'));
    fs.copyFileSync(CLIP_VOCAB, path.join(dir, 'tokenizer', 'bpe_simple_vocab_16e6.txt.gz'));
    manifest.tokenizer = { path: 'tokenizer', padTokenId: o.tokenizer?.padTokenId ?? 49407 };
  }
  fs.writeFileSync(path.join(dir, 'faceg2e-engines.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

const ids77 = (first = 320) => {
  const a = new Int32Array(77).fill(49407);
  a[0] = 49406;
  a[1] = first;
  return a;
};
const allIds = (): Record<TextSlot, Int32Array> => ({ uncond: ids77(49407), front: ids77(), side: ids77(321), back: ids77(322), texturePrior: ids77(323) });

/** A small TensorRT run: 64-pixel renders (8×8 latents), 1-2 views, every term on. */
function trtInput(engines: string | undefined, over: { diffusion?: Partial<NonNullable<PipelineNativeInput['diffusion']>>; texture?: PipelineNativeInput['texture']; geometry?: PipelineNativeInput['geometry'] } = {}): PipelineNativeInput {
  return {
    device: 'cpu',
    seed: 3,
    model: head.model,
    diffusion: { denoiser: 'tensorrt', engines, text: { ids: allIds() }, ...over.diffusion },
    geometry: { iterations: 4, renderSize: 64, views: 2, ...over.geometry },
    texture: {
      iterations: 4,
      views: 2,
      latent: { iterations: 2, textureSize: 8, renderSize: 8 },
      rgb: { textureSize: 64, renderSize: 64 },
      controlNet: { enabled: true, scale: 1 },
      prior: { enabled: true, weight: 3, type: 'canny', control: new Float32Array(64 * 64 * 3), controlSize: 64 },
      cameras: { mode: 'fixed', fixed: [{ elevation: 0, azimuth: 0, distance: 1.4 }] },
      ...over.texture,
    },
  };
}

interface NativePipeline {
  runPipeline(input: PipelineNativeInput): Promise<unknown>;
}
const binding = () => loadNative<NativePipeline>();

/** The binding's own error (no TypeScript pre-check). */
async function nativeError(input: PipelineNativeInput): Promise<{ code: string; message: string }> {
  try {
    await binding().runPipeline(input);
  } catch (e) {
    return e as { code: string; message: string };
  }
  assert.fail('expected the native pipeline to reject');
}

// ---------------------------------------------------------------------------------------------- native checks

test('tensorrt: no diffusion.engines folder -> E_NO_ENGINE', async () => {
  const e = await nativeError(trtInput(undefined));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /diffusion\.engines/);
  await assert.rejects(runPipelineNative(trtInput(undefined)), (err: { code: string; message: string }) => err.code === 'E_NO_ENGINE' && /diffusion\.engines/.test(err.message));
});

test('tensorrt: a folder that does not exist -> E_NO_ENGINE naming it', async () => {
  const dir = path.join(tmpDir(), 'no-such-engines');
  const e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.ok(e.message.includes(dir), e.message);
  assert.match(e.message, /does not exist/);
});

test('tensorrt: a folder without faceg2e-engines.json, or with broken JSON -> E_NO_ENGINE naming the file', async () => {
  const dir = tmpDir();
  let e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.ok(e.message.includes(path.join(dir, 'faceg2e-engines.json')), e.message);
  fs.writeFileSync(path.join(dir, 'faceg2e-engines.json'), '{"format": "faceg2e-engines", ');
  e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.ok(e.message.includes(path.join(dir, 'faceg2e-engines.json')) && /not valid JSON/.test(e.message), e.message);
  fs.writeFileSync(path.join(dir, 'faceg2e-engines.json'), JSON.stringify({ format: 'faceg2e-engines', version: 1, model: { latentChannels: 4 }, engines: {} }));
  e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /model\.downsampleFactor/);
});

test('tensorrt: a plan file missing from the folder -> E_NO_ENGINE naming the plan', async () => {
  const dir = engineFolder({ missingPlans: ['unet'] });
  const e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.ok(e.message.includes(path.join(dir, 'unet-0123456789abcdef.plan')), e.message);
  assert.match(e.message, /engines build/);
});

test('tensorrt: an engine the run needs is not in the manifest -> E_NO_ENGINE naming engine and manifest', async () => {
  const dir = engineFolder({ engines: ['text_encoder', 'unet', 'controlnet_canny', 'vae_encoder', 'vae_decoder'] });
  const e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /"controlnet_depth"/);
  assert.ok(e.message.includes(path.join(dir, 'faceg2e-engines.json')), e.message);
  // the same folder serves a run whose depth ControlNet is off (scale 0 skips it), up to TensorRT
  const e2 = await nativeError(trtInput(dir, { texture: { ...trtInput(dir).texture, controlNet: { enabled: true, scale: 0 } } }));
  assert.notEqual(e2.code, 'E_NO_ENGINE', e2.message);
});

test("tensorrt: texture.prior.type 'unet' needs a unet_<name> engine", async () => {
  const dir = engineFolder();
  const base = trtInput(dir).texture!;
  const e = await nativeError(trtInput(dir, { texture: { ...base, prior: { enabled: true, weight: 3, type: 'unet' } } }));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /unet_<name>/);
  // with one, the checks go on to TensorRT (no ControlNet of the prior is needed then)
  const dir2 = engineFolder({ engines: ['text_encoder', 'unet', 'unet_texture', 'controlnet_depth', 'vae_encoder', 'vae_decoder'] });
  const e2 = await nativeError(trtInput(dir2, { texture: { ...base, prior: { enabled: true, weight: 3, type: 'unet' } } }));
  assert.notEqual(e2.code, 'E_NO_ENGINE', e2.message);
  // the latent stage routes its prior term only when S == Ls * f
  const e3 = await nativeError(trtInput(dir2, { texture: { ...base, latent: { iterations: 2, textureSize: 16, renderSize: 8 }, prior: { enabled: true, weight: 3, type: 'unet' } } }));
  assert.equal(e3.code, 'E_INVALID_ARGUMENT');
  assert.match(e3.message, /texture\.rgb\.textureSize/);
});

test('tensorrt: shapes outside the build profiles -> E_NO_ENGINE naming the config field', async () => {
  const dir = engineFolder({ resolutions: [[64, 64]], batch: [1, 2] });
  let e = await nativeError(trtInput(dir, { geometry: { iterations: 4, renderSize: 128, views: 2 } }));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /geometry\.renderSize/);
  assert.match(e.message, /--resolution 128x128/);
  e = await nativeError(trtInput(dir, { geometry: { iterations: 4, renderSize: 64, views: 3 } }));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /geometry\.renderSize \/ geometry\.views/);
  assert.match(e.message, /--max-batch 3/);
  const base = trtInput(dir).texture!;
  e = await nativeError(trtInput(dir, { texture: { ...base, rgb: { textureSize: 128, renderSize: 64 }, prior: { ...base.prior, control: new Float32Array(128 * 128 * 3), controlSize: 128 } } }));
  assert.equal(e.code, 'E_NO_ENGINE');
  assert.match(e.message, /texture\.rgb\.textureSize \(texture prior\)/);
});

test('tensorrt: the manifest noise schedule must be the config one', async () => {
  const dir = engineFolder({ model: { betaEnd: 0.02 } });
  const e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /diffusion\.scheduler\.betaEnd/);
  assert.ok(e.message.includes(path.join(dir, 'faceg2e-engines.json')), e.message);
});

test('tensorrt: prompts must be given as 77 ids or embeddings; ids need TensorRT', async () => {
  const dir = engineFolder();
  const noFront = allIds() as Partial<Record<TextSlot, Int32Array>>;
  delete noFront.front;
  let e = await nativeError(trtInput(dir, { diffusion: { text: { ids: noFront } } }));
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /'front' prompt/);
  e = await nativeError(trtInput(dir, { diffusion: { text: { ids: { ...allIds(), side: new Int32Array(76) } } } }));
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /diffusion\.text\.ids\.side: expected 77/);
  const bad = allIds();
  bad.back[3] = 60000;
  e = await nativeError(trtInput(dir, { diffusion: { text: { ids: bad } } }));
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /ids\.back: token id 60000/);
  e = await nativeError(trtInput(dir, { diffusion: { text: { embedDim: 1024, ids: allIds() } } }));
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /textEmbedDim/);
  e = await nativeError(trtInput(dir, { diffusion: { codec: 'pooling' } }));
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /'vae'/);
  // precomputed embeddings stand in for ids, per prompt
  const emb = new Float32Array(77 * 768);
  e = await nativeError(trtInput(dir, { diffusion: { text: { ids: { ...allIds(), uncond: undefined }, uncond: emb } } }));
  assert.notEqual(e.code, 'E_INVALID_ARGUMENT', e.message);
  // the target denoiser takes no text
  e = await nativeError({ ...trtInput(dir), diffusion: { denoiser: 'target', text: { ids: allIds() } } });
  assert.equal(e.code, 'E_INVALID_ARGUMENT');
  assert.match(e.message, /token ids need the TensorRT denoiser/);
});

test('tensorrt: a complete folder without TensorRT -> E_NO_TENSORRT naming what was tried', { skip: trtHere && 'TensorRT is installed here' }, async () => {
  const dir = engineFolder();
  const e = await nativeError(trtInput(dir));
  assert.equal(e.code, 'E_NO_TENSORRT', e.message);
  assert.ok(e.message.includes(dir), e.message);
  assert.match(e.message, /libnvinfer/);
  // through the TypeScript wrapper (which also validates the manifest) the same
  await assert.rejects(runPipelineNative(trtInput(dir)), (err: { code: string }) => err.code === 'E_NO_TENSORRT');
});

test('tensorrt: the wrapper validates the manifest (E_NO_ENGINE with JSON paths)', async () => {
  const dir = engineFolder();
  const file = path.join(dir, 'faceg2e-engines.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  m.engines.unet.outputs[0].dtype = 'float16';
  fs.writeFileSync(file, JSON.stringify(m));
  await assert.rejects(runPipelineNative(trtInput(dir)), (err: { code: string; message: string; details?: { path: string }[] }) => {
    assert.equal(err.code, 'E_NO_ENGINE');
    assert.ok(err.message.includes(dir), err.message);
    assert.ok(err.details?.some((d) => d.path.endsWith('#engines.unet.outputs.noise_pred.dtype')), JSON.stringify(err.details));
    return true;
  });
});

// ---------------------------------------------------------------------------------------------- prompts and tokens

test('promptSet: view suffixes on the prompt, the negative prompt as uncond, the prior prompt', () => {
  const p = promptSet({ prompt: 'an old man', negativePrompt: 'blurry', viewPrompts: { enabled: true, front: ', front view', side: ', side view', back: ', back view' } });
  assert.deepEqual(p, { uncond: 'blurry', front: 'an old man, front view', side: 'an old man, side view', back: 'an old man, back view', texturePrior: 'face texture' });
  const q = promptSet({ prompt: 'an old man', viewPrompts: { enabled: false }, texturePrior: 'skin' });
  assert.deepEqual(q, { uncond: '', front: 'an old man', side: 'an old man', back: 'an old man', texturePrior: 'skin' });
});

test('tokenizePrompts: 77 ids, start/end tokens, the pad id after the end', { skip: !haveVocab && 'no CLIP vocabulary in ../shared' }, async () => {
  const tok = await ClipTokenizer.fromFile(CLIP_VOCAB);
  const prompts = promptSet({ prompt: 'a photo of a cat', negativePrompt: '' });
  const sd15 = tokenizePrompts(prompts, tok);
  assert.equal(sd15.front.length, 77);
  // "a photo of a cat, front view" -> a photo of a cat , front view
  assert.deepEqual(Array.from(sd15.front.subarray(0, 10)), [49406, 320, 1125, 539, 320, 2368, 267, 2184, 1093, 49407]);
  assert.ok(sd15.front.subarray(10).every((v) => v === 49407));
  assert.deepEqual(Array.from(sd15.uncond.subarray(0, 3)), [49406, 49407, 49407]);
  const sd21 = tokenizePrompts(prompts, tok, { pad: 0 });
  assert.equal(sd21.front[9], 49407);
  assert.ok(sd21.front.subarray(10).every((v) => v === 0));
  assert.deepEqual(Array.from(sd21.uncond.subarray(0, 3)), [49406, 49407, 0]);
  assert.notDeepEqual(Array.from(sd15.side), Array.from(sd15.front));
});

test("textConditioning: the manifest's tokenizer and pad id", { skip: !haveVocab && 'no CLIP vocabulary in ../shared' }, async () => {
  const dir = engineFolder({ tokenizer: { padTokenId: 0 } });
  const t = await textConditioning(dir, { prompt: 'a man', negativePrompt: 'ugly' });
  assert.equal(t.tokens, 77);
  assert.equal(t.embedDim, 768);
  const tok = await ClipTokenizer.fromFile(CLIP_VOCAB);
  assert.deepEqual(Array.from(t.ids!.uncond!), Array.from(tok.encodePadded('ugly', { pad: 0 })));
  assert.deepEqual(Array.from(t.ids!.uncond!.subarray(0, 4)), [49406, tok.encode('ugly')[1], 49407, 0]);
  assert.equal(t.ids!.front![t.ids!.front!.indexOf(49407) + 1], 0);
  // no tokenizer in the manifest: the CLIP vocabulary given, padded with the end token; none given: E_NO_ENGINE
  const dir2 = engineFolder({ tokenizer: null });
  await assert.rejects(textConditioning(dir2, { prompt: 'a man' }), (e: { code: string }) => e.code === 'E_NO_ENGINE');
  const t2 = await textConditioning(dir2, { prompt: 'a man' }, { vocab: CLIP_VOCAB });
  assert.equal(t2.ids!.uncond![2], 49407);
});

// ---------------------------------------------------------------------------------------------- canny, UV wireframe

function gray(width: number, height: number, f: (x: number, y: number) => number): Uint8Array {
  const a = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) a[y * width + x] = f(x, y);
  return a;
}
const edgeCols = (e: Uint8Array, w: number, y: number) => Array.from({ length: w }, (_, x) => x).filter((x) => e[y * w + x] === 255);

test('cannyEdges: a vertical step gives a one-pixel edge on its dark side, none in flat regions', () => {
  const W = 16;
  const H = 12;
  const e = cannyEdges(gray(W, H, (x) => (x < 8 ? 20 : 120)), W, H, 1, 100, 200);
  // Sobel |dx| = 400 at x = 7 and x = 8; non-maximum suppression keeps m > left && m >= right: x = 7
  for (let y = 0; y < H; y++) assert.deepEqual(edgeCols(e, W, y), [7], `row ${y}`);
  assert.ok(cannyEdges(gray(W, H, () => 90), W, H, 1, 100, 200).every((v) => v === 0));
  // below the low threshold: nothing
  assert.ok(cannyEdges(gray(W, H, (x) => (x < 8 ? 20 : 40)), W, H, 1, 100, 200).every((v) => v === 0));
});

test('cannyEdges: hysteresis keeps weak edges connected to strong ones only', () => {
  const W = 24;
  const H = 20;
  // left step (x = 6): strong (|dx| 400) in rows < 10, weak (|dx| 120: between 100 and 200) below, connected to it
  // right step (x = 18): weak everywhere (|dx| 120), not connected to anything strong
  const img = gray(W, H, (x, y) => (x < 6 ? (y < 10 ? 0 : 70) : x < 18 ? 100 : 130));
  const e = cannyEdges(img, W, H, 1, 100, 200);
  for (let y = 0; y < H; y++) {
    const cols = edgeCols(e, W, y);
    if (y < 8 || y > 11) assert.ok(cols.includes(5), `row ${y}: the left edge (strong or connected weak) is kept: ${cols}`);
    assert.ok(!cols.includes(17) && !cols.includes(18), `row ${y}: the isolated weak right edge is dropped: ${cols}`);
  }
  // without the strong part, the left edge goes too
  const weak = cannyEdges(gray(W, H, (x) => (x < 6 ? 70 : 100)), W, H, 1, 100, 200);
  assert.ok(weak.every((v) => v === 0));
  // thresholds swap when given the wrong way round
  assert.deepEqual(Array.from(cannyEdges(img, W, H, 1, 200, 100)), Array.from(e));
});

test('cannyEdges: colour images use the channel of largest gradient; a diagonal edge stays thin', () => {
  const W = 16;
  const H = 16;
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb[(y * W + x) * 3 + 2] = x < 8 ? 0 : 200; // blue step only
  const e = cannyEdges(rgb, W, H, 3, 100, 200);
  for (let y = 0; y < H; y++) assert.deepEqual(edgeCols(e, W, y), [7]);
  const d = cannyEdges(gray(W, H, (x, y) => (x > y ? 200 : 0)), W, H, 1, 100, 200);
  for (let y = 2; y < H - 2; y++) {
    const cols = edgeCols(d, W, y);
    assert.ok(cols.length >= 1 && cols.length <= 2 && cols.every((x) => Math.abs(x - y) <= 1), `row ${y}: ${cols}`);
  }
  assert.throws(() => cannyEdges(new Uint8Array(5), 2, 2, 1, 1, 2), /cannyEdges/);
});

test('uvLayoutEdges: triangle edges drawn in texture rows (row 0 at v = 1), interiors empty', () => {
  const S = 32;
  const uv = Float32Array.from([0.1, 0.1, 0.9, 0.1, 0.1, 0.9]);
  const e = uvLayoutEdges(uv, Int32Array.from([0, 1, 2]), S);
  const at = (u: number, v: number) => e[Math.round((1 - v) * S - 0.5) * S + Math.round(u * S - 0.5)];
  assert.equal(at(0.1, 0.1), 1);
  assert.equal(at(0.9, 0.1), 1);
  assert.equal(at(0.1, 0.9), 1);
  assert.equal(at(0.5, 0.5), 1); // on the hypotenuse
  assert.equal(at(0.1, 0.5), 1); // on the left side
  assert.equal(at(0.3, 0.3), 0); // inside
  assert.equal(at(0.8, 0.8), 0); // outside
  assert.throws(() => uvLayoutEdges(uv, Int32Array.from([0, 1, 5]), S), /uvTri/);
});

test('texturePriorControl: canny of a template image, or the UV wireframe; 3 equal channels in {0, 1}', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'template.png');
  const W = 40;
  const raw = Buffer.alloc(W * W * 3);
  for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) raw.fill(x < 20 ? 30 : 220, (y * W + x) * 3, (y * W + x) * 3 + 3);
  await sharp(raw, { raw: { width: W, height: W, channels: 3 } }).png().toFile(file);
  const c = await texturePriorControl({ size: 32, template: file, cannyLow: 100, cannyHigh: 200 });
  assert.equal(c.controlSize, 32);
  assert.equal(c.control.length, 32 * 32 * 3);
  const on: number[] = [];
  for (let i = 0; i < 32 * 32; i++) {
    assert.ok(c.control[3 * i] === c.control[3 * i + 1] && c.control[3 * i] === c.control[3 * i + 2]);
    assert.ok(c.control[3 * i] === 0 || c.control[3 * i] === 1);
    if (c.control[3 * i] === 1) on.push(i % 32);
  }
  assert.ok(on.length >= 32 && on.every((x) => x === 15 || x === 16), `edge columns ${[...new Set(on)]}`);
  const w = await texturePriorControl({ size: 32, uv: head.model.uv, uvTri: head.model.uvTri });
  assert.ok(w.control.some((v) => v === 1));
  await assert.rejects(texturePriorControl({ size: 32, template: path.join(dir, 'none.png') }), (e: { code: string }) => e.code === 'E_IO');
});

test('tensorrtConditioning: ids of the five prompts and the prior control by prior type', { skip: !haveVocab && 'no CLIP vocabulary in ../shared' }, async () => {
  const dir = engineFolder();
  const base = { engines: dir, prompt: 'a woman', negativePrompt: '', viewPrompts: { enabled: true }, textureSize: 32, uv: head.model.uv, uvTri: head.model.uvTri };
  const canny = await tensorrtConditioning({ ...base, prior: { type: 'canny', weight: 3 } });
  assert.deepEqual(Object.keys(canny.text.ids!).sort(), ['back', 'front', 'side', 'texturePrior', 'uncond']);
  const tok = await ClipTokenizer.fromFile(CLIP_VOCAB);
  assert.deepEqual(Array.from(canny.text.ids!.texturePrior!), Array.from(tok.encodePadded('face texture')));
  assert.deepEqual(Array.from(canny.text.ids!.back!), Array.from(tok.encodePadded('a woman, back view')));
  assert.equal(canny.prior.enabled, true);
  assert.equal(canny.prior.controlSize, 32);
  const unet = await tensorrtConditioning({ ...base, prior: { type: 'unet', weight: 3 } });
  assert.equal(unet.prior.control, undefined);
  assert.deepEqual(Array.from(unet.text.ids!.texturePrior!), Array.from(tok.encodePadded('a diffuse texture map of a human face in UV space')));
  const none = await tensorrtConditioning({ ...base, prior: { type: 'none' } });
  assert.equal(none.prior.enabled, false);
});
