// ThreadedWasmBackend: the WASM kernels on a pool of threads over one shared
// WebAssembly.Memory (Node worker_threads; Web Workers in browsers).
//
// Same heap, same kernels, same results as WasmBackend, bit for bit: a kernel
// call is cut into parts that write disjoint outputs, each part computed by
// exactly the code and the operation order one thread would use for it:
//   gemm             by batch entries (attention's heads), else by rows of C in
//                    strips of 4 (the micro-kernel's height). Each output
//                    element's K order and K blocking depend on K only, and its
//                    B packing on K and N only, never on M, so a row range
//                    computes the same bits (test/threads.test.ts checks every
//                    layout, with alpha, beta and bias, on odd shapes). Columns
//                    are never split: an edge tile (N % 8) rounds bias and beta
//                    in another order than a full one.
//   softmax, layernorm (fwd and bwd): by rows.
//   gelu_fwd/bwd     by runs of 16 floats (the unrolled loop's step), so each
//                    element takes the same vector path.
//   add, mul         by whole periods of the broadcast operand (m), or by
//                    runs of 4 when it is a scalar or as long as the output.
//   scale, fill      by runs of 4; axpy by runs of 8 (its unrolled step; the
//                    relaxed build fuses the vector loop, not the scalar tail).
//   patchify         by images.
// Everything else (reductions with a scalar result, ATME, gathers, copy2d
// whose rows may overlap) runs on the calling thread. Calls below `minWork`
// (about 10 microseconds of work) are not split: dispatch costs a few.
//
// Dispatch: one mailbox per worker in the shared heap (./worker.ts), written
// by the caller, then Atomics.notify; the caller computes part 0 itself and
// waits on each worker's DONE word (spinning briefly, then Atomics.wait).
// postMessage per kernel would cost ~40 us+, this a few us. The caller blocks,
// which Node's main thread may; a browser's main thread may not
// (Atomics.wait throws there): run this backend inside a Web Worker. Browsers
// also need cross-origin isolation (COOP/COEP) for SharedArrayBuffer.
//
// Traps the design avoids:
//  - data segments are re-applied at each instantiation: the kernels have none
//    (assembly/index.ts), so a worker's instance cannot overwrite live data;
//  - each instance has its own globals: the stub runtime is unused, the heap
//    is allocated here (HeapAllocator), never inside WASM;
//  - the memory's shared flag must match the build: build/cait.*.shared.wasm
//    (asconfig.json targets simd-shared, relaxed-shared: --sharedMemory,
//    --enable threads, maximum 65536 pages) import a shared memory; the plain
//    builds refuse one. A shared memory needs a maximum: `maxMemoryPages`,
//    default 16384 (1 GiB), reserved up front, committed as it grows;
//  - growth: the heap grows from this thread only; `memory.buffer` is then a
//    new, longer SharedArrayBuffer (the old one stays valid but short), so
//    the typed-array views are re-made after each grow. Worker instances see
//    the new size by themselves; the mailboxes sit below the first size.
import type { Backend, Ptr } from './backend.js';
import { KERNELS, type KernelName, GEMM_SCRATCH_BYTES } from './kernels.js';
import { HeapAllocator } from './memory.js';
import { relaxedSimdSupported, type WasmVariant } from './wasm.js';
import {
  WORKER_SOURCE, BOX_BYTES, SEQ, KERNEL, NARGS, DONE, ERROR, READY, ARGS_F64, MAX_ARGS, MSG_BYTE, MSG_CHARS, READY_OK, READY_FAILED,
} from './worker.js';

const PAGE = 65536;
const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export interface ThreadOptions {
  /** Threads in all, the calling one included (>= 1). */
  threads: number;
  /** Memory maximum in 64 KiB pages (default 16384 = 1 GiB; at most 65536). */
  maxMemoryPages?: number;
  /** Initial memory in pages (default 256 = 16 MiB). */
  initialPages?: number;
  /**
   * Smallest call that is split, in multiply-adds for gemm and weighted
   * element counts for the rest (default 2^17, ~10 us of one core). 0 splits
   * everything splittable (tests).
   */
  minWork?: number;
  /** Atomics.load polls before a waiting thread sleeps in Atomics.wait (default 20000, a few tens of us). */
  spin?: number;
  /** Milliseconds the caller waits for a worker before giving up with an error (default 120000). */
  timeoutMs?: number;
}

/** What the pool needs of a worker, whichever kind it is. */
interface PoolWorker { terminate(): unknown }

