/** `faceg2e-native doctor [--json]`: what this machine can run. Exit 0 when it can run the GPU pipeline. */
import type { CommandModule } from 'yargs';
import { cudaStatus, type CudaStatus } from '../device';
import { loadNative } from '../native';

export interface TensorRTStatus {
  found: boolean;
  version: string | null;
  library: string | null;
  error: string | null;
}

export interface DoctorReport extends CudaStatus {
  node: string;
  platform: string;
  addon: { loaded: boolean; error: string | null };
  tensorrt: TensorRTStatus;
  canRun: { cpuOps: boolean; gpuOps: boolean; gpuPipeline: boolean };
  summary: string[];
}

export function tensorrtStatus(): TensorRTStatus {
  try {
    const n = loadNative<{ tensorrtInfo?: () => TensorRTStatus }>();
    if (typeof n.tensorrtInfo === 'function') return n.tensorrtInfo();
    return { found: false, version: null, library: null, error: 'this build has no TensorRT loader' };
  } catch (e) {
    return { found: false, version: null, library: null, error: (e as Error).message };
  }
}

export function doctorReport(): DoctorReport {
  const base = { node: process.version, platform: `${process.platform}-${process.arch}` };
  let cuda: CudaStatus;
  try {
    cuda = cudaStatus();
  } catch (e) {
    const msg = (e as Error).message;
    return {
      ...base,
      compiledWithCuda: false, cudaRuntime: null, driver: null, builtArchitectures: [], gpus: [], error: msg,
      addon: { loaded: false, error: msg },
      tensorrt: { found: false, version: null, library: null, error: 'addon not loaded' },
      canRun: { cpuOps: false, gpuOps: false, gpuPipeline: false },
      summary: [`The native addon does not load: ${msg}`],
    };
  }
  const tensorrt = tensorrtStatus();
  const gpuOps = cuda.gpus.some((g) => g.supported);
  const gpuPipeline = gpuOps && tensorrt.found;
  const summary: string[] = [];
  summary.push('CPU ops (renderer, morphable models, SDS maths, target-denoiser reconstruction): yes.');
  if (!cuda.compiledWithCuda) summary.push('GPU ops: no; this addon was built without CUDA (nvcc was not found at install). Reinstall with the CUDA toolkit on PATH.');
  else if (cuda.gpus.length === 0) summary.push(`GPU ops: no; ${cuda.error ?? 'no GPU found'}.`);
  else if (!gpuOps) summary.push(`GPU ops: no; no GPU here is supported by this build (built for ${cuda.builtArchitectures.join(', ')}).`);
  else summary.push(`GPU ops: yes, on ${cuda.gpus.filter((g) => g.supported).map((g) => `${g.name} (sm_${g.computeCapability.replace('.', '')})`).join(', ')}.`);
  if (tensorrt.found) summary.push(`TensorRT ${tensorrt.version} found (${tensorrt.library}).`);
  else summary.push(`TensorRT: not found${tensorrt.error ? ` (${tensorrt.error})` : ''}; text-to-head runs need it to build and run the diffusion engines.`);
  summary.push(gpuPipeline ? 'Text-to-head pipeline on the GPU: can run (build engines with `faceg2e-native engines build`).' : 'Text-to-head pipeline on the GPU: cannot run on this machine.');
  return { ...base, ...cuda, addon: { loaded: true, error: null }, tensorrt, canRun: { cpuOps: true, gpuOps, gpuPipeline }, summary };
}

function formatBytes(b: number): string {
  return `${(b / 2 ** 30).toFixed(1)} GiB`;
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `faceg2e-native doctor`,
    `  node          ${r.node} (${r.platform})`,
    `  addon         ${r.addon.loaded ? 'loaded' : `NOT loaded: ${r.addon.error}`}${r.compiledWithCuda ? `, CUDA build for ${r.builtArchitectures.join(', ')}` : ', CPU-only build'}`,
    `  CUDA runtime  ${r.cudaRuntime ?? 'none'}`,
    `  driver        ${r.driver ? `supports CUDA ${r.driver}` : 'none'}`,
    `  GPUs          ${r.gpus.length === 0 ? `none${r.error ? ` (${r.error})` : ''}` : ''}`,
    ...r.gpus.map((g) => `    [${g.index}] ${g.name}, compute ${g.computeCapability}, ${g.multiprocessors} SMs, ${formatBytes(g.freeMemoryBytes)} free of ${formatBytes(g.totalMemoryBytes)}${g.supported ? '' : ' (NOT supported by this build)'}`),
    `  TensorRT      ${r.tensorrt.found ? `${r.tensorrt.version} (${r.tensorrt.library})` : 'not found'}`,
    '',
    ...r.summary.map((s) => `  ${s}`),
  ];
  return lines.join('\n') + '\n';
}

export const doctorCommand: CommandModule<object, { json: boolean }> = {
  command: 'doctor',
  describe: 'Report GPUs, driver, CUDA runtime and TensorRT, and what this machine can run (exit 0 when it can run the GPU pipeline)',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' }),
  handler: (args) => {
    const r = doctorReport();
    process.stdout.write(args.json ? JSON.stringify(r, null, 2) + '\n' : formatDoctor(r));
    process.exitCode = r.canRun.gpuPipeline ? 0 : 1;
  },
};
