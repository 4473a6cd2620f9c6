/**
 * The text-to-head job as a library call:
 *
 *   const result = await generate(config, { onProgress, signal });
 *
 * Data flows one way: the config (a resolved RunConfig, or any object `resolveConfig` accepts) is validated,
 * the model and targets are read here, the geometry and texture phases run natively on a worker thread
 * (lib/pipeline-native.ts → native/pipeline), and the results come back as typed arrays. `generate` writes
 * nothing; `runToDirectory` (used by `faceg2e-native run`) also writes the outputs atomically.
 *
 * Several runs in one process do not interfere: each has its own native pipeline, stream and workspaces.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FaceG2EError, fromNative } from './errors';
import { resolveConfig, type RunConfig } from './config';
import { resolveDevice, cudaStatus, type DeviceName } from './device';
import { loadModel, importModel, type HeadModel } from './models/index';
import { readImageFloat } from './io/image';
import { readCoefficients, type Coefficients } from './outputs/coefficients';
import type { ImageInput } from './outputs/image';
import type { MeshData } from './outputs/mesh';
import { readManifest } from './engines';
import { tensorrtStatus } from './cli/doctor';
import { render, shFromDirection, type RenderResult } from './raster';
import { lookAt, intrinsicsFromFov, meshBounds, type PinholeCamera, type Vec3 } from './camera';
import {
  runPipelineNative,
  tensorrtConditioning,
  type PipelineNativeInput,
  type PipelineNativeResult,
  type PipelineProgress,
  type PipelineCheckpoint,
  type PipelineCamera,
} from './pipeline-native';

export type { PipelineCheckpoint, PipelineProgress };

export interface GenerateProgress extends PipelineProgress {
  /** Iterations per second over the phase so far. */
  itPerSecond: number;
}

export interface GenerateOptions {
  onProgress?: (p: GenerateProgress) => void;
  signal?: AbortSignal;
  /** Resume from a checkpoint written by an interrupted run of the same config. */
  checkpoint?: PipelineCheckpoint;
  /** Base folder for relative paths in a config object that is not yet resolved (default: the working directory). */
  baseDir?: string;
}

export interface GenerateResult {
  config: RunConfig;
  device: DeviceName;
  model: { file: string; name: string; metresPerUnit: number; units: string };
  /** The final head, in model units, with its UV layout. */
  mesh: MeshData;
  coefficients: Coefficients;
  /** RGB UV texture, row 0 at the top, float in [0, 1]. */
  texture?: ImageInput;
  /** Preview renders, row-major: one row per `output.previews.kinds`, one column per `output.previews.views`. */
  previews: ImageInput[];
  /** Turntable frames. */
  turntable: ImageInput[];
  metrics: {
    geometry: { vertexRmseRatio: number | null; vertexRmseInitial: number | null; vertexRmseFinal: number | null };
    texture: { psnrDb: number | null; visibleTexels: number };
  };
  timings: { setupMs: number; geometryMs: number; textureMs: number; previewsMs: number };
  profile?: PipelineNativeResult['profile'];
  curves?: PipelineNativeResult['curves'];
}

/** Thrown (code E_CANCELLED) when the signal aborts a run; carries the checkpoint to resume from. */
export class RunCancelledError extends FaceG2EError {
  readonly checkpoint: PipelineCheckpoint;
  constructor(checkpoint: PipelineCheckpoint) {
    super('E_CANCELLED', `the run was cancelled during the ${checkpoint.phase} phase at iteration ${checkpoint.iteration}`);
    this.checkpoint = checkpoint;
  }
}

function ensureResolved(config: RunConfig | unknown, baseDir?: string): RunConfig {
  // Resolving is idempotent (paths are absolute after the first pass), so a resolved config is simply checked again.
  return resolveConfig(config, {}, { baseDir: baseDir ?? process.cwd() });
}

