/**
 * Resolving a run config: defaults < config file < command-line overrides, validated in one pass.
 *
 *   const cfg = resolveConfig(fileJson, { seed: 7, output: { dir: 'out' } }, { baseDir: path.dirname(file) });
 *
 * Every bad field is reported at once, in one FaceG2EError('E_CONFIG') whose `details` hold one
 * `{path: 'geometry.iterations', message: 'expected an integer in [1, 1e7], got -3'}` per problem. Unknown keys are
 * errors with a did-you-mean suggestion. Relative paths from the file are resolved against `baseDir` (the config
 * file's folder), relative paths from the command line against `cliBaseDir` (the working directory).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as z from 'zod';
import { FaceG2EError, type ErrorDetail } from '../errors';
import { DEFAULTS } from './defaults';
import { RunConfigSchema, type RunConfigFromSchema } from './schema';
import { describe, didYouMean, formatPath, knownKeys, nodeAt, pathFields, showValue, type PathSeg } from './schema-walk';
import type { DeepPartial, RunConfig } from './types';

/** Compile-time proof that the generated interfaces (types.ts) match the schema exactly. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const typesMatchSchema: Equal<RunConfig, RunConfigFromSchema> = true;
void typesMatchSchema;

/** Partial config given on top of the file (from command-line flags or an API caller). */
export type RunConfigOverrides = DeepPartial<RunConfig>;

