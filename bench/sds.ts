/**
 * Benchmark: all per-iteration SDS and optimiser maths of the texture phase (latents 1x4x64x64 -> CFG batch
 * 2x4x64x64; texture 512x512x3 with Adam), ours (fused kernels, native timing loop with CUDA events) vs the
 * same maths in PyTorch (bench/sds_torch.py) in the same run. Target: <= 3 launches and <= 30 us per iteration.
 *
 *   node --import tsx bench/sds.ts [--iterations 2000] [--no-torch]
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as sds from '../lib/sds';
import { cudaStatus } from '../lib/device';
import { BenchArgs } from './lib/args';

const args = new BenchArgs();
const iterations = args.num('--iterations', 2000);
const warmup = 100;

const st = cudaStatus();
if (!st.gpus.some((g) => g.supported)) {
  console.error(`bench/sds: needs a CUDA GPU (${st.error ?? 'none found'})`);
  process.exit(1);
}
console.log(`device: ${st.gpus[0].name}, CUDA runtime ${st.cudaRuntime}, ${iterations} iterations`);

interface Row { name: string; ours: { us: number; launches: number }; torch?: { us: number; kernels: number | null }; target?: boolean }
const rows: Row[] = [];

function torchBaseline(extra: string[]): { us: number; kernels: number | null } | undefined {
  if (args.flag('--no-torch')) return undefined;
  const py = process.env.PYTHON ?? 'python3';
  const r = spawnSync(py, [path.join(__dirname, 'sds_torch.py'), '--iterations', String(iterations), '--warmup', String(warmup), ...extra], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`torch baseline failed (${py}): ${r.stderr?.slice(-2000)}`);
    return undefined;
  }
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { us: j.usPerIter, kernels: j.kernelsPerIter };
}

const configs: { name: string; o: sds.BenchTextureOptions; torch: string[]; target?: boolean }[] = [
  { name: 'texture phase: eps-pred CFG, 1-alpha, Adam', o: {}, torch: [], target: true },
  { name: '  vs torch fused Adam', o: {}, torch: ['--fused-adam'] },
  { name: '+ gradient normalisation', o: { normalize: true }, torch: ['--normalize', '--fused-adam'] },
  { name: '+ fp16 I/O, x0_hat, clamp', o: { half: true, x0Pred: true, clamp: 1 }, torch: ['--fused-adam'] },
  { name: 'Adan on the texture', o: { optimizer: 'adan' }, torch: ['--fused-adam'] },
  { name: 'Adam + global grad-norm clip', o: { maxGradNorm: 1 }, torch: ['--fused-adam'] },
];

for (const c of configs) {
  const b = sds.benchTexturePhase({ iterations, warmup, ...c.o });
  rows.push({ name: c.name, ours: { us: b.deviceUsPerIter, launches: b.launchesPerIter }, torch: torchBaseline(c.torch), target: c.target });
}

const pad = (s: string, n: number) => s.padEnd(n);
console.log(`${pad('case', 44)} ${pad('ours us', 9)} ${pad('launches', 9)} ${pad('torch us', 9)} ${pad('kernels', 8)} speedup (torch/ours)`);
let ok = true;
for (const r of rows) {
  const ratio = r.torch ? (r.torch.us / r.ours.us).toFixed(2) + 'x' : '-';
  console.log(
    `${pad(r.name, 44)} ${pad(r.ours.us.toFixed(1), 9)} ${pad(r.ours.launches.toFixed(0), 9)} ${pad(r.torch ? r.torch.us.toFixed(1) : '-', 9)} ${pad(
      r.torch?.kernels != null ? r.torch.kernels.toFixed(0) : '-', 8)} ${ratio}`,
  );
  if (r.target) ok = r.ours.launches <= 3 && r.ours.us <= 30;
}
console.log(`target (<= 3 launches, <= 30 us per iteration, default texture-phase config): ${ok ? 'MET' : 'NOT MET'}`);
