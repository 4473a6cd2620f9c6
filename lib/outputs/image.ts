/**
 * Images as plain typed arrays (what the native code hands back), converted to 8-bit and encoded with sharp.
 *
 * An `ImageInput` is interleaved H×W×C, row 0 at the top. Float data is in [0, 1] (clamped, rounded to 8 bits;
 * NaN/Inf is an E_NUMERICAL error); 8-bit data is taken as is.
 */
import { encodePng as encodeHwcPng, imageChannels, type ImageInput } from '../io/image';

export { imageChannels, toImage8, sharpOf, type ImageInput, type Image8 } from '../io/image';

/** Encode an image as PNG. */
export async function encodePng(img: ImageInput, what = 'image'): Promise<Buffer> {
  return encodeHwcPng(img.data, { width: img.width, height: img.height, channels: imageChannels(img, what) }, what);
}
