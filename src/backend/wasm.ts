// The WebAssembly backend (default): kernels from assembly/, compiled by
// AssemblyScript with `--runtime stub --importMemory`, so the module owns no
// heap and no allocator; this file allocates from TypeScript.
//
// Two builds of the same source: `simd` (f32x4) and `relaxed` (f32x4 plus
// relaxed_madd, i.e. a fused multiply-add where the CPU has one). The relaxed
// build is chosen when a probe module validates. Node 20 hides relaxed SIMD
// behind a V8 flag that NODE_OPTIONS refuses, so we set it at run time before
// compiling anything.
//
// We use the plain WebAssembly API rather than @assemblyscript/loader: the
// loader is deprecated since 0.20 and cannot take a shared memory.
import type { Backend, Ptr } from './backend.js';
import { KERNELS, type KernelName, GEMM_SCRATCH_BYTES } from './kernels.js';
import { HeapAllocator, HEAP_BASE } from './memory.js';

export type WasmVariant = 'simd' | 'relaxed';

// (module (func (param v128 v128 v128) (result v128)
//   local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123,
  3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11]);

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

function enableRelaxedInNode(): void {
  // Node 22+ ships relaxed SIMD and its V8 prints "unrecognized flag" to stderr for the old one
  if (!isNode || WebAssembly.validate(RELAXED_PROBE)) return;
  try {
    const v8 = (process as unknown as { getBuiltinModule?: (m: string) => { setFlagsFromString(s: string): void } })
      .getBuiltinModule?.('node:v8');
    v8?.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch { /* older runtimes: the probe below decides */ }
}

export function relaxedSimdSupported(): boolean {
  enableRelaxedInNode();
  try { return WebAssembly.validate(RELAXED_PROBE); } catch { return false; }
}

const PAGE = 65536;

/** `auto` is the relaxed build where relaxed SIMD validates (setting Node 20's V8 flag first), else simd. */
export function resolveVariant(variant: WasmVariant | 'auto' = 'auto'): WasmVariant {
  const v: WasmVariant = variant === 'auto' ? (relaxedSimdSupported() ? 'relaxed' : 'simd') : variant;
  if (v === 'relaxed') enableRelaxedInNode();
  return v;
}

/** Node: compile build/<file> synchronously. */
export function compileBuildSync(file: string): WebAssembly.Module {
  const proc = process as unknown as { getBuiltinModule(m: string): unknown };
  const fs = proc.getBuiltinModule('node:fs') as typeof import('node:fs');
  const url = proc.getBuiltinModule('node:url') as typeof import('node:url');
  // Node only: bundlers would read this template as "every file under build/" (webpack: a context module that
  // emits the .wat files too where they are there; Vite: hashed copies), while a page finds its builds through
  // the literal URLs of src/api/browser.ts
  const path = url.fileURLToPath(new URL(/* webpackIgnore: true */ /* @vite-ignore */ `../../build/${file}`, import.meta.url));
  if (!fs.existsSync(path)) throw new Error(`${path} not found: run \`npm run build:wasm\``);
  return new WebAssembly.Module(fs.readFileSync(path));
}

/**
 * Browsers (or Node with fetch): compile `file` (a build/ file name) from
 * baseUrl (the demo page's workers; the library's load() fetches within a
 * byte limit and tries several places, src/api/browser.ts).
 */
export async function compileBuild(baseUrl: string | URL, file: string): Promise<WebAssembly.Module> {
  const u = new URL(file, baseUrl);
  const res = await fetch(u);
  if (!res.ok) throw new Error(`${u.href}: HTTP ${res.status}: serve node_modules/caitjs/build/${file} there`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  // a server's fallback page is no kernel (Vite's dev server answers a missing file with index.html, status 200)
  if (!isWasm(bytes)) throw new Error(`${u.href}: not WebAssembly (${bytes.byteLength} bytes starting ${JSON.stringify(new TextDecoder().decode(bytes.subarray(0, 16)))}): serve node_modules/caitjs/build/${file} there`);
  return WebAssembly.compile(bytes as BufferSource);
}

/** Whether bytes start with WebAssembly's magic number (\0asm). */
export const isWasm = (bytes: Uint8Array): boolean => bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;

/**
 * Memory: WebAssembly memory can grow but never shrink (the spec has no
 * shrink), so memory freed by disposing a model is not returned to the
 * system; it goes back to the allocator (HeapAllocator returns a freed tail to
 * its bump pointer and coalesces the rest), and the next model or batch reuses
 * it. Loading and disposing the same model again does not grow the memory
 * (test/kernels/memory.test.ts).
 */
export class WasmBackend implements Backend {
  readonly name: string;
  readonly memory: WebAssembly.Memory;
  readonly exports: Record<string, (...a: number[]) => number>;
  protected readonly mem: HeapAllocator;
  private f32 = new Float32Array(0);
  private i32 = new Int32Array(0);
  readonly scratch: Ptr;

  /**
   * @param memory a memory to import (the pool's shared one); default a fresh 16 MiB one
   * @param maxBytes the most the heap may grow to (a shared memory's declared maximum)
   */
  constructor(module: WebAssembly.Module, readonly variant: WasmVariant, memory?: WebAssembly.Memory, maxBytes = Infinity) {
    this.name = `wasm-${variant}`;
    this.memory = memory ?? new WebAssembly.Memory({ initial: 256 });
    const instance = new WebAssembly.Instance(module, {
      env: {
        memory: this.memory,
        abort: (_msg: number, _file: number, line: number, col: number) => {
          throw new Error(`wasm abort at ${line}:${col}`);
        },
      },
    });
    this.exports = instance.exports as unknown as Record<string, (...a: number[]) => number>;
    for (const k of KERNELS) if (typeof this.exports[k] !== 'function') throw new Error(`wasm build lacks kernel '${k}'`);
    // the kernels' constant tables must lie below the heap, which starts at HEAP_BASE
    // (a build without static_data_end predates the tables: it has no static data)
    const dataEnd = typeof this.exports.static_data_end === 'function' ? this.exports.static_data_end() : 0;
    if (!(dataEnd <= HEAP_BASE)) throw new Error(`wasm build: static data ends at ${dataEnd}, expected at most ${HEAP_BASE} (the heap's reserved base; asconfig memoryBase)`);
    this.mem = new HeapAllocator(this.memory.buffer.byteLength, (need) => {
      const have = this.memory.buffer.byteLength;
      if (need > maxBytes) throw new RangeError(`out of memory: ${need} bytes asked of a heap capped at ${maxBytes}`);
      // grow geometrically so that training does not grow every step
      const want = Math.min(maxBytes, Math.max(need, Math.ceil(have * 1.5)));
      this.memory.grow(Math.ceil((want - have) / PAGE));
      return this.memory.buffer.byteLength;
    });
    this.scratch = this.mem.alloc(GEMM_SCRATCH_BYTES);
  }

  /**
   * The int8 GEMM's dot as this engine runs it (assembly/qgemm.ts dotFused):
   * 'fused' (one relaxed dot-add per 16 multiply-adds: x64 with AVX-VNNI in
   * Node 24, V8 13.6, not Node 22's 12.4, and in Chromium 150), 'composed'
   * (relaxed dot + pmaddwd), 'i16' (the plain build's widened dot).
   */
  get int8Dot(): 'fused' | 'composed' | 'i16' {
    return this.variant === 'simd' ? 'i16' : this.exports.qgemm_dot_fused(0) ? 'fused' : 'composed';
  }

  /** Views are re-created whenever the memory has grown (growth detaches the old buffer, or for a shared one leaves it short). */
  protected views(): void {
    if (this.f32.buffer !== this.memory.buffer) {
      this.f32 = new Float32Array(this.memory.buffer);
      this.i32 = new Int32Array(this.memory.buffer);
    }
  }

  alloc(n: number): Ptr { return this.mem.alloc(n * 4); }
  free(p: Ptr): void { this.mem.free(p); }
  read(p: Ptr, n: number): Float32Array { this.views(); return this.f32.slice(p >> 2, (p >> 2) + n); }
  readI32(p: Ptr, n: number): Int32Array { this.views(); return this.i32.slice(p >> 2, (p >> 2) + n); }
  write(p: Ptr, data: Float32Array | Int32Array): void {
    this.views();
    new Uint8Array(this.f32.buffer, p, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  run(kernel: KernelName, ...args: number[]): number { return this.exports[kernel](...args); }
  prepare(kernel: KernelName, args: readonly number[]): () => void {
    // bound, not a closure spreading an array: 520 no-op calls (a planned int8 CAIT forward's count)
    // took 2-15 us bound against 12-60 us spread (a micro-benchmark, not kept): 0.1-0.3% of that forward
    return this.exports[kernel].bind(null, ...args) as () => void;
  }
  /** y = ln x elementwise, on the host over the heap (no read-back): proportional attention's log sizes stay off the JS side. */
  logf(x: Ptr, y: Ptr, n: number): void {
    this.views();
    const f = this.f32, xi = x >> 2, yi = y >> 2;
    for (let i = 0; i < n; i++) f[yi + i] = Math.log(f[xi + i]);
  }
  stats() { return { bytesInUse: this.mem.bytesInUse, peakBytes: this.mem.peakBytes, liveBlocks: this.mem.liveCount }; }
}

/** Load a build synchronously from disk (Node). `auto` picks relaxed when supported. */
export function loadWasmSync(variant: WasmVariant | 'auto' = 'auto'): WasmBackend {
  const v = resolveVariant(variant);
  return new WasmBackend(compileBuildSync(`cait.${v}.wasm`), v);
}

/** Load a build from a URL (browsers). */
export async function loadWasm(baseUrl: string | URL, variant: WasmVariant | 'auto' = 'auto'): Promise<WasmBackend> {
  const v = resolveVariant(variant);
  return new WasmBackend(await compileBuild(baseUrl, `cait.${v}.wasm`), v);
}
