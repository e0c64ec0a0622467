// Messages between the page (main.ts) and its inference workers (worker.ts).
// One worker per backend: 'wasm' (threaded when the page is cross-origin
// isolated, else one thread) and 'webgpu' (when navigator.gpu gives an adapter).

export type BackendKind = 'wasm' | 'webgpu';

export interface ModelRef { label: string; url: string }

export interface InitRequest { op: 'init'; kind: BackendKind; wasmBase: string; models: ModelRef[]; threads: number }
export interface PredictRequest {
  op: 'predict';
  /** RGBA pixels of the picture (any size; the worker resizes as `cait predict` does). It becomes the input that `time` times. */
  image: { width: number; height: number; data: Uint8ClampedArray };
  /** Also return ATME's merge maps (WASM only: the maps are read back synchronously). */
  overlay: boolean;
}
/**
 * One timing round on the last predicted input: every model once, in an order
 * rotated by `round` (src/util/timing.ts's interleaving). The page asks round
 * by round, so a new input waits at most one round, and drops the warm-up rounds.
 */
export interface TimeRequest { op: 'time'; round: number }
export interface TimeResult { ms: number[] }
/** A model file the visitor picked (this project's .safetensors, its config in __metadata__), loaded after the demo models. */
export interface AddRequest { op: 'add'; label: string; file: string; bytes: ArrayBuffer }
export type Request = (InitRequest | PredictRequest | TimeRequest | AddRequest) & { id: number };

export interface ModelInfo {
  label: string;
  name: string;
  merge: string;
  compact: boolean;
  /** Runs on the int8 kernels (an int8 file on WASM). */
  int8: boolean;
  macs: number;
  params: number;
  grid: [number, number];
  imgSize: number;
  patchSize: number;
  classes: string[];
}

export interface BackendInfo {
  kind: BackendKind;
  /** e.g. "wasm-relaxed-x4", "wasm-simd", or the GPU adapter's description. */
  name: string;
  threads: number;
  /** Why a faster setting was not used (no isolation, no shared build, ...), if any. */
  note?: string;
  crossOriginIsolated: boolean;
  models: ModelInfo[];
}

/** One merge step for the overlay: map[t] = the token (index in newGrid) original patch t belongs to after this step. */
export interface MergeStepView { axis: 'h' | 'v'; block: number; grid: [number, number]; newGrid: [number, number]; map: number[] }

export interface ModelResult {
  label: string;
  probs: number[];
  top: number;
  /** Filled by the page from the timing rounds (NaN until they finish). */
  median_ms: number;
  p10_ms: number;
  p90_ms: number;
  runs: number;
  steps: MergeStepView[];
}

export interface PredictResult {
  kind: BackendKind;
  backend: string;
  models: ModelResult[];
  /** The first model's input, denormalised to [0, 1] (what the patches are cut from), imgSize x imgSize, channel 0. */
  input: number[];
  inputSize: number;
}

export type Response =
  | { id: number; ok: true; info: BackendInfo }
  | { id: number; ok: true; result: PredictResult }
  | { id: number; ok: true; timed: TimeResult }
  | { id: number; ok: true; added: ModelInfo }
  | { id: number; ok: false; error: string; unavailable?: boolean };
