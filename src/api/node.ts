// load() in Node: models and images from paths, file: or http(s) URLs or
// bytes; the WASM kernels from the package's build/ folder (or `wasm`).
import { readInput } from '../io/input.js';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../backend/backend.js';
import { WasmBackend, loadWasmSync, relaxedSimdSupported, type WasmVariant } from '../backend/wasm.js';
import { loadThreadedWasmSync } from '../backend/threads.js';
import { ReferenceBackend } from '../backend/reference/index.js';
import { decodeImage, readImageFile, MAX_IMAGE_FILE_BYTES } from '../io/image.js';
import { loadModel } from '../nn/model.js';
import { modelFromCheckpoint } from '../nn/checkpoint.js';
import { fetchCheckpoint, loadWith, type Platform } from './load.js';
import { fetchBytes, MAX_WASM_BYTES } from './fetch.js';
import type { Model, ImageReader } from './model.js';
import { describeInput, isRgbaLike, rgbaOf } from './preprocess.js';
import type { BlobLike, ImageInput, LoadOptions, ModelSource, RgbaLike } from './types.js';

const isUrl = (s: string) => /^(https?|file|data|blob):/i.test(s);

/** A file: URL read as a file (within `limit`), any other fetched (src/api/fetch.ts). */
async function urlBytes(url: string | URL, what: string, limit: number): Promise<Uint8Array> {
  const u = new URL(url);
  if (u.protocol === 'file:') return readInput(fileURLToPath(u), what, limit);
  return fetchBytes(u, { what, limit });
}

const isBlob = (x: unknown): x is BlobLike => typeof (x as BlobLike)?.arrayBuffer === 'function' && typeof (x as BlobLike).size === 'number';

const images: ImageReader = {
  rgbaSync(image: ImageInput): RgbaLike {
    if (isRgbaLike(image)) return rgbaOf(image);
    if (image instanceof Uint8Array) return decodeImage(image);
    if (image instanceof ArrayBuffer) return decodeImage(new Uint8Array(image));
    if (typeof image === 'string' && !isUrl(image)) return readImageFile(image);
    if (image instanceof URL && image.protocol === 'file:') return readImageFile(fileURLToPath(image));
    if (typeof image === 'string' && /^file:/i.test(image)) return readImageFile(fileURLToPath(image));
    if (typeof image === 'string' || image instanceof URL || isBlob(image)) throw new TypeError('preprocess: URLs and Blobs are read asynchronously: use classify(), or read the bytes first');
    throw new TypeError(`expected PNG/JPEG bytes, { data, width, height } RGBA pixels, a path, a URL or a Blob; got ${describeInput(image)}`);
  },
  async rgba(image: ImageInput): Promise<RgbaLike> {
    if (isBlob(image)) return decodeImage(new Uint8Array(await image.arrayBuffer()), '<blob>');
    if ((typeof image === 'string' && isUrl(image)) || (image instanceof URL && image.protocol !== 'file:')) {
      return decodeImage(await urlBytes(image as string | URL, 'image', MAX_IMAGE_FILE_BYTES), String(image));
    }
    return images.rgbaSync(image);
  },
};

/** Worker pools of disposed models, still stopping. */
const closing = new Set<Promise<void>>();

/** One WASM backend per build, shared by the models loaded with default options. */
const shared = new Map<string, Backend>();

function wasmVariant(o: LoadOptions): WasmVariant | 'auto' {
  return o.backend === 'wasm-simd' ? 'simd' : o.backend === 'wasm-relaxed' ? 'relaxed' : 'auto';
}

async function wasmBytes(w: NonNullable<LoadOptions['wasm']>, variant: WasmVariant): Promise<{ bytes: Uint8Array; name: string }> {
  if (w instanceof Uint8Array) return { bytes: w, name: '<bytes>' };
  if (w instanceof ArrayBuffer) return { bytes: new Uint8Array(w), name: '<bytes>' };
  const s = String(w), dir = s.endsWith('/');
  if (isUrl(s) || w instanceof URL) {
    const u = new URL(dir ? `cait.${variant}.wasm` : s, s);
    return { bytes: await urlBytes(u, 'wasm file', MAX_WASM_BYTES), name: u.href };
  }
  const p = dir ? `${s}cait.${variant}.wasm` : s;
  return { bytes: readInput(p, 'wasm file', MAX_WASM_BYTES), name: p };
}

const platform: Platform = {
  async resolveModel(source, maxBytes) {
    const s = String(source);
    if (source instanceof URL ? source.protocol === 'file:' : s.startsWith('file:')) {
      const path = fileURLToPath(s);
      return { name: path, build: (o) => loadModel(path, o) };
    }
    if (source instanceof URL || isUrl(s)) {
      const { files, name } = await fetchCheckpoint(new URL(s), maxBytes);
      return { name, build: (o) => modelFromCheckpoint(files, o, name) };
    }
    return { name: s, build: (o) => loadModel(s, o) };
  },
  async backend(o) {
    const b = o.backend ?? 'auto';
    if (typeof b === 'object') return { backend: b, release: null };
    if (b === 'reference') return { backend: new ReferenceBackend(), release: null };
    if (b === 'webgpu') {
      const { createNodeWebGpu } = await import('../backend/webgpu/node.js');
      const g = await createNodeWebGpu();
      return { backend: g.backend, release: () => g.backend.destroy() };
    }
    const want = wasmVariant(o);
    const variant: WasmVariant = want === 'auto' ? (relaxedSimdSupported() ? 'relaxed' : 'simd') : want;
    if (variant === 'relaxed') relaxedSimdSupported();   // sets Node 20's V8 flag before compiling
    if ((o.threads ?? 1) > 1) {
      if (o.wasm !== undefined) throw new Error('load: the wasm option applies to one thread (threads: 1); the threaded backend uses the package\'s shared builds');
      // workers that dispose() let go end only on a turn of the event loop: a loop of
      // load -> classify -> dispose that never gives one kept every pool alive (200
      // rounds: 201 workers, 750 MB); waiting here for closes in flight bounds that
      await Promise.all(closing);
      const be = loadThreadedWasmSync({ threads: o.threads!, variant });
      return {
        backend: be,
        release: () => { const c = be.close().finally(() => closing.delete(c)); closing.add(c); },
      };
    }
    if (o.wasm !== undefined) {
      const { bytes } = await wasmBytes(o.wasm, variant);
      return { backend: new WasmBackend(new WebAssembly.Module(bytes as BufferSource), variant), release: null };
    }
    let be = shared.get(variant);
    if (!be) { be = loadWasmSync(variant); shared.set(variant, be); }
    return { backend: be, release: null };
  },
  images,
};

/**
 * Loads a model to run exactly as it was saved: its merge schedule and ATME
 * switches, CDCP widths, preprocessing and class names. `source`: a
 * `.safetensors` file or a model folder (transformers or timm hub layout),
 * by path or file:/http(s) URL (a folder URL ends with '/'), or a
 * safetensors file's bytes.
 *
 * ```js
 * import { load } from 'caitjs';
 * const model = await load('models/fmnist-cait.safetensors');
 * console.log(await model.classify('web/public/samples/07-sneaker.png', { topk: 3 }));
 * model.dispose();
 * ```
 */
export function load(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  return loadWith(platform, source, options);
}
