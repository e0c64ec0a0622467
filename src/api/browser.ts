// load() in browsers (and Web Workers): models and images fetched or given
// as bytes, Blobs or drawables; the WASM kernels fetched from beside the
// bundle, else from the package's build/ folder, else from `wasm`.
import type { Backend } from '../backend/backend.js';
import { WasmBackend, isWasm, relaxedSimdSupported, type WasmVariant } from '../backend/wasm.js';
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
  const img = src as DrawableLike & { naturalWidth?: number; naturalHeight?: number; complete?: boolean; currentSrc?: string; src?: string; getContext?: AnyCanvas['getContext'] };
  // an <img> is named by its URL (a data: URL by its kind alone: it can be megabytes)
  const isImg = typeof img.naturalWidth === 'number' && typeof img.complete === 'boolean';
  const url = isImg ? img.currentSrc || img.src || '' : '';
  const name = isImg ? `image element ${url.startsWith('data:') ? '(data: URL)' : url ? `'${url}'` : '(no src)'}` : 'image';
  if (img.complete === false) throw new Error(`${name} has not finished loading: await img.decode() first`);
  // (an SVG <img> without intrinsic size has naturalWidth 0 and draws at its layout size: hence the fallback)
  const w = img.naturalWidth || img.width, h = img.naturalHeight || img.height;
  if (!(w > 0 && h > 0)) throw new RangeError(`${name} has no pixels (${w}x${h})${isImg ? ': it failed to load or is not an image' : ''}`);
  let ctx: Canvas2D | null = null;
  if (typeof img.getContext === 'function') {
    try { ctx = img.getContext('2d', { willReadFrequently: true }); } catch { ctx = null; }   // a WebGL canvas has no 2D context
  }
  if (!ctx) {
    ctx = canvas(w, h).getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas context to read the image\'s pixels');
    // a loaded <img> whose src failed (404, not an image) is 'broken': complete, naturalWidth 0, and a
    // layout width that passes the check above; drawImage then throws the browser's own words
    // (Chromium: InvalidStateError ... 'broken' state; Firefox: Passed-in image is "broken")
    try { ctx.drawImage(src, 0, 0); } catch (e) {
      const broken = isImg && !img.naturalWidth ? ': it is broken (its src failed to load or is not an image the browser decodes)' : '';
      throw new Error(`${name} could not be drawn to read its pixels${broken} (${(e as Error).message})`, { cause: e });
    }
  }
  const d = ctx.getImageData(0, 0, w, h).data;
  return { width: w, height: h, data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

/** `name`: what the bytes are for errors (their URL, 'Blob', 'image bytes'). */
async function blobPixels(blob: Blob, name: string): Promise<RgbaLike> {
  let bmp: ImageBitmap;
  // no colour-space conversion or premultiplication: the pixels as stored, as Node's decoders return them
  try { bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }); } catch (e) {
    // the browser's words name neither the input nor what it holds (Chromium: 'The source image could not be
    // decoded', Firefox: 'An attempt was made to use an object that is not, or is no longer, usable')
    const head = Array.from(new Uint8Array(await blob.slice(0, 8).arrayBuffer()), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`${name}: not a decodable image (${blob.size} bytes${blob.type ? ` of type '${blob.type}'` : ''}, starting ${head || '<empty>'}; ` +
      `expected PNG or JPEG, or another format this browser decodes) (${(e as Error).message})`, { cause: e });
  }
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
    if (image instanceof Uint8Array || image instanceof ArrayBuffer) return blobPixels(new Blob([image as BlobPart]), 'image bytes');
    if (isBlob(image)) {
      const f = image as unknown as { name?: unknown };
      return blobPixels(image as unknown as Blob, typeof f.name === 'string' && f.name ? `file '${f.name}'` : 'Blob');
    }
    if (typeof image === 'string' || image instanceof URL) {
      const u = new URL(String(image), pageBase());
      return blobPixels(new Blob([await fetchBytes(u, { what: 'image', limit: MAX_IMAGE_FILE_BYTES }) as BlobPart]), u.protocol === 'data:' ? 'data: URL' : u.href);
    }
    return images.rgbaSync(image);
  },
};

/** A kernel build's file name: the plain builds for one thread, the .shared ones (a shared memory) for a pool. */
type BuildFile = `cait.${WasmVariant}${'' | '.shared'}.wasm`;

/**
 * The first of `urls` that answers with WebAssembly, compiled (fetched within MAX_WASM_BYTES, ./fetch.ts);
 * else an Error: `what`, each URL tried and why it was passed over, then `advice` (what to copy or serve).
 */
async function compileFirst(urls: readonly URL[], what: string, advice: string): Promise<WebAssembly.Module> {
  const tried: string[] = [];
  for (const u of urls) {
    let bytes: Uint8Array;
    // (the URL is in fetchBytes' message already)
    try { bytes = await fetchBytes(u, { what: 'wasm file', limit: MAX_WASM_BYTES }); } catch (e) { tried.push(`${u.href} (${(e as Error).message.replace(`${u.href}: `, '')})`); continue; }
    // a server's fallback page is no kernel: Vite's dev server and `vite preview` answer a missing file with index.html and status 200
    if (!isWasm(bytes)) { tried.push(`${u.href} (not WebAssembly: ${bytes.byteLength} bytes starting ${JSON.stringify(new TextDecoder().decode(bytes.subarray(0, 16)))})`); continue; }
    try { return await WebAssembly.compile(bytes as BufferSource); } catch (e) { tried.push(`${u.href} (does not compile: ${(e as Error).message})`); }
  }
  throw new Error(`${what}: tried ${tried.join(', ')}. ${advice[0].toUpperCase()}${advice.slice(1)}`);
}