export interface ResolveOptions {
  /** Folder against which relative paths in `fileConfig` are resolved (the config file's folder). Default: cwd. */
  baseDir?: string;
  /** Folder against which relative paths in `cliOverrides` are resolved. Default: cwd. */
  cliBaseDir?: string;
  /** Check that input files and folders exist (model, engines, target, template, coefficients). Default: true. */
  checkFiles?: boolean;
  /** Name of the config's source for the error message, e.g. the file path. */
  source?: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function deepClone<T>(v: T): T {
  return v === undefined ? v : (structuredClone(v) as T);
}

/** Merge `over` into `base` (new object): objects merge key by key, anything else replaces; `undefined` is skipped. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return deepClone(base);
  if (!isObject(base) || !isObject(over)) return deepClone(over);
  const out: Json = deepClone(base);
  for (const [k, v] of Object.entries(over)) if (v !== undefined) out[k] = deepMerge(out[k], v);
  return out;
}

function getAt(obj: unknown, p: readonly PathSeg[]): unknown {
  let cur: unknown = obj;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

function setAt(obj: Json, p: readonly PathSeg[], v: unknown): void {
  let cur: any = obj;
  for (let i = 0; i < p.length - 1; i++) {
    if (!isObject(cur[p[i]])) return;
    cur = cur[p[i]];
  }
  cur[p[p.length - 1]] = v;
}

/** Resolve relative path fields of `cfg` (in place) against `dir`. */
/** What to do when a path the run needs is missing (appended to the "not found" message). */
const MISSING_HINTS: Record<string, string> = {
  model: '. Import a head model with `npx faceg2e-native models import ict|flame|bfm|hifi3d <source> -o <file>.safetensors` (or point `model` at an ICT-FaceKit folder)',
  'diffusion.engines':
    '. The TensorRT backend needs diffusion engines: export your Stable Diffusion checkpoint and ControlNets with `python tools/export/export.py ... --out onnx/` (docs/export.md), ' +
    'then build them with `npx faceg2e-native engines build --onnx onnx/ --out <folder>` on a GPU machine with TensorRT 10/11 (docs/tensorrt.md). ' +
    'To try the pipeline without engines, run examples/reconstruct-ict.json (the target denoiser)',
};

function resolvePaths(cfg: unknown, dir: string): void {
  if (!isObject(cfg)) return;
  for (const f of pathFields()) {
    const v = getAt(cfg, f.path);
    if (typeof v === 'string' && v.length > 0 && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) setAt(cfg, f.path, path.resolve(dir, expandHome(v)));
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(process.env.HOME ?? '~', p.slice(1)) : p;
}

/** True when `p` (or a parent of it) was given in the overrides. */
function givenIn(overrides: unknown, p: readonly PathSeg[]): boolean {
  for (let i = p.length; i >= 1; i--) if (getAt(overrides, p.slice(0, i)) !== undefined) return true;
  return false;
}

/** Turn zod issues into one detail per bad field, with messages built from the schema. */
function issueDetails(issues: readonly z.core.$ZodIssue[], input: unknown): Array<{ path: PathSeg[]; message: string }> {
  const out: Array<{ path: PathSeg[]; message: string }> = [];
  for (const is of issues) {
    const p = is.path.filter((s): s is PathSeg => typeof s !== 'symbol');
    if (is.code === 'unrecognized_keys') {
      const known = knownKeys(nodeAt(p));
      for (const key of is.keys) {
        const hint = didYouMean(key, known);
        out.push({ path: [...p, key], message: hint ? `unknown key "${key}"; did you mean "${hint}"?` : `unknown key "${key}" (known keys: ${known.join(', ') || 'none'})` });
      }
      continue;
    }
    const value = getAt(input, p);
    const node = nodeAt(p);
    if (is.code === 'custom') {
      out.push({ path: p, message: `${is.message}, got ${showValue(value)}` });
      continue;
    }
    if (value === undefined) {
      out.push({ path: p, message: `is required: expected ${describe(node)}` });
      continue;
    }
    out.push({ path: p, message: `expected ${describe(node)}, got ${showValue(value)}` });
  }
  return out;
}

/**
 * Rules between fields, checked on the merged view (defaults where the input has nothing). Each rule reads its
 * fields only when they have the right type, so they run (and report) even when other fields are bad.
 */
function crossChecks(view: unknown): Array<{ path: PathSeg[]; message: string }> {
  const out: Array<{ path: PathSeg[]; message: string }> = [];
  const get = (p: string) => getAt(view, p.split('.'));
  const s = (p: string) => (typeof get(p) === 'string' ? (get(p) as string) : undefined);
  const n = (p: string) => (typeof get(p) === 'number' ? (get(p) as number) : undefined);
  const b = (p: string) => (typeof get(p) === 'boolean' ? (get(p) as boolean) : undefined);
  const isNull = (p: string) => get(p) === null;
  const add = (p: string, message: string) => out.push({ path: p.split('.'), message });

  const backend = s('diffusion.backend');
  const codec = s('diffusion.codec');
  if (backend === 'tensorrt') {
    if (isNull('diffusion.engines')) add('diffusion.engines', "is required with diffusion.backend 'tensorrt': expected the engines folder (build it with `faceg2e-native engines build`)");
    if (codec !== undefined && codec !== 'vae') add('diffusion.codec', `expected "vae" with diffusion.backend 'tensorrt', got ${JSON.stringify(codec)} (codecs 'identity' and 'pooling' are for the target denoiser)`);
    if (s('device') === 'cpu') add('device', "expected \"cuda\" or \"auto\" with diffusion.backend 'tensorrt' (TensorRT runs on the GPU), got \"cpu\"");
  }
  if (codec === 'vae' && backend !== 'tensorrt' && isNull('diffusion.engines')) add('diffusion.engines', "is required with diffusion.codec 'vae': expected the engines folder holding the VAE");
  if (backend === 'target') {
    if (isNull('diffusion.target.head')) add('diffusion.target.head', "is required with diffusion.backend 'target': expected a coefficients JSON of the target head");
    if (isNull('diffusion.target.texture')) add('diffusion.target.texture', "is required with diffusion.backend 'target': expected the target's UV texture image");
  }
  if (s('texture.prior.type') === 'unet' && isNull('diffusion.engines') && b('texture.enabled') !== false) {
    add('texture.prior.type', "'unet' needs the texture UNet from diffusion.engines, which is not set");
  }
  const texIt = n('texture.iterations');
  const latIt = n('texture.latent.iterations');
  if (texIt !== undefined && latIt !== undefined && latIt > texIt) add('texture.latent.iterations', `expected at most texture.iterations (${texIt}), got ${latIt}`);
  const fMax = n('viewPrompts.frontMaxAzimuth');
  const bMin = n('viewPrompts.backMinAzimuth');
  if (fMax !== undefined && bMin !== undefined && fMax > bMin) add('viewPrompts.frontMaxAzimuth', `expected at most viewPrompts.backMinAzimuth (${bMin}), got ${fMax}`);
  const lo = n('texture.prior.cannyLow');
  const hi = n('texture.prior.cannyHigh');
  if (lo !== undefined && hi !== undefined && lo > hi) add('texture.prior.cannyLow', `expected at most texture.prior.cannyHigh (${hi}), got ${lo}`);
  const geo = b('geometry.enabled');
  const tex = b('texture.enabled');
  if (geo === false && tex === false) add('geometry.enabled', 'both phases are disabled: expected geometry.enabled or texture.enabled to be true');
  if (geo === false && tex === true && isNull('texture.coefficients')) add('texture.coefficients', 'is required when geometry.enabled is false: expected a coefficients JSON giving the geometry');
  return out;
}

/** Input files and folders must exist (checked on the merged view; output.dir is created by the run). */
function fileChecks(view: unknown): Array<{ path: PathSeg[]; message: string }> {
  const out: Array<{ path: PathSeg[]; message: string }> = [];
  const texOff = getAt(view, ['texture', 'enabled']) === false;
  const geoOn = getAt(view, ['geometry', 'enabled']) !== false;
  for (const f of pathFields()) {
    if (f.kind === 'outdir') continue;
    const key = f.path.join('.');
    // fields a run does not read need not exist
    if (texOff && key.startsWith('texture.')) continue;
    if (geoOn && key === 'texture.coefficients') continue;
    if (key.startsWith('diffusion.target.') && getAt(view, ['diffusion', 'backend']) !== 'target') continue;
    if (key === 'texture.prior.template' && getAt(view, ['texture', 'prior', 'type']) !== 'canny') continue;
    const v = getAt(view, f.path);
    if (typeof v !== 'string' || v.length === 0) continue;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(v);
    } catch {
      st = undefined;
    }
    if (!st) out.push({ path: f.path, message: `${f.kind === 'file' ? 'file' : f.kind === 'dir' ? 'folder' : 'file or folder'} not found: ${v}${MISSING_HINTS[key] ?? ''}` });
    else if (f.kind === 'file' && !st.isFile()) out.push({ path: f.path, message: `expected a file, got a folder: ${v}` });
    else if (f.kind === 'dir' && !st.isDirectory()) out.push({ path: f.path, message: `expected a folder, got a file: ${v}` });
  }
  return out;
}

/**
 * Resolve a run config: built-in defaults, then `fileConfig` (the parsed JSON of a config file, or an object
 * from an API caller; `undefined` for none), then `cliOverrides`. Returns a fully typed config with every default
 * filled in and every path absolute; throws FaceG2EError('E_CONFIG') listing every bad field.
 */
export function resolveConfig(fileConfig: unknown, cliOverrides: RunConfigOverrides = {}, options: ResolveOptions = {}): RunConfig {
  const where = options.source ? ` in ${options.source}` : '';
  if (fileConfig !== undefined && fileConfig !== null && !isObject(fileConfig)) {
    throw new FaceG2EError('E_CONFIG', `invalid config${where}: expected a JSON object at the top level, got ${Array.isArray(fileConfig) ? 'an array' : showValue(fileConfig)}`, {
      details: [{ path: '(top level)', message: `expected a JSON object, got ${Array.isArray(fileConfig) ? 'an array' : showValue(fileConfig)}` }],
    });
  }
  if (!isObject(cliOverrides)) throw new FaceG2EError('E_INVALID_ARGUMENT', 'resolveConfig: cliOverrides must be an object');
  const file = deepClone(fileConfig ?? {}) as Json;
  const cli = deepClone(cliOverrides) as Json;
  resolvePaths(file, path.resolve(options.baseDir ?? process.cwd()));
  resolvePaths(cli, path.resolve(options.cliBaseDir ?? process.cwd()));
  const merged = deepMerge(file, cli) as Json;

  const problems: Array<{ path: PathSeg[]; message: string }> = [];
  const parsed = RunConfigSchema.safeParse(merged);
  if (!parsed.success) problems.push(...issueDetails(parsed.error.issues, merged));
  const view = deepMerge(DEFAULTS, merged);
  problems.push(...crossChecks(view));
  if (options.checkFiles !== false) problems.push(...fileChecks(view));

  if (problems.length) {
    const seen = new Set<string>();
    const details: ErrorDetail[] = [];
    for (const pr of problems) {
      const p = formatPath(pr.path);
      const message = givenIn(cli, pr.path) ? `${pr.message} (from the command line)` : pr.message;
      const k = `${p}\u0000${message}`;
      if (seen.has(k)) continue;
      seen.add(k);
      details.push({ path: p, message });
    }
    const more = details.length - 1;
    const head = `${details[0].path}: ${details[0].message}${more ? ` (and ${more} more problem${more > 1 ? 's' : ''}, listed in details)` : ''}`;
    throw new FaceG2EError('E_CONFIG', `invalid config${where}: ${head}`, { details });
  }
  const cfg = parsed.data as RunConfig;
  delete cfg.$schema;
  // defaulted paths (output.dir) are relative to the working directory
  resolvePaths(cfg, path.resolve(options.cliBaseDir ?? process.cwd()));
  return cfg;
}

/**
 * The defaults as a complete config, plus `fields` (which must include the required `prompt` and `model`, and
 * whatever the cross-field rules need, e.g. `diffusion.engines` for the default TensorRT backend). Files are not
 * checked. Handy for tests and API callers.
 */
export function defaultConfig(fields: RunConfigOverrides & { prompt: string; model: string }, options: ResolveOptions = {}): RunConfig {
  return resolveConfig({}, fields, { checkFiles: false, ...options });
}

/** The text prompt for a camera azimuth (degrees), with the view-dependent suffix when enabled. */
export function viewPrompt(cfg: Pick<RunConfig, 'prompt' | 'viewPrompts'>, azimuthDegrees: number): string {
  const v = cfg.viewPrompts;
  if (!v.enabled) return cfg.prompt;
  let a = ((((azimuthDegrees + 180) % 360) + 360) % 360) - 180; // [-180, 180)
  if (a === -180) a = 180;
  const abs = Math.abs(a);
  if (abs <= v.frontMaxAzimuth) return cfg.prompt + v.front;
  if (abs > v.backMinAzimuth) return cfg.prompt + v.back;
  return cfg.prompt + v.side;
}