type Spawn = (data: Record<string, unknown>) => PoolWorker;

/** Parts of a call: one argument list per thread (part 0 is the caller's). */
type Split = (args: number[], T: number, minWork: number) => number[][] | null;

/** Cut [0, units) into at most T runs; returns boundaries (length parts + 1). */
function cuts(units: number, T: number): number[] {
  const parts = Math.min(T, units), b = [0];
  for (let p = 1; p <= parts; p++) b.push(Math.floor((p * units) / parts));
  return b;
}

/**
 * Element ranges of n in multiples of `align` (the last one runs to n), as a
 * list of [start, length], or null when n is too small to split.
 */
function ranges(n: number, align: number, T: number): Array<[number, number]> | null {
  const units = Math.ceil(n / align);
  if (units < 2) return null;
  const b = cuts(units, T), out: Array<[number, number]> = [];
  for (let p = 0; p + 1 < b.length; p++) {
    const s = b[p] * align, e = Math.min(n, b[p + 1] * align);
    out.push([s, e - s]);
  }
  return out;
}

const F = 4; // bytes per float

/** Split by rows (count at `rowsAt`); each pointer in `ptrs` advances by perRowFloats(args) floats per row; `weight` is the work of one row. */
function byRows(rowsAt: number, ptrs: Array<[index: number, perRowFloats: (a: number[]) => number]>, weight: (a: number[]) => number): Split {
  return (a, T, minWork) => {
    const rows = a[rowsAt];
    if (rows * weight(a) < minWork) return null;
    const r = ranges(rows, 1, T);
    if (!r) return null;
    return r.map(([r0, nr]) => {
      const p = a.slice();
      p[rowsAt] = nr;
      for (const [i, per] of ptrs) p[i] = a[i] + r0 * per(a) * F;
      return p;
    });
  };
}

/** Split of an n-element kernel in runs of `align`; `ptrs` are the args that advance with the element index. */
function byElements(nAt: number, ptrs: number[], align: number, weight: number): Split {
  return (a, T, minWork) => {
    const n = a[nAt];
    if (n * weight < minWork) return null;
    const r = ranges(n, align, T);
    if (!r) return null;
    return r.map(([s, len]) => {
      const p = a.slice();
      p[nAt] = len;
      for (const i of ptrs) p[i] = a[i] + s * F;
      return p;
    });
  };
}

// gemm(layout, M, N, K, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch, bias, scratch)
const splitGemm: Split = (g, T, minWork) => {
  const [layout, M, N, K, , a, lda, sa, b, , sb, , c, ldc, sc, batch] = g;
  if (M <= 0 || N <= 0 || batch <= 0 || M * N * K * batch < minWork) return null;
  const strips = Math.ceil(M / 4);
  if (batch >= T && (batch % T === 0 || strips < 2 * T)) {
    const bc = cuts(batch, T), parts: number[][] = [];
    for (let p = 0; p + 1 < bc.length; p++) {
      const t0 = bc[p], q = g.slice();
      q[5] = a + t0 * sa * F; q[8] = b + t0 * sb * F; q[12] = c + t0 * sc * F; q[15] = bc[p + 1] - t0;
      parts.push(q);
    }
    return parts;
  }
  if (strips < 2) return null;
  const rc = cuts(strips, T), parts: number[][] = [];
  for (let p = 0; p + 1 < rc.length; p++) {
    const i0 = rc[p] * 4, i1 = Math.min(M, rc[p + 1] * 4), q = g.slice();
    q[1] = i1 - i0;
    q[5] = a + ((layout & 3) === 2 ? i0 : i0 * lda) * F;
    q[12] = c + i0 * ldc * F;
    parts.push(q);
  }
  return parts;
};

// add/mul(a, b, y, n, m): y[i] = a[i] op b[i % m]
const splitBroadcast: Split = (g, T, minWork) => {
  const [a, b, y, n, m] = g;
  if (n < minWork || m < 1) return null;
  let r: Array<[number, number]> | null;
  let bMoves = false;
  if (m === 1) r = ranges(n, 4, T);
  else if (m >= n) { r = ranges(n, 4, T); bMoves = true; }
  else r = ranges(n, m, T);
  if (!r) return null;
  return r.map(([s, len]) => [a + s * F, bMoves ? b + s * F : b, y + s * F, len, bMoves ? len : m]);
};

