// The backend interface: ten members every backend has (name, scratch;
// alloc, free, read, readI32, write for the heap; run and logf for compute;
// stats) and optional ones: readAsync (WebGPU), prepare and prepareParallel
// (the CPU backends, for src/plan.ts), threads and int8Dot (the WASM
// backends). Everything above
// (Tensor, autograd, nn, cait) talks to kernels only through these, so the
// WASM build, the plain-TS reference and WebGPU are interchangeable.
//
// Pointers are byte offsets into the backend's heap; 0 means "none".
// Kernels are called by name with numbers only (pointers, integers, floats),
// in the order of the kernel table (./kernels.ts), which assembly/*.ts,
// src/backend/reference/ and the WGSL kernels follow; call() there names them.

import type { KernelName } from './kernels.js';

export type Ptr = number;

/** One step of a planned forward, its pointers resolved (src/plan.ts). */
export type PlanStep =
  | { kind: 'run'; kernel: KernelName; args: readonly number[] }
  | { kind: 'write'; at: Ptr; data: Float32Array | Int32Array }
  | { kind: 'logf'; x: Ptr; y: Ptr; n: number };

/** Step lists prepared to run at once (prepareParallel). */
export interface ParallelRun { run(): void; dispose(): void }

export interface Backend {
  readonly name: string;
  /** How the int8 GEMM's dot runs (the WASM backends; see WasmBackend.int8Dot); absent elsewhere. */
  readonly int8Dot?: 'fused' | 'composed' | 'i16';
  /** Allocate room for `n` float32 (or int32) values, 64-byte aligned. */
  alloc(n: number): Ptr;
  free(p: Ptr): void;
  /** Copy `n` float32 values out of the heap. */
  read(p: Ptr, n: number): Float32Array;
  readI32(p: Ptr, n: number): Int32Array;
  /** Copy a typed array (float32 or int32) into the heap at `p`. */
  write(p: Ptr, data: Float32Array | Int32Array): void;
  /** Run a kernel; returns the kernel's scalar result, if it has one. */
  run(kernel: KernelName, ...args: number[]): number;
  /**
   * Optional: one call with fixed arguments, prepared once to be made many
   * times (src/plan.ts replays a forward's calls); the same effect as
   * `run(kernel, ...args)`, minus the per-call lookups (on the thread pool,
   * about 1.5% of a Fashion-MNIST forward).
   */
  prepare?(kernel: KernelName, args: readonly number[]): () => void;
  /** Threads this backend computes on (absent: one). */
  readonly threads?: number;
  /**
   * Optional: independent step lists (a batch's slices, each over its own
   * arena), run at once, one per thread, each as one thread runs it; the same
   * effect as running them in turn. Null where that would not pay (one
   * thread, or too little work for the dispatch) or cannot be done.
   */
  prepareParallel?(parts: ReadonlyArray<readonly PlanStep[]>): ParallelRun | null;
  /** Per-thread packing buffer for GEMM (GEMM_SCRATCH_BYTES long). */
  readonly scratch: Ptr;
  /** Heap statistics, for leak tests and memory reports. */
  stats(): { bytesInUse: number; peakBytes: number; liveBlocks: number };
  /**
   * y[i] = ln x[i] without a read-back (ATME's key bias): over the heap on the
   * host for the CPU backends, a shader on WebGPU. Not a kernel of the table:
   * the WASM build has no log, and Math.log rounded to f32 is the reference.
   */
  logf(x: Ptr, y: Ptr, n: number): void;
  /**
   * Optional, offered by backends whose heap the host cannot read
   * synchronously (WebGPU, whose `read` throws): an asynchronous copy out.
   */
  readAsync?(p: Ptr, n: number): Promise<Float32Array>;
}

/** A backend whose heap the host reads only asynchronously (WebGPU). */
export type AsyncReadable = Backend & { readAsync(p: Ptr, n: number): Promise<Float32Array> };

export function readsAsync(be: Backend): be is AsyncReadable {
  return typeof (be as Partial<AsyncReadable>).readAsync === 'function';
}

/** Whether `b` looks like a Backend (its name and allocator), for options that take one from callers. */
export function isBackend(b: unknown): b is Backend {
  return typeof (b as Backend)?.alloc === 'function' && typeof (b as Backend)?.name === 'string';
}
