// The high-level API's public types, the same in Node and in browsers.
import type { Backend } from '../backend/backend.js';
import type { VitConfig } from '../nn/presets.js';
import type { AtmeOptions } from '../cait/atme.js';
import type { RunnerOptions } from './runner.js';

/** Decoded pixels, 8-bit RGBA row by row (what `ImageData` holds). */
export interface RgbaLike {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint8ClampedArray;
}

/** A `Blob` (or `File`): encoded PNG or JPEG bytes. */
export interface BlobLike { arrayBuffer(): Promise<ArrayBuffer>; readonly type: string; readonly size: number }

/** Browsers: anything a 2D canvas can draw (HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, ImageBitmap, VideoFrame). */
export interface DrawableLike { readonly width: number; readonly height: number }

/**
 * An image to classify: encoded PNG/JPEG bytes, decoded RGBA pixels
 * (`{ data, width, height }`, e.g. an `ImageData`), a file path (Node) or URL
 * (both: fetched), and in browsers also an `HTMLImageElement`,
 * `HTMLCanvasElement`, `OffscreenCanvas`, `ImageBitmap` or `Blob`.
 */
export type ImageInput = Uint8Array | ArrayBuffer | RgbaLike | string | URL | BlobLike | DrawableLike;

/**
 * Where a model comes from: a `.safetensors` file or a model folder
 * (transformers or timm hub layout: model.safetensors + config.json) by path
 * (Node) or URL (a folder URL ends with '/'), or a safetensors file's bytes.
 */
export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

/** Backend names, as the CLI's --backend takes them; 'auto' (default) = relaxed-SIMD WASM where the engine has it, else SIMD WASM. */
export type BackendName = 'auto' | 'wasm' | 'wasm-simd' | 'wasm-relaxed' | 'webgpu' | 'reference';

export interface LoadOptions extends RunnerOptions {
  /** Which kernels run the model (default 'auto'), or a backend instance made by hand. */
  backend?: BackendName | Backend;
  /**
   * Threads for the WASM backends (default 1). More than 1 runs a pool of
   * workers over one shared memory: in browsers only inside a Web Worker of a
   * cross-origin isolated page (COOP/COEP headers), as the demo page does.
   */
  threads?: number;
  /**
   * The WASM kernels to use instead of the packaged ones: a URL or path of a
   * `cait.*.wasm` file, a URL of the folder holding them (ending in '/'), or
   * the file's bytes. Browsers otherwise look beside the bundle
   * (`new URL('cait.relaxed.wasm', import.meta.url)`), then in the package's
   * `build/` folder.
   */
  wasm?: string | URL | Uint8Array | ArrayBuffer;
  /** Config preset for a checkpoint without a config (a bare timm file), e.g. 'deit_tiny_patch16_224'. */
  preset?: string;
  /** Run at this input side (the position embedding is resampled, as timm does). */
  imgSize?: number;
  /** Refuse checkpoints whose memory estimate is over this many bytes (default CAIT_MAX_MODEL_BYTES or 2 GiB). */
  maxBytes?: number;
  /**
   * Quantize a float checkpoint as it loads: 'int8' gives it per-channel int8
   * weights and per-token int8 activations, the scheme `cait quantize` writes
   * (the same values as loading that command's file), run by the int8
   * kernels (WASM, reference; an error on WebGPU, which cannot read the
   * weights back to quantize them: load a `cait quantize` file there). An
   * int8 file is int8 already (this option changes nothing there). Default:
   * run the file as it is.
   */
  quantize?: 'int8';
  /**
   * For an int8 model: attention's two batched GEMMs in int8 too (default
   * true, the fast path); false keeps them float, closer to the float model on
   * inputs unlike its training data, at about 1.08-1.11x the time
   * (src/quant/attention.ts).
   */
  int8Attention?: boolean;
  /**
   * For an int8 model: fc1's, fc2's and attention proj's input rows, and
   * attention's q and P, in 6 bits (default true, the fast path where the
   * engine has no fused int8 dot: Node 20 and 22); false keeps every row in 7
   * bits, closer to the float model's logits (the same test accuracy; see the
   * README's int8 section).
   */
  int8SixBit?: boolean;
}

export interface ClassifyOptions {
  /** How many classes to return, best first (default 5; at most the number of classes). */
  topk?: number;
}

export interface Prediction {
  /** Class name (the config's `classes`, else the index as a string). */
  label: string;
  /** Class index. */
  index: number;
  /** Softmax probability. */
  score: number;
}

export interface Segmentation {
  /** Side of the class map (the model's input size: the map covers the preprocessed image). */
  width: number;
  height: number;
  /** Class index per pixel, row by row (0 = background). */
  classes: Uint8Array;
  /** Class names by index. */
  labels: string[];
}

/** What a loaded model is: frozen (deeply), so no caller can change what later calls return. */
export interface ModelInfo {
  /** The config the model was saved with (merge as it runs). */
  readonly config: VitConfig;
  readonly task: 'classify' | 'segment';
  /** Multiply-adds of one image's forward, under the schedule and widths that run. */
  readonly macs: number;
  /** Parameters (compact widths counted as they are). */
  readonly parameters: number;
  /** Merge schedule that runs ('' = none), e.g. "h@1". */
  readonly merge: string;
  /** ATME switches in force (null without merging). */
  readonly atme: AtmeOptions | null;
  /** CDCP per-block widths (null = dense). */
  readonly widths: VitConfig['widths'] | null;
  /** Class names by index. */
  readonly labels: readonly string[];
  /** Input shape of one image, [channels, height, width]. */
  readonly inputShape: readonly [number, number, number];
  /** Backend name (e.g. 'wasm-relaxed'). */
  readonly backend: string;
  /** Quantization scheme of the file (e.g. 'int8-dynamic'; null for a float file). */
  readonly quant: string | null;
  /** Whether the int8 kernels run it (false: float, with the file's dequantized weights, on a backend without them). */
  readonly int8: boolean;
  /**
   * How the int8 GEMM multiplies on this engine (null when the int8 kernels
   * do not run): 'fused', one relaxed dot-add instruction per 16
   * multiply-adds (x64 with AVX-VNNI in Node 24 and Chromium 150, not Node
   * 20 or 22; about 1.45x faster end to end); 'composed', a relaxed dot and a widening
   * multiply; 'i16', the plain SIMD build's widened dot. The same results.
   */
  readonly int8Dot: 'fused' | 'composed' | 'i16' | null;
  /** Where the model came from (path, URL or '<bytes>'). */
  readonly source: string;
}
