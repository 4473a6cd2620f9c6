/**
 * Run checkpoints: what an interrupted `faceg2e-native run` leaves behind so that `--resume` continues it
 * exactly (the RNG is counter-based, so draws depend only on (seed, stream, iteration)). Stored as one
 * safetensors file (`checkpoint.safetensors` in the output folder): every typed array of the native checkpoint
 * as an F32 tensor, the scalars in the metadata, plus the config's seed and a fingerprint of the config so
 * that a checkpoint is never applied to a different job.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FaceG2EError } from './errors';
import { readSafetensors, writeSafetensors, type StTensor } from './models/safetensors';
import type { PipelineCheckpoint } from './pipeline-native';
import type { RunConfig } from './config';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** A fingerprint of everything that decides the optimisation (output settings excluded). */
export function configFingerprint(cfg: RunConfig): string {
  const { output: _output, profile: _profile, ...rest } = cfg;
  return crypto.createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

function flatten(prefix: string, v: unknown, out: [string, StTensor][], meta: Record<string, string>): void {
  if (v instanceof Float32Array) out.push([prefix, { dtype: 'F32', shape: [v.length], data: v }]);
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out, meta);
  else if (v !== undefined) meta[prefix] = JSON.stringify(v);
}

export async function writeCheckpoint(dir: string, cfg: RunConfig, cp: PipelineCheckpoint): Promise<string> {
  const tensors: [string, StTensor][] = [];
  const meta: Record<string, string> = {};
  flatten('', cp, tensors, meta);
  meta['__format'] = JSON.stringify('faceg2e-checkpoint/1');
  meta['__fingerprint'] = JSON.stringify(configFingerprint(cfg));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, CHECKPOINT_FILE);
  await writeSafetensors(file, tensors, meta);
  return file;
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]] = value;
}

export async function readCheckpoint(dir: string, cfg: RunConfig): Promise<PipelineCheckpoint> {
  const file = path.join(dir, CHECKPOINT_FILE);
  if (!fs.existsSync(file)) throw new FaceG2EError('E_IO', `--resume: no checkpoint at ${file} (a run writes one when it is interrupted with Ctrl-C)`);
  const st = await readSafetensors(file);
  if (st.metadata['__format'] !== JSON.stringify('faceg2e-checkpoint/1')) throw new FaceG2EError('E_FORMAT', `${file}: not a faceg2e-native checkpoint`);
  if (st.metadata['__fingerprint'] !== JSON.stringify(configFingerprint(cfg)))
    throw new FaceG2EError('E_CONFIG', `${file} was written by a run with a different config (seed, model or settings changed); remove it or restore the config to resume`);
  const cp: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(st.metadata)) if (!k.startsWith('__')) setPath(cp, k, JSON.parse(v));
  for (const [k, t] of st.tensors) {
    if (t.dtype !== 'F32') throw new FaceG2EError('E_FORMAT', `${file}: tensor ${k} is ${t.dtype}, expected F32`);
    setPath(cp, k, t.data);
  }
  return cp as unknown as PipelineCheckpoint;
}

export function removeCheckpoint(dir: string): void {
  fs.rmSync(path.join(dir, CHECKPOINT_FILE), { force: true });
}
