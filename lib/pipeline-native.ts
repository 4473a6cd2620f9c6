/**
 * Typed wrapper of the native FaceG2E pipeline binding (native/napi/pipeline.cpp → native/pipeline/*).
 *
 * `runPipelineNative(input, {signal, onProgress})` runs the geometry phase and the texture phase on a native
 * worker thread and resolves with typed arrays. `lib/pipeline.ts` maps the run config onto
 * {@link PipelineNativeInput}; every field below documents its unit, layout and default (the defaults follow
 * FaceG2E and equal `lib/config/defaults.ts`).
 *
 * Conventions
 * - Images and textures are float32 in [0, 1]. Textures are `[H, W, 3]` row-major with row 0 at v = 1 (OBJ UVs,
 *   origin bottom-left); previews are `[n, size, size, 3]` with row 0 at the top.
 * - Cameras are `{elevation, azimuth, distance}` in degrees, degrees and metres, on a sphere around the centre of
 *   the template's bounding box; azimuth 0 looks at the face (+z), positive azimuth turns towards +x, +y is up.
 *   The model is scaled to metres with `model.metresPerUnit`.
 * - Randomness is the project's Philox RNG: cameras (stream 3), lighting / input picks (stream 4), SDS noise
 *   (stream 1), timestep jitter (stream 2), latent init (stream 5), all addressed by iteration, so the same
 *   `seed` reproduces a run and a run resumed from a checkpoint continues exactly.
 * - Cancellation: when `signal` aborts, the current iteration finishes and the promise resolves with
 *   `{status: 'cancelled', checkpoint}`; pass that checkpoint back as `input.checkpoint` to resume.
 *
 * TensorRT (`diffusion.denoiser: 'tensorrt'`): `diffusion.engines` names a built engines folder
 * (docs/tensorrt.md); the prompts go in as CLIP token ids (`diffusion.text.ids`, made by
 * {@link textConditioning}), which the engines' text encoder turns into embeddings once at setup; the texture
 * prior's control image is the canny edge map of a template texture or the UV layout's wireframe
 * ({@link texturePriorControl}). {@link tensorrtConditioning} does all of it from the run config's fields.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type sharpType from 'sharp';
import { loadNative, cancelTokenFor, type CancelHandle, type DeviceName } from './native';
import { callNative, fromNative, FaceG2EError } from './errors';
import { readManifest, MANIFEST_FILE, type EngineManifest } from './engines';
import { ClipTokenizer, CLIP_CONTEXT_LENGTH } from './tokenizer/index';

/** A camera on the sphere around the head. */
export interface PipelineCamera {
  /** Degrees above the horizontal plane through the head centre. */
  elevation: number;
  /** Degrees around the vertical axis; 0 = front, positive towards +x. */
  azimuth: number;
  /** Metres from the head centre. */
  distance: number;
}

export interface PipelineRange {
  min: number;
  max: number;
}

export interface PipelineOptimizer {
  /** Default 'adan' (geometry) / 'adamw' (texture). */
  type?: 'adan' | 'adam' | 'adamw';
  beta1?: number;
  beta2?: number;
  /** Adan only. */
  beta3?: number;
  eps?: number;
  weightDecay?: number;
  /** > 0: clip the gradient's global L2 norm (geometry default 0 here; FaceG2E's config uses 5). */
  maxGradNorm?: number;
}

export interface PipelineLrDecay {
  /** 'none' (constant), 'step' (×gamma every stepEvery steps) or 'cosine' (to minFactor·lr over totalSteps). */
  type?: 'none' | 'constant' | 'step' | 'cosine';
  stepEvery?: number;
  gamma?: number;
  totalSteps?: number;
  /** Floor of the learning rate as a fraction of the base rate. */
  minFactor?: number;
}

export interface PipelineTimesteps {
  /** 'linear': the fraction falls linearly from max (first iteration) to min (last); 'uniform': random in [min, max]. */
  schedule?: 'linear' | 'uniform';
  max?: number;
  min?: number;
  /** Linear schedule: ± jitter on the fraction (Philox stream 2). Default 0. */
  jitter?: number;
}

