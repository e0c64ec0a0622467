// Image I/O: PNG (own decoder/encoder over node:zlib) and JPEG (jpeg-js) to
// 8-bit RGBA, plus the float conversions the models consume.
//
// PNG references are to the W3C PNG Specification (Third Edition) /
// ISO/IEC 15948: §5 datastream structure, §7 scanlines and Adam7, §9 filters,
// §11 chunk definitions, Annex D for the CRC.
import { DEFAULT_MAX_PIXELS, MAX_IMAGE_FILE_BYTES } from './limits.js';
import { inflateSync, deflateSync } from 'node:zlib';
import { ImageError } from './errors.js';
import { readInput } from './input.js';
import jpeg from 'jpeg-js';

export interface RgbaImage { width: number; height: number; data: Uint8Array }

export { ImageError };

export interface DecodeOptions {
  /**
   * Refuse images with more pixels than this, read from the header before any
   * pixel memory is allocated (default DEFAULT_MAX_PIXELS: 40 MP is 160 MB of
   * RGBA, more than any camera photo a classifier needs).
   */
  maxPixels?: number;
}
export { DEFAULT_MAX_PIXELS };

function checkPixels(file: string, kind: string, width: number, height: number, opts: DecodeOptions): void {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (width * height > maxPixels) {
    // the default limit is no option a CLI or classify() user can set: say what to do instead
    const why = opts.maxPixels === undefined ? 'the decoder\'s limit for any image; downscale it first' : 'maxPixels';
    throw new ImageError(file, `${kind} header says ${width}x${height} (${((width * height) / 1e6).toFixed(1)} MP), over the ${(maxPixels / 1e6).toFixed(1)} MP limit (${why}); not decoded`);
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]; // §5.2

const startsWith = (b: Uint8Array, sig: ArrayLike<number>, at = 0): boolean => {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
};

/** Decode PNG or JPEG (detected by magic bytes, not by file name) to RGBA. */
export function decodeImage(bytes: Uint8Array, file = '<buffer>', opts: DecodeOptions = {}): RgbaImage {
  if (startsWith(bytes, PNG_SIGNATURE)) return decodePng(bytes, file, opts);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return decodeJpeg(bytes, file, opts);
  let kind = '';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38])) kind = 'GIF';
  else if (startsWith(bytes, [0x42, 0x4d])) kind = 'BMP';
  else if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes, [0x57, 0x45, 0x42, 0x50], 8)) kind = 'WebP';
  else if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) kind = 'TIFF';
  if (kind) throw new ImageError(file, `${kind} images are not supported (only PNG and JPEG)`);
  if (bytes.length > 0 && bytes.length < 8 && startsWith(bytes, PNG_SIGNATURE.slice(0, bytes.length))) {
    throw new ImageError(file, `truncated PNG (${bytes.length} bytes)`);
  }
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new ImageError(file, `unrecognized image format (${bytes.length} bytes, starting ${head || '<empty>'}); expected PNG or JPEG`);
}

export { MAX_IMAGE_FILE_BYTES };

export function readImageFile(path: string, opts?: DecodeOptions): RgbaImage {
  return decodeImage(readInput(path, 'image', MAX_IMAGE_FILE_BYTES), path, opts);
}

// ---------------------------------------------------------------- JPEG

/** A JPEG's frame header (ITU-T T.81 B.2.2) and whether an Adobe APP14 segment says "no colour transform". */
export interface JpegFrame { width: number; height: number; components: Array<{ id: number; h: number; v: number }>; adobeNoTransform: boolean }

/**
 * The frame header (SOFn: any of FFC0..FFCF except DHT C4, JPG C8 and DAC
 * CC), found by walking the marker segments from SOI; null when no frame
 * header precedes the scan or the data ends.
 */
