/**
 * Score distillation (SDS) maths: diffusers scheduler configs and their ᾱ tables, the timestep schedule,
 * the fused SDS step (noise + CFG batch, guidance, weighting, clipping/normalisation, NaN detection), the
 * three gradient paths (latent, image-space target, linear latent↔RGB) and the fused optimisers (Adam,
 * AdamW, Adan) with learning-rate schedules and gradient-norm clipping.
 *
 * These wrappers run one op at a time on typed arrays (`device: 'cpu' | 'cuda'`); the pipeline uses the
 * same kernels through the C++ API (native/sds/*.hpp). Equations and conventions: docs/sds.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNative, type DeviceName } from './native';
import { callNative, FaceG2EError, type ErrorDetail } from './errors';

// ---------------------------------------------------------------- native slice

type Num = number | bigint;

export interface NativeSds {
  sdsSchedulerTables(o: { betaSchedule: string; betaStart: number; betaEnd: number; numTrainTimesteps: number }): { betas: Float32Array; alphasCumprod: Float32Array };
  sdsTimesteps(o: Record<string, unknown>): Int32Array;
  sdsCoefficients(o: { alphasCumprod: Float32Array; t: number; weighting?: string; gradScale?: number }): SdsCoefficients;
  sdsNoise(o: Record<string, unknown>): { eps: Float32Array; xt?: Float32Array; xtHalf?: Uint16Array };
  sdsGrad(o: Record<string, unknown>): {
    grad: Float32Array; x0Pred?: Float32Array; epsPred?: Float32Array; flags: number; normSqBefore: number; normSqAfter: number; t: number; weight: number;
  };
  sdsImageLoss(o: Record<string, unknown>): { grad: Float32Array; loss: number; flags: number };
  sdsLatentRgbMap(o?: Record<string, unknown>): LatentRgbMap;
  sdsLatentRgb(o: Record<string, unknown>): Float32Array;
  sdsOptimStep(o: Record<string, unknown>): { flags: number; gradNorm?: number };
  sdsLrAt(o: Record<string, unknown>): Float64Array;
  sdsLaunchCount(): number;
  sdsResetLaunchCount(): void;
  sdsFloatToHalf(v: Float32Array): Uint16Array;
  sdsHalfToFloat(v: Uint16Array): Float32Array;
  sdsCheckFlags(flags: number, context?: string): void;
  sdsBenchTexturePhase(o: Record<string, unknown>): { deviceUsPerIter: number; hostUsPerIter: number; launchesPerIter: number };
}

function native(): NativeSds {
  const n = loadNative<NativeSds>();
  if (typeof n.sdsGrad !== 'function')
    throw new FaceG2EError('E_NATIVE_LOAD', 'faceg2e-native: this addon was built without the sds domain (FACEG2E_DOMAINS); rebuild it with sds');
  return n;
}

// ---------------------------------------------------------------- scheduler config

export type BetaSchedule = 'linear' | 'scaled_linear';
export type PredictionType = 'epsilon' | 'v_prediction';

/** The part of a diffusers `scheduler_config.json` that SDS uses. */
export interface SchedulerConfig {
  betaSchedule: BetaSchedule;
  betaStart: number;
  betaEnd: number;
  numTrainTimesteps: number;
  predictionType: PredictionType;
}

/** diffusers' defaults (DDPMScheduler) for fields a config leaves out. */
export const SCHEDULER_DEFAULTS: SchedulerConfig = {
  betaSchedule: 'linear',
  betaStart: 0.0001,
  betaEnd: 0.02,
  numTrainTimesteps: 1000,
  predictionType: 'epsilon',
};

/** Stable Diffusion 1.x/2.x-base: scaled_linear 0.00085 → 0.012 over 1000 steps, ε-prediction. */
export const SD_SCHEDULER: SchedulerConfig = {
  betaSchedule: 'scaled_linear',
  betaStart: 0.00085,
  betaEnd: 0.012,
  numTrainTimesteps: 1000,
  predictionType: 'epsilon',
};

