// load() in browsers (and Web Workers): models and images fetched or given
// as bytes, Blobs or drawables; the WASM kernels fetched from beside the
// bundle, else from the package's build/ folder, else from `wasm`.
import type { Backend } from '../backend/backend.js';
import { WasmBackend, relaxedSimdSupported, type WasmVariant } from '../backend/wasm.js';
import { ReferenceBackend } from '../backend/reference/index.js';
import { modelFromCheckpoint } from '../nn/checkpoint.js';
import { fetchCheckpoint, loadWith, type Platform } from './load.js';
import { fetchBytes, MAX_WASM_BYTES } from './fetch.js';
import { MAX_IMAGE_FILE_BYTES } from '../io/limits.js';
import type { Model, ImageReader } from './model.js';
import { describeInput, isRgbaLike, rgbaOf } from './preprocess.js';
import type { BlobLike, DrawableLike, ImageInput, LoadOptions, ModelSource, RgbaLike } from './types.js';

type Canvas2D = { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray }; drawImage(src: unknown, x: number, y: number): void };
type AnyCanvas = { width: number; height: number; getContext(kind: '2d', o?: object): Canvas2D | null };

function canvas(w: number, h: number): AnyCanvas {
  const g = globalThis as unknown as { OffscreenCanvas?: new (w: number, h: number) => AnyCanvas; document?: { createElement(t: 'canvas'): AnyCanvas } };
  if (g.OffscreenCanvas) return new g.OffscreenCanvas(w, h);
  if (!g.document) throw new Error('decoding images needs OffscreenCanvas or a document');
  const c = g.document.createElement('canvas');
  c.width = w; c.height = h;
  return c;
}

const isBlob = (x: unknown): x is BlobLike => typeof (x as BlobLike)?.arrayBuffer === 'function' && typeof (x as BlobLike).size === 'number';

