/** Shared test utilities: paths to ../shared, numeric comparisons, central finite differences. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

export const ROOT = path.resolve(__dirname, '..');
/** ../shared beside the checkout; FACEG2E_SHARED_DIR overrides it (bundled GPU runs carry a copy). */
export const SHARED = process.env.FACEG2E_SHARED_DIR ? path.resolve(process.env.FACEG2E_SHARED_DIR) : path.resolve(ROOT, '..', 'shared');
export const ICT_DIR = path.join(SHARED, 'models', 'ict-facekit-light');
export const CLIP_VOCAB = path.join(SHARED, 'clip', 'bpe_simple_vocab_16e6.txt.gz');
export const hasShared = fs.existsSync(ICT_DIR);

/** A fresh temporary folder under the OS temp dir, removed at process exit. */
export function tmpDir(prefix = 'fg-test-'): string {
  const d = fs.mkdtempSync(path.join(require('node:os').tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Assert |a-b| <= atol + rtol*|b| elementwise, reporting the worst index. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0, what = 'values'): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} != ${b.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(b[i]);
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= tol) && (worst < 0 || d - tol > worstExcess)) {
      worst = i;
      worstExcess = d - tol;
    }
  }
  if (worst >= 0) assert.fail(`${what}: index ${worst}: ${a[worst]} vs ${b[worst]} (atol ${atol}, rtol ${rtol})`);
}

/**
 * Central finite differences of a scalar function f at x along the listed coordinates (all when omitted),
 * in float64. f must not keep references to x.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: ArrayLike<number>, h: number, coords?: number[]): Float64Array {
  const xs = Float64Array.from(x);
  const idx = coords ?? Array.from({ length: xs.length }, (_, i) => i);
  const g = new Float64Array(xs.length);
  for (const i of idx) {
    const v = xs[i];
    xs[i] = v + h;
    const fp = f(xs);
    xs[i] = v - h;
    const fm = f(xs);
    xs[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Relative error of two gradient vectors: |a-b| / max(|a|, |b|, floor). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-8): number {
  let num = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    na += a[i] ** 2;
    nb += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(na), Math.sqrt(nb), floor);
}

/** Run the CLI as a user does: bin/faceg2e-native.js over the compiled dist/. */
export function cli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'faceg2e-native.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