const SPLITS: Partial<Record<KernelName, Split>> = {
  gemm: splitGemm,
  // softmax_fwd(x, y, rows, cols)
  softmax_fwd: byRows(2, [[0, (a) => a[3]], [1, (a) => a[3]]], (a) => 8 * a[3]),
  // softmax_bwd(y, dy, dx, rows, cols)
  softmax_bwd: byRows(3, [[0, (a) => a[4]], [1, (a) => a[4]], [2, (a) => a[4]]], (a) => 3 * a[4]),
  // layernorm_fwd(x, gamma, beta, y, mean, rstd, rows, cols, eps)
  layernorm_fwd: byRows(6, [[0, (a) => a[7]], [3, (a) => a[7]], [4, () => 1], [5, () => 1]], (a) => 4 * a[7]),
  // gelu_fwd(x, y, n), gelu_bwd(x, dy, dx, n)
  gelu_fwd: byElements(2, [0, 1], 16, 16),
  gelu_bwd: byElements(3, [0, 1, 2], 16, 20),
  add: splitBroadcast,
  mul: splitBroadcast,
  // scale(x, y, n, s), axpy(x, y, n, alpha), fill(y, n, v)
  scale: byElements(2, [0, 1], 4, 1),
  axpy: byElements(2, [0, 1], 8, 1),
  fill: byElements(1, [0], 4, 1),
  // patchify(x, y, B, C, H, W, P)
  patchify: (g, T, minWork) => {
    const [x, y, B, C, H, W, P] = g;
    if (B * C * H * W < minWork || B < 2 || P < 1) return null;
    const per = C * H * W, perY = Math.floor(H / P) * Math.floor(W / P) * C * P * P, bc = cuts(B, T);
    const parts: number[][] = [];
    for (let p = 0; p + 1 < bc.length; p++) parts.push([x + bc[p] * per * F, y + bc[p] * perY * F, bc[p + 1] - bc[p], C, H, W, P]);
    return parts;
  },
};

const KERNEL_ID = new Map<string, number>(KERNELS.map((k, i) => [k, i]));

export class ThreadedWasmBackend implements Backend {
  readonly name: string;
  readonly memory: WebAssembly.Memory;
  readonly threads: number;
  readonly exports: Record<string, (...a: number[]) => number>;
  readonly scratch: Ptr;
  /** Per-worker packing buffers (worker w uses workerScratch[w]). */
  private readonly workerScratch: Ptr[] = [];
  private readonly boxes: Ptr[] = [];
  private readonly seq: number[] = [];
  private readonly workers: PoolWorker[] = [];
  private readonly mem: HeapAllocator;
  private readonly maxBytes: number;
  private readonly minWork: number;
  private readonly spin: number;
  private readonly timeoutMs: number;
  private f32 = new Float32Array(0);
  private i32 = new Int32Array(0);
  private box32: Int32Array;
  private box64: Float64Array;
  private closed = false;
  /** Calls split across the pool, and calls run on the caller alone (for reports). */
  splitCalls = 0;
  soloCalls = 0;

