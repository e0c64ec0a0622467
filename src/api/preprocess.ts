// Pixels to model input: checks what the caller passed, then the project's
// one preprocessing definition (the same function `cait predict` and the web
// page use), so a model gets exactly the input it was trained on.
import type { RgbaImage } from '../io/image.js';
import { imageToInput } from '../data/preprocess.js';
import type { VitConfig } from '../nn/presets.js';
import type { RgbaLike } from './types.js';

export function isRgbaLike(x: unknown): x is RgbaLike {
  const o = x as RgbaLike;
  return !!o && typeof o === 'object' && typeof o.width === 'number' && typeof o.height === 'number' &&
    (o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray);
}

/** RGBA pixels as the decoders return them, checked: positive integer size, 4 bytes a pixel. */
export function rgbaOf(x: RgbaLike, what = 'image'): RgbaImage {
  const { width: w, height: h, data } = x;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) throw new RangeError(`${what}: width and height must be positive integers, got ${w}x${h}`);
  if (data.length !== w * h * 4) throw new RangeError(`${what}: ${w}x${h} RGBA needs ${w * h * 4} bytes, got ${data.length}`);
  return { width: w, height: h, data: data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** One image's model input, [C, S, S] as the model's config says. */
export function toModelInput(img: RgbaLike, cfg: VitConfig): Float32Array {
  return imageToInput(rgbaOf(img), cfg);
}
