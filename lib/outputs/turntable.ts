/**
 * turntable.webp: frames encoded as an animated WebP with sharp (all frames stacked into one multi-page raw
 * image), written atomically.
 */
import sharp from 'sharp';
import { FaceG2EError } from '../errors';
import { writeAtomic, type OutputBatch } from './atomic';
import { toImage8, type ImageInput } from './image';

export interface TurntableOptions {
  /** Frames per second. Default 24. */
  fps?: number;
  /** WebP quality 1-100. Default 90. */
  quality?: number;
  /** Lossless WebP. Default false. */
  lossless?: boolean;
  /** Loop count, 0 = forever. Default 0. */
  loop?: number;
}

/** Encode frames (all the same size and channel count) as an animated WebP; returns its bytes. */
export async function encodeAnimatedWebp(frames: ImageInput[], options: TurntableOptions = {}): Promise<Buffer> {
  if (frames.length === 0) throw new FaceG2EError('E_INVALID_ARGUMENT', 'turntable: expected at least one frame');
  const fps = options.fps ?? 24;
  if (!(fps > 0 && fps <= 1000)) throw new FaceG2EError('E_INVALID_ARGUMENT', `turntable fps: expected a number in (0, 1000], got ${fps}`);
  const quality = options.quality ?? 90;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new FaceG2EError('E_INVALID_ARGUMENT', `turntable quality: expected an integer in [1, 100], got ${quality}`);
  const first = toImage8(frames[0], 'turntable frame 0');
  const { width, height } = first;
  const channels = first.channels === 1 ? 3 : first.channels;
  const frameBytes = width * height * channels;
  const all = new Uint8Array(frameBytes * frames.length);
  for (let f = 0; f < frames.length; f++) {
    const im = f === 0 ? first : toImage8(frames[f], `turntable frame ${f}`);
    if (im.width !== width || im.height !== height) throw new FaceG2EError('E_INVALID_ARGUMENT', `turntable frame ${f}: expected ${width}×${height} like frame 0, got ${im.width}×${im.height}`);
    if ((im.channels === 1 ? 3 : im.channels) !== channels) throw new FaceG2EError('E_INVALID_ARGUMENT', `turntable frame ${f}: expected ${channels} channels like frame 0, got ${im.channels}`);
    const dst = all.subarray(f * frameBytes, (f + 1) * frameBytes);
    if (im.channels === 1) for (let i = 0; i < width * height; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = im.data[i];
    else dst.set(im.data);
  }
  const delayMs = Math.max(1, Math.round(1000 / fps));
  return sharp(all, { raw: { width, height: height * frames.length, channels, pageHeight: height } })
    .webp({ quality, lossless: options.lossless ?? false, loop: options.loop ?? 0, delay: frames.map(() => delayMs), effort: 4 })
    .toBuffer();
}

/** Write frames as an animated WebP, atomically. */
export async function writeTurntableWebp(file: string, frames: ImageInput[], options: TurntableOptions = {}): Promise<void> {
  await writeAtomic(file, await encodeAnimatedWebp(frames, options));
}

export async function stageTurntableWebp(batch: OutputBatch, name: string, frames: ImageInput[], options: TurntableOptions = {}): Promise<string> {
  return batch.add(name, await encodeAnimatedWebp(frames, options));
}
