/**
 * Morph benchmark: our CUDA kernels vs the same maths in PyTorch (bench/morph_torch.py) on the same device.
 *
 *   node --import tsx bench/morph.ts [--iters 500] [--flush-l2] [--no-torch]
 *
 * ICT-sized: 26,719 vertices, 100 + 57 float16 modes, no joints. FLAME-sized synthetic: 5,023 vertices,
 * 400 modes, 5 joints, 36 pose correctives. Ours are replayed from CUDA graphs (the launchers allocate and
 * synchronise nothing, so one iteration captures). Bandwidth = bytes the blendshape pass must move / time /
 * 3.0 TB/s (H100 SXM measured copy bandwidth). With --flush-l2 256 MB are overwritten before each timed piece
 * (the 25 MB ICT basis otherwise stays in the 50 MB L2 between iterations).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MorphModel, timeMorph, toHalf, type MorphModelData } from '../lib/morph';
import { cudaStatus } from '../lib/device';
import { BenchArgs } from './lib/args';

const args = new BenchArgs();
const iters = args.num('--iters', 500);
const flushL2 = args.flag('--flush-l2');
const PEAK = 3.0e12;

function rand(n: number, amp: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = amp * (((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1);
  }
  return out;
}

function npyHalf(file: string): Uint16Array | undefined {
  if (!fs.existsSync(file)) return undefined;
  const buf = fs.readFileSync(file);
  const hlen = buf.readUInt16LE(8);
  const body = buf.subarray(10 + hlen);
  const out = new Uint16Array(body.length / 2);
  new Uint8Array(out.buffer).set(body);
  return out;
}

function strip(V: number): Int32Array {
  const t = new Int32Array(3 * (V - 2));
  for (let f = 0; f < V - 2; f++) t.set(f % 2 ? [f, f + 2, f + 1] : [f, f + 1, f + 2], 3 * f);
  return t;
}

function ict(): MorphModelData {
  const V = 26719, N = 3 * V;
  const dir = path.resolve(process.env.FACEG2E_SHARED_DIR ?? path.resolve(__dirname, '..', '..', 'shared'), 'models', 'ict-facekit-light');
  const id = npyHalf(path.join(dir, 'identity_deltas.npy')) ?? toHalf(rand(100 * N, 0.5, 1));
  const ex = npyHalf(path.join(dir, 'expression_deltas.npy')) ?? toHalf(rand(57 * N, 0.5, 2));
  return { template: rand(N, 10, 3), identityBasis: id, expressionBasis: ex, triangles: strip(V) };
}

function flame(): MorphModelData {
  const V = 5023, N = 3 * V, J = 5;
  const weights = rand(V * J, 0.5, 4).map((x) => x + 0.6);
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let j = 0; j < J; j++) s += weights[v * J + j];
    for (let j = 0; j < J; j++) weights[v * J + j] /= s;
  }
  const regressor = new Float32Array(J * V);
  for (let j = 0; j < J; j++) for (let v = j; v < V; v += 50) regressor[j * V + v] = 1 / Math.ceil((V - j) / 50);
  return {
    template: rand(N, 0.1, 5),
    identityBasis: toHalf(rand(300 * N, 0.01, 6)),
    expressionBasis: toHalf(rand(100 * N, 0.01, 7)),
    triangles: strip(V),
    skinning: { parents: Int32Array.from([-1, 0, 1, 1, 1]), weights, regressor, posedirs: toHalf(rand(36 * N, 0.01, 8)) },
  };
}

function main() {
  const s = cudaStatus();
  if (!s.gpus.some((g) => g.supported)) {
    console.error(`bench/morph: no usable CUDA device (${s.error ?? 'none'})`);
    process.exit(1);
  }
  console.log(`device: ${s.gpus[0].name}  iterations: ${iters}  L2 flush: ${flushL2}`);

  let torch: Record<string, number | string> | undefined;
  if (!args.flag('--no-torch')) {
    const r = spawnSync('python3', [path.join(__dirname, 'morph_torch.py'), '--iters', String(Math.min(iters, 300)), ...(flushL2 ? ['--flush-l2'] : [])], { encoding: 'utf8' });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      torch = JSON.parse(line);
    } catch {
      console.error(`PyTorch baseline failed: ${r.stderr.slice(-2000)}`);
    }
    if (torch?.error) {
      console.error(`PyTorch baseline: ${torch.error}`);
      torch = undefined;
    }
  }
  const rows: string[][] = [['case', 'ours µs', 'PyTorch µs', 'speed-up', 'DRAM BW']];
  const fmt = (x: number) => x.toFixed(1);
  const row = (name: string, ours: number, theirs: number | undefined, bytes?: number) =>
    rows.push([
      name,
      fmt(ours),
      theirs === undefined ? '-' : fmt(theirs),
      theirs === undefined ? '-' : `${(theirs / ours).toFixed(1)}x`,
      bytes === undefined ? '-' : `${((bytes / (ours * 1e-6)) / PEAK * 100).toFixed(0)}%`,
    ]);
  const tv = (k: string) => (torch && typeof torch[k] === 'number' ? (torch[k] as number) : undefined);

  // ---------------- ICT
  {
    const m = MorphModel.create(ict(), { device: 'cuda' });
    const N = 3 * m.info.numVertices;
    const coeffs = { identity: rand(100, 1, 9), expression: rand(57, 0.5, 10).map((x) => x + 0.5) };
    const up = { vertices: rand(N, 1, 11), normals: rand(N, 1, 12) };
    for (const deterministic of [true, false]) {
      const t = timeMorph(m, coeffs, up, { iterations: iters, warmup: 50, flushL2, deterministic });
      const basis = t.basisBytes;
      const tag = deterministic ? 'det' : 'atomic';
      row(`ICT blendshapes fwd (${tag})`, t.blendForwardUs, deterministic ? tv('ict_forward_us') : undefined, basis + 8 * N);
      row(`ICT blendshapes bwd (${tag})`, t.blendBackwardUs, undefined, basis + 4 * N);
      row(`ICT blendshapes fwd+bwd (${tag})`, t.blendForwardUs + t.blendBackwardUs, deterministic ? tv('ict_fwd_bwd_us') : undefined, 2 * basis + 12 * N);
      row(`ICT full fwd+bwd, rigid (${tag})`, t.forwardUs + t.backwardUs, undefined, 2 * basis + 12 * N);
      const tn = timeMorph(m, { ...coeffs, rotation: [0.1, 0.2, 0.3], translation: [0, 0, 1], scale: 1.2 }, up, {
        iterations: iters, warmup: 50, flushL2, deterministic, normals: true,
      });
      row(`ICT full fwd+bwd + normals (${tag})`, tn.forwardUs + tn.backwardUs, undefined);
    }
    m.dispose();
  }
  // ---------------- FLAME
  {
    const m = MorphModel.create(flame(), { device: 'cuda' });
    const N = 3 * m.info.numVertices;
    const coeffs = { identity: rand(300, 0.5, 13), expression: rand(100, 0.5, 14), pose: rand(15, 0.3, 15), rotation: [0.1, -0.2, 0.05], translation: [0.3, -1, 2], scale: 1.1 };
    const up = { vertices: rand(N, 1, 16) };
    for (const deterministic of [true, false]) {
      const t = timeMorph(m, coeffs, up, { iterations: iters, warmup: 50, flushL2, deterministic });
      const tag = deterministic ? 'det' : 'atomic';
      row(`FLAME fwd, skinning (${tag})`, t.forwardUs, deterministic ? tv('flame_forward_us') : undefined);
      row(`FLAME fwd+bwd, skinning (${tag})`, t.forwardUs + t.backwardUs, tv('flame_fwd_bwd_us'), 2 * t.basisBytes + 12 * N);
    }
    m.dispose();
  }
  if (torch) console.log(`PyTorch ${torch.torch} on ${torch.device}; ICT fwd+bwd with a float32 basis copy per call: ${fmt(tv('ict_fwd_bwd_f32_us') ?? NaN)} µs`);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  '));
  console.log('targets: ICT blendshapes fwd+bwd <= 30 µs at >= 60% of 3.0 TB/s; FLAME fwd+bwd >= 5x PyTorch');
}

main();
