/**
 * Diffusion model engines: the manifest that describes a folder of ONNX models / TensorRT plans
 * (`faceg2e-engines.json`, specified in docs/tensorrt.md), its reader and validator, TensorRT discovery,
 * the engine builder, and the target denoiser + codecs (no neural network) used for tests and reconstruction.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNative, cancelTokenFor, type CancelHandle, type DeviceName } from './native';
import { awaitNative, callNative, FaceG2EError, type ErrorDetail } from './errors';
import { cudaStatus } from './device';

export const MANIFEST_FILE = 'faceg2e-engines.json';
export const MANIFEST_FORMAT = 'faceg2e-engines';
export const MANIFEST_VERSION = 1;

export type TensorDtype = 'float32' | 'float16' | 'bfloat16' | 'int32' | 'int64';
export const TENSOR_DTYPES: readonly TensorDtype[] = ['float32', 'float16', 'bfloat16', 'int32', 'int64'];
/** Symbolic dimensions: views per call, the CFG batch, latent and image sizes (and latent sizes divided by 2, 4, 8). */
export const DIM_SYMBOLS = ['B', '2B', 'h', 'w', 'H', 'W', 'h/2', 'w/2', 'h/4', 'w/4', 'h/8', 'w/8'] as const;
export type DimSymbol = (typeof DIM_SYMBOLS)[number];
export type Dim = number | DimSymbol;

export interface TensorSpec {
  name: string;
  dtype: TensorDtype;
  shape: Dim[];
}

export interface EngineSpec {
  /** ONNX file, relative to the manifest's folder. */
  onnx?: string;
  /** TensorRT plan, relative to the manifest's folder (built manifests). */
  plan?: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export type EngineName = 'text_encoder' | 'unet' | 'vae_encoder' | 'vae_decoder' | `controlnet_${string}`;
export const KNOWN_ENGINES = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder', 'controlnet_depth', 'controlnet_canny'] as const;

export interface ModelSpec {
  id: string;
  latentChannels: number;
  downsampleFactor: number;
  scalingFactor: number;
  textEmbedDim: number;
  maxTokens: number;
  prediction: 'epsilon';
  numTrainTimesteps?: number;
  betaSchedule?: string;
  betaStart?: number;
  betaEnd?: number;
}

export interface BuildInfo {
  tensorrt: string;
  gpu: { name: string; computeCapability: string };
  profiles: { batch: [number, number]; resolutions: [number, number][] };
  key: string;
  createdAt: string;
}

/** The model's tokenizer, copied by tools/export (a diffusers tokenizer/ folder: vocab.json + merges.txt). */
export interface TokenizerInfo {
  /** Folder relative to the manifest's folder. */
  path: string;
  /** Id after the end token in the padded 77 ids: 49407 (SD 1.x) or 0 (SD 2.x). */
  padTokenId: number;
}

export interface EngineManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  model: ModelSpec;
  engines: Record<string, EngineSpec>;
  build?: BuildInfo;
  /** The diffusers scheduler_config.json, verbatim (informational; `model` carries what SDS uses). */
  scheduler?: Record<string, unknown>;
  tokenizer?: TokenizerInfo;
  /** What exported the ONNX files (tools/export), informational. */
  export?: Record<string, unknown>;
}

