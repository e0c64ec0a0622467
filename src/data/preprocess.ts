// Image -> model input, as the checkpoint's own library prepares it (the
// config's `preprocess`, src/nn/presets.ts), plus timm's training transform.
// No I/O and no node: imports: the web page and browser bundles use it too.
//
// Steps, all in uint8 as in PIL (the resizes round to uint8 after each pass,
// src/io/resize.ts), then /255 and (x - mean[c]) / std[c]:
//   convert: RGB keeps R, G, B and drops alpha (PIL convert('RGB'), no
//     blending); 1-channel models take PIL convert('L') luma
//     (R*19595 + G*38470 + B*7471 + 2^15) >> 16 (ITU-R 601-2, Convert.c L24).
//   'timm' (timm.data.transforms_factory.transforms_imagenet_eval):
//     scale = floor(size / cropPct);
//     center: shorter side to scale, longer int(scale * long / short)
//       (torchvision Resize), centre crop size, offset int(round((L - size) / 2))
//       with Python's half-to-even round (torchvision CenterCrop);
//     squash: both sides to scale, then the same crop;
//     border: longer side to scale (ResizeKeepRatio: each side
//       round(side / ratio)), then CenterCropOrPad filled with round(255 * mean).
//     A crop larger than the image pads with 0 (torchvision's centre-crop rule).
//   'hf' (transformers ViTImageProcessor / DeiTImageProcessor): resize to
//     height x width, or the shorter side to shortestEdge (longer
//     int(edge * long / short)); centre crop with offset (L - size) // 2 if crop.
//   'fixed': resize to size x size.
// Grey models without `preprocess` keep the project's original rule (imageToInput); RGB ones get preprocessOf's plain resize.
import type { RgbaImage } from '../io/image.js';
import { DEFAULT_MAX_PIXELS } from '../io/limits.js';
import { ImageError } from '../io/errors.js';
import { cropU8, resizeU8, toGrayFloat, type ResampleFilter } from '../io/resize.js';
import { preprocessOf, type Interpolation, type Preprocess, type VitConfig } from '../nn/presets.js';
import type { Rng } from '../util/rng.js';

/** Python's round(): half to even (torchvision's centre-crop offset uses it). */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Interleaved uint8 pixels: width x height x channels (1 or 3), row-major. */
export interface PixelsU8 { width: number; height: number; channels: 1 | 3; data: Uint8Array }

/** PIL convert('RGB') (alpha dropped) or convert('L') of a decoded RGBA image. */
export function convertImage(img: RgbaImage, channels: 1 | 3): PixelsU8 {
  const n = img.width * img.height, d = img.data, out = new Uint8Array(channels * n);
  if (channels === 3) for (let i = 0; i < n; i++) { out[3 * i] = d[4 * i]; out[3 * i + 1] = d[4 * i + 1]; out[3 * i + 2] = d[4 * i + 2]; }
  else for (let i = 0; i < n; i++) out[i] = (d[4 * i] * 19595 + d[4 * i + 1] * 38470 + d[4 * i + 2] * 7471 + 0x8000) >>> 16;
  return { width: img.width, height: img.height, channels, data: out };
}

function filterOf(i: Interpolation): ResampleFilter | 'nearest' {
  if (i === 'nearest' || i === 'bilinear' || i === 'bicubic') return i;
  throw new RangeError(`preprocess: unknown interpolation '${i as string}' (nearest, bilinear, bicubic)`);
}

/**
 * PIL resize with NEAREST: an affine transform sampling source pixel
 * floor((x + 0.5) * in / out) (ImagingTransformAffine, nearest filter).
 */
function resizeNearest(p: PixelsU8, w: number, h: number): PixelsU8 {
  const C = p.channels, out = new Uint8Array(C * w * h), sx = p.width / w, sy = p.height / h;
  for (let y = 0; y < h; y++) {
    const yi = Math.min(p.height - 1, Math.floor((y + 0.5) * sy));
    for (let x = 0; x < w; x++) {
      const xi = Math.min(p.width - 1, Math.floor((x + 0.5) * sx));
      for (let c = 0; c < C; c++) out[(y * w + x) * C + c] = p.data[(yi * p.width + xi) * C + c];
    }
  }
  return { width: w, height: h, channels: p.channels, data: out };
}

export function resizePixels(p: PixelsU8, w: number, h: number, interpolation: Interpolation): PixelsU8 {
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) throw new RangeError(`preprocess: resize of ${p.width}x${p.height} to ${w}x${h}`);
  if (w === p.width && h === p.height) return p;
  const f = filterOf(interpolation);
  if (f === 'nearest') return resizeNearest(p, w, h);
  return { width: w, height: h, channels: p.channels, data: resizeU8(p.data, p.channels, p.width, p.height, w, h, f) };
}

