/**
 * Typed errors with stable codes. Every error this package throws on purpose is a FaceG2EError; native
 * errors arrive with the same codes (see native/core/error.hpp) and are wrapped by `fromNative`.
 */
export type ErrorCode =
  | 'E_INVALID_ARGUMENT' // a bad argument or option value; the message names it
  | 'E_CONFIG' // a run config failed validation; `details` lists each bad field
  | 'E_FORMAT' // a file is truncated, foreign or malformed; the message names the file
  | 'E_IO' // a file could not be read or written
  | 'E_NO_CUDA_DEVICE' // no usable GPU / driver, or an addon built without CUDA
  | 'E_CUDA' // any other CUDA error
  | 'E_OUT_OF_MEMORY' // host or GPU allocation failed
  | 'E_CANCELLED' // an AbortSignal fired
  | 'E_NO_ENGINE' // a TensorRT engine (plan / manifest) is missing or stale
  | 'E_NO_TENSORRT' // TensorRT (libnvinfer) is not installed or not loadable
  | 'E_NUMERICAL' // NaN/Inf detected
  | 'E_NATIVE_LOAD' // the native addon could not be loaded
  | 'E_INTERNAL'; // a bug: please report it

export const ERROR_CODES: readonly ErrorCode[] = [
  'E_INVALID_ARGUMENT', 'E_CONFIG', 'E_FORMAT', 'E_IO', 'E_NO_CUDA_DEVICE', 'E_CUDA', 'E_OUT_OF_MEMORY',
  'E_CANCELLED', 'E_NO_ENGINE', 'E_NO_TENSORRT', 'E_NUMERICAL', 'E_NATIVE_LOAD', 'E_INTERNAL',
];

export interface ErrorDetail {
  /** JSON path of the offending field, e.g. `geometry.iterations`, or a file path. */
  path: string;
  message: string;
}

export class FaceG2EError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  constructor(code: ErrorCode, message: string, options?: { details?: ErrorDetail[]; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'FaceG2EError';
    this.code = code;
    this.details = options?.details ?? [];
  }
}

export function isFaceG2EError(e: unknown, code?: ErrorCode): e is FaceG2EError {
  return e instanceof FaceG2EError && (code === undefined || e.code === code);
}

/** Convert an error thrown by the addon (a plain Error with a `code`) into a FaceG2EError. */
export function fromNative(e: unknown): FaceG2EError {
  if (e instanceof FaceG2EError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' && (ERROR_CODES as readonly string[]).includes(err.code) ? (err.code as ErrorCode) : 'E_INTERNAL';
  return new FaceG2EError(code, String(err?.message ?? e), { cause: e });
}

/** Run a synchronous native call, converting its errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Await a native promise, converting its errors. */
export async function awaitNative<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fromNative(e);
  }
}