/** The morphable model (as read by lib/models). */
export interface PipelineModel {
  /** Neutral template `[V*3]` in model units. */
  template: Float32Array;
  /** Triangles `[T*3]`. */
  tri: Int32Array | Uint32Array;
  /** UVs `[U*2]`, OBJ convention. */
  uv: Float32Array;
  /** UV triangles `[T*3]` into `uv`. */
  uvTri: Int32Array | Uint32Array;
  identityCount: number;
  /** Identity basis `[Ki, V, 3]` as float16 bits. */
  identityBasis?: Uint16Array;
  expressionCount?: number;
  /** Expression basis `[Ke, V, 3]` as float16 bits. */
  expressionBasis?: Uint16Array;
  /** Per-mode standard deviations (the morph kernels scale the coefficients by them). */
  identityStd?: Float32Array;
  expressionStd?: Float32Array;
  /** Metres per model unit (0.01 for ICT's centimetres). Default 1. */
  metresPerUnit?: number;
}

export interface PipelineDiffusion {
  /**
   * 'target': the target denoiser (reconstruction, tests). 'tensorrt': the Stable Diffusion engines of
   * `engines` (text encoder, UNet, ControlNets / texture UNet, VAE) on CUDA.
   */
  denoiser?: 'target' | 'tensorrt';
  /** TensorRT: the built engines folder (its faceg2e-engines.json), `npx faceg2e-native engines build`. */
  engines?: string;
  /**
   * Codec: 'identity' (3 latent channels, factor 1) or 'pooling' (4 channels, 8×8) with the target denoiser
   * (default 'identity'); 'vae' (the engines' VAE) with TensorRT (its default and only choice).
   */
  codec?: 'identity' | 'pooling' | 'vae';
  poolingScale?: number;
  scheduler?: {
    numTrainTimesteps?: number;
    betaSchedule?: 'linear' | 'scaled_linear';
    betaStart?: number;
    betaEnd?: number;
    predictionType?: 'epsilon' | 'v_prediction';
  };
  /** SDS weighting w(t). Default 'one-minus-alphabar'. */
  weighting?: 'one-minus-alphabar' | '1-alpha' | 'uniform' | 'fantasia3d';
  /** Multiplies every SDS gradient. Default 1. */
  gradScale?: number;
  /** > 0: elementwise clamp of the SDS gradient. */
  gradClamp?: number;
  cfgOrder?: 'uncond-first' | 'cond-first';
  /** |azimuth| ≤ this: the front prompt. Default 45. */
  frontMaxAzimuth?: number;
  /** |azimuth| ≥ this: the back prompt (between: side). Default 135. */
  backMinAzimuth?: number;
  /**
   * Text conditioning (TensorRT only; the target denoiser needs none): per prompt either token ids (`ids`,
   * `[tokens]` int32, encoded once at setup by the engines' text encoder) or a precomputed embedding
   * `[tokens*embedDim]`. `tokens`/`embedDim` default to the manifest's `maxTokens`/`textEmbedDim`.
   */
  text?: {
    tokens?: number;
    embedDim?: number;
    ids?: Partial<Record<TextSlot, Int32Array>>;
    front?: Float32Array;
    side?: Float32Array;
    back?: Float32Array;
    uncond?: Float32Array;
    /** The "face texture" prompt of the texture prior. */
    texturePrior?: Float32Array;
  };
}

export interface PipelineGeometry {
  enabled?: boolean;
  /** Default 200. */
  iterations?: number;
  /** Square render size in pixels; a multiple of the codec factor. Default 224. */
  renderSize?: number;
  /** Views per iteration (1..16). Default 1. */
  views?: number;
  /** Also optimise the expression coefficients. Default false. */
  optimizeExpression?: boolean;
  /** Starting coefficients `[Ki]` or `[Ki+Ke]`; default zeros. */
  initCoefficients?: Float32Array;
  /** Default ['grey', 'normal']. */
  inputs?: ('grey' | 'normal')[];
  /** 'alternate' (inputs[i % n]) or 'random'. Default 'alternate'. */
  inputSchedule?: 'alternate' | 'random';
  /** SH environments, 9 coefficients each (world frame, y up, face +z); default the built-in presets ({@link shPresets}). */
  lighting?: Float32Array;
  /** Grey renders are albedo · E_sh(n). Default 1. */
  albedo?: number;
  background?: [number, number, number];
  camera?: { elevation?: PipelineRange; azimuth?: PipelineRange; distance?: PipelineRange; fovDegrees?: number };
  timestep?: PipelineTimesteps;
  /** Default 100. */
  guidanceScale?: number;
  /** Default 0.05. */
  learningRate?: number;
  optimizer?: PipelineOptimizer;
  lrDecay?: PipelineLrDecay;
  /** L2 weights on the coefficients. Defaults 1e-4 / 1e-3. */
  regularization?: { identity?: number; expression?: number };
  /** Raster antialiasing (silhouette gradients). Default true. */
  antialias?: boolean;
}

