// Pixel resampling with no I/O (so it bundles for browsers): Pillow-exact
// uint8 resizing for the checkpoints' own preprocessing, and the float
// conversions the Fashion-MNIST-style models consume.
//
// resizeU8 reproduces Pillow's Image.resize (libImaging/Resample.c,
// ImagingResample; Pillow 9.x, the oracle of ../shared/fixtures/preprocess):
//   * separable: horizontal pass first, then vertical; each pass rounds and
//     clips to uint8, so the intermediate image is uint8 as in Pillow;
//   * precompute_coeffs: scale = in/out, filterscale = max(scale, 1) (the
//     antialiasing: the kernel widens by the downscale factor), support =
//     filter support * filterscale, taps from int(center - support + 0.5) to
//     int(center + support + 0.5) clipped to the image, weights
//     filter((x + xmin - center + 0.5) / filterscale) normalised to sum 1;
//   * normalize_coeffs_8bpc: weights to fixed point with 22 fractional bits
//     (PRECISION_BITS = 32 - 8 - 2), rounded half away from zero; the sum
//     starts at 2^21 (rounding) and clip8 takes floor(sum / 2^22) clamped to
//     0..255;
//   * a pass whose size does not change is skipped.
// Integer arithmetic in doubles is exact here (|sum| < 2^31), so the result
// matches Pillow bit for bit given the same filter values.
import type { RgbaImage } from './image.js';

/** Pillow's resampling filters by their names in timm (`interpolation`) and PIL. */
export type ResampleFilter = 'bilinear' | 'bicubic' | 'box' | 'hamming' | 'lanczos';
export const RESAMPLE_FILTERS: readonly ResampleFilter[] = ['bilinear', 'bicubic', 'box', 'hamming', 'lanczos'];

/** PIL.Image.Resampling numbers (what transformers' `resample` holds): 0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING. */
export const PIL_RESAMPLE: Record<number, ResampleFilter> = { 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

const sinc = (x: number): number => { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; };
const FILTERS: Record<ResampleFilter, { f: (x: number) => number; support: number }> = {
  box: { f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0), support: 0.5 },
  bilinear: { f: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; }, support: 1 },
  hamming: {
    f: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x)); // 0.54f, 0.46f in Pillow
    },
    support: 1,
  },
  bicubic: {
    f: (x) => { // a = -0.5 (Keys)
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
    support: 2,
  },
  lanczos: { f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0), support: 3 },
};

const PRECISION_BITS = 22;

interface Coeffs { lo: Int32Array; n: Int32Array; k: number; w: Float64Array }

/** precompute_coeffs (float weights, normalised); see the header. */
function pillowCoeffs(inSize: number, outSize: number, filter: ResampleFilter): Coeffs {
  const { f, support: s0 } = FILTERS[filter];
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = s0 * filterscale;
  const k = Math.ceil(support) * 2 + 1, ss = 1 / filterscale;
  const lo = new Int32Array(outSize), n = new Int32Array(outSize), w = new Float64Array(outSize * k);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) { const v = f((x + xmin - center + 0.5) * ss); w[i * k + x] = v; total += v; }
    if (total !== 0) for (let x = 0; x < xmax; x++) w[i * k + x] /= total;
    lo[i] = xmin; n[i] = xmax;
  }
  return { lo, n, k, w };
}

/** normalize_coeffs_8bpc: to 22-bit fixed point, rounded half away from zero. */
function fixedPoint(c: Coeffs): Int32Array {
  const out = new Int32Array(c.w.length), one = 1 << PRECISION_BITS;
  for (let i = 0; i < c.w.length; i++) { const v = c.w[i] * one; out[i] = Math.trunc(v < 0 ? v - 0.5 : v + 0.5); }
  return out;
}

const clip8 = (ss: number): number => { const v = ss >> PRECISION_BITS; return v < 0 ? 0 : v > 255 ? 255 : v; };

/**
 * Resize interleaved uint8 pixels (`channels` per pixel, row-major) to
 * outW x outH as Pillow's Image.resize(size, filter) does; see the header.
 */
export function resizeU8(src: Uint8Array, channels: number, inW: number, inH: number, outW: number, outH: number, filter: ResampleFilter): Uint8Array {
  if (!FILTERS[filter]) throw new RangeError(`resizeU8: unknown filter '${filter}' (${RESAMPLE_FILTERS.join(', ')})`);
  if (src.length !== channels * inW * inH) throw new RangeError(`resizeU8: ${inW}x${inH}x${channels} needs ${channels * inW * inH} bytes, got ${src.length}`);
  if (!(Number.isInteger(outW) && Number.isInteger(outH) && outW > 0 && outH > 0)) throw new RangeError(`resizeU8: bad output size ${outW}x${outH}`);
  let img = src, w = inW;
  const C = channels, half = 1 << (PRECISION_BITS - 1);
  if (outW !== inW) {
    const c = pillowCoeffs(inW, outW, filter), kk = fixedPoint(c);
    const out = new Uint8Array(C * outW * inH);
    for (let y = 0; y < inH; y++) {
      const row = y * inW * C;
      for (let x = 0; x < outW; x++) {
        const lo = c.lo[x], n = c.n[x], k0 = x * c.k, o = (y * outW + x) * C;
        for (let ch = 0; ch < C; ch++) {
          let ss = half;
          for (let i = 0; i < n; i++) ss += img[row + (lo + i) * C + ch] * kk[k0 + i];
          out[o + ch] = clip8(ss);
        }
      }
    }
    img = out; w = outW;
  }
  if (outH !== inH) {
    const c = pillowCoeffs(inH, outH, filter), kk = fixedPoint(c);
    const out = new Uint8Array(C * w * outH), stride = w * C;
    for (let y = 0; y < outH; y++) {
      const lo = c.lo[y], n = c.n[y], k0 = y * c.k;
      for (let x = 0; x < stride; x++) {
        let ss = half;
        for (let i = 0; i < n; i++) ss += img[(lo + i) * stride + x] * kk[k0 + i];
        out[y * stride + x] = clip8(ss);
      }
    }
    img = out;
  }
  return img === src ? src.slice() : img;
}

