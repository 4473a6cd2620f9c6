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
 */
import { loadNative, cancelTokenFor, type CancelHandle, type DeviceName } from './native';
import { callNative, fromNative } from './errors';

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
  /** 'target': the target denoiser (reconstruction, tests); 'tensorrt' is not wired into this binding yet (E_NO_ENGINE). */
  denoiser?: 'target' | 'tensorrt';
  /** Codec for the target denoiser: 'identity' (3 latent channels, factor 1) or 'pooling' (4 channels, 8×8). Default 'identity'. */
  codec?: 'identity' | 'pooling';
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
  /** Text embeddings `[tokens*embedDim]` (network denoisers only; the target denoiser needs none). */
  text?: {
    tokens?: number;
    embedDim?: number;
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
    type?: string;
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