export interface PipelineTexture {
  enabled?: boolean;
  /** Total texture iterations (latent + RGB). Default 400. */
  iterations?: number;
  /** Geometry of this phase `[Ki]`/`[Ki+Ke]`; default the geometry phase's result. */
  coefficients?: Float32Array;
  latent?: { iterations?: number; textureSize?: number; renderSize?: number; init?: 'zeros' | 'random'; initScale?: number };
  rgb?: { textureSize?: number; renderSize?: number };
  /** Views per iteration (1..16). Default 1. */
  views?: number;
  guidanceScale?: number;
  timestep?: PipelineTimesteps;
  controlNet?: { enabled?: boolean; type?: string; scale?: number };
  prior?: {
    enabled?: boolean;
    weight?: number;
    guidanceScale?: number;
    /**
     * 'canny' (ControlNet `controlnet_canny` on `control`), 'unet' (the folder's texture-tuned UNet
     * `unet_texture` / its one `unet_<name>`), or any `<kind>` of a `controlnet_<kind>` engine. Default 'canny'.
     */
    type?: string;
    /** TensorRT: the engine of the prior term by name (overrides `type`). */
    engine?: string;
    /** Canny image of a template texture `[controlSize, controlSize, 3]`. */
    control?: Float32Array;
    controlSize?: number;
  };
  background?: [number, number, number];
  cameras?: {
    mode?: 'fixed' | 'random';
    fovDegrees?: number;
    fixed?: PipelineCamera[];
    random?: { elevation?: PipelineRange; azimuth?: PipelineRange; distance?: PipelineRange };
  };
  learningRate?: number;
  optimizer?: PipelineOptimizer;
  lrDecay?: PipelineLrDecay;
  antialias?: boolean;
  /** Project RGB texels to [0, 1] after each step. Default true. */
  clamp?: boolean;
}

/** Optimiser states and parameters at an iteration boundary. */
export interface PipelineCheckpoint {
  phase: 'geometry' | 'texture' | 'done';
  /** The next iteration of `phase` to run. */
  iteration: number;
  coefficients: Float32Array;
  geometryOptimizer: { m: Float32Array; v: Float32Array; d: Float32Array; prev: Float32Array };
  latent?: Float32Array;
  latentOptimizer?: { m: Float32Array; v: Float32Array };
  rgb?: Float32Array;
  rgbOptimizer?: { m: Float32Array; v: Float32Array };
  initialRmse: number;
  curves: { geometry: Float32Array; texture: Float32Array };
  timings: { geometryMs: number; textureMs: number };
}

export interface PipelineNativeInput {
  device?: DeviceName;
  seed?: number | bigint;
  /** Per-op mean times in the result (CUDA events on the GPU, steady_clock on the CPU). */
  profile?: boolean;
  /** Progress every n iterations (default: ~20 events per phase). */
  progressEvery?: number;
  model: PipelineModel;
  diffusion?: PipelineDiffusion;
  geometry?: PipelineGeometry;
  texture?: PipelineTexture;
  /** Target-denoiser mode: the head to reconstruct. */
  target?: { coefficients: Float32Array; texture?: Float32Array; textureWidth?: number; textureHeight?: number };
  previews?: { views?: PipelineCamera[]; size?: number; fovDegrees?: number; textured?: boolean; shaded?: boolean };
  checkpoint?: PipelineCheckpoint;
}

export interface PipelineProgress {
  phase: 'geometry' | 'texture';
  iteration: number;
  total: number;
  timestep: number;
  /** Mean square of the SDS gradient on the render. */
  loss: number | null;
  /** Target mode: mean square difference render − target render (latent space in the latent stage). */
  targetMse: number | null;
  elapsedMs: number;
}