/** RGBA to packed RGB, alpha dropped (not blended), as Pillow's convert('RGB') of an RGBA or L image. */
export function rgbaToRgb(img: RgbaImage): Uint8Array {
  const n = img.width * img.height, out = new Uint8Array(3 * n), d = img.data;
  for (let i = 0; i < n; i++) { out[3 * i] = d[4 * i]; out[3 * i + 1] = d[4 * i + 1]; out[3 * i + 2] = d[4 * i + 2]; }
  return out;
}

/**
 * Crop packed pixels to the w x h window whose top-left is (left, top);
 * outside the source the window is 0 (torchvision's CenterCrop pads with 0
 * when the crop is larger than the image).
 */
export function cropU8(src: Uint8Array, channels: number, inW: number, inH: number, left: number, top: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(channels * w * h);
  for (let y = 0; y < h; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= inH) continue;
    const x0 = Math.max(0, -left), x1 = Math.min(w, inW - left);
    if (x0 >= x1) continue;
    out.set(src.subarray((sy * inW + left + x0) * channels, (sy * inW + left + x1) * channels), (y * w + x0) * channels);
  }
  return out;
}

// ---------------------------------------------------------------- float conversions

/**
 * Antialiased bilinear resampling of `planes` float planes (each inH x inW,
 * row-major) to outH x outW: the kernel construction of Pillow's BILINEAR
 * (precompute_coeffs above) in float, without the uint8 rounding between the
 * passes. The Fashion-MNIST-style models were trained with it (imageToInput).
 */
export function resizePlanes(src: Float32Array, planes: number, inW: number, inH: number, outW: number, outH: number): Float32Array {
  if (src.length !== planes * inW * inH) throw new RangeError(`resizePlanes: ${planes}x${inH}x${inW} needs ${planes * inW * inH} values, got ${src.length}`);
  if (!(outW > 0 && outH > 0 && Number.isInteger(outW) && Number.isInteger(outH))) throw new RangeError(`resizePlanes: bad output size ${outW}x${outH}`);
  if (inW === outW && inH === outH) return src.slice();
  const cx = floatCoeffs(inW, outW), cy = floatCoeffs(inH, outH);
  const tmp = new Float32Array(inH * outW);
  const out = new Float32Array(planes * outH * outW);
  for (let p = 0; p < planes; p++) {
    const s = p * inW * inH;
    for (let y = 0; y < inH; y++) {
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        const lo = cx.lo[x], n = cx.n[x], k = x * cx.k;
        for (let i = 0; i < n; i++) acc += src[s + y * inW + lo + i] * cx.w[k + i];
        tmp[y * outW + x] = acc;
      }
    }
    const d = p * outW * outH;
    for (let y = 0; y < outH; y++) {
      const lo = cy.lo[y], n = cy.n[y], k = y * cy.k;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += tmp[(lo + i) * outW + x] * cy.w[k + i];
        out[d + y * outW + x] = acc;
      }
    }
  }
  return out;
}

/** The triangle-filter coefficients resizePlanes has always used (dividing by filterscale where Pillow multiplies by its inverse: kept so trained models see the same inputs). */
function floatCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const k = Math.ceil(support) * 2 + 1;
  const lo = new Int32Array(outSize), n = new Int32Array(outSize), w = new Float64Array(outSize * k);
  const tri = (x: number): number => { x = Math.abs(x); return x < 1 ? 1 - x : 0; };
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    for (let x = xmin; x < xmax; x++) { const v = tri((x - center + 0.5) / filterscale); w[i * k + x - xmin] = v; total += v; }
    if (total > 0) for (let x = 0; x < xmax - xmin; x++) w[i * k + x] /= total;
    lo[i] = xmin; n[i] = xmax - xmin;
  }
  return { lo, n, w, k };
}

/**
 * Grayscale in [0, 1], row-major size x size (or the image's own size when
 * `size` is omitted). Luma weights 0.299/0.587/0.114 (ITU-R BT.601, as Pillow's
 * convert('L')); alpha is ignored, also as Pillow's convert does.
 */
export function toGrayFloat(img: RgbaImage, size?: number): Float32Array {
  const { width: w, height: h, data } = img;
  const g = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) g[i] = (0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2]) / 255;
  return size === undefined ? g : resizePlanes(g, 1, w, h, size, size);
}

/**
 * RGB as a 3 x size x size CHW Float32Array: resized (float bilinear, square,
 * aspect ignored), scaled to [0, 1], then (x - mean[c]) / std[c] per channel.
 * Alpha is dropped (Pillow convert('RGB')). Models with a `preprocess` config
 * use src/data/preprocess.ts instead, which resizes as their library does.
 */
export function toRgbFloatNCHW(img: RgbaImage, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s !== 0))) {
    throw new RangeError(`toRgbFloatNCHW: need 3 means and 3 non-zero stds, got mean=[${mean}] std=[${std}]`);
  }
  const { width: w, height: h, data } = img;
  const n = w * h;
  const planes = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) planes[c * n + i] = data[4 * i + c] / 255;
  const r = resizePlanes(planes, 3, w, h, size, size);
  const m = size * size;
  for (let c = 0; c < 3; c++) for (let i = 0; i < m; i++) r[c * m + i] = (r[c * m + i] - mean[c]) / std[c];
  return r;
}