  constructor(module: WebAssembly.Module, readonly variant: WasmVariant, o: ThreadOptions, spawn: Spawn) {
    const T = o.threads;
    if (!Number.isInteger(T) || T < 1 || T > 64) throw new RangeError(`threads must be an integer in 1..64, got ${T}`);
    const maxPages = o.maxMemoryPages ?? 16384, initial = o.initialPages ?? 256;
    if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > 65536) throw new RangeError(`maxMemoryPages must be in 1..65536, got ${maxPages}`);
    if (typeof SharedArrayBuffer === 'undefined')
      throw new Error('SharedArrayBuffer is unavailable: browsers offer it only to cross-origin isolated pages (COOP: same-origin, COEP: require-corp)');
    this.threads = T;
    this.closed = T === 1;
    this.name = `wasm-${variant}-x${T}`;
    this.minWork = o.minWork ?? 1 << 17;
    this.spin = o.spin ?? 20000;
    this.timeoutMs = o.timeoutMs ?? 120000;
    this.maxBytes = maxPages * PAGE;
    this.memory = new WebAssembly.Memory({ initial: Math.min(initial, maxPages), maximum: maxPages, shared: true } as WebAssembly.MemoryDescriptor);
    const instance = new WebAssembly.Instance(module, {
      env: {
        memory: this.memory,
        abort: (_msg: number, _file: number, line: number, col: number) => { throw new Error(`wasm abort at ${line}:${col}`); },
      },
    });
    this.exports = instance.exports as unknown as Record<string, (...a: number[]) => number>;
    for (const k of KERNELS) if (typeof this.exports[k] !== 'function') throw new Error(`wasm build lacks kernel '${k}'`);
    this.mem = new HeapAllocator(this.memory.buffer.byteLength, (need) => {
      const have = this.memory.buffer.byteLength;
      if (need > this.maxBytes)
        throw new RangeError(`out of memory: ${need} bytes asked of a shared heap capped at ${this.maxBytes} (maxMemoryPages ${maxPages})`);
      const want = Math.min(this.maxBytes, Math.max(need, Math.ceil(have * 1.5)));
      this.memory.grow(Math.ceil((want - have) / PAGE));
      return this.memory.buffer.byteLength;
    });
    this.scratch = this.mem.alloc(GEMM_SCRATCH_BYTES);
    // mailboxes first (they must lie inside the initial buffer: views of it stay valid), then scratch
    const boxes = T > 1 ? this.mem.alloc((T - 1) * BOX_BYTES) : 0;
    this.box32 = new Int32Array(this.memory.buffer, 0, boxes ? (boxes + (T - 1) * BOX_BYTES) >> 2 : 0);
    this.box64 = new Float64Array(this.memory.buffer, 0, this.box32.length >> 1);
    for (let w = 0; w < T - 1; w++) {
      this.boxes.push(boxes + w * BOX_BYTES);
      this.box32.fill(0, (boxes + w * BOX_BYTES) >> 2, (boxes + (w + 1) * BOX_BYTES) >> 2);
      this.seq.push(0);
      this.workerScratch.push(this.mem.alloc(GEMM_SCRATCH_BYTES));
    }
    try {
      for (let w = 0; w < T - 1; w++) {
        this.workers.push(spawn({ module, memory: this.memory, box: this.boxes[w], kernels: [...KERNELS], spin: this.spin }));
      }
    } catch (e) {
      this.terminateAll();
      throw e;
    }
  }

  /** Resolves once every worker has instantiated the module (optional in Node; use it before the first call in browsers). */
  async ready(): Promise<void> {
    for (let w = 0; w < this.workers.length; w++) {
      const at = (this.boxes[w] >> 2) + READY;
      for (;;) {
        const s = Atomics.load(this.box32, at);
        if (s === READY_OK) break;
        if (s === READY_FAILED) throw this.workerError(w, 'could not start');
        // (a timer, not Atomics.waitAsync: a pending waitAsync does not keep Node's event loop alive)
        await new Promise((res) => setTimeout(res, 1));
      }
    }
  }

  private views(): void {
    if (this.f32.buffer !== this.memory.buffer) {
      const buf = this.memory.buffer;
      this.f32 = new Float32Array(buf);
      this.i32 = new Int32Array(buf);
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
  /** y = ln x elementwise, on the host over the heap (no read-back): proportional attention's log sizes stay off the JS side. */
  logf(x: Ptr, y: Ptr, n: number): void {
    this.views();
    const f = this.f32, xi = x >> 2, yi = y >> 2;
    for (let i = 0; i < n; i++) f[yi + i] = Math.log(f[xi + i]);
  }
  stats() { return { bytesInUse: this.mem.bytesInUse, peakBytes: this.mem.peakBytes, liveBlocks: this.mem.liveCount }; }

  run(kernel: KernelName, ...args: number[]): number {
    const split = this.closed ? undefined : SPLITS[kernel];
    const parts = split ? split(args, this.threads, this.minWork) : null;
    if (!parts || parts.length < 2) { this.soloCalls++; return this.exports[kernel](...args); }
    this.splitCalls++;
    const id = KERNEL_ID.get(kernel)!, gemm = kernel === 'gemm';
    for (let p = 1; p < parts.length; p++) {
      const w = p - 1, q = parts[p];
      if (gemm) q[17] = this.workerScratch[w];
      this.post(w, id, q);
    }
    let err: unknown = null;
    try { this.exports[kernel](...parts[0]); } catch (e) { err = e; }
    for (let p = 1; p < parts.length; p++) {
      const e = this.await(p - 1);
      if (e && !err) err = e;
    }
    if (err) throw err;
    return 0;
  }

  private post(w: number, id: number, args: number[]): void {
    const b = this.boxes[w], i = b >> 2, d = (b >> 3) + ARGS_F64;
    if (args.length > MAX_ARGS) throw new Error(`too many kernel arguments (${args.length})`);
    for (let k = 0; k < args.length; k++) this.box64[d + k] = args[k];
    this.box32[i + KERNEL] = id;
    this.box32[i + NARGS] = args.length;
    const s = (this.seq[w] = (this.seq[w] + 1) | 0);
    Atomics.store(this.box32, i + SEQ, s);
    Atomics.notify(this.box32, i + SEQ, 1);
  }

  /** Waits for worker w's current job; returns its error, if any. */
  private await(w: number): Error | null {
    const i = this.boxes[w] >> 2, s = this.seq[w], b = this.box32;
    let d = Atomics.load(b, i + DONE);
    for (let n = this.spin; d !== s && n > 0; n--) d = Atomics.load(b, i + DONE);
    if (d !== s) {
      const t0 = Date.now();
      while (d !== s) {
        if (Atomics.load(b, i + READY) === READY_FAILED) { this.closed = true; return this.workerError(w, 'could not start'); }
        if (Date.now() - t0 > this.timeoutMs) { this.closed = true; return new Error(`worker ${w + 1}: no answer in ${this.timeoutMs} ms`); }
        Atomics.wait(b, i + DONE, d, 1000);
        d = Atomics.load(b, i + DONE);
      }
    }
    if (Atomics.load(b, i + ERROR)) {
      const e = this.workerError(w, 'kernel failed');
      Atomics.store(b, i + ERROR, 0);
      return e;
    }
    return null;
  }

  private workerError(w: number, what: string): Error {
    const u16 = new Uint16Array(this.memory.buffer, this.boxes[w] + MSG_BYTE, MSG_CHARS + 1);
    let msg = '';
    for (let k = 0; k < MSG_CHARS && u16[k]; k++) msg += String.fromCharCode(u16[k]);
    return new Error(`worker ${w + 1} ${what}${msg ? `: ${msg}` : ''}`);
  }

  private terminateAll(): Promise<unknown[]> {
    const ws = this.workers.splice(0);
    return Promise.all(ws.map((x) => x.terminate()));
  }

  /** Stops the workers (they leave their loop, then are terminated). The heap stays usable; later calls run on the calling thread alone. */
  async close(): Promise<void> {
    if (this.closed && !this.workers.length) return;
    this.closed = true;
    for (let w = 0; w < this.workers.length; w++) this.post(w, -1, []);
    await this.terminateAll();
  }
}

function nodeSpawn(): Spawn {
  const proc = process as unknown as { getBuiltinModule(m: string): unknown };
  const wt = proc.getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads');
  return (data) => {
    const w = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: data, execArgv: [], stdout: false, stderr: false });
    w.unref();   // an idle pool does not keep the process alive
    return w;
  };
}