export interface PipelineOpStat {
  meanMs: number;
  totalMs: number;
  count: number;
}

export interface PipelineNativeResult {
  status: 'done' | 'cancelled';
  /** Always present; on 'done' it is the final state (phase 'done'). */
  checkpoint: PipelineCheckpoint;
  timings: { setupMs: number; geometryMs: number; textureMs: number };
  profile?: Record<string, PipelineOpStat>;
  /** The rest only on 'done'. */
  coefficients?: Float32Array;
  /** `[V*3]` in model units. */
  vertices?: Float32Array;
  normals?: Float32Array;
  /** `[S, S, 3]`. */
  texture?: Float32Array;
  textureSize?: number;
  previews?: { count: number; size: number; textured?: Float32Array; shaded?: Float32Array };
  metrics?: {
    /** Final over initial vertex RMSE against the target head (target mode). */
    vertexRmseRatio: number | null;
    vertexRmseInitial: number | null;
    vertexRmseFinal: number | null;
    /** PSNR of the RGB texture against the target over texels seen by the fixed cameras. */
    psnrDb: number | null;
    visibleTexels: number;
  };
  /** Grouped means, 4 numbers per group: (first iteration, timestep, loss, targetMse). */
  curves?: { group: number; geometry: Float32Array; texture: Float32Array };
}

interface NativePipeline {
  runPipeline(input: PipelineNativeInput, onProgress?: (p: PipelineProgress) => void, token?: CancelHandle): Promise<PipelineNativeResult>;
  pipelineShPresets(): { name: string; coefficients: number[] }[];
}

/** Run the geometry and texture phases natively. Rejects with FaceG2EError (stable codes). */
export async function runPipelineNative(
  input: PipelineNativeInput,
  opts: { signal?: AbortSignal; onProgress?: (p: PipelineProgress) => void } = {},
): Promise<PipelineNativeResult> {
  const n = loadNative<NativePipeline>();
  if (input.diffusion?.denoiser === 'tensorrt') checkEnginesFolder(input.diffusion.engines);
  const { token, dispose } = cancelTokenFor(opts.signal);
  try {
    return await callNative(() => n.runPipeline(input, opts.onProgress, token));
  } catch (e) {
    throw fromNative(e);
  } finally {
    dispose();
  }
}

/** The built-in SH lighting environments of the geometry phase. */
export function shPresets(): { name: string; coefficients: number[] }[] {
  return callNative(() => loadNative<NativePipeline>().pipelineShPresets());
}

// ---------------------------------------------------------------------------------------------- TensorRT inputs

/** The five text conditions of a run. */
export type TextSlot = 'uncond' | 'front' | 'side' | 'back' | 'texturePrior';
export const TEXT_SLOTS: readonly TextSlot[] = ['uncond', 'front', 'side', 'back', 'texturePrior'];

/** Default prompts of the texture prior, by prior type. */
export const TEXTURE_PRIOR_PROMPTS = { canny: 'face texture', unet: 'a diffuse texture map of a human face in UV space' } as const;

/**
 * The manifest of a TensorRT engines folder, with problems as E_NO_ENGINE naming the folder or file (the native
 * side checks the plans, TensorRT, the GPU and the shapes).
 */
export function checkEnginesFolder(dir: string | undefined): { file: string; dir: string; manifest: EngineManifest } {
  const howTo = 'build it with `npx faceg2e-native engines build --onnx <onnx folder> --out <engines folder>` (docs/tensorrt.md)';
  if (!dir) throw new FaceG2EError('E_NO_ENGINE', `diffusion.engines: the TensorRT denoiser needs the engines folder; ${howTo}. Without engines, use the target denoiser (diffusion.denoiser 'target')`);
  if (!fs.existsSync(dir)) throw new FaceG2EError('E_NO_ENGINE', `the TensorRT engines folder ${dir} (diffusion.engines) does not exist; ${howTo}`);
  try {
    return readManifest(dir);
  } catch (e) {
    const err = e as FaceG2EError;
    throw new FaceG2EError('E_NO_ENGINE', `the engines folder ${dir} (diffusion.engines) is not usable: ${err.message}`, { cause: e, details: err.details });
  }
}

