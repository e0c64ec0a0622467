// load(): a model file's bytes to a Model on a backend, the platform parts
// (reading files or fetching, making the WASM backend, decoding images)
// supplied by src/api/node.ts or src/api/browser.ts.
import { setBackend } from '../tensor.js';
import type { Backend } from '../backend/backend.js';
import { modelFromBytes } from '../nn/load-bytes.js';
import { runnerFor } from './runner.js';
import { Model, type ImageReader } from './model.js';
import type { BackendName, LoadOptions, ModelSource } from './types.js';

export interface Platform {
  /** The bytes of a model file named by a path or URL, and the name errors use. */
  readModel(source: string | URL): Promise<{ bytes: Uint8Array; name: string }>;
  /** The backend `o` asks for; `release` (if any) frees it when the model that alone uses it is disposed. */
  backend(o: LoadOptions): Promise<{ backend: Backend; release: (() => void) | null }>;
  images: ImageReader;
}

const BACKENDS: readonly BackendName[] = ['auto', 'wasm', 'wasm-simd', 'wasm-relaxed', 'webgpu', 'reference'];

/** Checks the options that do not depend on the platform. */
export function checkOptions(o: LoadOptions): void {
  if (typeof o.backend === 'string' && !BACKENDS.includes(o.backend)) throw new Error(`load: unknown backend '${o.backend}' (${BACKENDS.join(', ')}, or a Backend instance)`);
  const t = o.threads ?? 1;
  if (!Number.isInteger(t) || t < 1 || t > 64) throw new RangeError(`load: threads must be an integer in 1..64, got ${o.threads}`);
  if (t > 1 && (o.backend === 'webgpu' || o.backend === 'reference')) throw new Error(`load: threads applies to the WASM backends, not '${o.backend}'`);
}

export async function loadWith(p: Platform, source: ModelSource, o: LoadOptions = {}): Promise<Model> {
  checkOptions(o);
  let bytes: Uint8Array, name: string;
  if (source instanceof Uint8Array) { bytes = source; name = '<bytes>'; }
  else if (source instanceof ArrayBuffer) { bytes = new Uint8Array(source); name = '<bytes>'; }
  else if (typeof source === 'string' || source instanceof URL) ({ bytes, name } = await p.readModel(source));
  else throw new TypeError(`load: source must be a path, a URL, a Uint8Array or an ArrayBuffer, got ${Object.prototype.toString.call(source)}`);
  const { backend, release } = await p.backend(o);
  try {
    // the model's tensors are made on the default backend; it stays the
    // default afterwards, so tensors made by hand live beside the model
    setBackend(backend);
    const { model: vit, metadata } = modelFromBytes(bytes, { preset: o.preset }, name);
    let run;
    try { run = runnerFor(vit, metadata, o); } catch (e) { vit.dispose(); throw new Error(`${name}: ${(e as Error).message}`, { cause: e }); }
    return new Model(vit, run, backend, p.images, release, name);
  } catch (e) {
    release?.();
    throw e;
  }
}
