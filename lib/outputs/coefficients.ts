/**
 * coefficients.json: the head's model coefficients. The same file is read back as `texture.coefficients`,
 * `geometry.initCoefficients` and the target denoiser's `diffusion.target.head`.
 *
 *   {
 *     "format": "faceg2e-coefficients", "version": 1,
 *     "model": { "file": "/abs/ict.safetensors", "name": "ict-facekit-light" },
 *     "identity": [0.12, -0.4, ...],        // one per identity component of the model
 *     "expression": [0, 0, ...],            // one per expression component (may be empty)
 *     "extras": { ... }                     // free-form (prompt, seed, ...)
 *   }
 */
import * as fs from 'node:fs';
import { FaceG2EError } from '../errors';
import { writeAtomic } from './atomic';

export const COEFFICIENTS_FORMAT = 'faceg2e-coefficients';
export const COEFFICIENTS_VERSION = 1;

export interface Coefficients {
  /** The model these coefficients belong to. */
  model: { file?: string; name?: string };
  identity: Float32Array;
  expression: Float32Array;
  extras?: Record<string, unknown>;
}

function finiteArray(a: ArrayLike<number>, what: string): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new FaceG2EError('E_NUMERICAL', `${what}[${i}] is ${a[i]}`);
    out[i] = a[i];
  }
  return out;
}

/** The JSON text of a coefficients file. */
export function formatCoefficients(c: Coefficients): string {
  const obj = {
    format: COEFFICIENTS_FORMAT,
    version: COEFFICIENTS_VERSION,
    model: { ...(c.model.file !== undefined ? { file: c.model.file } : {}), ...(c.model.name !== undefined ? { name: c.model.name } : {}) },
    identity: finiteArray(c.identity, 'identity'),
    expression: finiteArray(c.expression, 'expression'),
    ...(c.extras ? { extras: c.extras } : {}),
  };
  // one array per line keeps the file readable and diffable
  return (
    JSON.stringify(obj, (k, v) => (Array.isArray(v) && (k === 'identity' || k === 'expression') ? `@@${JSON.stringify(v)}@@` : v), 2).replace(
      /"@@(\[.*?\])@@"/g,
      (_m, a) => a,
    ) + '\n'
  );
}

/** Write coefficients.json atomically. */
export async function writeCoefficients(file: string, c: Coefficients): Promise<void> {
  await writeAtomic(file, formatCoefficients(c));
}

/** Parse a coefficients file's text; E_FORMAT naming the file and field on anything unexpected. */
export function parseCoefficients(text: string, file = '<coefficients>'): Coefficients {
  let j: any;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new FaceG2EError('E_FORMAT', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const fail = (m: string) => new FaceG2EError('E_FORMAT', `${file}: ${m}`);
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw fail('expected a JSON object');
  if (j.format !== COEFFICIENTS_FORMAT) throw fail(`expected "format": "${COEFFICIENTS_FORMAT}", got ${JSON.stringify(j.format)}`);
  if (j.version !== COEFFICIENTS_VERSION) throw fail(`unsupported version ${JSON.stringify(j.version)} (this build reads version ${COEFFICIENTS_VERSION})`);
  const arr = (k: string, required: boolean): Float32Array => {
    const v = j[k];
    if (v === undefined && !required) return new Float32Array(0);
    if (!Array.isArray(v)) throw fail(`"${k}": expected an array of numbers`);
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== 'number' || !Number.isFinite(v[i])) throw fail(`"${k}"[${i}]: expected a finite number, got ${JSON.stringify(v[i])}`);
      out[i] = v[i];
    }
    return out;
  };
  const model = j.model && typeof j.model === 'object' ? j.model : {};
  return {
    model: { ...(typeof model.file === 'string' ? { file: model.file } : {}), ...(typeof model.name === 'string' ? { name: model.name } : {}) },
    identity: arr('identity', true),
    expression: arr('expression', false),
    ...(j.extras && typeof j.extras === 'object' ? { extras: j.extras } : {}),
  };
}

/** Read a coefficients file (E_IO when unreadable, E_FORMAT when malformed). */
export function readCoefficients(file: string): Coefficients {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FaceG2EError('E_IO', `cannot read coefficients file ${file}: ${(e as Error).message}`, { cause: e });
  }
  return parseCoefficients(text, file);
}