/**
 * Where the kernels are looked for, in order: beside the bundle (esbuild, plain copies), then the package layout
 * (dist/api/ -> build/). Each URL is written out whole as `new URL('literal', import.meta.url)`, the one form
 * bundlers read: Vite and webpack rewrite the package's into asset URLs and emit the four files (a name built at
 * run time would be a guess to them). The files beside dist/api/ do not exist at build time: `@vite-ignore` (Vite
 * would warn, and test/vite.test.ts builds with no warnings) and `webpackIgnore: true` (webpack would fail to
 * resolve them, test/webpack.test.ts; it then resolves them against the page, which is where a bundle's copies
 * usually are).
 */
const CANDIDATES: Record<BuildFile, () => [URL, URL]> = {
  'cait.relaxed.wasm': () => [new URL(/* webpackIgnore: true */ /* @vite-ignore */ 'cait.relaxed.wasm', import.meta.url), new URL('../../build/cait.relaxed.wasm', import.meta.url)],
  'cait.simd.wasm': () => [new URL(/* webpackIgnore: true */ /* @vite-ignore */ 'cait.simd.wasm', import.meta.url), new URL('../../build/cait.simd.wasm', import.meta.url)],
  'cait.relaxed.shared.wasm': () => [new URL(/* webpackIgnore: true */ /* @vite-ignore */ 'cait.relaxed.shared.wasm', import.meta.url), new URL('../../build/cait.relaxed.shared.wasm', import.meta.url)],
  'cait.simd.shared.wasm': () => [new URL(/* webpackIgnore: true */ /* @vite-ignore */ 'cait.simd.shared.wasm', import.meta.url), new URL('../../build/cait.simd.shared.wasm', import.meta.url)],
};

function wasmCandidates(file: BuildFile): URL[] {
  try { return CANDIDATES[file](); } catch (e) {
    // only a base that is no URL throws here: an empty import.meta, which esbuild without --format=esm leaves
    // (warning empty-import-meta). (import.meta.url is not read apart from new URL(): webpack would write the
    // module's file: path, the builder's disk, into the bundle in its place.)
    throw new Error(`caitjs: cannot locate the WASM kernels (${file}): import.meta.url is empty here, so this ` +
      'bundle is not an ES module: bundle as ESM (esbuild: --format=esm; load the script with <script type="module">), ' +
      'or pass load(model, { wasm: URL or bytes })', { cause: e });
  }
}

async function wasmModule(o: LoadOptions, file: BuildFile): Promise<WebAssembly.Module> {
  const w = o.wasm;
  if (w instanceof Uint8Array || w instanceof ArrayBuffer) return WebAssembly.compile(w as BufferSource);
  if (w !== undefined) {
    // relative to the page's base (a <base> tag), as model and image URLs are; a folder (ending in '/') holds the builds,
    // and with threads a file URL's folder does (the pool needs the .shared build beside it)
    const u = new URL(String(w), pageBase());
    const at = String(w).endsWith('/') || file.includes('.shared') ? new URL(file, u) : u;
    return compileFirst([at], `load: the wasm option (${String(w)}) gave no kernels`, `serve node_modules/caitjs/build/${file} at ${at.href}, or pass its bytes`);
  }
  const extra = file.includes('.shared') ? ' (threads run the .shared.wasm builds: copy them beside the plain ones)' : '';
  return compileFirst(wasmCandidates(file), `caitjs: could not fetch the WASM kernels (${file})`,
    `copy node_modules/caitjs/build/${file} beside your bundle${extra}, or pass load(model, { wasm: URL or bytes })`);
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
      // said here, for a page's author: the backend's own message also speaks of Node
      if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
        throw new Error('load: backend \'webgpu\': this browser offers no WebGPU here (no navigator.gpu: WebGPU needs a secure context, https or localhost, ' +
          'and a browser that ships it; Firefox ESR does not): use the default backend (\'auto\', WebAssembly), or \'wasm\'');
      }
      const { createWebGpuBackend } = await import('../backend/webgpu/index.js');
      const g = await createWebGpuBackend();
      return { backend: g, release: () => g.destroy() };
    }
    const variant: WasmVariant = b === 'wasm-simd' ? 'simd' : b === 'wasm-relaxed' ? 'relaxed' : relaxedSimdSupported() ? 'relaxed' : 'simd';
    if ((o.threads ?? 1) > 1) {
      const { startThreadedWasm, threadsUnavailable } = await import('../backend/threads.js');
      // before fetching anything: a page's main thread, or a page that is not cross-origin isolated, cannot run a pool
      const why = threadsUnavailable();
      if (why) throw new Error(`load: threads: ${why}`);
      const be = await startThreadedWasm(await wasmModule(o, `cait.${variant}.shared.wasm`), variant, { threads: o.threads! });
      return { backend: be, release: () => { void be.close(); } };
    }
    const key = o.wasm === undefined ? variant : null;
    const have = key ? shared.get(key) : undefined;
    if (have) return { backend: have, release: null };
    const be = new WasmBackend(await wasmModule(o, `cait.${variant}.wasm`), variant);
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