export interface PromptSetOptions {
  prompt: string;
  negativePrompt?: string;
  /** View suffixes appended to the prompt by camera azimuth (FaceG2E's ", front view" …); disabled: the bare prompt. */
  viewPrompts?: { enabled?: boolean; front?: string; side?: string; back?: string };
  /** The texture prior's prompt; default 'face texture'. */
  texturePrior?: string | null;
}

/** The prompts of the five text slots: uncond (the negative prompt), front/side/back (prompt + suffix), texturePrior. */
export function promptSet(o: PromptSetOptions): Record<TextSlot, string> {
  const v = o.viewPrompts ?? {};
  const on = v.enabled ?? true;
  const suffix = (s: string | undefined, def: string) => (on ? (s ?? def) : '');
  return {
    uncond: o.negativePrompt ?? '',
    front: o.prompt + suffix(v.front, ', front view'),
    side: o.prompt + suffix(v.side, ', side view'),
    back: o.prompt + suffix(v.back, ', back view'),
    texturePrior: o.texturePrior ?? TEXTURE_PRIOR_PROMPTS.canny,
  };
}

/** Token ids of every slot, `length` ids each, padded with `pad` after the end token (SD 1.x: 49407, SD 2.x: 0). */
export function tokenizePrompts(prompts: Record<TextSlot, string>, tokenizer: ClipTokenizer, opts: { length?: number; pad?: 'end' | number } = {}): Record<TextSlot, Int32Array> {
  const out = {} as Record<TextSlot, Int32Array>;
  for (const k of TEXT_SLOTS) out[k] = tokenizer.encodePadded(prompts[k], { length: opts.length ?? CLIP_CONTEXT_LENGTH, pad: opts.pad ?? 'end' });
  return out;
}

/**
 * The tokenizer of an engines folder: the manifest's `tokenizer.path` (a diffusers tokenizer/ folder, copied by
 * tools/export) with its `padTokenId`, else `vocab` (CLIP's bpe_simple_vocab_16e6.txt.gz or a tokenizer folder)
 * padded with the end token.
 */
export async function engineTokenizer(enginesDir: string, opts: { vocab?: string; manifest?: EngineManifest } = {}): Promise<{ tokenizer: ClipTokenizer; pad: 'end' | number; length: number; source: string }> {
  const manifest = opts.manifest ?? checkEnginesFolder(enginesDir).manifest;
  const length = manifest.model.maxTokens;
  const t = manifest.tokenizer;
  if (t?.path) {
    const p = path.resolve(enginesDir, t.path);
    return { tokenizer: await ClipTokenizer.fromFile(p), pad: t.padTokenId ?? 'end', length, source: p };
  }
  if (opts.vocab) return { tokenizer: await ClipTokenizer.fromFile(opts.vocab), pad: t?.padTokenId ?? 'end', length, source: opts.vocab };
  throw new FaceG2EError('E_NO_ENGINE', `${path.join(enginesDir, MANIFEST_FILE)} names no tokenizer (tools/export copies the model's tokenizer/ and records it as "tokenizer"); re-export, or pass the CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz)`);
}

/** `diffusion.text` for the TensorRT denoiser: the token ids of the five prompts. */
export async function textConditioning(enginesDir: string, prompts: PromptSetOptions, opts: { vocab?: string; manifest?: EngineManifest } = {}): Promise<NonNullable<PipelineDiffusion['text']>> {
  const manifest = opts.manifest ?? checkEnginesFolder(enginesDir).manifest;
  const tok = await engineTokenizer(enginesDir, { ...opts, manifest });
  return { tokens: manifest.model.maxTokens, embedDim: manifest.model.textEmbedDim, ids: tokenizePrompts(promptSet(prompts), tok.tokenizer, { length: tok.length, pad: tok.pad }) };
}

/**
 * Canny edges as OpenCV's `cv2.Canny(img, low, high)` computes them (the ControlNet canny annotator): 3×3 Sobel
 * with replicated borders, per pixel the channel of largest |dx|+|dy| (L1 magnitude), non-maximum suppression in
 * four directions (tan 22.5° sectors), hysteresis from pixels above `high` through 8-connected pixels above `low`.
 * `data`: 8-bit HWC; returns 0/255 per pixel.
 */