/**
 * Parse a diffusers scheduler config: a path to `scheduler_config.json`, to a folder holding it, or to a
 * model folder with `scheduler/scheduler_config.json`; or the parsed object. Fields SDS does not use
 * (`_class_name`, `clip_sample`, `steps_offset`, `timestep_spacing`, ...) are ignored; fields that change
 * the training noise schedule in ways not implemented (`trained_betas`, `rescale_betas_zero_snr`, other
 * `beta_schedule`s or `prediction_type`s) are rejected with E_CONFIG naming the field.
 */
export function loadSchedulerConfig(src: string | Record<string, unknown>): SchedulerConfig {
  let obj: Record<string, unknown>;
  let where = 'scheduler config';
  if (typeof src === 'string') {
    let file = src;
    try {
      if (fs.statSync(file).isDirectory()) {
        const direct = path.join(file, 'scheduler_config.json');
        const nested = path.join(file, 'scheduler', 'scheduler_config.json');
        file = fs.existsSync(direct) ? direct : nested;
      }
    } catch {
      /* reported by the read below */
    }
    where = file;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new FaceG2EError('E_IO', `${file}: cannot read the scheduler config (${(e as Error).message})`, { cause: e });
    }
    try {
      obj = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new FaceG2EError('E_FORMAT', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FaceG2EError('E_FORMAT', `${file}: expected a JSON object`);
  } else if (src !== null && typeof src === 'object' && !Array.isArray(src)) {
    obj = src;
  } else {
    throw new FaceG2EError('E_INVALID_ARGUMENT', 'loadSchedulerConfig: expected a path or a config object');
  }

  const details: ErrorDetail[] = [];
  const bad = (field: string, message: string) => details.push({ path: field, message });
  const numField = (field: string, def: number, ok: (v: number) => boolean, expect: string): number => {
    const v = obj[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      bad(field, `expected ${expect}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  };
  const c: SchedulerConfig = { ...SCHEDULER_DEFAULTS };
  const bs = obj.beta_schedule ?? SCHEDULER_DEFAULTS.betaSchedule;
  if (bs === 'linear' || bs === 'scaled_linear') c.betaSchedule = bs;
  else bad('beta_schedule', `expected 'linear' or 'scaled_linear', got ${JSON.stringify(bs)} (other schedules are not supported)`);
  const pt = obj.prediction_type ?? SCHEDULER_DEFAULTS.predictionType;
  if (pt === 'epsilon' || pt === 'v_prediction') c.predictionType = pt;
  else bad('prediction_type', `expected 'epsilon' or 'v_prediction', got ${JSON.stringify(pt)}`);
  c.betaStart = numField('beta_start', c.betaStart, (v) => v > 0 && v < 1, 'a number in (0, 1)');
  c.betaEnd = numField('beta_end', c.betaEnd, (v) => v > 0 && v < 1, 'a number in (0, 1)');
  c.numTrainTimesteps = numField('num_train_timesteps', c.numTrainTimesteps, (v) => Number.isInteger(v) && v >= 2 && v <= 100000, 'an integer in [2, 100000]');
  if (!details.some((d) => d.path === 'beta_start' || d.path === 'beta_end') && c.betaStart > c.betaEnd)
    bad('beta_start', `expected <= beta_end (${c.betaEnd}), got ${c.betaStart}`);
  if (obj.trained_betas !== undefined && obj.trained_betas !== null) bad('trained_betas', 'explicit trained_betas are not supported; expected null');
  if (obj.rescale_betas_zero_snr === true) bad('rescale_betas_zero_snr', 'zero-terminal-SNR rescaling is not supported; expected false');
  if (details.length)
    throw new FaceG2EError('E_CONFIG', `${where}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details });
  return c;
}

/** β_t and ᾱ_t = ∏_{i≤t}(1−β_i), t = 0..N−1, computed in float64 and stored as float32. */
export function schedulerTables(c: SchedulerConfig): { betas: Float32Array; alphasCumprod: Float32Array } {
  return callNative(() =>
    native().sdsSchedulerTables({ betaSchedule: c.betaSchedule, betaStart: c.betaStart, betaEnd: c.betaEnd, numTrainTimesteps: c.numTrainTimesteps }),
  );
}

/** A scheduler config with its tables. */
export class NoiseScheduler {
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  constructor(readonly config: SchedulerConfig) {
    const t = schedulerTables(config);
    this.betas = t.betas;
    this.alphasCumprod = t.alphasCumprod;
  }
  static load(src: string | Record<string, unknown>): NoiseScheduler {
    return new NoiseScheduler(loadSchedulerConfig(src));
  }
  get numTrainTimesteps(): number {
    return this.config.numTrainTimesteps;
  }
  alphaBar(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.alphasCumprod.length)
      throw new FaceG2EError('E_INVALID_ARGUMENT', `t: expected an integer in [0, ${this.alphasCumprod.length - 1}], got ${t}`);
    return this.alphasCumprod[t];
  }
}

// ---------------------------------------------------------------- timesteps

export interface TimestepSchedule {
  /** 'uniform': t ~ U{⌊N·tMin⌋..⌊N·tMax⌋}; 'linear': FaceG2E's anneal from tMax (first iteration) to tMin (last). */
  mode: 'uniform' | 'linear';
  tMin?: number;
  tMax?: number;
  totalIterations?: number;
  /** linear mode: the fraction moves by jitter·(2u−1), u from Philox (seed, stream timestep, iteration). */
  jitter?: number;
  numTrainTimesteps?: number;
}

/** Timesteps of iterations first..first+count−1; deterministic in (seed, iteration). */
export function sampleTimesteps(s: TimestepSchedule, seed: Num, first = 0, count = 1): Int32Array {
  return callNative(() => native().sdsTimesteps({ ...s, seed, first, count }));
}
export function sampleTimestep(s: TimestepSchedule, seed: Num, iteration: number): number {
  return sampleTimesteps(s, seed, iteration, 1)[0];
}

// ---------------------------------------------------------------- the SDS step

export type Weighting = '1-alpha' | 'uniform' | 'fantasia3d';
export type GuidanceAnchor = 'uncond' | 'cond';

export interface SdsCoefficients {
  t: number;
  alphaBar: number;
  sqrtAlphaBar: number;
  sqrtOneMinusAlphaBar: number;
  weight: number;
}

export function sdsCoefficients(alphasCumprod: Float32Array, t: number, weighting: Weighting = '1-alpha', gradScale = 1): SdsCoefficients {
  return callNative(() => native().sdsCoefficients({ alphasCumprod, t, weighting, gradScale }));
}

export interface SdsNoiseOptions {
  x0: Float32Array;
  alphasCumprod: Float32Array;
  t: number;
  seed: Num;
  /** ε_i is Philox normal draw iteration·n + i of (seed, stream sdsNoise). */
  iteration?: Num;
  /** Overrides iteration·n. */
  noiseOffset?: Num;
  /** 2 (classifier-free guidance batch [uncond | cond]) or 1. */
  copies?: 1 | 2;
  /** x_t as fp16 bits (Uint16Array) instead of float32. */
  half?: boolean;
  device?: DeviceName;
}

export function sdsNoise(o: SdsNoiseOptions): { eps: Float32Array; xt?: Float32Array; xtHalf?: Uint16Array } {
  return callNative(() => native().sdsNoise({ ...o }));
}

export interface SdsGradOptions {
  x0: Float32Array;
  eps: Float32Array;
  /** Denoiser output, [uncond | cond] for copies = 2. */
  modelOut?: Float32Array;
  modelOutHalf?: Uint16Array;
  copies?: 1 | 2;
  alphasCumprod: Float32Array;
  t: number;
  prediction?: PredictionType;
  guidanceAnchor?: GuidanceAnchor;
  guidanceScale?: number;
  weighting?: Weighting;
  gradScale?: number;
  /** > 0: clamp the gradient elementwise to [−clamp, clamp]. */
  clamp?: number;
  /** Divide the gradient by its L2 norm (times normScale). */
  normalize?: boolean;
  normScale?: number;
  x0Pred?: boolean;
  epsPred?: boolean;
  device?: DeviceName;
  /** Return flags instead of throwing E_NUMERICAL on NaN/Inf. */
  allowNonFinite?: boolean;
  /** Included in the E_NUMERICAL message. */
  context?: string;
}

export interface SdsGradResult {
  grad: Float32Array;
  x0Pred?: Float32Array;
  epsPred?: Float32Array;
  flags: number;
  normSqBefore: number;
  normSqAfter: number;
  t: number;
  weight: number;
}

export function sdsGrad(o: SdsGradOptions): SdsGradResult {
  const { allowNonFinite, context, ...rest } = o;
  const r = callNative(() => native().sdsGrad({ ...rest }));
  if (!allowNonFinite) checkNumericalFlags(r.flags, context ?? `sdsGrad at t=${o.t}`);
  return r;
}

/** Path (b): loss = weight·Σ(render − target)², grad = 2·weight·(render − target), target = decode(x̂0) held constant. */
export function imageSpaceLoss(o: { render: Float32Array; target: Float32Array; weight: number; device?: DeviceName; allowNonFinite?: boolean }): {
  grad: Float32Array;
  loss: number;
  flags: number;
} {
  const r = callNative(() => native().sdsImageLoss({ render: o.render, target: o.target, weight: o.weight, device: o.device }));
  if (!o.allowNonFinite) checkNumericalFlags(r.flags, 'the image-space SDS loss');
  return r;
}

/** Throws FaceG2EError E_NUMERICAL naming what went non-finite when `flags` is non-zero. */
export function checkNumericalFlags(flags: number, context = ''): void {
  if (flags) callNative(() => native().sdsCheckFlags(flags, context));
}

export const NumericalFlag = { sds: 1, loss: 2, optimizer: 4 } as const;

// ---------------------------------------------------------------- path (c): linear latent <-> RGB

export interface LatentRgbMap {
  /** 4×3 row-major: latent channel k → colour c. */
  matrix: Float32Array;
  bias: Float32Array;
  /** 4×3 row-major least-squares inverse P = M (MᵀM)⁻¹ (z = P(rgb − b)). */
  pinv: Float32Array;
}

export interface LatentRgbMapOptions {
  /** RGB in [0, 1] instead of [−1, 1] (default SD1.x map only). */
  range01?: boolean;
  matrix?: Float32Array;
  bias?: Float32Array;
}

export function latentRgbMap(o: LatentRgbMapOptions = {}): LatentRgbMap {
  return callNative(() => native().sdsLatentRgbMap({ ...o }));
}

export interface LatentRgbOptions extends LatentRgbMapOptions {
  batch?: number;
  latentHeight: number;
  latentWidth: number;
  /** RGB pixels per latent pixel along each axis (8 for SD's VAE). */
  factor?: number;
  /** RGB as [B,H,W,3] instead of [B,3,H,W]. Latents are always [B,4,h,w]. */
  channelsLast?: boolean;
  device?: DeviceName;
}

/** Approximate decode: rgb = Mᵀz + b, nearest-upsampled by `factor`. */
export function latentToRgbLinear(z: Float32Array, o: LatentRgbOptions): Float32Array {
  return callNative(() => native().sdsLatentRgb({ ...o, op: 'decode', input: z }));
}
/** Approximate encode: z = P(avgpool_factor(rgb) − b). */
export function rgbToLatentLinear(rgb: Float32Array, o: LatentRgbOptions): Float32Array {
  return callNative(() => native().sdsLatentRgb({ ...o, op: 'encode', input: rgb }));
}
/** The adjoint of rgbToLatentLinear: a latent gradient to an RGB gradient (Pᵀ g / factor²). */
export function rgbToLatentLinearBackward(gz: Float32Array, o: LatentRgbOptions): Float32Array {
  return callNative(() => native().sdsLatentRgb({ ...o, op: 'encodeBackward', input: gz }));
}

// ---------------------------------------------------------------- learning-rate schedules

export interface LrSchedule {
  schedule: 'constant' | 'step' | 'cosine';
  lr: number;
  /** step: lr·γ^⌊step/stepSize⌋ */
  gamma?: number;
  stepSize?: number;
  /** cosine: minLr + (lr − minLr)(1 + cos(π·min(step, T)/T))/2 */
  totalSteps?: number;
  minLr?: number;
}

/** Learning rates of 0-based steps first..first+count−1. */
export function lrSchedule(s: LrSchedule, first = 0, count = 1): Float64Array {
  return callNative(() => native().sdsLrAt({ ...s, first, count }));
}
export function lrAt(s: LrSchedule, step: number): number {
  return lrSchedule(s, step, 1)[0];
}

// ---------------------------------------------------------------- optimisers

export type OptimizerKind = 'adam' | 'adamw' | 'adan';

export interface OptimizerConfig {
  optimizer: OptimizerKind;
  beta1?: number;
  beta2?: number;
  /** Adan only. Adan's defaults are the reference implementation's (0.98, 0.92, 0.99). */
  beta3?: number;
  eps?: number;
  weightDecay?: number;
  /** Adan: decoupled decay p·(1 − lr·wd) before the update instead of the proximal p/(1 + lr·wd) after it. */
  noProx?: boolean;
  /** > 0: clip the global gradient norm of the group to this value. */
  maxGradNorm?: number;
  clipEps?: number;
}

export interface OptimizerTensorState {
  param: Float32Array;
  grad: Float32Array;
  m: Float32Array;
  v: Float32Array;
  d?: Float32Array;
  prev?: Float32Array;
}

/** One fused step over a parameter group; params and state are updated in place. */
export function optimizerStep(
  c: OptimizerConfig,
  tensors: OptimizerTensorState[],
  o: { step: number; lr: number; gradScale?: number; gradNorm?: boolean; device?: DeviceName },
): { flags: number; gradNorm?: number } {
  return callNative(() => native().sdsOptimStep({ ...c, ...o, tensors }));
}

/**
 * A parameter group with its optimiser state in host arrays (for tools and tests; the pipeline keeps the
 * state in device buffers through the C++ API).
 */
export class Optimizer {
  readonly state: OptimizerTensorState[];
  private steps = 0;
  constructor(readonly config: OptimizerConfig, params: Float32Array[], readonly lr: LrSchedule, readonly device: DeviceName = 'cpu') {
    const adan = config.optimizer === 'adan';
    this.state = params.map((p) => ({
      param: p,
      grad: new Float32Array(p.length),
      m: new Float32Array(p.length),
      v: new Float32Array(p.length),
      ...(adan ? { d: new Float32Array(p.length), prev: new Float32Array(p.length) } : {}),
    }));
  }
  get stepCount(): number {
    return this.steps;
  }
  /** Apply one step with these gradients (one per parameter). Throws E_NUMERICAL on NaN/Inf gradients. */
  step(grads: Float32Array[], o: { gradScale?: number } = {}): { lr: number; gradNorm?: number } {
    if (grads.length !== this.state.length)
      throw new FaceG2EError('E_INVALID_ARGUMENT', `grads: expected ${this.state.length} arrays, got ${grads.length}`);
    grads.forEach((g, i) => {
      if (g.length !== this.state[i].param.length)
        throw new FaceG2EError('E_INVALID_ARGUMENT', `grads[${i}]: expected ${this.state[i].param.length} elements, got ${g.length}`);
      this.state[i].grad.set(g);
    });
    const lr = lrAt(this.lr, this.steps);
    const r = optimizerStep(this.config, this.state, { step: this.steps + 1, lr, gradScale: o.gradScale, gradNorm: (this.config.maxGradNorm ?? 0) > 0, device: this.device });
    checkNumericalFlags(r.flags, `optimizer step ${this.steps + 1}`);
    this.steps++;
    return { lr, gradNorm: r.gradNorm };
  }
}

// ---------------------------------------------------------------- fp16, launches, benchmark

export function floatToHalf(v: Float32Array): Uint16Array {
  return callNative(() => native().sdsFloatToHalf(v));
}
export function halfToFloat(v: Uint16Array): Float32Array {
  return callNative(() => native().sdsHalfToFloat(v));
}

/** Kernels the sds launchers have enqueued (CUDA) or run (CPU twins) since the last reset. */
export function launchCount(): number {
  return native().sdsLaunchCount();
}
export function resetLaunchCount(): void {
  native().sdsResetLaunchCount();
}

export interface BenchTextureOptions {
  iterations?: number;
  warmup?: number;
  latentElements?: number;
  textureElements?: number;
  normalize?: boolean;
  clamp?: number;
  x0Pred?: boolean;
  half?: boolean;
  optimizer?: OptimizerKind;
  maxGradNorm?: number;
}

/** CUDA only: per-iteration device time (µs) and launches of the texture phase's SDS + optimiser maths. */
export function benchTexturePhase(o: BenchTextureOptions = {}): { deviceUsPerIter: number; hostUsPerIter: number; launchesPerIter: number } {
  return callNative(() => native().sdsBenchTexturePhase({ ...o }));
}
