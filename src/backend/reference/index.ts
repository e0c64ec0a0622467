// The reference backend: plain TypeScript loops over an ArrayBuffer heap. It is
// the executable spec every SIMD and GPU kernel is tested against; where
// WebAssembly SIMD is missing it can be chosen by name (backend 'reference'),
// nothing falls back to it on its own. Slow on purpose: clarity first.
import type { Backend, Ptr } from '../backend.js';
import { KERNELS, type KernelName, GEMM_SCRATCH_BYTES } from '../kernels.js';
import { HeapAllocator } from '../memory.js';
import type { Heap } from './heap.js';
import * as gemm from './gemm.js';
import * as softmax from './softmax.js';
import * as layernorm from './layernorm.js';
import * as gelu from './gelu.js';
import * as elementwise from './elementwise.js';
import * as reduce from './reduce.js';
import * as adamw from './adamw.js';
import * as patch from './patch.js';
import * as atme from './atme.js';
import * as gather from './gather.js';
import * as qgemm from './qgemm.js';

type RefKernel = (h: Heap, ...args: number[]) => number | void;
const table: Record<string, RefKernel> = {
  ...gemm, ...softmax, ...layernorm, ...gelu, ...elementwise, ...reduce, ...adamw, ...patch, ...gather,
  ...atme, ...qgemm,
} as unknown as Record<string, RefKernel>;

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  private buf: ArrayBuffer;
  private heap: Heap;
  private readonly mem: HeapAllocator;
  readonly scratch: Ptr;

  constructor(initialBytes = 1 << 20) {
    this.buf = new ArrayBuffer(initialBytes);
    this.heap = { f32: new Float32Array(this.buf), i32: new Int32Array(this.buf) };
    this.mem = new HeapAllocator(initialBytes, (need) => {
      const size = Math.max(need, this.buf.byteLength * 2);
      const next = new ArrayBuffer(size);
      new Uint8Array(next).set(new Uint8Array(this.buf));
      this.buf = next;
      this.heap = { f32: new Float32Array(next), i32: new Int32Array(next) };
      return size;
    });
    for (const k of KERNELS) if (!table[k]) throw new Error(`reference backend: kernel '${k}' missing`);
    this.scratch = this.mem.alloc(GEMM_SCRATCH_BYTES);
  }

  alloc(n: number): Ptr { return this.mem.alloc(n * 4); }
  free(p: Ptr): void { this.mem.free(p); }
  read(p: Ptr, n: number): Float32Array { return this.heap.f32.slice(p >> 2, (p >> 2) + n); }
  readI32(p: Ptr, n: number): Int32Array { return this.heap.i32.slice(p >> 2, (p >> 2) + n); }
  write(p: Ptr, data: Float32Array | Int32Array): void {
    new Uint8Array(this.buf, p, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  run(kernel: KernelName, ...args: number[]): number {
    const fn = table[kernel];
    if (!fn) throw new Error(`reference backend: unknown kernel '${kernel}'`);
    return (fn(this.heap, ...args) as number) ?? 0;
  }
  /** y = ln x elementwise (Math.log rounded to f32), as the host does it for every CPU backend. */
  logf(x: Ptr, y: Ptr, n: number): void {
    const f = this.heap.f32, xi = x >> 2, yi = y >> 2;
    for (let i = 0; i < n; i++) f[yi + i] = Math.log(f[xi + i]);
  }
  stats() { return { bytesInUse: this.mem.bytesInUse, peakBytes: this.mem.peakBytes, liveBlocks: this.mem.liveCount }; }
}