/** The paragraph a user sees when the real (TensorRT) job cannot run here. */
function tensorrtProblem(cfg: RunConfig): FaceG2EError | undefined {
  if (cfg.diffusion.backend !== 'tensorrt') return undefined;
  const howTo =
    'Build them on a machine with an NVIDIA GPU and TensorRT 10 or 11: export your Stable Diffusion checkpoint and ControlNets to ONNX with ' +
    '`python tools/export/export.py --model <sd dir> --controlnet-depth <dir> --out onnx/` (see docs/export.md), then run ' +
    '`npx faceg2e-native engines build --onnx onnx/ --out <engines dir>` and point `diffusion.engines` at that folder. ' +
    'To try the pipeline without engines, run examples/reconstruct-ict.json (the target denoiser).';
  const dir = cfg.diffusion.engines;
  if (!dir) return new FaceG2EError('E_NO_ENGINE', `this config uses the TensorRT diffusion backend but sets no diffusion.engines folder. ${howTo}`);
  if (!fs.existsSync(dir)) return new FaceG2EError('E_NO_ENGINE', `the TensorRT engines folder ${dir} (diffusion.engines) does not exist. ${howTo}`);
  try {
    readManifest(dir);
  } catch (e) {
    return new FaceG2EError('E_NO_ENGINE', `the engines folder ${dir} (diffusion.engines) is not usable: ${(e as Error).message}. ${howTo}`);
  }
  const trt = tensorrtStatus();
  if (!trt.found) return new FaceG2EError('E_NO_TENSORRT', `TensorRT is not installed on this machine (${trt.error ?? 'libnvinfer not found'}), so the engines in ${dir} cannot run. Install TensorRT 10 or 11 (libnvinfer) and check with \`npx faceg2e-native doctor\`.`);
  return undefined;
}

function cameraSet(cfg: RunConfig): PipelineCamera[] {
  const f = cfg.texture.cameras.fixed;
  const out: PipelineCamera[] = [];
  for (const distance of f.distances) for (const elevation of f.elevations) for (const azimuth of f.azimuths) out.push({ elevation, azimuth, distance });
  return out;
}

function lrDecay(d: RunConfig['geometry']['lrDecay'], iterations: number) {
  return { type: d.type, stepEvery: d.stepEvery, gamma: d.gamma, minFactor: d.minFactor, totalSteps: iterations };
}

function timesteps(t: RunConfig['geometry']['timestep']) {
  return { schedule: t.schedule === 'random' ? ('uniform' as const) : ('linear' as const), max: t.max, min: t.min };
}

