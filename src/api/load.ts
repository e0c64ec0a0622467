// load(): a model file's bytes to a Model on a backend, the platform parts
// (reading files or fetching, making the WASM backend, decoding images)
// supplied by src/api/node.ts or src/api/browser.ts.
import { setBackend } from '../tensor.js';
import { isBackend, type Backend } from '../backend/backend.js';
import { modelFromCheckpoint, type CheckpointFiles, type LoadedModel, type LoadOptions as CheckpointOptions } from '../nn/checkpoint.js';
import { runnerFor } from './runner.js';
import { maxModelBytes } from '../nn/validate.js';
// importing format.js registers the int8 file decoder with the checkpoint loader
import { checkInt8Options, checkQuantize, quantizeForInference, quantScheme } from '../quant/format.js';
import { INT8_SCHEME, hasInt8Kernels } from '../quant/int8.js';
import { Model, type ImageReader } from './model.js';
import type { BackendName, LoadOptions, ModelSource } from './types.js';
import { checkOptionKeys, showValue } from '../util/suggest.js';
import { fetchBytes } from './fetch.js';
import { readSafetensorsHeader } from '../io/safetensors.js';
import { FileError } from '../io/errors.js';

export interface Platform {
  /**
   * What a path or URL names (a file, or a model folder): fetched if need be,
   * and `build`, which makes the model synchronously on the current default
   * backend (so nothing else can change that backend in between).
   * `maxBytes`: the most bytes of weights to fetch (maxModelBytes).
   */
  resolveModel(source: string | URL, maxBytes: number): Promise<{ name: string; build(o: CheckpointOptions): LoadedModel }>;
  /** The backend `o` asks for; `release` (if any) frees it when the model that alone uses it is disposed. */
  backend(o: LoadOptions): Promise<{ backend: Backend; release: (() => void) | null }>;
  images: ImageReader;
}

/**
 * A model folder at a URL (ending in '/'): model.safetensors, and the
 * config.json and preprocessor_config.json beside it when they exist
 * (transformers or timm hub layout); a file URL: the file, and when its
 * __metadata__ holds no config, the config.json and preprocessor_config.json
 * beside it if they exist, as loadModel reads a file on disk (src/nn/model.ts).
 * The weights within `maxBytes`, the configs within 16 MiB (src/api/fetch.ts).
 */
export async function fetchCheckpoint(url: URL, maxBytes: number): Promise<{ files: CheckpointFiles; name: string }> {
  const weightsAt = (u: URL) => fetchBytes(u, { what: 'model weights', limit: maxBytes, missingOk: true });
  // a server's fallback page is no config: Vite's dev server and `vite preview` answer a missing
  // file with index.html and status 200 (a JSON config is an object: it starts with '{')
  const configAt = async (u: URL) => {
    const b = await fetchBytes(u, { what: 'model config', limit: 16 * 2 ** 20, missingOk: true });
    const t = b ? new TextDecoder().decode(b) : undefined;
    return t?.trimStart().startsWith('<') ? undefined : t;
  };
  const configsBeside = async (dir: URL) => {
    const c = new URL('config.json', dir), p = new URL('preprocessor_config.json', dir);
    const [config, preprocessorConfig] = await Promise.all([configAt(c), configAt(p)]);
    return { config, preprocessorConfig, configName: c.href, preprocessorConfigName: p.href };
  };
  if (!url.pathname.endsWith('/')) {
    const weights = await weightsAt(url);
    if (!weights) throw new Error(`${url.href}: model file not found (HTTP 404)`);
    // the header only, to see whether the file names its own config (a file that is no safetensors
    // fails in modelFromCheckpoint, with the reason); only then are two more requests worth making
    let own = true;
    try { own = readSafetensorsHeader(weights, url.href).metadata.config !== undefined; } catch { /* reported when built */ }
    return { files: { weights, ...(own ? {} : await configsBeside(url)) }, name: url.href };
  }
  const w = new URL('model.safetensors', url);
  const [weights, configs] = await Promise.all([weightsAt(w), configsBeside(url)]);
  if (!weights) throw new Error(`${w.href}: not found (HTTP 404): a model folder URL must hold model.safetensors`);
  return { files: { weights, ...configs }, name: w.href };
}

const BACKENDS: readonly BackendName[] = ['auto', 'wasm', 'wasm-simd', 'wasm-relaxed', 'webgpu', 'reference'];

