/**
 * Reading config files and turning command-line flags into config overrides.
 *
 *   const { config: file, baseDir, file: name } = readConfigFile('runs/old-man.json');
 *   const overrides = configFromCliArgs({ seed: 7, out: 'out', set: ['geometry.iterations=300'] });
 *   const cfg = resolveConfig(file, overrides, { baseDir, source: name });
 *
 * or all at once: `loadConfig({ configPath, cli })`.
 *
 * Config files are JSON; comments (`//`, `/* *\/`) are accepted, trailing commas are not. Syntax errors name the
 * file, line and column.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { Options as YargsOptions } from 'yargs';
import { FaceG2EError, type ErrorDetail } from '../errors';
import { describe, didYouMean, formatPath, knownKeys, nodeAt, parsePath, resolveRef, type SchemaNode } from './schema-walk';
import { deepMerge, resolveConfig, type ResolveOptions, type RunConfigOverrides } from './validate';
import type { RunConfig } from './types';

export interface ConfigFile {
  /** The parsed JSON (not validated yet). */
  config: unknown;
  /** Absolute path of the file. */
  file: string;
  /** Its folder, against which its relative paths resolve. */
  baseDir: string;
}

function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) { line++; last = i; }
  return { line, column: offset - last };
}

/** Parse config text; `name` is used in messages. Throws E_CONFIG listing each syntax error with line:column. */
export function parseConfigText(text: string, name = '<config>'): unknown {
  const errors: ParseError[] = [];
  const value = parseJsonc(text.replace(/^\uFEFF/, ''), errors, { allowTrailingComma: false, disallowComments: false, allowEmptyContent: false });
  if (errors.length) {
    const details: ErrorDetail[] = errors.slice(0, 10).map((e) => {
      const { line, column } = lineCol(text, e.offset);
      const near = text.slice(e.offset, e.offset + Math.max(1, Math.min(e.length, 20))).replace(/\s+/g, ' ');
      return { path: `${name}:${line}:${column}`, message: `JSON syntax error: ${humanParseError(printParseErrorCode(e.error))}${near.trim() ? ` near ${JSON.stringify(near)}` : ''}` };
    });
    throw new FaceG2EError('E_CONFIG', `${details[0].path}: ${details[0].message}`, { details });
  }
  return value;
}

function humanParseError(code: string): string {
  const map: Record<string, string> = {
    InvalidSymbol: 'unexpected character',
    InvalidNumberFormat: 'invalid number',
    PropertyNameExpected: 'expected a property name in double quotes',
    ValueExpected: 'expected a value',
    ColonExpected: 'expected ":"',
    CommaExpected: 'expected ","',
    CloseBraceExpected: 'expected "}"',
    CloseBracketExpected: 'expected "]"',
    EndOfFileExpected: 'unexpected text after the end of the JSON value',
    InvalidCommentToken: 'invalid comment',
    UnexpectedEndOfComment: 'unterminated comment',
    UnexpectedEndOfString: 'unterminated string',
    UnexpectedEndOfNumber: 'unterminated number',
    InvalidUnicode: 'invalid \\u escape',
    InvalidEscapeCharacter: 'invalid escape character',
    InvalidCharacter: 'invalid character in a string',
  };
  return map[code] ?? code;
}

/** Read and parse a config file. E_IO when it cannot be read, E_CONFIG for JSON syntax errors. */
export function readConfigFile(file: string): ConfigFile {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'it is a folder, expected a JSON file' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new FaceG2EError('E_IO', `cannot read the config file ${abs}: ${why}`, { cause: e });
  }
  return { config: parseConfigText(text, abs), file: abs, baseDir: path.dirname(abs) };
}

// ----------------------------------------------------------------------------------------------- CLI flags

/** The config flags of `faceg2e-native run` (as yargs parses them). */
export interface CliConfigArgs {
  prompt?: string;
  negativePrompt?: string;
  model?: string;
  engines?: string;
  seed?: number | string;
  device?: string;
  out?: string;
  profile?: boolean;
  /** `--set path=value`, repeatable: any field, typed by the schema. */
  set?: string | string[];
}

/** yargs option definitions for the flags above; `yargs.options(CLI_CONFIG_OPTIONS)`. */
export const CLI_CONFIG_OPTIONS: Record<keyof CliConfigArgs, YargsOptions> = {
  prompt: { type: 'string', alias: 'p', describe: 'Text prompt (config: prompt)' },
  negativePrompt: { type: 'string', describe: 'Negative prompt (config: negativePrompt)' },
  model: { type: 'string', describe: 'Head model .safetensors (config: model)' },
  engines: { type: 'string', describe: 'TensorRT engines folder (config: diffusion.engines)' },
  seed: { type: 'string', describe: 'Random seed, an integer >= 0 (config: seed)' },
  device: { type: 'string', choices: ['auto', 'cuda', 'cpu'], describe: 'Device (config: device)' },
  out: { type: 'string', alias: 'o', describe: 'Output folder (config: output.dir)' },
  profile: { type: 'boolean', describe: 'Record per-stage GPU timings in run.json (config: profile)' },
  set: { type: 'string', array: true, describe: 'Override any config field: --set geometry.iterations=300 (repeatable)' },
};

const NUMBER_RE = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

function allows(n: SchemaNode | undefined, type: string): boolean {
  const r = resolveRef(n);
  if (!r) return false;
  if (Array.isArray(r.anyOf)) return r.anyOf.some((b: SchemaNode) => allows(b, type));
  if (Array.isArray(r.type)) return r.type.includes(type);
  if (type === 'string' && (r.enum || r.const !== undefined)) return r.enum ? r.enum.some((v: unknown) => typeof v === 'string') : typeof r.const === 'string';
  return r.type === type;
}