export function jpegFrame(bytes: Uint8Array): JpegFrame | null {
  let p = 2, adobeNoTransform = false;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return null;
    const m = bytes[p + 1];
    if (m === 0xff) { p++; continue; } // fill bytes (B.1.1.2)
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) { p += 2; continue; } // TEM, RSTn, SOI: no length
    if (m === 0xd9 || m === 0xda) return null; // EOI or SOS before any frame header
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (len < 2) return null;
    // APP14 "Adobe": transform byte at offset 11 of the segment data (0 = RGB/CMYK stored as is)
    if (m === 0xee && len >= 12 && p + 4 + 12 <= bytes.length && String.fromCharCode(...bytes.subarray(p + 4, p + 9)) === 'Adobe') adobeNoTransform = bytes[p + 4 + 11] === 0;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (p + 10 > bytes.length) return null;
      const n = bytes[p + 9], components: JpegFrame['components'] = [];
      for (let i = 0; i < n && p + 12 + 3 * i <= bytes.length; i++) {
        const q = p + 10 + 3 * i;
        components.push({ id: bytes[q], h: bytes[q + 1] >> 4, v: bytes[q + 1] & 15 });
      }
      return { height: (bytes[p + 5] << 8) | bytes[p + 6], width: (bytes[p + 7] << 8) | bytes[p + 8], components, adobeNoTransform };
    }
    p += 2 + len;
  }
  return null;
}

// libjpeg's YCbCr -> RGB tables (jdcolor.c build_ycc_rgb_table: SCALEBITS 16, FIX(x) = round(x * 2^16)).
const FIX = (x: number): number => Math.trunc(x * 65536 + 0.5);
const CR_R = new Int32Array(256), CB_B = new Int32Array(256), CR_G = new Int32Array(256), CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (FIX(1.402) * x + 32768) >> 16;
  CB_B[i] = (FIX(1.772) * x + 32768) >> 16;
  CR_G[i] = -FIX(0.71414) * x;
  CB_G[i] = -FIX(0.34414) * x + 32768;
}
const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * libjpeg's "fancy" chroma upsampling (jdsample.c h2v1/h2v2_fancy_upsample:
 * triangle weights 3/4, 1/4 per axis, edges replicated, the +8/+7 rounding
 * alternating between the two outputs) of a cw x ch plane by 2 horizontally
 * and `vf` (1 or 2) vertically, cut to w x h.
 */
function fancyUpsample(src: Uint8Array, cw: number, ch: number, vf: 1 | 2, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h), row = new Int32Array(cw);
  const put = (y: number, x: number, v: number) => { if (y < h && x < w) out[y * w + x] = v; };
  for (let cy = 0; cy < ch; cy++) {
    for (let v = 0; v < vf; v++) {
      const oy = cy * vf + v;
      if (oy >= h) break;
      const ny = vf === 1 ? cy : v === 0 ? Math.max(0, cy - 1) : Math.min(ch - 1, cy + 1);
      // column sums (h2v2: 3 * this row + the nearer neighbour row; h2v1: the row itself)
      for (let x = 0; x < cw; x++) row[x] = vf === 2 ? 3 * src[cy * cw + x] + src[ny * cw + x] : src[cy * cw + x];
      const sh = vf === 2 ? 4 : 2, r1 = vf === 2 ? 8 : 1, r2 = vf === 2 ? 7 : 2;
      if (cw === 1) { put(oy, 0, (row[0] * 4 + r1) >> sh); put(oy, 1, (row[0] * 4 + r2) >> sh); continue; }
      for (let x = 0; x < cw; x++) {
        const last = row[x > 0 ? x - 1 : 0], next = row[x < cw - 1 ? x + 1 : cw - 1], t = row[x];
        put(oy, 2 * x, (t * 3 + last + r1) >> sh);
        put(oy, 2 * x + 1, (t * 3 + next + r2) >> sh);
      }
    }
  }
  return out;
}

/**
 * YCbCr JPEGs (3 components, 4:4:4, 4:2:2 or 4:2:0) as libjpeg decodes them
 * by default, which is what Pillow returns: jpeg-js supplies the component
 * planes (asked for without colour conversion; its nearest-neighbour chroma
 * upsampling is undone by taking every sampled position), then libjpeg's
 * fancy upsampling and integer colour conversion. Other layouts: null.
 */