/** Every option load() takes (the compiler holds this to LoadOptions' keys, both ways). */
const LOAD_OPTIONS = {
  backend: 1, threads: 1, wasm: 1, preset: 1, imgSize: 1, maxBytes: 1, quantize: 1, int8Attention: 1, int8SixBit: 1,
  merge: 1, similarity: 1, propAttn: 1, unmerge: 1,
} satisfies Record<keyof LoadOptions, 1>;

/** Checks the options that do not depend on the platform. */
export function checkOptions(o: LoadOptions): void {
  checkOptionKeys(o, Object.keys(LOAD_OPTIONS), 'load: ');
  if (o.backend !== undefined && !(typeof o.backend === 'string' ? BACKENDS.includes(o.backend) : isBackend(o.backend))) {
    throw new Error(`load: unknown backend ${typeof o.backend === 'string' ? `'${o.backend}'` : Object.prototype.toString.call(o.backend)} (${BACKENDS.join(', ')}, or a Backend instance)`);
  }
  for (const k of ['preset', 'merge', 'similarity', 'unmerge'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'string') throw new TypeError(`load: ${k} must be a string, got ${showValue(o[k])}`);
  }
  if (o.wasm !== undefined && !(typeof o.wasm === 'string' || o.wasm instanceof URL || o.wasm instanceof Uint8Array || o.wasm instanceof ArrayBuffer)) {
    throw new TypeError(`load: wasm must be a path or URL of the kernels (a cait.*.wasm file or its folder) or their bytes, got ${Object.prototype.toString.call(o.wasm)}`);
  }
  if (o.propAttn !== undefined && typeof o.propAttn !== 'boolean') throw new TypeError(`load: propAttn must be true or false, got ${showValue(o.propAttn)}`);
  if (o.imgSize !== undefined && !(Number.isInteger(o.imgSize) && o.imgSize > 0)) throw new RangeError(`load: imgSize must be a positive integer, got ${showValue(o.imgSize)}`);
  if (o.maxBytes !== undefined && !(typeof o.maxBytes === 'number' && o.maxBytes > 0)) throw new RangeError(`load: maxBytes must be a positive number, got ${showValue(o.maxBytes)}`);
  const t = o.threads ?? 1;
  if (!Number.isInteger(t) || t < 1 || t > 64) throw new RangeError(`load: threads must be an integer in 1..64, got ${showValue(o.threads)}`);
  if (t > 1 && (o.backend === 'webgpu' || o.backend === 'reference')) throw new Error(`load: threads applies to the WASM backends, not '${o.backend}'`);
  checkInt8Options(o, 'load: ');
  checkQuantize(o.quantize, 'load: ');
}

export async function loadWith(p: Platform, source: ModelSource, o: LoadOptions = {}): Promise<Model> {
  checkOptions(o);
  const bytes = source instanceof Uint8Array ? source : source instanceof ArrayBuffer ? new Uint8Array(source) : null;
  if (!bytes && typeof source !== 'string' && !(source instanceof URL)) {
    throw new TypeError(`load: source must be a path, a URL, a Uint8Array or an ArrayBuffer, got ${Object.prototype.toString.call(source)}`);
  }
  const { backend, release } = await p.backend(o);
  try {
    const src = bytes ? { name: '<bytes>', build: (co: CheckpointOptions) => modelFromCheckpoint({ weights: bytes }, co, '<bytes>') } : await p.resolveModel(source as string | URL, maxModelBytes(o.maxBytes));
    const name = src.name;
    // the model's tensors are made on the default backend; it stays the
    // default afterwards, so tensors made by hand live beside the model
    setBackend(backend);
    const { model: vit, metadata } = src.build({ preset: o.preset, imgSize: o.imgSize, maxBytes: o.maxBytes });
    let run, quant = null;
    const fileScheme = quantScheme(metadata), scheme = fileScheme ?? (o.quantize === 'int8' ? INT8_SCHEME : null);
    try {
      // an int8 file (or a float one with quantize: 'int8') runs its int8
      // forwards where the backend has the kernels (WASM, reference), else as
      // float with the dequantized int8 weights
      // (a float file with quantize on a backend without the kernels: refused there)
      if (scheme !== null && (fileScheme === null || hasInt8Kernels(backend))) quant = quantizeForInference(vit, metadata, { attention: o.int8Attention, sixBit: o.int8SixBit, quantize: o.quantize });
      run = runnerFor(vit, metadata, o);
    } catch (e) { quant?.dispose(); vit.dispose(); throw e instanceof FileError ? e : new Error(`${name}: ${(e as Error).message}`, { cause: e }); }   // a FileError names its file already
    return new Model(vit, run, backend, p.images, release, name, { scheme, handle: quant });
  } catch (e) {
    release?.();
    throw e;
  }
}
