/**
 * Loading the native addon. node-gyp-build picks prebuilds/<platform>-<arch>/*.node first, then
 * build/Release/faceg2e.node (built by cmake-js on install). Loading never touches the GPU, so it works on
 * machines without one; ask `cudaInfo()` what is there.
 *
 * Each domain's TypeScript module declares the slice of the addon it calls (see `NativeCore` below), so
 * this file does not grow with every binding.
 */
import * as path from 'node:path';
import { FaceG2EError } from './errors';

export type DeviceName = 'cpu' | 'cuda';

export interface NativeGpu {
  index: number;
  name: string;
  totalMemory: number;
  freeMemory: number;
  computeCapability: string;
  multiprocessors: number;
  supported: boolean;
}

export interface NativeCudaInfo {
  compiledWithCuda: boolean;
  runtimeVersion: number;
  driverVersion: number;
  error: string | null;
  builtArchitectures: string;
  gpus: NativeGpu[];
}

export type CancelHandle = { readonly __cancelHandle: unique symbol };

export interface NativeCore {
  compiledWithCuda: boolean;
  cudaInfo(): NativeCudaInfo;
  rngFill(o: { seed?: number | bigint; stream?: number | bigint; offset?: number | bigint; count: number; distribution?: 'uniform' | 'normal'; mean?: number; scale?: number; device?: DeviceName }): Float32Array;
  rngRaw(o: { seed?: number | bigint; stream?: number | bigint; offset?: number | bigint; count: number; device?: DeviceName }): Uint32Array;
  philoxBlock(counter: Uint32Array, key: Uint32Array): Uint32Array;
  sleepTask(o: { steps?: number; stepMs?: number }, onProgress?: (p: { step: number; total: number }) => void, token?: CancelHandle): Promise<number>;
  createCancelToken(): CancelHandle;
  cancel(token: CancelHandle): void;
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..');

let cached: unknown;
let loadError: FaceG2EError | undefined;

/** The addon, typed as the slice `T` that the caller uses. Throws E_NATIVE_LOAD with a fix when it can't load. */
export function loadNative<T = NativeCore>(): T {
  if (cached) return cached as T;
  if (loadError) throw loadError;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    // FACEG2E_ADDON_PATH: load this .node file instead (development builds in other folders).
    const override = process.env.FACEG2E_ADDON_PATH;
    if (override) cached = require(path.resolve(override));
    else cached = (require('node-gyp-build') as (dir: string) => unknown)(PACKAGE_ROOT);
    return cached as T;
  } catch (e) {
    loadError = new FaceG2EError(
      'E_NATIVE_LOAD',
      `faceg2e-native: the native addon could not be loaded (${(e as Error).message}). ` +
        'Rebuild it with `npm rebuild faceg2e-native` (needs cmake and a C++17 compiler; nvcc for CUDA), ' +
        'or install on linux-x64 where a prebuild is shipped.',
      { cause: e },
    );
    throw loadError;
  }
}

/** Link an AbortSignal to a native cancel token. Returns the token and a disposer. */
export function cancelTokenFor(signal: AbortSignal | undefined): { token: CancelHandle | undefined; dispose: () => void } {
  if (!signal) return { token: undefined, dispose: () => {} };
  const n = loadNative<NativeCore>();
  const token = n.createCancelToken();
  const onAbort = () => n.cancel(token);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { token, dispose: () => signal.removeEventListener('abort', onAbort) };
}