/** Map the resolved config onto the native pipeline's input. */
export async function nativeInput(cfg: RunConfig, device: DeviceName, model: HeadModel): Promise<PipelineNativeInput> {
  const g = cfg.geometry;
  const t = cfg.texture;
  const ki = g.identityComponents === null ? model.identityNames.length : Math.min(g.identityComponents, model.identityNames.length);
  const ke = model.expressionNames.length;
  const V = model.vertexCount;
  const identityBasis = ki === model.identityNames.length ? model.identityBasis : model.identityBasis.subarray(0, ki * V * 3);
  const input: PipelineNativeInput = {
    device,
    seed: cfg.seed,
    profile: cfg.profile,
    model: {
      template: model.template,
      tri: model.tri,
      uv: model.uv,
      uvTri: model.uvTri,
      identityCount: ki,
      identityBasis,
      expressionCount: ke,
      expressionBasis: model.expressionBasis,
      identityStd: model.identityScale.subarray(0, ki),
      expressionStd: model.expressionScale,
      metresPerUnit: model.metresPerUnit,
    },
    diffusion: {
      denoiser: cfg.diffusion.backend,
      codec: cfg.diffusion.codec === 'vae' ? undefined : cfg.diffusion.codec,
      scheduler: { ...cfg.diffusion.scheduler },
      weighting: cfg.diffusion.sdsWeighting,
      frontMaxAzimuth: cfg.viewPrompts.frontMaxAzimuth,
      backMinAzimuth: cfg.viewPrompts.backMinAzimuth,
    },
    geometry: {
      enabled: g.enabled,
      iterations: g.iterations,
      renderSize: g.renderSize,
      optimizeExpression: g.optimizeExpression,
      inputs: g.inputs,
      inputSchedule: g.inputSchedule,
      lighting: g.lighting.presets === 'builtin' ? undefined : Float32Array.from(g.lighting.presets.flat()),
      background: g.background as [number, number, number],
      camera: { elevation: g.camera.elevation, azimuth: g.camera.azimuth, distance: g.camera.distance, fovDegrees: g.camera.fovDegrees },
      timestep: timesteps(g.timestep),
      guidanceScale: g.guidanceScale,
      learningRate: g.learningRate,
      optimizer: { type: 'adan', beta1: g.optimizer.beta1, beta2: g.optimizer.beta2, beta3: g.optimizer.beta3, eps: g.optimizer.eps, weightDecay: g.optimizer.weightDecay, maxGradNorm: g.optimizer.maxGradNorm ?? 0 },
      lrDecay: lrDecay(g.lrDecay, g.iterations),
      regularization: { identity: g.regularization.identity, expression: g.regularization.expression },
    },
    texture: {
      enabled: t.enabled,
      iterations: t.iterations,
      latent: { iterations: t.latent.iterations, textureSize: t.latent.textureSize, renderSize: t.latent.renderSize, init: t.latent.init === 'randn' ? 'random' : 'zeros', initScale: t.latent.initScale },
      rgb: { textureSize: t.rgb.textureSize, renderSize: t.rgb.renderSize },
      guidanceScale: t.guidanceScale,
      timestep: timesteps(t.timestep),
      controlNet: { enabled: t.controlNet.enabled, type: t.controlNet.type, scale: t.controlNet.scale },
      prior: { enabled: t.prior.type !== 'none' && t.prior.weight > 0, weight: t.prior.weight, guidanceScale: t.prior.guidanceScale, type: t.prior.type },
      background: t.background as [number, number, number],
      cameras: { mode: t.cameras.mode, fovDegrees: t.cameras.fovDegrees, fixed: cameraSet(cfg), random: t.cameras.random },
      learningRate: t.learningRate,
      optimizer: { type: t.optimizer.type, beta1: t.optimizer.beta1, beta2: t.optimizer.beta2, eps: t.optimizer.eps, weightDecay: t.optimizer.weightDecay },
      lrDecay: lrDecay(t.lrDecay, t.iterations),
    },
  };
  if (g.initCoefficients) {
    const c = readCoefficients(g.initCoefficients);
    input.geometry!.initCoefficients = packCoefficients(c, ki, ke, g.optimizeExpression, `geometry.initCoefficients (${g.initCoefficients})`);
  }
  if (t.coefficients) {
    const c = readCoefficients(t.coefficients);
    input.texture!.coefficients = packCoefficients(c, ki, ke, true, `texture.coefficients (${t.coefficients})`);
  }
  if (cfg.diffusion.backend === 'target') {
    const tg = cfg.diffusion.target;
    if (!tg.head) throw new FaceG2EError('E_CONFIG', 'diffusion.target.head: the target denoiser needs a target head (coefficients JSON)', { details: [{ path: 'diffusion.target.head', message: 'required with diffusion.backend "target"' }] });
    const head = readCoefficients(tg.head);
    const target: PipelineNativeInput['target'] = { coefficients: packCoefficients(head, ki, ke, true, `diffusion.target.head (${tg.head})`) };
    if (tg.texture) {
      const img = await readImageFloat(tg.texture, 3);
      target.texture = img.data;
      target.textureWidth = img.width;
      target.textureHeight = img.height;
    }
    input.target = target;
  }
  if (cfg.diffusion.backend === 'tensorrt') {
    // the prompts as CLIP token ids (the engines' tokenizer) and the texture prior's control image
    const engines = cfg.diffusion.engines!; // tensorrtProblem() has checked the folder
    const c = await tensorrtConditioning({
      engines,
      prompt: cfg.prompt,
      negativePrompt: cfg.negativePrompt,
      viewPrompts: cfg.viewPrompts,
      prior: cfg.texture.prior,
      textureSize: t.rgb.textureSize,
      uv: model.uv,
      uvTri: model.uvTri,
    });
    input.diffusion = { ...input.diffusion, engines, codec: 'vae', text: c.text };
    input.texture!.prior = { ...input.texture!.prior, ...c.prior };
  }
  return input;
}

/** [identity (ki) | expression (ke)] in the model's mode order; missing modes are 0, extra modes are an error. */
function packCoefficients(c: Coefficients, ki: number, ke: number, withExpression: boolean, what: string): Float32Array {
  if (c.identity.length > ki && c.identity.subarray(ki).some((v) => v !== 0))
    throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: ${c.identity.length} identity coefficients, but the run uses ${ki} identity modes`);
  if (c.expression.length > ke) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: ${c.expression.length} expression coefficients, but the model has ${ke}`);
  const out = new Float32Array(withExpression ? ki + ke : ki);
  out.set(c.identity.subarray(0, Math.min(ki, c.identity.length)));
  if (withExpression) out.set(c.expression, ki);
  return out;
}