function libjpegLikeRgba(bytes: Uint8Array, frame: JpegFrame, maxPixels: number): RgbaImage | null {
  const c = frame.components;
  if (c.length !== 3 || frame.adobeNoTransform) return null;
  const [y, cb, cr] = c;
  if (cb.h !== 1 || cb.v !== 1 || cr.h !== 1 || cr.v !== 1) return null;
  if (!((y.h === 1 && y.v === 1) || (y.h === 2 && (y.v === 1 || y.v === 2)))) return null;
  const raw = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, colorTransform: false, maxResolutionInMP: maxPixels / 1e6 }) as { width: number; height: number; data: Uint8Array };
  const { width: w, height: h, data } = raw, n = w * h;
  if (data.length !== 3 * n) return null;
  const Y = new Uint8Array(n);
  for (let i = 0; i < n; i++) Y[i] = data[3 * i];
  let Cb: Uint8Array, Cr: Uint8Array;
  if (y.h === 1) {
    Cb = new Uint8Array(n); Cr = new Uint8Array(n);
    for (let i = 0; i < n; i++) { Cb[i] = data[3 * i + 1]; Cr[i] = data[3 * i + 2]; }
  } else {
    const vf = y.v as 1 | 2, cw = Math.ceil(w / 2), ch = Math.ceil(h / vf);
    const pb = new Uint8Array(cw * ch), pr = new Uint8Array(cw * ch);
    for (let cy = 0; cy < ch; cy++) for (let cx = 0; cx < cw; cx++) {
      const s = 3 * (cy * vf * w + 2 * cx);
      pb[cy * cw + cx] = data[s + 1]; pr[cy * cw + cx] = data[s + 2];
    }
    Cb = fancyUpsample(pb, cw, ch, vf, w, h); Cr = fancyUpsample(pr, cw, ch, vf, w, h);
  }
  const out = new Uint8Array(4 * n);
  for (let i = 0; i < n; i++) {
    const yy = Y[i], b = Cb[i], r = Cr[i];
    out[4 * i] = clamp8(yy + CR_R[r]);
    out[4 * i + 1] = clamp8(yy + ((CB_G[b] + CR_G[r]) >> 16));
    out[4 * i + 2] = clamp8(yy + CB_B[b]);
    out[4 * i + 3] = 255;
  }
  return { width: w, height: h, data: out };
}

