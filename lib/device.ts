/** What this machine can run: GPUs, CUDA runtime and driver, TensorRT. Never throws for a missing GPU. */
import { loadNative, type NativeCore, type NativeCudaInfo, type DeviceName } from './native';
import { callNative, FaceG2EError } from './errors';

export type { DeviceName };

export interface GpuInfo {
  index: number;
  name: string;
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  computeCapability: string;
  multiprocessors: number;
  /** This build carries code for the GPU (SASS or PTX for its architecture). */
  supported: boolean;
}

export interface CudaStatus {
  compiledWithCuda: boolean;
  /** CUDA runtime linked into the addon, e.g. "13.0"; null when built without CUDA. */
  cudaRuntime: string | null;
  /** CUDA version the installed driver supports, e.g. "13.0"; null when there is no driver. */
  driver: string | null;
  builtArchitectures: string[];
  gpus: GpuInfo[];
  /** Why no GPU is usable, or null. */
  error: string | null;
}

function cudaVersion(v: number): string | null {
  return v > 0 ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : null;
}

export function cudaStatus(): CudaStatus {
  const info: NativeCudaInfo = callNative(() => loadNative<NativeCore>().cudaInfo());
  let error = info.error;
  if (info.driverVersion === 0 && info.compiledWithCuda) error = `no NVIDIA driver found (${info.error ?? 'libcuda.so.1 missing'})`;
  return {
    compiledWithCuda: info.compiledWithCuda,
    cudaRuntime: cudaVersion(info.runtimeVersion),
    driver: cudaVersion(info.driverVersion),
    builtArchitectures: info.builtArchitectures ? info.builtArchitectures.split(',') : [],
    gpus: info.gpus.map((g) => ({
      index: g.index,
      name: g.name,
      totalMemoryBytes: g.totalMemory,
      freeMemoryBytes: g.freeMemory,
      computeCapability: g.computeCapability,
      multiprocessors: g.multiprocessors,
      supported: g.supported,
    })),
    error,
  };
}

/** True when device 'cuda' can be used. */
export function cudaAvailable(): boolean {
  return cudaStatus().gpus.some((g) => g.supported);
}

/** Resolve 'auto' | 'cpu' | 'cuda' to a concrete device; 'cuda' without a GPU is E_NO_CUDA_DEVICE. */
export function resolveDevice(d: DeviceName | 'auto' | undefined): DeviceName {
  if (d === undefined || d === 'auto') return cudaAvailable() ? 'cuda' : 'cpu';
  if (d !== 'cpu' && d !== 'cuda') throw new FaceG2EError('E_INVALID_ARGUMENT', `device must be 'cpu', 'cuda' or 'auto', got '${String(d)}'`);
  if (d === 'cuda' && !cudaAvailable()) {
    const s = cudaStatus();
    throw new FaceG2EError('E_NO_CUDA_DEVICE', `device 'cuda' is not available: ${s.error ?? 'no supported GPU'}. Run \`npx faceg2e-native doctor\`, or use --device cpu.`);
  }
  return d;
}
