// The backend interface: five verbs. Everything above (Tensor, autograd, nn,
// cait) talks to kernels only through these, so the WASM build, the plain-TS
// reference and WebGPU are interchangeable.
//
// Pointers are byte offsets into the backend's heap; 0 means "none".
// Kernels are called by name with numbers only (pointers, integers, floats),
// the same names and argument lists as the exports of `assembly/index.ts` and
// the functions in `src/backend/reference/`. See KERNELS in ./kernels.ts.

import type { KernelName } from './kernels.js';

export type Ptr = number;

export interface Backend {
  readonly name: string;
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
  /** Per-thread packing buffer for GEMM (GEMM_SCRATCH_BYTES long). */
  readonly scratch: Ptr;
  /** Heap statistics, for leak tests and memory reports. */
  stats(): { bytesInUse: number; peakBytes: number; liveBlocks: number };
  /**
   * Optional, offered by backends whose heap the host cannot read
   * synchronously (WebGPU, whose `read` throws): an asynchronous copy out...
   */
  readAsync?(p: Ptr, n: number): Promise<Float32Array>;
  /** ...and y[i] = ln x[i] on the device, so ops that would otherwise compute on the host stay there (ATME's key bias). */
  logf?(x: Ptr, y: Ptr, n: number): void;
}