/** Convert the text of `--set path=text` to the value the schema expects at `path` (left as text when it cannot). */
export function coerceCliValue(node: SchemaNode | undefined, text: string): unknown {
  const t = text.trim();
  if (t === 'null' && allows(node, 'null')) return null;
  if ((allows(node, 'integer') || allows(node, 'number')) && NUMBER_RE.test(t)) return Number(t);
  if (allows(node, 'boolean')) {
    if (/^(true|yes|on|1)$/i.test(t)) return true;
    if (/^(false|no|off|0)$/i.test(t)) return false;
  }
  if (allows(node, 'array')) {
    if (t.startsWith('[')) return parseJsonValue(t);
    const r = resolveRef(node)!;
    const arr: SchemaNode | undefined = Array.isArray(r.anyOf) ? r.anyOf.map((b: SchemaNode) => resolveRef(b)).find((b: SchemaNode | undefined) => b?.type === 'array') : r;
    if (t === '') return [];
    return t.split(',').map((part) => coerceCliValue(arr?.items, part));
  }
  if (allows(node, 'object') && t.startsWith('{')) return parseJsonValue(t);
  if (allows(node, 'string')) return text;
  // not convertible: hand the raw text to validation, which names the field and what it expects
  return t.startsWith('{') || t.startsWith('[') ? parseJsonValue(t) : text;
}

function parseJsonValue(t: string): unknown {
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}

function setDeep(obj: Record<string, unknown>, segs: string[], v: unknown): void {
  let cur = obj;
  for (let i = 0; i < segs.length - 1; i++) {
    const next = cur[segs[i]];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[segs[i]] = {};
    cur = cur[segs[i]] as Record<string, unknown>;
  }
  cur[segs[segs.length - 1]] = v;
}

/**
 * Map command-line flags to config overrides: `--prompt`, `--negative-prompt`, `--model`, `--engines`,
 * `--seed N`, `--device`, `--out DIR` (output.dir), `--profile`, and `--set dotted.path=value` (repeatable; the value is
 * typed by the schema: numbers, booleans, `null`, comma lists or JSON arrays, JSON objects). Values are validated
 * later by `resolveConfig`; unknown `--set` paths and malformed `--set` arguments throw E_CONFIG here, all at once.
 */
export function configFromCliArgs(args: CliConfigArgs): RunConfigOverrides {
  const out: Record<string, unknown> = {};
  const details: ErrorDetail[] = [];
  const put = (p: string, v: unknown) => setDeep(out, p.split('.'), v);
  if (args.prompt !== undefined) put('prompt', args.prompt);
  if (args.negativePrompt !== undefined) put('negativePrompt', args.negativePrompt);
  if (args.model !== undefined) put('model', args.model);
  if (args.engines !== undefined) put('diffusion.engines', args.engines);
  if (args.seed !== undefined) put('seed', typeof args.seed === 'string' && NUMBER_RE.test(args.seed.trim()) ? Number(args.seed) : args.seed);
  if (args.device !== undefined) put('device', args.device);
  if (args.out !== undefined) put('output.dir', args.out);
  if (args.profile !== undefined) put('profile', args.profile);
  const sets = args.set === undefined ? [] : Array.isArray(args.set) ? args.set : [args.set];
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) {
      details.push({ path: '--set', message: `expected path=value (e.g. geometry.iterations=300), got ${JSON.stringify(s)}` });
      continue;
    }
    const key = s.slice(0, eq).trim();
    const segs = parsePath(key);
    if (segs.some((x) => typeof x === 'number')) {
      details.push({ path: key, message: 'cannot --set inside an array; give the whole array (e.g. --set texture.cameras.fixed.azimuths=0,90,-90) (from --set)' });
      continue;
    }
    const strSegs = segs as string[];
    // find the first unknown segment, for a precise message
    let bad = -1;
    for (let i = 0; i < strSegs.length; i++) {
      if (!nodeAt(strSegs.slice(0, i + 1))) {
        bad = i;
        break;
      }
    }
    if (bad >= 0) {
      const parent = strSegs.slice(0, bad);
      const known = knownKeys(nodeAt(parent));
      const hint = didYouMean(strSegs[bad], known);
      const where = formatPath([...parent, strSegs[bad]]);
      details.push({
        path: where,
        message: known.length
          ? `unknown key "${strSegs[bad]}"${hint ? `; did you mean "${hint}"?` : ` (known keys: ${known.join(', ')})`} (from --set)`
          : `${formatPath(parent)} is ${describe(nodeAt(parent))}, it has no fields (from --set)`,
      });
      continue;
    }
    put(strSegs.join('.'), coerceCliValue(nodeAt(strSegs), s.slice(eq + 1)));
  }
  if (details.length) throw new FaceG2EError('E_CONFIG', `invalid command-line config: ${details[0].path}: ${details[0].message}`, { details });
  return out as RunConfigOverrides;
}

export interface LoadConfigOptions extends Omit<ResolveOptions, 'baseDir' | 'source'> {
  /** A config file; omit to build the config from defaults and flags alone. */
  configPath?: string;
  /** Command-line flags. */
  cli?: CliConfigArgs;
  /** Extra overrides applied after the flags (e.g. from an API caller). */
  overrides?: RunConfigOverrides;
}

/** Read the config file (if any), apply the flags, resolve and validate: the one call `faceg2e-native run` needs. */
export function loadConfig(opts: LoadConfigOptions = {}): RunConfig {
  const file = opts.configPath ? readConfigFile(opts.configPath) : undefined;
  const cli = deepMerge(opts.cli ? configFromCliArgs(opts.cli) : {}, opts.overrides ?? {}) as RunConfigOverrides;
  return resolveConfig(file?.config, cli, { ...opts, baseDir: file?.baseDir, source: file?.file });
}
