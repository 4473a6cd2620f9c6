/**
 * The project's counter-based RNG (Philox4x32-10), the same bits on CPU and GPU. A draw is addressed by
 * (seed, stream, index); see native/core/philox.hpp for the layout. Every random choice in faceg2e-native
 * (noise, timesteps, cameras, lighting, initialisation) goes through it with its own stream id.
 */
import { loadNative, type NativeCore, type DeviceName } from './native';
import { callNative } from './errors';

/** Stream ids reserved by the pipeline (mirrors native/core/rng.hpp). */
export const RngStream = { user: 0, sdsNoise: 1, timestep: 2, camera: 3, lighting: 4, init: 5, prompt: 6 } as const;

export interface RngOptions {
  seed: number | bigint;
  stream?: number | bigint;
  /** Index of the first draw. */
  offset?: number | bigint;
  device?: DeviceName;
}

/** `count` uniform draws in (0, 1), scaled to (lo, hi). */
export function uniform(count: number, o: RngOptions & { lo?: number; hi?: number }): Float32Array {
  const lo = o.lo ?? 0;
  const hi = o.hi ?? 1;
  return callNative(() => loadNative<NativeCore>().rngFill({ ...o, count, distribution: 'uniform', mean: lo, scale: hi - lo }));
}

/** `count` normal draws with the given mean and standard deviation. */
export function normal(count: number, o: RngOptions & { mean?: number; std?: number }): Float32Array {
  return callNative(() => loadNative<NativeCore>().rngFill({ ...o, count, distribution: 'normal', mean: o.mean ?? 0, scale: o.std ?? 1 }));
}

/** The raw 32-bit Philox words (for tests and for deriving integer choices). */
export function raw(count: number, o: RngOptions): Uint32Array {
  return callNative(() => loadNative<NativeCore>().rngRaw({ ...o, count }));
}

/**
 * A small host-side stream for choices made in TypeScript (camera picks, prompt variants): draws
 * sequentially from (seed, stream), in blocks, so that it equals `uniform(n, {seed, stream})` elementwise.
 */
export class RngSequence {
  private buf: Float32Array = new Float32Array(0);
  private pos = 0;
  private next = 0;
  constructor(readonly seed: number | bigint, readonly stream: number | bigint, offset = 0) {
    this.next = offset;
  }
  /** Index of the next draw (save it to resume). */
  get offset(): number {
    return this.next - (this.buf.length - this.pos);
  }
  uniform(lo = 0, hi = 1): number {
    if (this.pos >= this.buf.length) {
      this.buf = uniform(256, { seed: this.seed, stream: this.stream, offset: this.next });
      this.next += 256;
      this.pos = 0;
    }
    return lo + (hi - lo) * this.buf[this.pos++];
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.uniform() * n));
  }
}