/** Crop the w x h window at (left, top); outside the image it is `fill` per channel (0 by default). */
export function cropPixels(p: PixelsU8, left: number, top: number, w: number, h: number, fill?: readonly number[]): PixelsU8 {
  const data = cropU8(p.data, p.channels, p.width, p.height, left, top, w, h);
  if (fill && fill.some((v) => v !== 0) && (left < 0 || top < 0 || left + w > p.width || top + h > p.height)) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const sx = x + left, sy = y + top;
      if (sx < 0 || sy < 0 || sx >= p.width || sy >= p.height) for (let c = 0; c < p.channels; c++) data[(y * w + x) * p.channels + c] = fill[c];
    }
  }
  return { width: w, height: h, channels: p.channels, data };
}

/** torchvision/timm centre-crop offset of `crop` in `size`: round-half-even when it fits, else -floor(pad / 2) (padding on the left/top). */
const torchOffset = (size: number, crop: number): number => (crop > size ? -Math.floor((crop - size) / 2) : pyRound((size - crop) / 2));

/** Shorter side to `short`, the longer int(short * long / shorter) (torchvision Resize(int), transformers shortest_edge). */
function shorterSideTo(w: number, h: number, short: number): [number, number] {
  return w <= h ? [short, Math.trunc((short * h) / w)] : [Math.trunc((short * w) / h), short];
}

/**
 * A resize of a W x H image to w x h before the crop, refused over the
 * decoders' pixel limit: a shorter-side resize of an extreme aspect ratio
 * (65535 x 1 to 256 gives 16776960 x 256) would otherwise allocate gigabytes
 * for a crop of a few hundred pixels. `what` names the image.
 */
function checkResize(W: number, H: number, w: number, h: number, S: number, what: string): void {
  if (w * h <= DEFAULT_MAX_PIXELS) return;
  throw new ImageError(what, `this ${W}x${H} image would be resized to ${w}x${h} (${((w * h) / 1e6).toFixed(1)} MP) before the model's ${S}x${S} crop, ` +
    `over the ${DEFAULT_MAX_PIXELS / 1e6} MP limit: its aspect ratio is too extreme for the model's preprocessing; crop it nearer to square first`);
}

/** The uint8 model-size image (size x size x channels) of the pipeline `p`: everything before /255 and normalisation. `what` names the image in errors. */
export function preprocessPixels(img: RgbaImage, p: Preprocess, channels: 1 | 3, what = 'image'): PixelsU8 {
  const S = p.size, W = img.width, H = img.height;
  if (!(Number.isInteger(S) && S > 0)) throw new RangeError(`preprocess: size must be a positive integer, got ${S}`);
  switch (p.kind) {
    case 'timm': {
      const pct = p.cropPct ?? 1;
      if (!(pct > 0 && pct <= 1)) throw new RangeError(`preprocess: cropPct must be in (0, 1], got ${pct}`);
      const scale = Math.floor(S / pct), mode = p.cropMode ?? 'center';
      if (mode === 'center' || mode === 'squash') {
        const [w, h] = mode === 'center' ? shorterSideTo(W, H, scale) : [scale, scale];
        checkResize(W, H, w, h, S, what);
        const r = resizePixels(convertImage(img, channels), w, h, p.interpolation);
        return cropPixels(r, torchOffset(w, S), torchOffset(h, S), S, S);
      }
      if (mode === 'border') {
        const ratio = Math.max(H / scale, W / scale);
        const r = resizePixels(convertImage(img, channels), pyRound(W / ratio), pyRound(H / ratio), p.interpolation);
        const fill = Array.from({ length: channels }, (_, c) => pyRound(255 * p.mean[c]));
        return cropPixels(r, torchOffset(r.width, S), torchOffset(r.height, S), S, S, fill);
      }
      throw new RangeError(`preprocess: unknown timm cropMode '${mode as string}' (center, squash, border)`);
    }
    case 'hf': {
      const rz = p.resize;
      let w: number, h: number;
      if (!rz) [w, h] = [S, S];
      else if ('shortestEdge' in rz) [w, h] = shorterSideTo(W, H, rz.shortestEdge);
      else [w, h] = [rz.width, rz.height];
      checkResize(W, H, w, h, S, what);
      const r = resizePixels(convertImage(img, channels), w, h, p.interpolation);
      if (!p.crop) {
        if (w !== S || h !== S) throw new RangeError(`preprocess: hf resize to ${w}x${h} without a crop does not give the model's ${S}x${S}`);
        return r;
      }
      return cropPixels(r, Math.floor((w - S) / 2), Math.floor((h - S) / 2), S, S);
    }
    case 'fixed': return resizePixels(convertImage(img, channels), S, S, p.interpolation);
    default: throw new RangeError(`preprocess: unknown kind '${(p as Preprocess).kind as string}' (timm, hf, fixed)`);
  }
}

