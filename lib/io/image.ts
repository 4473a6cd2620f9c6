/**
 * Image files through `sharp`: write PNG from float [0,1] or uint8 HWC arrays (1, 3 or 4 channels), written
 * atomically (temp file in the same folder + rename); read PNG/JPEG (and anything else sharp reads) back as
 * uint8 or float HWC.
 */
import sharp from 'sharp';
import { FaceG2EError } from '../errors';
import { writeFileAtomic } from './atomic';

export interface ImageData {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export interface FloatImage {
  data: Float32Array;
  width: number;
  height: number;
  channels: number;
}

export interface ImageShape {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** Float [0,1] (clamped; NaN -> 0) or uint8 HWC -> uint8 HWC. */
export function toUint8(data: Float32Array | Float64Array | Uint8Array | Uint8ClampedArray): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof Uint8ClampedArray) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    out[i] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
  }
  return out;
}

/** Encode an HWC image as PNG bytes. */
export async function encodePng(data: Float32Array | Float64Array | Uint8Array | Uint8ClampedArray, shape: ImageShape): Promise<Buffer> {
  const { width, height, channels } = shape;
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0))
    throw new FaceG2EError('E_INVALID_ARGUMENT', `image: expected a positive integer width and height, got ${width}x${height}`);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new FaceG2EError('E_INVALID_ARGUMENT', `image: expected 1, 3 or 4 channels, got ${channels}`);
  if (data.length !== width * height * channels)
    throw new FaceG2EError('E_INVALID_ARGUMENT', `image: expected ${width}x${height}x${channels} = ${width * height * channels} values, got ${data.length}`);
  const u8 = toUint8(data);
  let img = sharp(Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength), { raw: { width, height, channels } });
  if (channels === 1) img = img.toColourspace('b-w');
  return img.png().toBuffer();
}

/** Write a PNG atomically. */
export async function writePng(file: string, data: Float32Array | Float64Array | Uint8Array | Uint8ClampedArray, shape: ImageShape): Promise<void> {
  const png = await encodePng(data, shape);
  await writeFileAtomic(file, png);
}

/** Read an image (PNG, JPEG, ...) as uint8 HWC. `channels` forces 1, 3 or 4 channels. */
export async function readImage(file: string, channels?: 1 | 3 | 4): Promise<ImageData> {
  try {
    let img = sharp(file);
    // sharp outputs sRGB unless told otherwise: keep single-channel (grey) files single-channel
    if (channels === undefined && ((await img.metadata()).channels ?? 3) <= 2) img = img.toColourspace('b-w');
    if (channels === 1) img = img.toColourspace('b-w');
    else if (channels === 3) img = img.removeAlpha();
    else if (channels === 4) img = img.ensureAlpha();
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels as 1 | 2 | 3 | 4 };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const code = /unsupported image format|Input buffer|corrupt|bad seek|VipsJpeg|pngload/i.test(String(err?.message)) ? 'E_FORMAT' : 'E_IO';
    throw new FaceG2EError(code, `cannot read image ${file}: ${err?.message ?? String(e)}`, { cause: e });
  }
}

/** Read an image as float [0,1] HWC. */
export async function readImageFloat(file: string, channels?: 1 | 3 | 4): Promise<FloatImage> {
  const im = await readImage(file, channels);
  const data = new Float32Array(im.data.length);
  for (let i = 0; i < data.length; i++) data[i] = im.data[i] / 255;
  return { data, width: im.width, height: im.height, channels: im.channels };
}
