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

export interface ImageInput {
  data: Float32Array | Float64Array | Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA). Default: inferred from data.length / (width × height). */
  channels?: 1 | 3 | 4;
}

export interface Image8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** Check the shape of an image and return its channel count. `what` names it in errors. */
export function imageChannels(img: ImageInput, what = 'image'): 1 | 3 | 4 {
  if (!img || typeof img !== 'object' || !ArrayBuffer.isView(img.data)) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected {data: typed array, width, height}`);
  const { width: w, height: h } = img;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected positive integer width and height, got ${w}×${h}`);
  const c = img.channels ?? img.data.length / (w * h);
  if (c !== 1 && c !== 3 && c !== 4) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected 1, 3 or 4 channels, got ${img.channels ?? `${img.data.length} values for ${w}×${h} pixels`}`);
  if (img.data.length !== w * h * c) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected ${w}×${h}×${c} = ${w * h * c} values, got ${img.data.length}`);
  return c;
}

/** Convert to 8 bits (floats in [0, 1] clamped and rounded). */
export function toImage8(img: ImageInput, what = 'image'): Image8 {
  const channels = imageChannels(img, what);
  const src = img.data;
  if (src instanceof Uint8Array || src instanceof Uint8ClampedArray) {
    return { data: new Uint8Array(src.buffer, src.byteOffset, src.length), width: img.width, height: img.height, channels };
  }
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (!Number.isFinite(v)) {
      const px = Math.floor(i / channels);
      throw new FaceG2EError('E_NUMERICAL', `${what}: ${v} at pixel (x ${px % img.width}, y ${Math.floor(px / img.width)}), channel ${i % channels}`);
    }
    out[i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
  }
  return { data: out, width: img.width, height: img.height, channels };
}

/** A sharp pipeline over an 8-bit image. */
export function sharpOf(img: Image8): sharp.Sharp {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
  // sharp writes sRGB by default; keep 1-channel images 1-channel
  return img.channels === 1 ? s.toColourspace('b-w') : s;
}

/** Encode an HWC image as PNG bytes (floats in [0, 1] are clamped and rounded; NaN/Inf is E_NUMERICAL). */
export async function encodePng(data: ImageInput['data'], shape: ImageShape, what = 'image'): Promise<Buffer> {
  return sharpOf(toImage8({ data, ...shape }, what)).png({ compressionLevel: 6 }).toBuffer();
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