export function cannyEdges(data: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: number, low: number, high: number): Uint8Array {
  if (!(width > 0 && height > 0 && channels > 0) || data.length !== width * height * channels)
    throw new FaceG2EError('E_INVALID_ARGUMENT', `cannyEdges: expected ${width}x${height}x${channels} bytes, got ${data.length}`);
  if (low > high) [low, high] = [high, low];
  const lo = Math.floor(low);
  const hi = Math.floor(high);
  const W = width;
  const H = height;
  const mag = new Int32Array(W * H);
  const gx = new Int32Array(W * H);
  const gy = new Int32Array(W * H);
  const at = (x: number, y: number, c: number) => data[(Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))) * channels + c];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let best = -1;
      for (let c = 0; c < channels; c++) {
        const dx = at(x + 1, y - 1, c) + 2 * at(x + 1, y, c) + at(x + 1, y + 1, c) - at(x - 1, y - 1, c) - 2 * at(x - 1, y, c) - at(x - 1, y + 1, c);
        const dy = at(x - 1, y + 1, c) + 2 * at(x, y + 1, c) + at(x + 1, y + 1, c) - at(x - 1, y - 1, c) - 2 * at(x, y - 1, c) - at(x + 1, y - 1, c);
        const m = Math.abs(dx) + Math.abs(dy);
        if (m > best) {
          best = m;
          gx[y * W + x] = dx;
          gy[y * W + x] = dy;
        }
      }
      mag[y * W + x] = best;
    }
  const M = (x: number, y: number) => (x < 0 || y < 0 || x >= W || y >= H ? 0 : mag[y * W + x]);
  const SHIFT = 15;
  const TG22 = Math.round(0.4142135623730950488 * (1 << SHIFT));
  // 0: candidate (above low, a local maximum), 1: not an edge, 2: edge
  const map = new Uint8Array(W * H).fill(1);
  const stack: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const m = mag[i];
      if (m <= lo) continue;
      const xs = gx[i];
      const ys = gy[i];
      const ax = Math.abs(xs);
      const ay = Math.abs(ys) * (1 << SHIFT);
      const tg22x = ax * TG22;
      let max = false;
      if (ay < tg22x) max = m > M(x - 1, y) && m >= M(x + 1, y);
      else {
        const tg67x = tg22x + ax * (1 << (SHIFT + 1));
        if (ay > tg67x) max = m > M(x, y - 1) && m >= M(x, y + 1);
        else {
          const s = (xs < 0) !== (ys < 0) ? -1 : 1;
          max = m > M(x - s, y - 1) && m > M(x + s, y + 1);
        }
      }
      if (!max) continue;
      if (m > hi) {
        map[i] = 2;
        stack.push(i);
      } else map[i] = 0;
    }
  while (stack.length) {
    const i = stack.pop()!;
    const x = i % W;
    const y = (i - x) / W;
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
        const j = yy * W + xx;
        if (map[j] === 0) {
          map[j] = 2;
          stack.push(j);
        }
      }
  }
  const out = new Uint8Array(W * H);
  for (let i = 0; i < W * H; i++) out[i] = map[i] === 2 ? 255 : 0;
  return out;
}

/**
 * The UV layout's wireframe: every UV triangle edge drawn one pixel wide into a `size`×`size` map (row 0 at
 * v = 1, as the textures), 1 on the lines, 0 elsewhere. The texture prior's control when no template is given.
 */
export function uvLayoutEdges(uv: Float32Array, uvTri: Int32Array | Uint32Array, size: number): Uint8Array {
  const out = new Uint8Array(size * size);
  const seen = new Set<number>();
  const U = uv.length / 2;
  const px = (k: number) => [uv[2 * k] * size - 0.5, (1 - uv[2 * k + 1]) * size - 0.5];
  const line = (a: number, b: number) => {
    const key = Math.min(a, b) * U + Math.max(a, b);
    if (seen.has(key)) return;
    seen.add(key);
    const [x0, y0] = px(a);
    const [x1, y1] = px(b);
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let s = 0; s <= steps; s++) {
      const x = Math.round(x0 + ((x1 - x0) * s) / steps);
      const y = Math.round(y0 + ((y1 - y0) * s) / steps);
      if (x >= 0 && y >= 0 && x < size && y < size) out[y * size + x] = 1;
    }
  };
  for (let t = 0; t + 2 < uvTri.length; t += 3) {
    const [a, b, c] = [uvTri[t], uvTri[t + 1], uvTri[t + 2]];
    if (a >= U || b >= U || c >= U) throw new FaceG2EError('E_INVALID_ARGUMENT', `uvLayoutEdges: uvTri[${t}..${t + 2}] indexes past the ${U} UVs`);
    line(a, b);
    line(b, c);
    line(c, a);
  }
  return out;
}