export function decodeJpeg(bytes: Uint8Array, file = '<buffer>', opts: DecodeOptions = {}): RgbaImage {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const frame = jpegFrame(bytes);
  if (!frame) throw new ImageError(file, 'corrupt or truncated JPEG: no frame header (SOFn) before the scan');
  if (frame.width === 0 || frame.height === 0) throw new ImageError(file, `unsupported JPEG: frame header says ${frame.width}x${frame.height} (a height set later by DNL is not supported)`);
  checkPixels(file, 'JPEG', frame.width, frame.height, opts);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = libjpegLikeRgba(bytes, frame, maxPixels) ?? jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: maxPixels / 1e6 });
  } catch (e) {
    throw new ImageError(file, `corrupt or unsupported JPEG: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new ImageError(file, `corrupt JPEG: decoded ${img.width}x${img.height} with ${img.data.length} bytes of pixels`);
  }
  return { width: img.width, height: img.height, data: img.data };
}

// ---------------------------------------------------------------- PNG

// Annex D: CRC-32 (ISO 3309 / ITU-T V.42 polynomial, reflected 0xEDB88320).
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
export function crc32(b: Uint8Array, start = 0, end = b.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// §11.2.1 Table 11.1: allowed bit depths per colour type, and samples per pixel.
const ALLOWED_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

// §8.2 Adam7: [x0, y0, dx, dy] per pass.
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

export function decodePng(bytes: Uint8Array, file = '<buffer>', opts: DecodeOptions = {}): RgbaImage {
  const fail = (msg: string): never => { throw new ImageError(file, msg); };
  if (!startsWith(bytes, PNG_SIGNATURE)) fail('not a PNG (bad signature)');
  const u32 = (p: number): number => ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>> 0;

  let width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | null = null, trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let pos = 8, sawIend = false;
  while (pos < bytes.length && !sawIend) {
    if (pos + 8 > bytes.length) fail(`truncated PNG: incomplete chunk header at offset ${pos}`);
    const length = u32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`corrupt PNG: invalid chunk type at offset ${pos}`); // §5.3
    if (length > 0x7fffffff) fail(`corrupt PNG: chunk '${type}' at offset ${pos} has length ${length} > 2^31-1`);
    if (pos + 12 + length > bytes.length) {
      fail(`truncated PNG: chunk '${type}' at offset ${pos} declares ${length} bytes but only ${Math.max(0, bytes.length - pos - 12)} remain`);
    }
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    const crc = u32(pos + 8 + length);
    if (crc32(bytes, pos + 4, pos + 8 + length) !== crc) fail(`corrupt PNG: CRC mismatch in chunk '${type}' at offset ${pos}`);
    if (pos === 8 && type !== 'IHDR') fail(`corrupt PNG: first chunk is '${type}', expected IHDR`);
    switch (type) {
      case 'IHDR': { // §11.2.1
        if (pos !== 8) fail('corrupt PNG: duplicate IHDR');
        if (length !== 13) fail(`corrupt PNG: IHDR is ${length} bytes, expected 13`);
        width = u32(pos + 8); height = u32(pos + 12);
        depth = data[8]; colorType = data[9]; interlace = data[12];
        if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) fail(`corrupt PNG: bad dimensions ${width}x${height}`);
        if (!ALLOWED_DEPTHS[colorType]) fail(`corrupt PNG: invalid colour type ${colorType}`);
        if (!ALLOWED_DEPTHS[colorType].includes(depth)) fail(`corrupt PNG: bit depth ${depth} not allowed for colour type ${colorType}`);
        if (data[10] !== 0 || data[11] !== 0) fail(`corrupt PNG: unknown compression method ${data[10]} or filter method ${data[11]}`);
        if (interlace > 1) fail(`corrupt PNG: unknown interlace method ${interlace}`);
        checkPixels(file, 'PNG', width, height, opts);
        break;
      }
      case 'PLTE': // §11.2.2
        if (length % 3 !== 0 || length === 0 || length > 768) fail(`corrupt PNG: PLTE length ${length} is not 3..768 and a multiple of 3`);
        palette = data;
        break;
      case 'tRNS': trns = data; break; // §11.3.2.1
      case 'IDAT': idat.push(data); break;
      case 'IEND': sawIend = true; break;
      default:
        // §5.4: an unknown critical chunk (uppercase first letter) must not be ignored.
        if ((bytes[pos + 4] & 0x20) === 0) fail(`unsupported critical PNG chunk '${type}'`);
    }
    pos += 12 + length;
  }
  if (colorType < 0) fail('truncated PNG: no IHDR');
  if (idat.length === 0) fail('truncated PNG: no image data (IDAT)');
  if (colorType === 3 && !palette) fail('corrupt PNG: palette image without PLTE');

  const channels = CHANNELS[colorType];
  const bitsPP = channels * depth;
  const passes = interlace ? ADAM7 : [[0, 0, 1, 1]];
  const dims = passes.map(([x0, y0, dx, dy]) => [
    width > x0 ? Math.ceil((width - x0) / dx) : 0,
    height > y0 ? Math.ceil((height - y0) / dy) : 0,
  ]);
  let expected = 0;
  for (const [pw, ph] of dims) if (pw && ph) expected += ph * (1 + Math.ceil((pw * bitsPP) / 8));

  let raw: Uint8Array;
  try {
    // The limit stops decompression bombs; a little slack tolerates encoders that pad.
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 65536 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return fail(`PNG image data inflates past the ${expected} bytes ${width}x${height} needs (a decompression bomb?)`);
    return fail(`corrupt or truncated PNG image data (zlib: ${(e as Error).message})`);
  }
  if (raw.length < expected) fail(`truncated PNG: image data inflates to ${raw.length} bytes, ${width}x${height} needs ${expected}`);

  // tRNS (§11.3.2.1): single transparent colour for types 0/2 (compared at full
  // sample depth), per-index alpha for type 3; not permitted for 4/6, so ignored.
  let trnsKey: number[] | null = null;
  let palAlpha: Uint8Array | null = null;
  if (trns) {
    if (colorType === 0 && trns.length >= 2) trnsKey = [(trns[0] << 8) | trns[1]];
    else if (colorType === 2 && trns.length >= 6) trnsKey = [0, 2, 4].map((o) => (trns![o] << 8) | trns![o + 1]);
    else if (colorType === 3) palAlpha = trns;
  }
  const nPal = palette ? palette.length / 3 : 0;

  const out = new Uint8Array(width * height * 4);
  const maxv = (1 << depth) - 1;
  let src = 0;
  passes.forEach(([x0, y0, dx, dy], pi) => {
    const [pw, ph] = dims[pi];
    if (!pw || !ph) return; // §8.2: empty passes have no scanlines, not even filter bytes
    const rowBytes = Math.ceil((pw * bitsPP) / 8);
    const rows = unfilter(raw, src, rowBytes, ph, Math.max(1, bitsPP >> 3), fail);
    src += ph * (1 + rowBytes);
    const sample = (row: number, x: number, c: number): number => {
      if (depth === 8) return rows[row + x * channels + c];
      if (depth === 16) { const p = row + 2 * (x * channels + c); return (rows[p] << 8) | rows[p + 1]; }
      const bit = x * depth; // sub-byte depths only occur with one channel
      return (rows[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & maxv;
    };
    const to8 = depth === 16 ? (v: number) => v >> 8 : depth === 8 ? (v: number) => v : (v: number) => Math.round((v * 255) / maxv);
    for (let y = 0; y < ph; y++) {
      const row = y * rowBytes;
      let o = ((y0 + y * dy) * width + x0) * 4;
      for (let x = 0; x < pw; x++, o += 4 * dx) {
        switch (colorType) {
          case 0: {
            const v = sample(row, x, 0), g = to8(v);
            out[o] = out[o + 1] = out[o + 2] = g;
            out[o + 3] = trnsKey && v === trnsKey[0] ? 0 : 255;
            break;
          }
          case 2: {
            const r = sample(row, x, 0), g = sample(row, x, 1), b = sample(row, x, 2);
            out[o] = to8(r); out[o + 1] = to8(g); out[o + 2] = to8(b);
            out[o + 3] = trnsKey && r === trnsKey[0] && g === trnsKey[1] && b === trnsKey[2] ? 0 : 255;
            break;
          }
          case 3: {
            const i = sample(row, x, 0);
            if (i >= nPal) fail(`corrupt PNG: palette index ${i} at (${x0 + x * dx},${y0 + y * dy}) but PLTE has ${nPal} entries`);
            out[o] = palette![3 * i]; out[o + 1] = palette![3 * i + 1]; out[o + 2] = palette![3 * i + 2];
            out[o + 3] = palAlpha && i < palAlpha.length ? palAlpha[i] : 255;
            break;
          }
          case 4: {
            const g = to8(sample(row, x, 0));
            out[o] = out[o + 1] = out[o + 2] = g;
            out[o + 3] = to8(sample(row, x, 1));
            break;
          }
          default: // 6
            out[o] = to8(sample(row, x, 0)); out[o + 1] = to8(sample(row, x, 1));
            out[o + 2] = to8(sample(row, x, 2)); out[o + 3] = to8(sample(row, x, 3));
        }
      }
    }
  });
  return { width, height, data: out };
}

/** §9.2 Paeth predictor. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undo §9 filtering for `h` scanlines starting at raw[start]; bpp = bytes per complete pixel, at least 1. */
function unfilter(raw: Uint8Array, start: number, rowBytes: number, h: number, bpp: number, fail: (m: string) => never): Uint8Array {
  const out = new Uint8Array(h * rowBytes);
  let p = start;
  for (let y = 0; y < h; y++) {
    const ft = raw[p++];
    const o = y * rowBytes, u = o - rowBytes; // u: previous row (y > 0)
    switch (ft) {
      case 0: for (let x = 0; x < rowBytes; x++) out[o + x] = raw[p + x]; break;
      case 1: for (let x = 0; x < rowBytes; x++) out[o + x] = raw[p + x] + (x >= bpp ? out[o + x - bpp] : 0); break;
      case 2: for (let x = 0; x < rowBytes; x++) out[o + x] = raw[p + x] + (y ? out[u + x] : 0); break;
      case 3: for (let x = 0; x < rowBytes; x++) {
        out[o + x] = raw[p + x] + (((x >= bpp ? out[o + x - bpp] : 0) + (y ? out[u + x] : 0)) >> 1);
      } break;
      case 4: for (let x = 0; x < rowBytes; x++) {
        const a = x >= bpp ? out[o + x - bpp] : 0, b = y ? out[u + x] : 0, c = x >= bpp && y ? out[u + x - bpp] : 0;
        out[o + x] = raw[p + x] + paeth(a, b, c);
      } break;
      default: fail(`corrupt PNG: invalid filter type ${ft} on scanline ${y}`);
    }
    p += rowBytes;
  }
  return out;
}

/**
 * Encode 8-bit RGBA (colour type 6) as PNG. Each scanline takes the filter with
 * the smallest sum of absolute signed residuals, the heuristic §12.7 suggests.
 */
export function encodePng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new RangeError(`encodePng: bad size ${width}x${height}`);
  }
  if (rgba.length !== width * height * 4) throw new RangeError(`encodePng: ${width}x${height} RGBA needs ${width * height * 4} bytes, got ${rgba.length}`);
  const stride = width * 4, bpp = 4;
  const filtered = new Uint8Array(height * (stride + 1));
  const cand = Array.from({ length: 5 }, () => new Uint8Array(stride));
  for (let y = 0; y < height; y++) {
    const o = y * stride, u = o - stride;
    let best = 0, bestScore = Infinity;
    for (let ft = 0; ft < 5; ft++) {
      const c = cand[ft];
      let score = 0;
      for (let x = 0; x < stride; x++) {
        const a = x >= bpp ? rgba[o + x - bpp] : 0, b = y ? rgba[u + x] : 0, d = x >= bpp && y ? rgba[u + x - bpp] : 0;
        const pred = ft === 0 ? 0 : ft === 1 ? a : ft === 2 ? b : ft === 3 ? (a + b) >> 1 : paeth(a, b, d);
        const v = (rgba[o + x] - pred) & 0xff;
        c[x] = v;
        score += v < 128 ? v : 256 - v;
      }
      if (score < bestScore) { bestScore = score; best = ft; }
    }
    filtered[y * (stride + 1)] = best;
    filtered.set(cand[best], y * (stride + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width); dv.setUint32(4, height);
  ihdr[8] = 8; ihdr[9] = 6; // 8-bit RGBA; compression, filter, interlace = 0
  const chunks = [chunk('IHDR', ihdr), chunk('IDAT', deflateSync(filtered)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(8 + chunks.reduce((s, c) => s + c.length, 0));
  out.set(PNG_SIGNATURE, 0);
  let p = 8;
  for (const c of chunks) { out.set(c, p); p += c.length; }
  return out;
}

/** One §5.3 chunk: length, type, data, CRC over type + data. */
export function chunk(type: string, data: Uint8Array): Uint8Array {
  const c = new Uint8Array(12 + data.length);
  const dv = new DataView(c.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
  c.set(data, 8);
  dv.setUint32(8 + data.length, crc32(c, 4, 8 + data.length));
  return c;
}

// The float conversions moved to src/io/resize.ts (no node: imports, so
// browsers can bundle them); re-exported for existing importers.
export { resizePlanes, toGrayFloat, toRgbFloatNCHW } from './resize.js';