/**
 * A camera on the sphere around `centre` (model units) looking at it; azimuth 0 looks at the face (+z).
 * The distance is the configured one (metres), pushed back where needed so that the bounding sphere of the head
 * fits the view: previews always show the whole head.
 */
function sphereCamera(v: { azimuth: number; elevation: number }, distanceMetres: number, metresPerUnit: number, centre: Vec3, radius: number, size: number, fov: number): PinholeCamera {
  const fit = (0.72 * radius) / Math.tan((fov * Math.PI) / 360); // a head fills about 70% of its box's bounding sphere
  const d = Math.max(distanceMetres / metresPerUnit, fit);
  const az = (v.azimuth * Math.PI) / 180;
  const el = (v.elevation * Math.PI) / 180;
  const eye: Vec3 = [centre[0] + d * Math.cos(el) * Math.sin(az), centre[1] + d * Math.sin(el), centre[2] + d * Math.cos(el) * Math.cos(az)];
  return { width: size, height: size, intrinsics: intrinsicsFromFov(fov, size, size), extrinsics: lookAt(eye, centre, [0, 1, 0]), eye, depthRange: [Math.max(d - radius, 1e-6), d + radius] };
}

function toImages(r: RenderResult, kind: 'textured' | 'grey' | 'normal'): ImageInput[] {
  const n = r.width * r.height;
  const out: ImageInput[] = [];
  for (let v = 0; v < r.views; v++) {
    const data = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const m = r.mask[v * n + i];
      for (let c = 0; c < 3; c++) {
        let x: number;
        if (kind === 'textured') x = r.color ? r.color[(v * n + i) * 3 + c] : 0;
        else if (kind === 'grey') x = r.grey ? r.grey[v * n + i] : 0;
        else {
          // OpenCV camera axes (x right, y down, z forward) -> the usual normal-map colours (x right, y up, z towards the viewer)
          const nv = r.normal[(v * n + i) * 3 + c];
          x = m > 0 ? 0.5 + 0.5 * (c === 0 ? nv : -nv) : 0;
        }
        data[i * 3 + c] = Math.min(1, Math.max(0, x + (1 - m) * 1)); // white background
      }
    }
    out.push({ data, width: r.width, height: r.height, channels: 3 });
  }
  return out;
}

/** Render preview kinds × views and the turntable frames of the final head. */
export function renderPreviews(cfg: RunConfig, device: DeviceName, mesh: MeshData, metresPerUnit: number, texture?: ImageInput): { previews: ImageInput[]; turntable: ImageInput[] } {
  const b = meshBounds(mesh.positions);
  const centre: Vec3 = [(b.min[0] + b.max[0]) / 2, (b.min[1] + b.max[1]) / 2, (b.min[2] + b.max[2]) / 2];
  const radius = Math.hypot(b.max[0] - b.min[0], b.max[1] - b.min[1], b.max[2] - b.min[2]) / 2;
  const fov = cfg.texture.cameras.fovDegrees;
  const tex = texture && texture.data instanceof Float32Array ? { data: texture.data, width: texture.width, height: texture.height, channels: 3 } : undefined;
  const rmesh = { positions: mesh.positions, tri: mesh.tri, uvs: mesh.uvs, uvTri: mesh.uvTri };
  // a key light from above-left of each camera (camera frame: x right, y down, z forward) plus ambient
  const light = shFromDirection([-0.35, -0.5, -1], 0.55, 0.3);
  const doRender = (cams: PinholeCamera[]) => render(rmesh, cams, { device, texture: tex, sh: light, shFrame: 'camera', antialias: true, background: [1, 1, 1] });
  const p = cfg.output.previews;
  const previews: ImageInput[] = [];
  if (cfg.output.files.previews && p.views.length) {
    const cams = p.views.map((v) => sphereCamera(v, p.distance, metresPerUnit, centre, radius, p.size, fov));
    const r = doRender(cams);
    for (const kind of p.kinds) previews.push(...toImages(r, kind === 'textured' && !tex ? 'grey' : kind));
  }
  const tt = cfg.output.turntable;
  const turntable: ImageInput[] = [];
  if (cfg.output.files.turntable && tt.frames > 0) {
    for (let start = 0; start < tt.frames; start += 8) {
      const cams = [];
      for (let i = start; i < Math.min(tt.frames, start + 8); i++) cams.push(sphereCamera({ azimuth: (360 * i) / tt.frames, elevation: tt.elevation }, tt.distance, metresPerUnit, centre, radius, tt.size, fov));
      turntable.push(...toImages(doRender(cams), tex ? 'textured' : 'grey'));
    }
  }
  return { previews, turntable };
}