/** The tensors each engine must have (name → dtype constraint); see docs/tensorrt.md. */
const FLOAT_BOUNDARY: TensorDtype[] = ['float32'];
const RESIDUAL: TensorDtype[] = ['float16', 'float32'];
export const RESIDUAL_COUNT = 12;
const residualNames = (prefix: string) => [...Array.from({ length: RESIDUAL_COUNT }, (_, i) => `${prefix}_${i}`)];
export const REQUIRED_TENSORS: Record<string, { inputs: Record<string, TensorDtype[]>; outputs: Record<string, TensorDtype[]>; optionalInputs?: Record<string, TensorDtype[]> }> = {
  text_encoder: { inputs: { input_ids: ['int32'] }, outputs: { text_embeddings: FLOAT_BOUNDARY } },
  unet: {
    inputs: { sample: FLOAT_BOUNDARY, timestep: FLOAT_BOUNDARY, encoder_hidden_states: FLOAT_BOUNDARY },
    outputs: { noise_pred: FLOAT_BOUNDARY },
    optionalInputs: Object.fromEntries([...residualNames('down_block_additional_residual'), 'mid_block_additional_residual'].map((n) => [n, RESIDUAL])),
  },
  controlnet: {
    inputs: { sample: FLOAT_BOUNDARY, timestep: FLOAT_BOUNDARY, encoder_hidden_states: FLOAT_BOUNDARY, controlnet_cond: FLOAT_BOUNDARY, conditioning_scale: FLOAT_BOUNDARY },
    outputs: Object.fromEntries([...residualNames('down_block_res_sample'), 'mid_block_res_sample'].map((n) => [n, RESIDUAL])),
  },
  vae_encoder: { inputs: { images: FLOAT_BOUNDARY }, outputs: { latent: FLOAT_BOUNDARY } },
  vae_decoder: { inputs: { latent: FLOAT_BOUNDARY }, outputs: { images: FLOAT_BOUNDARY } },
};

