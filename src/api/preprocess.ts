// Pixels to model input: checks what the caller passed, then the project's
// one preprocessing definition (the same function `cait predict` and the web
// page use), so a model gets exactly the input it was trained on.
import type { RgbaImage } from '../io/image.js';
import { imageToInput } from '../data/preprocess.js';
import type { VitConfig } from '../nn/presets.js';
import type { RgbaLike } from './types.js';
import { showValue } from '../util/suggest.js';

export function isRgbaLike(x: unknown): x is RgbaLike {
  const o = x as RgbaLike;
  return !!o && typeof o === 'object' && typeof o.width === 'number' && typeof o.height === 'number' &&
    (o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray);
}

/** RGBA pixels as the decoders return them, checked: positive integer size, 4 bytes a pixel. */
export function rgbaOf(x: RgbaLike, what = 'image'): RgbaImage {
  const { width: w, height: h, data } = x;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) throw new RangeError(`${what}: width and height must be positive integers, got ${showValue(w)}x${showValue(h)}`);
  if (data.length !== w * h * 4) throw new RangeError(`${what}: ${w}x${h} RGBA needs ${w * h * 4} bytes, got ${data.length}`);
  return { width: w, height: h, data: data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** One image's model input, [C, S, S] as the model's config says; `what` names the image in errors. */
export function toModelInput(img: RgbaLike, cfg: VitConfig, what = 'image'): Float32Array {
  return imageToInput(rgbaOf(img, what), cfg, what);
}

/**
 * What an unusable image input is, for the error: a pixels-like object says
 * which part is wrong (8-bit RGBA data, numeric sizes), else its type.
 */
export function describeInput(x: unknown): string {
  const o = x as { width?: unknown; height?: unknown; data?: unknown };
  if (o && typeof o === 'object' && 'width' in o && 'height' in o) {
    if (typeof o.width !== 'number' || typeof o.height !== 'number') return `{ width: ${showValue(o.width)}, height: ${showValue(o.height)} } (sizes must be numbers)`;
    const d = o.data === undefined ? 'no data' : `data ${Object.prototype.toString.call(o.data).slice(8, -1)}`;
    return `{ width, height } with ${d} (RGBA pixels need data as a Uint8Array or Uint8ClampedArray, 4 bytes a pixel)`;
  }
  return Object.prototype.toString.call(x);
}

/** An image input's name for errors: its path or URL, else 'image'. */
export function imageName(image: unknown): string {
  return typeof image === 'string' ? (image.startsWith('data:') ? 'data: URL' : image) : image instanceof URL ? image.href : 'image';
}

/** Freezes o and everything reachable from it (plain objects and arrays; typed arrays cannot be frozen and are left). */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !ArrayBuffer.isView(o) && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