/** A .safetensors model file, or an ICT-FaceKit folder imported in memory with the default parts. */
export async function loadHeadModel(p: string): Promise<HeadModel> {
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) return importModel('ict', p);
  return loadModel(p);
}

/** Run the two phases for `config` and return the head; writes no files. */
export async function generate(config: RunConfig | unknown, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const cfg = ensureResolved(config, opts.baseDir);
  const problem = tensorrtProblem(cfg);
  if (problem) throw problem;
  const device = resolveDevice(cfg.device);
  const modelFile = path.resolve(cfg.model);
  const model = await loadHeadModel(modelFile);
  const input = await nativeInput(cfg, device, model);
  if (opts.checkpoint) input.checkpoint = opts.checkpoint;
  const started = new Map<string, { t0: number; it0: number }>();
  const onProgress = opts.onProgress
    ? (p: PipelineProgress) => {
        const s = started.get(p.phase) ?? { t0: p.elapsedMs, it0: p.iteration };
        if (!started.has(p.phase)) started.set(p.phase, s);
        const dt = (p.elapsedMs - s.t0) / 1000;
        opts.onProgress!({ ...p, itPerSecond: dt > 0 ? (p.iteration - s.it0) / dt : 0 });
      }
    : undefined;
  let res: PipelineNativeResult;
  try {
    res = await runPipelineNative(input, { signal: opts.signal, onProgress });
  } catch (e) {
    throw fromNative(e);
  }
  if (res.status === 'cancelled') throw new RunCancelledError(res.checkpoint);
  if (!res.vertices || !res.coefficients) throw new FaceG2EError('E_INTERNAL', 'the native pipeline finished without a mesh');
  const ki = input.model.identityCount;
  const mesh: MeshData = { positions: res.vertices, tri: Uint32Array.from(model.tri), uvs: model.uv, uvTri: Uint32Array.from(model.uvTri), normals: res.normals };
  const texture: ImageInput | undefined = res.texture && res.textureSize ? { data: res.texture, width: res.textureSize, height: res.textureSize, channels: 3 } : undefined;
  const coefficients: Coefficients = {
    model: { file: modelFile, name: model.name },
    identity: Float32Array.from(res.coefficients.subarray(0, ki)),
    expression: res.coefficients.length > ki ? Float32Array.from(res.coefficients.subarray(ki)) : new Float32Array(model.expressionNames.length),
  };
  const t0 = Date.now();
  const { previews, turntable } = renderPreviews(cfg, device, mesh, model.metresPerUnit, texture);
  const m = res.metrics;
  return {
    config: cfg,
    device,
    model: { file: modelFile, name: model.name, metresPerUnit: model.metresPerUnit, units: model.units },
    mesh,
    coefficients,
    texture,
    previews,
    turntable,
    metrics: {
      geometry: { vertexRmseRatio: m?.vertexRmseRatio ?? null, vertexRmseInitial: m?.vertexRmseInitial ?? null, vertexRmseFinal: m?.vertexRmseFinal ?? null },
      texture: { psnrDb: m?.psnrDb ?? null, visibleTexels: m?.visibleTexels ?? 0 },
    },
    timings: { ...res.timings, previewsMs: Date.now() - t0 },
    profile: res.profile,
    curves: res.curves,
  };
}

/** The GPU name for run.json, when the run used CUDA. */
export function deviceRecord(device: DeviceName): { name: string; gpu?: string } {
  if (device !== 'cuda') return { name: 'cpu' };
  const g = cudaStatus().gpus.find((x) => x.supported);
  return { name: 'cuda', gpu: g?.name };
}