function engineKind(name: string): string | null {
  if (name.startsWith('controlnet_') && /^controlnet_[a-z0-9_]+$/.test(name)) return 'controlnet';
  // a texture-tuned UNet (texture.prior.type 'unet'): the UNet's tensor set
  if (/^unet_[a-z0-9_]+$/.test(name)) return 'unet';
  return name in REQUIRED_TENSORS && name !== 'controlnet' ? name : null;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/**
 * Validate a parsed manifest. Returns the typed manifest or throws E_FORMAT whose `details` list every bad
 * field (JSON path) and whose message names `file`.
 */
export function validateManifest(raw: unknown, file = MANIFEST_FILE, opts: { requirePlans?: boolean; dir?: string } = {}): EngineManifest {
  const errs: ErrorDetail[] = [];
  const bad = (p: string, message: string) => errs.push({ path: p, message });
  if (!isObj(raw)) {
    throw new FaceG2EError('E_FORMAT', `${file}: expected a JSON object (a faceg2e engines manifest)`, { details: [{ path: '$', message: 'expected an object' }] });
  }
  if (raw.format !== MANIFEST_FORMAT) bad('format', `expected "${MANIFEST_FORMAT}", got ${JSON.stringify(raw.format)}`);
  if (raw.version !== MANIFEST_VERSION) bad('version', `expected ${MANIFEST_VERSION}, got ${JSON.stringify(raw.version)}`);
  const m = raw.model;
  if (!isObj(m)) bad('model', 'expected an object');
  else {
    if (typeof m.id !== 'string' || !m.id) bad('model.id', 'expected a non-empty string');
    for (const k of ['latentChannels', 'downsampleFactor', 'textEmbedDim', 'maxTokens'] as const) if (!isPosInt(m[k])) bad(`model.${k}`, `expected a positive integer, got ${JSON.stringify(m[k])}`);
    if (typeof m.scalingFactor !== 'number' || !(m.scalingFactor > 0) || !Number.isFinite(m.scalingFactor)) bad('model.scalingFactor', `expected a positive number, got ${JSON.stringify(m.scalingFactor)}`);
    if (m.prediction !== 'epsilon') bad('model.prediction', `expected "epsilon", got ${JSON.stringify(m.prediction)}`);
    if (m.numTrainTimesteps !== undefined && !isPosInt(m.numTrainTimesteps)) bad('model.numTrainTimesteps', 'expected a positive integer');
  }
  const engines = raw.engines;
  if (!isObj(engines)) bad('engines', 'expected an object mapping engine names to specs');
  else {
    if (Object.keys(engines).length === 0) bad('engines', 'expected at least one engine');
    for (const [name, e] of Object.entries(engines)) {
      const p = `engines.${name}`;
      const kind = engineKind(name);
      if (!kind) {
        bad(p, `unknown engine name; expected one of ${KNOWN_ENGINES.join(', ')} (or controlnet_<name>, unet_<name>)`);
        continue;
      }
      if (!isObj(e)) {
        bad(p, 'expected an object');
        continue;
      }
      for (const f of ['onnx', 'plan'] as const) {
        if (e[f] === undefined) continue;
        if (typeof e[f] !== 'string' || !e[f] || path.isAbsolute(e[f] as string) || (e[f] as string).split(/[\\/]/).includes('..'))
          bad(`${p}.${f}`, 'expected a relative path inside the manifest folder');
        else if (opts.dir && !fs.existsSync(path.join(opts.dir, e[f] as string))) bad(`${p}.${f}`, `file not found: ${path.join(opts.dir, e[f] as string)}`);
      }
      if (e.onnx === undefined && e.plan === undefined) bad(p, 'expected "onnx" and/or "plan"');
      if (opts.requirePlans && e.plan === undefined) bad(`${p}.plan`, 'missing (this folder has not been built: run `faceg2e-native engines build`)');
      const seen = new Set<string>();
      const lists: Record<'inputs' | 'outputs', Map<string, TensorSpec>> = { inputs: new Map(), outputs: new Map() };
      for (const io of ['inputs', 'outputs'] as const) {
        const list = e[io];
        if (!Array.isArray(list)) {
          bad(`${p}.${io}`, 'expected an array of tensors');
          continue;
        }
        list.forEach((t, i) => {
          const tp = `${p}.${io}[${i}]`;
          if (!isObj(t)) return bad(tp, 'expected {name, dtype, shape}');
          if (typeof t.name !== 'string' || !/^[A-Za-z0-9_.:/-]+$/.test(t.name)) return bad(`${tp}.name`, 'expected a tensor name');
          if (seen.has(t.name)) bad(`${tp}.name`, `duplicate tensor "${t.name}"`);
          seen.add(t.name);
          if (!TENSOR_DTYPES.includes(t.dtype as TensorDtype)) bad(`${tp}.dtype`, `expected one of ${TENSOR_DTYPES.join(', ')}, got ${JSON.stringify(t.dtype)}`);
          if (!Array.isArray(t.shape) || t.shape.length === 0 || t.shape.length > 8) bad(`${tp}.shape`, 'expected an array of 1 to 8 dimensions');
          else
            t.shape.forEach((d, j) => {
              if (!(isPosInt(d) || (DIM_SYMBOLS as readonly unknown[]).includes(d))) bad(`${tp}.shape[${j}]`, `expected a positive integer or one of ${DIM_SYMBOLS.join(', ')}, got ${JSON.stringify(d)}`);
            });
          lists[io].set(t.name, t as unknown as TensorSpec);
        });
      }
      const req = REQUIRED_TENSORS[kind];
      for (const io of ['inputs', 'outputs'] as const) {
        for (const [tn, dts] of Object.entries(req[io])) {
          const t = lists[io].get(tn);
          if (!t) bad(`${p}.${io}`, `missing tensor "${tn}"`);
          else if (TENSOR_DTYPES.includes(t.dtype) && !dts.includes(t.dtype)) bad(`${p}.${io}.${tn}.dtype`, `expected ${dts.join(' or ')}, got ${t.dtype}`);
        }
      }
      if (kind === 'unet') {
        const opt = req.optionalInputs!;
        const present = Object.keys(opt).filter((n) => lists.inputs.has(n));
        if (present.length !== 0 && present.length !== Object.keys(opt).length)
          bad(`${p}.inputs`, `ControlNet residual inputs must be all present (${Object.keys(opt).length}) or all absent; found ${present.length}`);
      }
      const allowed = new Set([...Object.keys(req.inputs), ...Object.keys(req.optionalInputs ?? {})]);
      for (const tn of lists.inputs.keys()) if (!allowed.has(tn)) bad(`${p}.inputs`, `unexpected input "${tn}" (the runtime binds only ${[...allowed].join(', ')})`);
    }
  }
  if (raw.tokenizer !== undefined) {
    const t = raw.tokenizer;
    if (!isObj(t)) bad('tokenizer', 'expected {path, padTokenId}');
    else {
      if (typeof t.path !== 'string' || !t.path || path.isAbsolute(t.path) || t.path.split(/[\\/]/).includes('..')) bad('tokenizer.path', 'expected a relative path inside the manifest folder');
      else if (opts.dir && !fs.existsSync(path.join(opts.dir, t.path))) bad('tokenizer.path', `folder not found: ${path.join(opts.dir, t.path)}`);
      if (!(typeof t.padTokenId === 'number' && Number.isInteger(t.padTokenId) && t.padTokenId >= 0)) bad('tokenizer.padTokenId', `expected a token id, got ${JSON.stringify(t.padTokenId)}`);
    }
  }
  for (const k of ['scheduler', 'export'] as const) if (raw[k] !== undefined && !isObj(raw[k])) bad(k, 'expected an object');
  if (raw.build !== undefined) {
    const b = raw.build;
    if (!isObj(b)) bad('build', 'expected an object');
    else {
      if (typeof b.tensorrt !== 'string' || !/^\d+\.\d+\.\d+/.test(b.tensorrt)) bad('build.tensorrt', 'expected a TensorRT version like "10.16.0"');
      if (!isObj(b.gpu) || typeof b.gpu.name !== 'string' || typeof b.gpu.computeCapability !== 'string' || !/^\d+\.\d+$/.test(b.gpu.computeCapability))
        bad('build.gpu', 'expected {name, computeCapability: "9.0"}');
      if (typeof b.key !== 'string' || !/^[0-9a-f]{16}$/.test(b.key)) bad('build.key', 'expected 16 hex digits');
      const pr = b.profiles;
      if (!isObj(pr) || !Array.isArray(pr.batch) || pr.batch.length !== 2 || !pr.batch.every(isPosInt) || !Array.isArray(pr.resolutions) || pr.resolutions.length === 0 ||
        !pr.resolutions.every((r) => Array.isArray(r) && r.length === 2 && r.every(isPosInt)))
        bad('build.profiles', 'expected {batch: [min, max], resolutions: [[height, width], ...]}');
    }
  } else if (opts.requirePlans) bad('build', 'missing (this folder has not been built: run `faceg2e-native engines build`)');
  if (errs.length) {
    throw new FaceG2EError('E_FORMAT', `${file}: invalid engines manifest: ${errs.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details: errs.map((d) => ({ path: `${file}#${d.path}`, message: d.message })) });
  }
  return raw as unknown as EngineManifest;
}

/** Read and validate `<dir>/faceg2e-engines.json` (or a manifest file path). */
export function readManifest(dirOrFile: string, opts: { requirePlans?: boolean; checkFiles?: boolean } = {}): { file: string; dir: string; manifest: EngineManifest } {
  const file = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isDirectory() ? path.join(dirOrFile, MANIFEST_FILE) : dirOrFile;
  const dir = path.dirname(file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FaceG2EError('E_IO', `${file}: cannot read the engines manifest (${(e as Error).message}); export the models with tools/export/ first`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FaceG2EError('E_FORMAT', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return { file, dir, manifest: validateManifest(raw, file, { requirePlans: opts.requirePlans, dir: opts.checkFiles === false ? undefined : dir }) };
}

// ---------------------------------------------------------------------------------------------- shapes

export interface ShapeEnv {
  B: number;
  h: number;
  w: number;
  f: number;
}

/** Concrete dims of a tensor for a batch and latent size. */
export function resolveShape(shape: Dim[], env: ShapeEnv): number[] {
  return shape.map((d) => {
    if (typeof d === 'number') return d;
    switch (d) {
      case 'B': return env.B;
      case '2B': return 2 * env.B;
      case 'h': return env.h;
      case 'w': return env.w;
      case 'H': return env.h * env.f;
      case 'W': return env.w * env.f;
      default: {
        const [s, k] = d.split('/');
        return Math.max(1, Math.ceil((s === 'h' ? env.h : env.w) / Number(k)));
      }
    }
  });
}

export interface ProfileShapes {
  name: string;
  min: number[];
  opt: number[];
  max: number[];
}

/** min/opt/max dims of every input of `engine` for `batch` = [min, opt, max] and image resolutions [[H, W], ...]. */
export function profileFor(manifest: EngineManifest, engine: string, batch: [number, number, number], resolutions: [number, number][]): ProfileShapes[] {
  const f = manifest.model.downsampleFactor;
  const spec = manifest.engines[engine];
  if (!spec) throw new FaceG2EError('E_INVALID_ARGUMENT', `engine "${engine}" is not in the manifest`);
  for (const [H, W] of resolutions) {
    if (H % f || W % f) throw new FaceG2EError('E_INVALID_ARGUMENT', `--resolution ${H}x${W}: height and width must be multiples of ${f}`);
  }
  const hs = resolutions.map((r) => r[0] / f);
  const ws = resolutions.map((r) => r[1] / f);
  const envMin: ShapeEnv = { B: batch[0], h: Math.min(...hs), w: Math.min(...ws), f };
  const envOpt: ShapeEnv = { B: batch[1], h: hs[0], w: ws[0], f };
  const envMax: ShapeEnv = { B: batch[2], h: Math.max(...hs), w: Math.max(...ws), f };
  return spec.inputs.map((t) => ({ name: t.name, min: resolveShape(t.shape, envMin), opt: resolveShape(t.shape, envOpt), max: resolveShape(t.shape, envMax) }));
}

/** The plan cache key: 16 hex digits of SHA-256 over everything a plan depends on. */
export function planKey(parts: { tensorrt: string; gpuName: string; computeCapability: string; engine: string; onnxSize: number; onnxMtimeMs: number; profiles: ProfileShapes[]; optLevel: number }): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify([parts.tensorrt, parts.gpuName, parts.computeCapability, parts.engine, parts.onnxSize, Math.round(parts.onnxMtimeMs), parts.profiles, parts.optLevel]));
  return h.digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------- TensorRT

export interface TensorRTInfo {
  found: boolean;
  version: string | null;
  library: string | null;
  error: string | null;
}

interface NativeEngines {
  tensorrtInfo(): TensorRTInfo;
  trtBuildEngine(o: { onnx: string; plan: string; profiles: ProfileShapes[]; workspaceBytes: number; optLevel: number }, onProgress?: (p: { message: string }) => void, token?: CancelHandle): Promise<{ tensorrt: string; bytes: number }>;
  trtInspectPlans(o: { dir: string; engines: { name: string; plan: string }[]; tensorrt: string; computeCapability: string; gpuName: string }): { name: string; deviceMemory: number; tensors: { name: string; io: 'input' | 'output'; dtype: string; shape: number[] }[] }[];
  targetDenoise(o: { xt: Float32Array; target: Float32Array; n: number; c: number; h: number; w: number; alphaBar: number; guidance?: number; cfgOrder?: CfgOrder; device?: DeviceName }): Float32Array;
  codecEncode(o: { codec: CodecName; images: Float32Array; n: number; height: number; width: number; upsample?: Upsample; scale?: number; device?: DeviceName }): Float32Array;
  codecDecode(o: { codec: CodecName; latents: Float32Array; n: number; height: number; width: number; upsample?: Upsample; scale?: number; device?: DeviceName }): Float32Array;
  codecInfo(o: { codec: CodecName; scale?: number }): { latentChannels: number; downsampleFactor: number; scalingFactor: number; channelMap: number[]; pseudoInverse: number[] };
}

function native(): NativeEngines {
  return loadNative<NativeEngines>();
}

/** Is TensorRT loadable here? Never throws. */
export function tensorrtInfo(): TensorRTInfo {
  try {
    const n = native();
    if (typeof n.tensorrtInfo !== 'function') return { found: false, version: null, library: null, error: 'this build of the addon has no TensorRT loader (engines domain not built)' };
    return n.tensorrtInfo();
  } catch (e) {
    return { found: false, version: null, library: null, error: (e as Error).message };
  }
}

export const TENSORRT_INSTALL_HINT =
  'Install TensorRT 10.x or 11.x for your CUDA version (e.g. `pip install tensorrt-cu12` and add its tensorrt_libs folder to LD_LIBRARY_PATH, ' +
  'or the libnvinfer10 / libnvinfer-dev packages from the NVIDIA CUDA repository), then build native/engines/trt (docs/tensorrt.md).';

export function requireTensorRT(): TensorRTInfo {
  const info = tensorrtInfo();
  if (!info.found) throw new FaceG2EError('E_NO_TENSORRT', `TensorRT is not available: ${info.error ?? 'libnvinfer not found'}. ${TENSORRT_INSTALL_HINT}`);
  return info;
}

export interface BuildOptions {
  /** Folder with the exported ONNX files and their faceg2e-engines.json. */
  onnx: string;
  /** Output folder for the plans and the built manifest. */
  out: string;
  /** Image resolutions [height, width]; the first is the profiles' optimum. Default [[512, 512]]. */
  resolutions?: [number, number][];
  /** Views per call: the profiles cover [minBatch, maxBatch] with opt = batch. */
  batch?: number;
  maxBatch?: number;
  minBatch?: number;
  /** Only these engines (default: all in the manifest). */
  engines?: string[];
  workspaceBytes?: number;
  optLevel?: number;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: { engine: string; message: string }) => void;
}

export interface BuildResult {
  manifestFile: string;
  built: string[];
  reused: string[];
}

function gpuForBuild(): { name: string; computeCapability: string } {
  const s = cudaStatus();
  const g = s.gpus.find((x) => x.supported) ?? s.gpus[0];
  if (!g) throw new FaceG2EError('E_NO_CUDA_DEVICE', `building TensorRT engines needs a GPU: ${s.error ?? 'none found'}`);
  return { name: g.name, computeCapability: g.computeCapability };
}

/** Build (or reuse cached) TensorRT plans for the engines of an exported ONNX folder. */
export async function buildEngines(o: BuildOptions): Promise<BuildResult> {
  const trt = requireTensorRT();
  const src = readManifest(o.onnx);
  const gpu = gpuForBuild();
  const resolutions = o.resolutions && o.resolutions.length ? o.resolutions : [[512, 512] as [number, number]];
  const batch = o.batch ?? 1;
  const minBatch = o.minBatch ?? 1;
  const maxBatch = o.maxBatch ?? Math.max(batch, 1);
  if (!(isPosInt(batch) && isPosInt(minBatch) && isPosInt(maxBatch) && minBatch <= batch && batch <= maxBatch))
    throw new FaceG2EError('E_INVALID_ARGUMENT', `--batch: expected positive integers with min (${minBatch}) <= batch (${batch}) <= max (${maxBatch})`);
  const names = o.engines && o.engines.length ? o.engines : Object.keys(src.manifest.engines);
  for (const n of names) if (!src.manifest.engines[n]) throw new FaceG2EError('E_INVALID_ARGUMENT', `--engines: "${n}" is not in ${src.file} (has ${Object.keys(src.manifest.engines).join(', ')})`);
  const optLevel = o.optLevel ?? 3;
  fs.mkdirSync(o.out, { recursive: true });
  const outManifest: EngineManifest = JSON.parse(JSON.stringify(src.manifest));
  outManifest.engines = {};
  const built: string[] = [];
  const reused: string[] = [];
  let key = '';
  const { token, dispose } = cancelTokenFor(o.signal);
  try {
    for (const name of names) {
      const spec = src.manifest.engines[name];
      if (!spec.onnx) throw new FaceG2EError('E_FORMAT', `${src.file}#engines.${name}.onnx: missing; cannot build without the ONNX file`);
      const onnxPath = path.join(src.dir, spec.onnx);
      const st = fs.statSync(onnxPath);
      const profiles = profileFor(src.manifest, name, [minBatch, batch, maxBatch], resolutions);
      const k = planKey({ tensorrt: trt.version ?? '', gpuName: gpu.name, computeCapability: gpu.computeCapability, engine: name, onnxSize: st.size, onnxMtimeMs: st.mtimeMs, profiles, optLevel });
      key = crypto.createHash('sha256').update(key + k).digest('hex').slice(0, 16);
      const planName = `${name}-${k}.plan`;
      const planPath = path.join(o.out, planName);
      if (!o.force && fs.existsSync(planPath) && fs.statSync(planPath).size > 0) {
        reused.push(name);
        o.onProgress?.({ engine: name, message: `reusing ${planName}` });
      } else {
        o.onProgress?.({ engine: name, message: `building ${planName} from ${onnxPath}` });
        const tmp = `${planPath}.partial`;
        await awaitNative(native().trtBuildEngine({ onnx: path.resolve(onnxPath), plan: path.resolve(tmp), profiles, workspaceBytes: o.workspaceBytes ?? 8 * 2 ** 30, optLevel }, (p) => o.onProgress?.({ engine: name, message: p.message }), token));
        fs.renameSync(tmp, planPath);
        built.push(name);
      }
      const onnxRel = path.relative(o.out, onnxPath);
      outManifest.engines[name] = { ...spec, onnx: onnxRel.split(path.sep).includes('..') ? undefined : onnxRel, plan: planName };
      if (outManifest.engines[name].onnx === undefined) delete outManifest.engines[name].onnx;
    }
  } finally {
    dispose();
  }
  outManifest.build = {
    tensorrt: trt.version ?? 'unknown',
    gpu,
    profiles: { batch: [minBatch, maxBatch], resolutions },
    key,
    createdAt: new Date().toISOString(),
  };
  const manifestFile = path.join(o.out, MANIFEST_FILE);
  validateManifest(outManifest, manifestFile, { requirePlans: true, dir: o.out });
  fs.writeFileSync(manifestFile, JSON.stringify(outManifest, null, 2) + '\n');
  return { manifestFile, built, reused };
}

export interface EngineFolderReport {
  file: string;
  manifest: EngineManifest;
  engines: { name: string; onnx: { path: string; present: boolean } | null; plan: { path: string; present: boolean; bytes: number } | null }[];
  missing: string[];
  /** When built: does the installed TensorRT / GPU match what built the plans? null when it can't be told. */
  compatible: { ok: boolean; reason: string | null } | null;
}

/** What a manifest folder holds and lacks (for `engines info`). Validation errors throw E_FORMAT. */
export function inspectEngineFolder(dir: string): EngineFolderReport {
  const { file, dir: base, manifest } = readManifest(dir, { checkFiles: false });
  const missing: string[] = [];
  const engines = Object.entries(manifest.engines).map(([name, e]) => {
    const onnx = e.onnx ? { path: path.join(base, e.onnx), present: fs.existsSync(path.join(base, e.onnx)) } : null;
    const plan = e.plan ? { path: path.join(base, e.plan), present: fs.existsSync(path.join(base, e.plan)), bytes: fs.existsSync(path.join(base, e.plan)) ? fs.statSync(path.join(base, e.plan)).size : 0 } : null;
    if (onnx && !onnx.present) missing.push(onnx.path);
    if (plan && !plan.present) missing.push(plan.path);
    return { name, onnx, plan };
  });
  for (const req of ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder']) if (!manifest.engines[req]) missing.push(`engine ${req} (the text-to-head pipeline needs it)`);
  let compatible: EngineFolderReport['compatible'] = null;
  if (manifest.build) {
    const trt = tensorrtInfo();
    let gpu: { name: string; computeCapability: string } | null = null;
    try {
      gpu = gpuForBuild();
    } catch {
      gpu = null;
    }
    compatible = checkCompatibility(manifest.build, trt, gpu, base);
  }
  return { file, manifest, engines, missing, compatible };
}

/** Compare what built the plans with what is here; the reason text is the E_NO_ENGINE message. */
export function checkCompatibility(build: BuildInfo, trt: TensorRTInfo, gpu: { name: string; computeCapability: string } | null, dir: string): { ok: boolean; reason: string | null } {
  const sm = (cc: string) => `sm_${cc.replace('.', '')}`;
  const rebuild = `rebuild with \`npx faceg2e-native engines build --onnx <onnx folder> --out ${dir}\``;
  if (!trt.found) return { ok: false, reason: `engines in ${dir} were built for TensorRT ${build.tensorrt} on ${sm(build.gpu.computeCapability)} (${build.gpu.name}), but TensorRT is not installed here (${trt.error})` };
  if (!gpu) return { ok: false, reason: `engines in ${dir} need a GPU (${sm(build.gpu.computeCapability)}); none is usable here` };
  const here = `this machine has TensorRT ${trt.version} on ${sm(gpu.computeCapability)} (${gpu.name})`;
  if (trt.version !== build.tensorrt || gpu.computeCapability !== build.gpu.computeCapability || gpu.name !== build.gpu.name)
    return { ok: false, reason: `engines in ${dir} were built for TensorRT ${build.tensorrt} on ${sm(build.gpu.computeCapability)} (${build.gpu.name}); ${here}; ${rebuild}` };
  return { ok: true, reason: null };
}

/** Check a built folder against this machine and deserialize every plan (loads TensorRT). E_NO_ENGINE on mismatch. */
export function inspectPlans(dir: string): ReturnType<NativeEngines['trtInspectPlans']> {
  const { dir: base, manifest } = readManifest(dir, { requirePlans: true });
  const trt = requireTensorRT();
  const gpu = gpuForBuild();
  const c = checkCompatibility(manifest.build!, trt, gpu, base);
  if (!c.ok) throw new FaceG2EError('E_NO_ENGINE', c.reason!);
  return callNative(() =>
    native().trtInspectPlans({ dir: base, engines: Object.entries(manifest.engines).map(([name, e]) => ({ name, plan: e.plan! })), tensorrt: manifest.build!.tensorrt, computeCapability: manifest.build!.gpu.computeCapability, gpuName: manifest.build!.gpu.name }),
  );
}

// ---------------------------------------------------------------------------------------------- target denoiser, codecs

export type CfgOrder = 'uncond-first' | 'cond-first';
export type CodecName = 'identity' | 'pooling';
export type Upsample = 'nearest' | 'bilinear';

export interface TargetDenoiseOptions {
  /** Noisy latents x_t, [n, c, h, w]. */
  xt: Float32Array;
  /** The target latent (the encoded render of the target head), [n, c, h, w]. */
  target: Float32Array;
  n: number;
  c: number;
  h: number;
  w: number;
  /** ᾱ_t of the timestep, in (0, 1). */
  alphaBar: number;
  /** Classifier-free guidance scale (the prediction does not depend on it). */
  guidance?: number;
  cfgOrder?: CfgOrder;
  device?: DeviceName;
}

/** ε̂ = (x_t − √ᾱ_t·target)/√(1−ᾱ_t) for both CFG halves, combined with the guidance scale. */
export function targetDenoise(o: TargetDenoiseOptions): Float32Array {
  return callNative(() => native().targetDenoise(o));
}

export interface CodecOptions {
  codec: CodecName;
  n: number;
  /** Image height/width for encode, latent height/width for decode. */
  height: number;
  width: number;
  upsample?: Upsample;
  /** Pooling codec: multiplies the channel map (the "scaling factor"). Default 1. */
  scale?: number;
  device?: DeviceName;
}

export function codecEncode(images: Float32Array, o: CodecOptions): Float32Array {
  return callNative(() => native().codecEncode({ ...o, images }));
}

export function codecDecode(latents: Float32Array, o: CodecOptions): Float32Array {
  return callNative(() => native().codecDecode({ ...o, latents }));
}

export function codecInfo(codec: CodecName, scale?: number): ReturnType<NativeEngines['codecInfo']> {
  return callNative(() => native().codecInfo({ codec, scale }));
}