function browserSpawn(): Spawn {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  return (data) => {
    const w = new Worker(url);
    w.postMessage(data);
    return w;
  };
}

/** Node: a pool over build/cait.<variant>.shared.wasm, synchronously (usable at once). */
export function loadThreadedWasmSync(o: ThreadOptions & { variant?: WasmVariant | 'auto' }): ThreadedWasmBackend {
  const v: WasmVariant = (o.variant ?? 'auto') === 'auto' ? (relaxedSimdSupported() ? 'relaxed' : 'simd') : (o.variant as WasmVariant);
  if (v === 'relaxed') relaxedSimdSupported();   // sets the V8 flag in Node 20
  const proc = process as unknown as { getBuiltinModule(m: string): unknown };
  const fs = proc.getBuiltinModule('node:fs') as typeof import('node:fs');
  const url = proc.getBuiltinModule('node:url') as typeof import('node:url');
  const file = url.fileURLToPath(new URL(`../../build/cait.${v}.shared.wasm`, import.meta.url));
  if (!fs.existsSync(file)) throw new Error(`${file} not found: run \`npm run build:wasm\``);
  return new ThreadedWasmBackend(new WebAssembly.Module(fs.readFileSync(file)), v, o, nodeSpawn());
}

/** Browsers (inside a Web Worker, cross-origin isolated) or Node: fetch the shared build from baseUrl; resolves when the pool is up. */
export async function loadThreadedWasm(baseUrl: string | URL, o: ThreadOptions & { variant?: WasmVariant | 'auto' }): Promise<ThreadedWasmBackend> {
  const v: WasmVariant = (o.variant ?? 'auto') === 'auto' ? (relaxedSimdSupported() ? 'relaxed' : 'simd') : (o.variant as WasmVariant);
  const res = await fetch(new URL(`cait.${v}.shared.wasm`, baseUrl));
  const be = new ThreadedWasmBackend(await WebAssembly.compile(await res.arrayBuffer()), v, o, isNode ? nodeSpawn() : browserSpawn());
  await be.ready();
  return be;
}