/** uint8 pixels -> C x H x W float, (v / 255 - mean[c]) / std[c] (torchvision ToTensor + Normalize). */
export function normalizePixels(p: PixelsU8, mean: readonly number[], std: readonly number[], out?: Float32Array, offset = 0): Float32Array {
  const C = p.channels, n = p.width * p.height;
  if (mean.length !== C || std.length !== C || std.some((s) => !(s > 0))) throw new RangeError(`normalize: need ${C} means and ${C} positive stds, got mean=[${mean}] std=[${std}]`);
  const x = out ?? new Float32Array(C * n);
  for (let c = 0; c < C; c++) {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (v / 255 - mean[c]) / std[c];
    const o = offset + c * n;
    for (let i = 0; i < n; i++) x[o + i] = lut[p.data[i * C + c]];
  }
  return x;
}

/**
 * Model input (C x S x S) from a decoded image. With a `preprocess` config,
 * the checkpoint library's pipeline (above). Without one, RGB models are
 * resized straight to S (preprocessOf's plain bilinear, as the folder views
 * are) and grey models keep the project's original rule, unchanged so the
 * committed models see what they were trained on: luma resized (float
 * bilinear) to the data size, centred on the canvas whose padding is pixel 0
 * normalised, i.e. -mean/std.
 * Used by `cait predict`, the folder datasets and the web page alike;
 * `what` names the image in errors.
 */
export function imageToInput(img: RgbaImage, cfg: VitConfig, what = 'image'): Float32Array {
  const S = cfg.imgSize;
  if (cfg.inChans !== 1 && cfg.inChans !== 3) throw new Error(`images can feed 1- or 3-channel models, not ${cfg.inChans}`);
  // RGB without a config: the plain resize the folder views cache (it was a float resize here, up to a grey level apart)
  if (cfg.preprocess || cfg.inChans === 3) {
    const p = preprocessOf(cfg);
    if (p.size !== S) throw new RangeError(`preprocess: size ${p.size} differs from the model's imgSize ${S}`);
    return normalizePixels(preprocessPixels(img, p, cfg.inChans, what), cfg.mean, cfg.std);
  }
  const inner = cfg.dataSize ?? S, off = (S - inner) >> 1;
  const g = toGrayFloat(img, inner), x = new Float32Array(S * S).fill((0 - cfg.mean[0]) / cfg.std[0]);
  for (let r = 0; r < inner; r++) for (let c = 0; c < inner; c++) x[(r + off) * S + c + off] = (g[r * inner + c] - cfg.mean[0]) / cfg.std[0];
  return x;
}

// ---------------------------------------------------------------- training transform

export interface TrainTransform {
  /** timm RandomResizedCrop: area fraction range (default [0.08, 1]) and aspect range (default [3/4, 4/3]); null = no crop. */
  rrc: { scale: [number, number]; ratio: [number, number] } | null;
  /** RandomHorizontalFlip(0.5). */
  flip: boolean;
  interpolation: Interpolation;
}

export const DEFAULT_RRC = { scale: [0.08, 1] as [number, number], ratio: [3 / 4, 4 / 3] as [number, number] };

/**
 * timm's RandomResizedCropAndInterpolation.get_params on a W x H image: up to
 * 10 draws of an area fraction (uniform in scale) and a log-uniform aspect,
 * w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect)), kept when it
 * fits, at a uniform position; else the centre crop clamped to the ratio range.
 * Returns [left, top, w, h].
 */
export function rrcParams(W: number, H: number, rng: Rng, scale: [number, number], ratio: [number, number]): [number, number, number, number] {
  const area = W * H, lr0 = Math.log(ratio[0]), lr1 = Math.log(ratio[1]);
  for (let a = 0; a < 10; a++) {
    const target = rng.uniform(scale[0], scale[1]) * area;
    const aspect = Math.exp(rng.uniform(lr0, lr1));
    const w = pyRound(Math.sqrt(target * aspect)), h = pyRound(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= W && h <= H) return [rng.int(W - w + 1), rng.int(H - h + 1), w, h];
  }
  const inRatio = W / H;
  let w = W, h = H;
  if (inRatio < Math.min(...ratio)) h = pyRound(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = pyRound(h * Math.max(...ratio));
  return [(W - w) >> 1, (H - h) >> 1, w, h];
}

/**
 * One training view of a cached S x S image: random resized crop back to S
 * (PIL resize with the model's interpolation), then a horizontal flip with
 * p = 0.5; the rng draws the crop first, then the coin. The crop is taken
 * from the cached eval view (the model-size image), not the full-resolution
 * original, so the largest crop equals the eval view.
 */
export function trainView(p: PixelsU8, S: number, t: TrainTransform, rng: Rng): PixelsU8 {
  let v = p;
  if (t.rrc) {
    const [l, tp, w, h] = rrcParams(p.width, p.height, rng, t.rrc.scale, t.rrc.ratio);
    v = resizePixels(cropPixels(p, l, tp, w, h), S, S, t.interpolation);
  } else if (p.width !== S || p.height !== S) v = resizePixels(p, S, S, t.interpolation);
  if (t.flip && rng.next() < 0.5) {
    const C = v.channels, out = new Uint8Array(v.data.length), W = v.width;
    for (let y = 0; y < v.height; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) out[(y * W + x) * C + c] = v.data[(y * W + W - 1 - x) * C + c];
    v = { ...v, data: out };
  }
  return v;
}
