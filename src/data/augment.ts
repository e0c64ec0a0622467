// Batch assembly for training and evaluation: uint8 28×28 images → normalised
// float NCHW on an S×S canvas, with the standard small-image augmentations
// (torchvision RandomCrop(S, padding=cropPad) and RandomHorizontalFlip(0.5)).
// Runs every step over 60k images an epoch, so it is table-driven loops over
// typed arrays, and it is deterministic given the rng state.
import type { Rng } from '../util/rng.js';

/** Anything shaped like a Split: n images of h×w uint8 pixels and their labels. */
export interface ImageSource {
  images: Uint8Array;
  /** Class ids: Uint16Array past 255 classes (an image folder of 1000 classes). */
  labels: Uint8Array | Uint16Array;
  n: number;
  h: number;
  w: number;
}

export interface AugmentOptions {
  rng: Rng;
  /** Random crop with zero padding: shift the image by dy, dx uniform in [-cropPad, cropPad]. 0 disables. */
  cropPad: number;
  /** Horizontal flip with p = 0.5. Fashion-MNIST only; MNIST callers pass false (digits are not mirror-symmetric). */
  flip: boolean;
}

export interface BatchOptions {
  /** Output canvas side S: the h×w image is centred with floor((S-h)/2) zero rows above (32 → 2 px border for 28). */
  pad: number;
  augment?: AugmentOptions;
  mean: number;
  std: number;
  /** Reuse these buffers (x: B*S*S, y: B) instead of allocating. */
  out?: Batch;
}

export interface Batch {
  /** B×1×S×S, value (pixel/255 - mean)/std; padding and fill are pixel 0, i.e. -mean/std. */
  x: Float32Array;
  y: Int32Array;
}

/** pixel 0..255 → (pixel/255 - mean)/std, as float32. */
export function normLut(mean: number, std: number): Float32Array {
  if (!(std > 0)) throw new RangeError(`normLut: std must be > 0, got ${std}`);
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = (v / 255 - mean) / std;
  return lut;
}

let lutCache: { mean: number; std: number; lut: Float32Array } | null = null;
function cachedLut(mean: number, std: number): Float32Array {
  if (!lutCache || lutCache.mean !== mean || lutCache.std !== std) lutCache = { mean, std, lut: normLut(mean, std) };
  return lutCache.lut;
}

/**
 * Draw one h×w uint8 image (at src[srcOff]) onto the S×S float canvas at dst[dstOff]:
 * the image's top-left lands at (top, left) — possibly outside the canvas, which clips —
 * the rest of the canvas is lut[0], and with `flip` the whole canvas is mirrored left–right
 * afterwards (so flip composes with the shift as crop-then-flip, torchvision's usual order).
 */
export function placeImage(
  src: Uint8Array, srcOff: number, h: number, w: number,
  dst: Float32Array, dstOff: number, S: number,
  top: number, left: number, flip: boolean, lut: Float32Array,
): void {
  dst.fill(lut[0], dstOff, dstOff + S * S);
  const r0 = Math.max(0, -top), r1 = Math.min(h, S - top);
  const c0 = Math.max(0, -left), c1 = Math.min(w, S - left);
  if (r0 >= r1 || c0 >= c1) return;
  for (let r = r0; r < r1; r++) {
    const s = srcOff + r * w;
    const d = dstOff + (r + top) * S;
    if (!flip) {
      const dl = d + left;
      for (let c = c0; c < c1; c++) dst[dl + c] = lut[src[s + c]];
    } else {
      const dr = d + S - 1 - left; // column c lands at S-1-(c+left)
      for (let c = c0; c < c1; c++) dst[dr - c] = lut[src[s + c]];
    }
  }
}

/**
 * Assemble images `indices` of `split` into a batch. Per sample, with augment, the rng draws
 * dy, dx (each rng.int(2*cropPad+1) - cropPad, only when cropPad > 0) then the flip coin
 * (rng.next() < 0.5, only when flip), in that order — so batches are reproducible from the rng state.
 */
export function makeBatch(split: ImageSource, indices: ArrayLike<number>, opts: BatchOptions): Batch {
  const B = indices.length, S = opts.pad, h = split.h, w = split.w, px = h * w;
  if (!Number.isInteger(S) || S < h || S < w) throw new RangeError(`makeBatch: pad (canvas size) ${S} must be an integer >= ${Math.max(h, w)}`);
  const x = opts.out?.x ?? new Float32Array(B * S * S);
  const y = opts.out?.y ?? new Int32Array(B);
  if (x.length < B * S * S || y.length < B) throw new RangeError(`makeBatch: out buffers too small for ${B}×${S}×${S}`);
  const lut = cachedLut(opts.mean, opts.std);
  const offY = (S - h) >> 1, offX = (S - w) >> 1;
  const aug = opts.augment;
  const cp = aug ? aug.cropPad | 0 : 0;
  if (cp < 0) throw new RangeError(`makeBatch: cropPad ${cp} < 0`);
  const flip = !!aug?.flip;
  const { images, labels, n } = split;
  for (let b = 0; b < B; b++) {
    const i = indices[b];
    if (!(i >= 0 && i < n) || !Number.isInteger(i)) throw new RangeError(`makeBatch: index ${i} out of range [0, ${n})`);
    let dy = 0, dx = 0, fl = false;
    if (aug) {
      if (cp > 0) {
        dy = aug.rng.int(2 * cp + 1) - cp;
        dx = aug.rng.int(2 * cp + 1) - cp;
      }
      if (flip) fl = aug.rng.next() < 0.5;
    }
    placeImage(images, i * px, h, w, x, b * S * S, S, offY + dy, offX + dx, fl, lut);
    y[b] = labels[i];
  }
  return { x, y };
}

/** A fresh random permutation of 0..n-1 (one epoch's visiting order). */
export function epochOrder(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return rng.shuffle(p);
}

/** Consecutive batches of `order`, the last one short unless dropLast. */
export function* batchIndices(order: Int32Array, batchSize: number, dropLast = false): Generator<Int32Array> {
  for (let s = 0; s < order.length; s += batchSize) {
    if (dropLast && s + batchSize > order.length) return;
    yield order.subarray(s, Math.min(order.length, s + batchSize));
  }
}
