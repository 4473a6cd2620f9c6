/**
 * run.json: what ran and how it went: the resolved config, versions (package, Node, CUDA, TensorRT, GPU),
 * per-phase timings and metrics, and the files written. Written atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config/types';
import { writeAtomic } from './atomic';

export const RUN_FORMAT = 'faceg2e-run';
export const RUN_VERSION = 1;

export interface Versions {
  package: string;
  node: string;
  platform: string;
  /** CUDA runtime linked into the addon and the driver's CUDA version; null without CUDA. */
  cudaRuntime: string | null;
  cudaDriver: string | null;
  tensorrt: string | null;
  /** GPUs this process could see, e.g. "NVIDIA H100 80GB HBM3 (sm_90)". */
  gpus: string[];
}

export interface PhaseRecord {
  iterations: number;
  /** Wall time of the phase. */
  seconds: number;
  /** Iterations per second. */
  itPerSecond?: number;
  /** Final (or summary) metrics, e.g. {loss: 0.12, gradNorm: 3.4}. */
  metrics?: Record<string, number | number[] | null>;
  /** Per-stage timings when `profile` is on: total milliseconds and calls per stage name. */
  profile?: Record<string, { ms: number; calls: number }>;
}

export interface RunRecord {
  status: 'ok' | 'failed' | 'cancelled';
  error?: { code: string; message: string };
  startedAt: string;
  finishedAt: string;
  seconds: number;
  config: RunConfig;
  versions: Versions;
  /** The device the run used ('cuda' | 'cpu') and, for CUDA, the GPU's name. */
  device?: { name: string; gpu?: string };
  phases: { geometry?: PhaseRecord; texture?: PhaseRecord };
  /** Output files, relative to output.dir. */
  outputs: string[];
  extras?: Record<string, unknown>;
}

let pkgVersion: string | undefined;
/** This package's version (read from its package.json). */
export function packageVersion(): string {
  if (pkgVersion) return pkgVersion;
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const p = path.join(dir, 'package.json');
    try {
      const j = JSON.parse(fs.readFileSync(p, 'utf8'));
      if (j.name === 'faceg2e-native' && typeof j.version === 'string') return (pkgVersion = j.version as string);
    } catch {
      /* keep looking */
    }
    dir = path.dirname(dir);
  }
  return (pkgVersion = 'unknown');
}

/**
 * Versions of everything that shapes a run. CUDA/TensorRT/GPU come from the addon (doctor); when the addon cannot
 * load they are null/empty and this still returns.
 */
export function collectVersions(): Versions {
  const v: Versions = { package: packageVersion(), node: process.version, platform: `${process.platform}-${process.arch}`, cudaRuntime: null, cudaDriver: null, tensorrt: null, gpus: [] };
  try {
    // required lazily: run.json writing must not depend on the addon loading
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { doctorReport } = require('../cli/doctor') as typeof import('../cli/doctor');
    const r = doctorReport();
    v.cudaRuntime = r.cudaRuntime;
    v.cudaDriver = r.driver;
    v.tensorrt = r.tensorrt.found ? r.tensorrt.version : null;
    v.gpus = r.gpus.map((g) => `${g.name} (sm_${g.computeCapability.replace('.', '')})`);
  } catch {
    /* addon not available */
  }
  return v;
}

/** The JSON text of a run record (numbers that are not finite become null). */
export function formatRunJson(r: RunRecord): string {
  const body = { format: RUN_FORMAT, version: RUN_VERSION, ...r };
  return JSON.stringify(body, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v), 2) + '\n';
}

export async function writeRunJson(file: string, r: RunRecord): Promise<void> {
  await writeAtomic(file, formatRunJson(r));
}