/** Pixels of anything drawImage takes; a canvas is read directly (no redraw). */
function drawablePixels(src: DrawableLike): RgbaLike {
  const img = src as DrawableLike & { naturalWidth?: number; naturalHeight?: number; complete?: boolean; getContext?: AnyCanvas['getContext'] };
  if (img.complete === false) throw new Error('image element has not finished loading: await img.decode() first');
  const w = img.naturalWidth || img.width, h = img.naturalHeight || img.height;
  if (!(w > 0 && h > 0)) throw new RangeError(`image has no pixels (${w}x${h})`);
  let ctx: Canvas2D | null = null;
  if (typeof img.getContext === 'function') {
    try { ctx = img.getContext('2d', { willReadFrequently: true }); } catch { ctx = null; }   // a WebGL canvas has no 2D context
  }
  if (!ctx) {
    ctx = canvas(w, h).getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas context to read the image\'s pixels');
    ctx.drawImage(src, 0, 0);
  }
  const d = ctx.getImageData(0, 0, w, h).data;
  return { width: w, height: h, data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

async function blobPixels(blob: Blob): Promise<RgbaLike> {
  // no colour-space conversion or premultiplication: the pixels as stored, as Node's decoders return them
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try { return drawablePixels(bmp); } finally { bmp.close(); }
}

/** What a relative URL is relative to, as fetch() takes it: the document's base (a <base> tag), a worker's location, else none. */
const pageBase = (): string | undefined => (typeof document !== 'undefined' ? document.baseURI : typeof location !== 'undefined' ? location.href : undefined);

const images: ImageReader = {
  rgbaSync(image: ImageInput): RgbaLike {
    if (isRgbaLike(image)) return rgbaOf(image);
    if (image instanceof Uint8Array || image instanceof ArrayBuffer || isBlob(image) || typeof image === 'string' || image instanceof URL) {
      throw new TypeError('preprocess: in browsers, encoded images, Blobs and URLs are decoded asynchronously: use classify(), or pass decoded pixels (ImageData, a canvas, a loaded <img>, an ImageBitmap)');
    }
    // a { data, width, height } whose data is not 8-bit RGBA is a mistake, not a drawable
    if (image && typeof (image as DrawableLike).width === 'number' && !('data' in (image as object))) return drawablePixels(image as DrawableLike);
    throw new TypeError(`expected PNG/JPEG bytes, { data, width, height } RGBA pixels, a URL, a Blob or a drawable image; got ${describeInput(image)}`);
  },
  async rgba(image: ImageInput): Promise<RgbaLike> {
    if (image instanceof Uint8Array || image instanceof ArrayBuffer) return blobPixels(new Blob([image as BlobPart]));
    if (isBlob(image)) return blobPixels(image as unknown as Blob);
    if (typeof image === 'string' || image instanceof URL) return blobPixels(new Blob([await fetchBytes(new URL(String(image), pageBase()), { what: 'image', limit: MAX_IMAGE_FILE_BYTES }) as BlobPart]));
    return images.rgbaSync(image);
  },
};

/**
 * Where the kernels are looked for, in order: beside the bundle (esbuild, plain copies), then the package layout
 * (dist/api/ -> build/; Vite and webpack rewrite this literal form into an asset URL). `@vite-ignore`: the files
 * beside dist/api/ do not exist at build time, which Vite would warn about (test/vite.test.ts builds with no warnings).
 */
function wasmCandidates(variant: WasmVariant): URL[] {
  const beside = variant === 'relaxed' ? new URL(/* @vite-ignore */ 'cait.relaxed.wasm', import.meta.url) : new URL(/* @vite-ignore */ 'cait.simd.wasm', import.meta.url);
  const pkg = variant === 'relaxed' ? new URL('../../build/cait.relaxed.wasm', import.meta.url) : new URL('../../build/cait.simd.wasm', import.meta.url);
  return [beside, pkg];
}

async function wasmModule(o: LoadOptions, variant: WasmVariant): Promise<WebAssembly.Module> {
  const w = o.wasm;
  if (w instanceof Uint8Array || w instanceof ArrayBuffer) return WebAssembly.compile(w as BufferSource);
  const tried: string[] = [];
  const urls = w !== undefined ? [String(w).endsWith('/') ? new URL(`cait.${variant}.wasm`, new URL(String(w), location.href)) : new URL(String(w), location.href)] : wasmCandidates(variant);
  for (const u of urls) {
    let bytes: Uint8Array;
    // (the URL is in fetchBytes' message already)
    try { bytes = await fetchBytes(u, { what: 'wasm file', limit: MAX_WASM_BYTES }); } catch (e) { tried.push(`${u.href} (${(e as Error).message.replace(`${u.href}: `, '')})`); continue; }
    // a server's fallback page is no kernel: Vite's dev server and `vite preview` answer a missing file with index.html and status 200
    if (bytes.subarray(0, 4).join() !== '0,97,115,109') { tried.push(`${u.href} (not WebAssembly: ${bytes.byteLength} bytes starting ${JSON.stringify(new TextDecoder().decode(bytes.subarray(0, 16)))})`); continue; }
    return WebAssembly.compile(bytes as BufferSource);
  }
  throw new Error(`caitjs: could not fetch the WASM kernels: tried ${tried.join(', ')}. Serve node_modules/caitjs/build/cait.${variant}.wasm beside your bundle, or pass load(model, { wasm: URL or bytes })`);
}

const shared = new Map<string, Backend>();

const platform: Platform = {
  async resolveModel(source, maxBytes) {
    const base = pageBase();
    const { files, name } = await fetchCheckpoint(new URL(String(source), base), maxBytes);
    return { name, build: (o) => modelFromCheckpoint(files, o, name) };
  },
  async backend(o) {
    const b = o.backend ?? 'auto';
    if (typeof b === 'object') return { backend: b, release: null };
    if (b === 'reference') return { backend: new ReferenceBackend(), release: null };
    if (b === 'webgpu') {
      const { createWebGpuBackend } = await import('../backend/webgpu/index.js');
      const g = await createWebGpuBackend();
      return { backend: g, release: () => g.destroy() };
    }
    const variant: WasmVariant = b === 'wasm-simd' ? 'simd' : b === 'wasm-relaxed' ? 'relaxed' : relaxedSimdSupported() ? 'relaxed' : 'simd';
    if ((o.threads ?? 1) > 1) {
      const { loadThreadedWasm } = await import('../backend/threads.js');
      const base = o.wasm !== undefined && !(o.wasm instanceof Uint8Array || o.wasm instanceof ArrayBuffer) ? new URL('./', new URL(String(o.wasm), location.href)) : new URL('./', wasmCandidates(variant)[0]);
      const be = await loadThreadedWasm(base, { threads: o.threads!, variant });
      return { backend: be, release: () => { void be.close(); } };
    }
    const key = o.wasm === undefined ? variant : null;
    const have = key ? shared.get(key) : undefined;
    if (have) return { backend: have, release: null };
    const be = new WasmBackend(await wasmModule(o, variant), variant);
    if (key) shared.set(key, be);
    return { backend: be, release: null };
  },
  images,
};

/**
 * Loads a model to run exactly as it was saved (merge schedule and ATME
 * switches, CDCP widths, preprocessing, class names). `source`: the URL
 * (relative to the page) of a `.safetensors` file or of a model folder
 * (ending in '/': model.safetensors + config.json, transformers or timm hub
 * layout), or a safetensors file's bytes.
 */
export function load(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  return loadWith(platform, source, options);
}
