/**
 * Images as plain typed arrays (what the native code hands back), converted to 8-bit and encoded with sharp.
 *
 * An `ImageInput` is interleaved H×W×C, row 0 at the top. Float data is in [0, 1] (clamped, rounded to 8 bits;
 * NaN/Inf is an E_NUMERICAL error); 8-bit data is taken as is.
 */
import sharp from 'sharp';
import { FaceG2EError } from '../errors';

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
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
}

/** Encode an image as PNG. */
export async function encodePng(img: ImageInput, what = 'image'): Promise<Buffer> {
  const i8 = toImage8(img, what);
  return sharpOf(i8).png({ compressionLevel: 6 }).toBuffer();
}