/**
 * The texture prior's control image `[size, size, 3]` in [0, 1]: the canny edges of `template` (an image file in
 * the model's UV layout, resized to size×size) or, without a template, the UV layout's wireframe.
 */
export async function texturePriorControl(o: { size: number; template?: string | null; cannyLow?: number; cannyHigh?: number; uv?: Float32Array; uvTri?: Int32Array | Uint32Array }): Promise<{ control: Float32Array; controlSize: number }> {
  const S = o.size;
  let edges: Uint8Array;
  let scale = 1;
  if (o.template) {
    // sharp is loaded here, not at the top: bundled GPU tests and benchmarks that import this module run without it
    const sharp = (await import('sharp')).default;
    let raw: { data: Buffer; info: sharpType.OutputInfo };
    try {
      raw = await sharp(o.template).removeAlpha().toColourspace('srgb').resize(S, S, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new FaceG2EError('E_IO', `texture.prior.template: cannot read ${o.template} (${(e as Error).message})`, { cause: e });
    }
    edges = cannyEdges(raw.data, raw.info.width, raw.info.height, raw.info.channels, o.cannyLow ?? 100, o.cannyHigh ?? 200);
    scale = 1 / 255;
  } else {
    if (!o.uv || !o.uvTri) throw new FaceG2EError('E_INVALID_ARGUMENT', 'texturePriorControl: a template image or the model UV layout (uv, uvTri) is needed');
    edges = uvLayoutEdges(o.uv, o.uvTri, S);
  }
  const control = new Float32Array(S * S * 3);
  for (let i = 0; i < S * S; i++) control[3 * i] = control[3 * i + 1] = control[3 * i + 2] = edges[i] * scale;
  return { control, controlSize: S };
}

export interface TensorrtConditioningOptions extends Omit<PromptSetOptions, 'texturePrior'> {
  /** The built engines folder. */
  engines: string;
  prior: { type: 'canny' | 'unet' | 'none' | string; prompt?: string | null; template?: string | null; cannyLow?: number; cannyHigh?: number; weight?: number };
  /** Side of the RGB UV texture (the prior's control is made at this size). */
  textureSize: number;
  /** The model's UV layout (the wireframe control when no template is given). */
  uv: Float32Array;
  uvTri: Int32Array | Uint32Array;
  /** CLIP's vocabulary when the manifest names no tokenizer. */
  vocab?: string;
}

/** `diffusion.text` and `texture.prior` additions of a TensorRT run (what lib/pipeline.ts merges into the native input). */
export async function tensorrtConditioning(o: TensorrtConditioningOptions): Promise<{ text: NonNullable<PipelineDiffusion['text']>; prior: NonNullable<PipelineTexture['prior']> }> {
  const { manifest } = checkEnginesFolder(o.engines);
  const type = o.prior.type;
  const priorPrompt = o.prior.prompt ?? (type === 'unet' ? TEXTURE_PRIOR_PROMPTS.unet : TEXTURE_PRIOR_PROMPTS.canny);
  const text = await textConditioning(o.engines, { prompt: o.prompt, negativePrompt: o.negativePrompt, viewPrompts: o.viewPrompts, texturePrior: priorPrompt }, { vocab: o.vocab, manifest });
  const prior: NonNullable<PipelineTexture['prior']> = { type, enabled: type !== 'none' && (o.prior.weight ?? 1) > 0 };
  if (prior.enabled && type !== 'unet') Object.assign(prior, await texturePriorControl({ size: o.textureSize, template: o.prior.template, cannyLow: o.prior.cannyLow, cannyHigh: o.prior.cannyHigh, uv: o.uv, uvTri: o.uvTri }));
  return { text, prior };
}
