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
//   softmax_fwd/bwd, layernorm_fwd: by rows.
//   gelu_fwd/bwd     by runs of 16 floats (the unrolled loop's step), so each
//                    element takes the same vector path.
//   add, mul         by whole periods of the broadcast operand (m), or by
//                    runs of 4 when it is a scalar or as long as the output.
//   scale, fill      by runs of 4; axpy by runs of 8 (its unrolled step; the
//                    relaxed build fuses the vector loop, not the scalar tail).
//   patchify         by images.
//   qgemm, quantize_rows, softmax_quantize_rows: by strips of 4 rows (the
//                    int8 activations' layout, assembly/qgemm.ts), as gemm.
// Everything else (reductions with a scalar result, ATME, gathers, copy2d
// whose rows may overlap, the other int8 kernels) runs on the calling
// thread. The splits name the arguments they move (the kernel table,
// ./kernels.ts, has the positions).
//
// When to split: only when it pays on this platform. At start-up (ready(), or
// the first splittable call) the pool times, in a few tens of ms, one split
// call of no work with the workers asleep (the dispatch cost D: wake-up, post,
// wait) and one representative call of each kernel class on one thread (its
// time per unit of work r). A call of work W is split when the time two or more
// threads save, W r (1 - 1/T), is at least MARGIN = 3 dispatch costs: the cold
// one, or the hot one (workers still spinning) right after another split.
// Small models (Fashion-MNIST ViTs at batch 1) then run on one thread and are
// never slower than it; DeiT's GEMMs split, and the calls between them too.
// After calibrating, a worker spins after each job about as long as waking it
// costs (at most 2 ms) before it sleeps. The rule is then checked in use
// (runChecked): per kernel and size, splitting stays only while it is
// measured to save at least a tenth against the same calls on one thread,
// timed now and then (on a machine whose other core is taken by other
// processes, nothing pays); calls too short for the clock to time (under 50
// of its ticks: browsers coarsen it to 5-100 us) split unchecked.
// poolStats() reports D, r, the thresholds and the checks; bench/threads.ts
// checks the outcome per committed model.
//
// A worker that dies (terminated, crashed) is noticed by its exit/error event
// when the caller is idle, or, while a call waits on it, when it has not
// claimed its job within `deadMs` (500 ms): the caller then cancels the job
// (CLAIM, ./worker.ts), computes that part itself (the parts are disjoint and
// give the same bits on any thread), warns, and runs alone. A worker that was
// only descheduled (a loaded machine) acknowledges the cancelled job later and
// the pool resumes; one still silent deadMs later is gone: the pool continues
// on the calling thread for good. (A worker that claimed a job and then stops
// for deadMs + 100x the caller's own part is given up on at once.)
//
// Dispatch: one mailbox per worker in the shared heap (./worker.ts), written
// by the caller, then Atomics.notify (only if the worker sleeps, ./worker.ts);
// the caller computes part 0 itself and
// waits on each worker's DONE word (spinning briefly, then Atomics.wait).
// postMessage per kernel would cost ~40 us+, this a few us. The caller blocks,
// which Node's main thread may; a browser's main thread may not
// (Atomics.wait throws there): run this backend inside a Web Worker. Browsers
// also need cross-origin isolation (COOP/COEP) for SharedArrayBuffer.
//
// A planned forward of a batch (src/plan.ts) is cut by images instead when
// the slices are even: prepareParallel posts each worker its slice's whole
// list of calls as one program (./worker.ts), one dispatch per forward.
//
// Traps the design avoids:
//  - data segments are re-applied at each instantiation: the kernels have none
//    (assembly/index.ts), so a worker's instance cannot overwrite live data;
//  - each instance has its own globals: the stub runtime is unused, the heap
//    is allocated here (HeapAllocator), never inside WASM;
//  - heap, views, read/write and the loaders are WasmBackend's (./wasm.ts),
//    which this class extends; only `run` differs;
//  - the memory's shared flag must match the build: build/cait.*.shared.wasm
//    (asconfig.json targets simd-shared, relaxed-shared: --sharedMemory,
//    --enable threads, maximum 65536 pages) import a shared memory; the plain
//    builds refuse one. A shared memory needs a maximum: `maxMemoryPages`,
//    default 16384 (1 GiB), reserved up front, committed as it grows;
//  - growth: the heap grows from this thread only; `memory.buffer` is then a
//    new, longer SharedArrayBuffer (the old one stays valid but short), so
//    the typed-array views are re-made after each grow. Worker instances see
//    the new size by themselves; the mailboxes sit below the first size.
import type { Ptr, PlanStep, ParallelRun } from './backend.js';
import { KERNELS, KERNEL_ARG_INDEX, NN, GEMM_SCRATCH_BYTES, type ArgNames, type KernelName } from './kernels.js';
import { WasmBackend, compileBuild, compileBuildSync, resolveVariant, type WasmVariant } from './wasm.js';
import {
  WORKER_SOURCE, BOX_BYTES, SEQ, KERNEL, NARGS, DONE, ERROR, READY, CLAIM, SPIN, SLEEPING, WAITING, ARGS_F64, MAX_ARGS, MSG_BYTE, MSG_CHARS, READY_OK, READY_FAILED,
  QUIT, PROGRAM, PROG_COPY, PROG_LOGF,
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
   * Smallest call that is split, in its class's units of work (multiply-adds
   * for gemm, weighted element counts for the rest), for every class. Default:
   * per class, from the calibration (see the header). 0 splits everything
   * splittable (tests).
   */
  minWork?: number;
  /**
   * Atomics.load polls before a waiting thread sleeps in Atomics.wait. Default:
   * 20000 (a few tens of us) until calibrated; then a worker spins about as
   * long as waking it costs (the cold dispatch), at most 2 ms.
   */
  spin?: number;
  /** Milliseconds a worker may take to claim a posted job before it counts as dead (default 500). */
  deadMs?: number;
}

/** Kernel classes, each with its own calibrated threshold. */
export type KernelClass = 'gemm' | 'softmax' | 'layernorm' | 'gelu' | 'elementwise';
const CLASSES: readonly KernelClass[] = ['gemm', 'softmax', 'layernorm', 'gelu', 'elementwise'];

/** Dispatch costs a split must save before it is made (see the header). */
const MARGIN = 3;
/** runChecked times the way it does not prefer once every PROBE_EVERY calls... */
const PROBE_EVERY = 16;
/** ...and judges each way by the median of its last KEEP timings: one call slowed by the machine (the other core taken for a moment) flips nothing. */
const KEEP = 3;

/** runChecked's timings (ns per unit of work) for one kernel and size, each way's last KEEP. */
interface Verdict { solo: number[]; split: number[]; n: number }
const mid = (w: number[]): number => (w.length === 0 ? NaN : w.length < 3 ? Math.min(...w) : [...w].sort((a, b) => a - b)[w.length >> 1]);
/** Clock ticks a call must be expected to last for runChecked to time it. */
const CHECK_TICKS = 50;
/** Split unless measured to save less than a tenth (not yet measured: split). */
const prefersSplit = (v: Verdict): boolean => !(mid(v.split) >= mid(v.solo) * 0.9);

/** What the pool measured at start-up, and the thresholds it derived. */
export interface Calibration {
  /** One split call of no work: workers spinning (hot), and asleep after an idle gap (cold), microseconds, median. */
  dispatchUs: { hot: number; cold: number };
  /** One thread's time per unit of work, per class (ns). */
  nsPerUnit: Record<KernelClass, number>;
  /** Smallest work split, per class (units as in ThreadOptions.minWork), with the workers asleep (cold dispatch)... */
  minWork: Record<KernelClass, number>;
  /** ...and within `warmMs` of the last split, while they still spin (hot dispatch). */
  minWorkWarm: Record<KernelClass, number>;
  /** Half the time a worker spins after a job before it sleeps (ms). */
  warmMs: number;
  /** How long a worker spins after a job (ms): about the cold dispatch cost (see calibrate). */
  workerSpinMs: number;
  /** The clock's resolution (us): calls expected to take under CHECK_TICKS of it split without the in-use check. */
  clockUs: number;
  /** Wall time of the calibration (ms). */
  ms: number;
}

export interface PoolStats {
  threads: number;
  /** Workers still in use (threads - 1 while healthy, 0 after close() or a fallback). */
  workers: number;
  splitCalls: number;
  soloCalls: number;
  /** Thresholds in force (the minWork option for every class, or the calibration's). */
  minWork: Record<KernelClass, number> | null;
  calibration: Calibration | null;
  /** Why the pool fell back to one thread, if it did. */
  fallback: string | null;
  /** The rule checked in use (runChecked): kernel sizes seen above their threshold, and how many of them split now. */
  checked: { sizes: number; splitPreferred: number };
}

/** What the pool needs of a worker, whichever kind it is. */
interface PoolWorker { terminate(): unknown }

type Spawn = (data: Record<string, unknown>, onDeath: (why: string) => void) => PoolWorker;

/** How a splittable kernel is cut: its class, the work of a call, and its parts (one argument list per thread, part 0 the caller's). */
interface SplitRule {
  cls: KernelClass;
  /** CLASSES.indexOf(cls), set below (run() reads thresholds by it). */
  ci?: number;
  work(a: number[]): number;
  cut(a: number[], T: number): number[][] | null;
}

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

/** Argument positions of kernel k by name. */
const at = <K extends KernelName>(k: K): Record<ArgNames<K>, number> => KERNEL_ARG_INDEX[k];

/**
 * Split by rows: `rows` is the count; each pointer of `advance` moves by
 * (argument named there) floats per row, or by 1; a row's work is `weight`
 * times the argument `cols`.
 */
function byRows<K extends KernelName>(k: K, cls: KernelClass, rows: ArgNames<K>, advance: Array<[ArgNames<K>, ArgNames<K> | 1]>,
  weight: number, cols: ArgNames<K>): SplitRule {
  const i = at(k), r = i[rows], c = i[cols], moves = advance.map(([p, per]) => [i[p], per === 1 ? -1 : i[per]] as const);
  return {
    cls,
    work: (a) => a[r] * weight * a[c],
    cut: (a, T) => {
      const rr = ranges(a[r], 1, T);
      if (!rr) return null;
      return rr.map(([r0, nr]) => {
        const p = a.slice();
        p[r] = nr;
        for (const [pi, per] of moves) p[pi] = a[pi] + r0 * (per < 0 ? 1 : a[per]) * F;
        return p;
      });
    },
  };
}

/** Split of an n-element kernel in runs of `align`; `ptrs` advance with the element index; `weight` is one element's work. */
function byElements<K extends KernelName>(k: K, cls: KernelClass, n: ArgNames<K>, ptrs: Array<ArgNames<K>>, align: number, weight: number): SplitRule {
  const i = at(k), ni = i[n], pi = ptrs.map((p) => i[p]);
  return {
    cls,
    work: (a) => a[ni] * weight,
    cut: (a, T) => {
      const r = ranges(a[ni], align, T);
      if (!r) return null;
      return r.map(([s, len]) => {
        const p = a.slice();
        p[ni] = len;
        for (const j of pi) p[j] = a[j] + s * F;
        return p;
      });
    },
  };
}

const G = at('gemm');
const splitGemm: SplitRule = {
  cls: 'gemm',
  work: (g) => (g[G.M] > 0 && g[G.N] > 0 && g[G.batch] > 0 ? g[G.M] * g[G.N] * g[G.K] * g[G.batch] : 0),
  cut: (g, T) => {
    const M = g[G.M], batch = g[G.batch];
    if (M <= 0 || g[G.N] <= 0 || batch <= 0) return null;
    const strips = Math.ceil(M / 4);
    if (batch >= T && (batch % T === 0 || strips < 2 * T)) {
      const bc = cuts(batch, T), parts: number[][] = [];
      for (let p = 0; p + 1 < bc.length; p++) {
        const t0 = bc[p], q = g.slice();
        q[G.a] = g[G.a] + t0 * g[G.sa] * F; q[G.b] = g[G.b] + t0 * g[G.sb] * F; q[G.c] = g[G.c] + t0 * g[G.sc] * F;
        q[G.batch] = bc[p + 1] - t0;
        parts.push(q);
      }
      return parts;
    }
    if (strips < 2) return null;
    const rc = cuts(strips, T), parts: number[][] = [];
    for (let p = 0; p + 1 < rc.length; p++) {
      const i0 = rc[p] * 4, i1 = Math.min(M, rc[p + 1] * 4), q = g.slice();
      q[G.M] = i1 - i0;
      q[G.a] = g[G.a] + ((g[G.layout] & 3) === 2 ? i0 : i0 * g[G.lda]) * F;   // TN: A is stored K x M
      q[G.c] = g[G.c] + i0 * g[G.ldc] * F;
      parts.push(q);
    }
    return parts;
  },
};

// add/mul: y[i] = a[i] op b[i % m]
const A = at('add');
const splitBroadcast: SplitRule = {
  cls: 'elementwise',
  work: (g) => (g[A.m] < 1 ? 0 : g[A.n]),
  cut: (g, T) => {
    const n = g[A.n], m = g[A.m];
    if (m < 1) return null;
    let r: Array<[number, number]> | null;
    let bMoves = false;
    if (m === 1) r = ranges(n, 4, T);
    else if (m >= n) { r = ranges(n, 4, T); bMoves = true; }
    else r = ranges(n, m, T);
    if (!r) return null;
    return r.map(([s, len]) => {
      const q = g.slice();
      q[A.a] = g[A.a] + s * F; q[A.b] = bMoves ? g[A.b] + s * F : g[A.b]; q[A.y] = g[A.y] + s * F;
      q[A.n] = len; q[A.m] = bMoves ? len : m;
      return q;
    });
  },
};

const P = at('patchify');
const splitPatchify: SplitRule = {
  cls: 'elementwise',
  work: (g) => (g[P.B] < 2 || g[P.P] < 1 ? 0 : g[P.B] * g[P.C] * g[P.H] * g[P.W]),
  cut: (g, T) => {
    const B = g[P.B], C = g[P.C], H = g[P.H], W = g[P.W], Pp = g[P.P];
    if (B < 2 || Pp < 1) return null;
    const per = C * H * W, perY = Math.floor(H / Pp) * Math.floor(W / Pp) * C * Pp * Pp, bc = cuts(B, T);
    return bc.slice(0, -1).map((b0, p) => {
      const q = g.slice();
      q[P.x] = g[P.x] + b0 * per * F; q[P.y] = g[P.y] + b0 * perY * F; q[P.B] = bc[p + 1] - b0;
      return q;
    });
  },
};

// int8 (assembly/qgemm.ts): by strips of 4 rows, as gemm; the activations
// are stored in strips of 4 rows x Kp bytes, the row parameters 2 floats a row.
const QG = at('qgemm'), QR = at('quantize_rows');
const kp4 = (K: number): number => (K + 3) & ~3;
function byStrips(M: number, T: number, part: (i0: number, rows: number) => number[]): number[][] | null {
  const strips = Math.ceil(M / 4);
  if (M <= 0 || strips < 2) return null;
  const rc = cuts(strips, T);
  return rc.slice(0, -1).map((s0, p) => part(s0 * 4, Math.min(M, rc[p + 1] * 4) - s0 * 4));
}
const splitQgemm: SplitRule = {
  cls: 'gemm',
  // an int8 multiply-add costs about a third of a float one (assembly/qgemm.ts)
  work: (g) => (g[QG.M] > 0 && g[QG.N] > 0 ? (g[QG.M] * g[QG.N] * g[QG.K]) / 3 : 0),
  cut: (g, T) => (g[QG.N] <= 0 ? null : byStrips(g[QG.M], T, (i0, rows) => {
    const q = g.slice();
    q[QG.M] = rows; q[QG.qa] = g[QG.qa] + i0 * kp4(g[QG.K]); q[QG.rowp] = g[QG.rowp] + i0 * 2 * F; q[QG.c] = g[QG.c] + i0 * g[QG.ldc] * F;
    return q;
  })),
};
/**
 * A kernel writing quantize_rows' layout from M rows of K floats (x, row
 * stride ld): cut by strips of 4 rows. `a`: its argument positions.
 */
function quantizedRows(cls: SplitRule['cls'], perValue: number, a: { M: number; K: number; x: number; qa: number; rowp: number }, ld: (g: number[]) => number): SplitRule {
  return {
    cls,
    work: (g) => perValue * g[a.M] * g[a.K],
    cut: (g, T) => (g[a.K] <= 0 ? null : byStrips(g[a.M], T, (i0, rows) => {
      const q = g.slice();
      q[a.M] = rows; q[a.x] = g[a.x] + i0 * ld(g) * F; q[a.qa] = g[a.qa] + i0 * kp4(g[a.K]); q[a.rowp] = g[a.rowp] + i0 * 2 * F;
      return q;
    })),
  };
}
const splitQuantizeRows = quantizedRows('elementwise', 3, QR, (g) => g[QR.ldx]);
// softmax_quantize_rows: the same strips over rows of cols floats, contiguous
const SQ = at('softmax_quantize_rows');
const splitSoftmaxQuantizeRows = quantizedRows('softmax', 8, { M: SQ.rows, K: SQ.cols, x: SQ.x, qa: SQ.qa, rowp: SQ.rowp }, (g) => g[SQ.cols]);

const SPLITS: Partial<Record<KernelName, SplitRule>> = {
  softmax_quantize_rows: splitSoftmaxQuantizeRows,
  gemm: splitGemm,
  qgemm: splitQgemm,
  quantize_rows: splitQuantizeRows,
  softmax_fwd: byRows('softmax_fwd', 'softmax', 'rows', [['x', 'cols'], ['y', 'cols']], 8, 'cols'),
  softmax_bwd: byRows('softmax_bwd', 'softmax', 'rows', [['y', 'cols'], ['dy', 'cols'], ['dx', 'cols']], 3, 'cols'),
  layernorm_fwd: byRows('layernorm_fwd', 'layernorm', 'rows', [['x', 'cols'], ['y', 'cols'], ['mean', 1], ['rstd', 1]], 4, 'cols'),
  gelu_fwd: byElements('gelu_fwd', 'gelu', 'n', ['x', 'y'], 16, 16),
  gelu_bwd: byElements('gelu_bwd', 'gelu', 'n', ['x', 'dy', 'dx'], 16, 20),
  add: splitBroadcast,
  mul: splitBroadcast,
  scale: byElements('scale', 'elementwise', 'n', ['x', 'y'], 4, 1),
  axpy: byElements('axpy', 'elementwise', 'n', ['x', 'y'], 8, 1),
  fill: byElements('fill', 'elementwise', 'n', ['y'], 4, 1),
  patchify: splitPatchify,
};

for (const r of Object.values(SPLITS)) r!.ci = CLASSES.indexOf(r!.cls);

const KERNEL_ID = new Map<string, number>(KERNELS.map((k, i) => [k, i]));
const now = (): number => performance.now();
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

/** Returned by awaitWorker when the caller must run the part: the job was cancelled unclaimed, or the worker stopped inside it. */
const CANCELLED = Symbol('cancelled'), GONE = Symbol('gone');

/**
 * Why a pool cannot run on this thread, or null when it can: no SharedArrayBuffer (a page that is not cross-origin
 * isolated), or a thread that may not block, a page's main thread, where the caller's Atomics.wait (see the header)
 * would throw the browser's own words at the first split call (Chromium: 'Atomics.wait cannot be called in this
 * context', Firefox: 'waiting is not allowed on this thread'). The probe waits on a value that is not there, so it
 * returns at once where waiting is allowed; where it is not, it throws before the value is compared.
 */
export function threadsUnavailable(): string | null {
  if (typeof SharedArrayBuffer === 'undefined') {
    return 'SharedArrayBuffer is unavailable: browsers offer it only to cross-origin isolated pages (COOP: same-origin, COEP: require-corp), and threads run inside a Web Worker of such a page';
  }
  try { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); } catch (e) {
    return `this thread may not block (Atomics.wait: ${(e as Error).message}), and the pool's calling thread waits on its workers: ` +
      'a page\'s main thread may not, so load the model inside a Web Worker (new Worker(url, { type: \'module\' })) of the cross-origin isolated page, or leave threads at 1';
  }
  return null;
}

export class ThreadedWasmBackend extends WasmBackend {
  override readonly name: string;
  readonly threads: number;
  /** Per-worker packing buffers (worker w uses workerScratch[w]). */
  private readonly workerScratch: Ptr[] = [];
  private readonly boxes: Ptr[] = [];
  private readonly seq: number[] = [];
  private workers: PoolWorker[] = [];
  private readonly minWorkAll: number | undefined;
  private readonly spin: number;
  private readonly spinGiven: boolean;
  private readonly deadMs: number;
  private box32: Int32Array;
  private box64: Float64Array;
  private closed = false;
  private closing = false;
  private cal: Calibration | null = null;
  private fallback: string | null = null;
  /** Thresholds by class index (CLASSES): cold (workers asleep) and warm (just after a split); 0 until calibrated, so the first candidate calibrates. */
  private readonly minCold = new Float64Array(CLASSES.length);
  private readonly minWarm = new Float64Array(CLASSES.length);
  /** Smallest work runChecked times, by class (shorter calls are split unchecked: the clock cannot time them). */
  private readonly minChecked = new Float64Array(CLASSES.length);
  /** When the last split call ended (performance.now ms): its workers spin for a while after. */
  private lastSplit = -Infinity;
  /** runChecked's measurements, by kernel id * 64 + log2(work). */
  private readonly verdicts = new Map<number, Verdict>();
  /** A worker that let a job go unclaimed: calls run on the caller until it acknowledges that job (it was only slow) or deadMs more pass (it is gone). */
  private suspect: { w: number; since: number } | null = null;
  /** Workers running a prepareOnWorker program now. */
  private readonly programOn = new Set<number>();
  /** Calls split across the pool, and calls run on the caller alone (for reports). */
  splitCalls = 0;
  soloCalls = 0;

  constructor(module: WebAssembly.Module, variant: WasmVariant, o: ThreadOptions, spawn: Spawn) {
    const T = o.threads;
    if (!Number.isInteger(T) || T < 1 || T > 64) throw new RangeError(`threads must be an integer in 1..64, got ${T}`);
    const maxPages = o.maxMemoryPages ?? 16384, initial = o.initialPages ?? 256;
    if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > 65536) throw new RangeError(`maxMemoryPages must be in 1..65536, got ${maxPages}`);
    const why = threadsUnavailable();
    if (why) throw new Error(why);
    const memory = new WebAssembly.Memory({ initial: Math.min(initial, maxPages), maximum: maxPages, shared: true } as WebAssembly.MemoryDescriptor);
    super(module, variant, memory, maxPages * PAGE);
    this.threads = T;
    this.closed = T === 1;
    this.name = `wasm-${variant}-x${T}`;
    this.minWorkAll = o.minWork;
    if (o.minWork !== undefined) { this.minCold.fill(o.minWork); this.minWarm.fill(o.minWork); }
    this.spin = o.spin ?? 20000;
    this.spinGiven = o.spin !== undefined;
    this.deadMs = o.deadMs ?? 500;
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
        this.workers.push(spawn({ module, memory: this.memory, box: this.boxes[w], kernels: [...KERNELS], spin: this.spin },
          (why) => { if (!this.closing) this.fallBack(`worker ${w + 1} ${why}`); }));
      }
    } catch (e) {
      void this.terminateAll();
      throw e;
    }
  }

  /** Resolves once every worker has instantiated the module and the pool is calibrated (optional in Node; use it before the first call in browsers). */
  async ready(): Promise<void> {
    for (let w = 0; w < this.workers.length; w++) {
      const at = (this.boxes[w] >> 2) + READY;
      for (;;) {
        const s = Atomics.load(this.box32, at);
        if (s === READY_OK) break;
        if (s === READY_FAILED) throw this.workerError(w, 'could not start');
        if (this.closed) return;
        // (a timer, not Atomics.waitAsync: a pending waitAsync does not keep Node's event loop alive)
        await new Promise((res) => setTimeout(res, 1));
      }
    }
    this.calibrate();
  }

  /** Thresholds, dispatch cost and counters, for reports (`cait bench --json`, bench/threads.ts). */
  poolStats(): PoolStats {
    const minWork = this.minWorkAll !== undefined
      ? Object.fromEntries(CLASSES.map((c) => [c, this.minWorkAll!])) as Record<KernelClass, number>
      : this.cal?.minWork ?? null;
    return {
      threads: this.threads, workers: this.closed ? 0 : this.workers.length, splitCalls: this.splitCalls, soloCalls: this.soloCalls,
      minWork, calibration: this.cal, fallback: this.fallback,
      checked: {
        sizes: this.verdicts.size,
        splitPreferred: [...this.verdicts.values()].filter(prefersSplit).length,
      },
    };
  }

  /**
   * Measure the dispatch cost and each class's speed on one thread, and set
   * the thresholds (see the header). Runs once, by itself at the first
   * splittable call if ready() was not awaited; blocks up to a few tens of ms.
   */
  calibrate(): Calibration | null {
    if (this.cal || this.closed) return this.cal;
    const t0 = now();
    // workers must be up: the cold dispatch below would otherwise time their start
    for (let w = 0; w < this.workers.length; w++) {
      const i = (this.boxes[w] >> 2) + READY;
      const until = now() + 20 * this.deadMs;
      while (Atomics.load(this.box32, i) !== READY_OK) {
        if (Atomics.load(this.box32, i) === READY_FAILED) { this.fallBack(`worker ${w + 1} could not start`); return null; }
        if (now() > until) { this.fallBack(`worker ${w + 1} did not start in ${20 * this.deadMs} ms`); return null; }
        Atomics.wait(this.box32, i, 0, 10);
      }
    }
    const T = this.threads, n = 1 << 15, ex = this.exports;
    // straight from the allocator: alloc/free may be hooked by a capture in progress (src/plan.ts)
    const buf = [0, 1, 2].map(() => this.mem.alloc(n * 4));
    const [x, y, z] = buf;
    const stats = this.mem.alloc(256 * 4);
    for (const b of buf) ex.fill(b, n, 0.5);
    ex.fill(stats, 256, 1);
    // one thread's ns per unit of work, from a representative call of each class (its rule's own work measure)
    const rep: Record<KernelClass, [KernelName, number[]]> = {
      gemm: ['gemm', [NN, 64, 64, 64, 1, x, 64, 0, y, 64, 0, 0, z, 64, 0, 1, 0, this.scratch]],
      softmax: ['softmax_fwd', [x, y, 64, 256]],
      layernorm: ['layernorm_fwd', [x, stats, stats, y, z, z + 1024, 64, 256, 1e-5]],
      gelu: ['gelu_fwd', [x, y, 8192]],
      elementwise: ['add', [x, y, z, n, n]],
    };
    const nsPerUnit = {} as Record<KernelClass, number>;
    for (const c of CLASSES) {
      const [k, args] = rep[c], f = ex[k], work = SPLITS[k]!.work(args);
      f(...args);
      let reps = 1, t = 0;
      for (;;) {   // enough repetitions for ~100 us per sample (a coarse browser clock included)
        const s = now();
        for (let r = 0; r < reps; r++) f(...args);
        t = now() - s;
        if (t > 0.1 || reps >= 1 << 12) break;
        reps *= 4;
      }
      const samples: number[] = [];
      for (let s = 0; s < 5; s++) {
        const s0 = now();
        for (let r = 0; r < reps; r++) f(...args);
        samples.push((now() - s0) / reps);
      }
      nsPerUnit[c] = (median(samples) * 1e6) / work;
    }
    // a split of no work: a fill of 64 floats cut T ways
    const tiny = SPLITS.fill!.cut([x, 64, 0], T)!;
    const id = KERNEL_ID.get('fill')!;
    const once = (): number => { const s = now(); this.runParts('fill', id, tiny.map((p) => p.slice())); return now() - s; };
    // how long a worker spins after a job: the same polling loop, timed here
    const s0 = now();
    for (let n = this.spin, i = (this.boxes[0] >> 2) + SEQ; n > 0; n--) Atomics.load(this.box32, i);
    const spinMs = now() - s0;
    // the clock's resolution: browsers coarsen performance.now (5 to 100 us)
    let clockMs = Infinity;
    for (let r = 0; r < 5; r++) { const a = now(); let b = now(); while (b === a) b = now(); clockMs = Math.min(clockMs, b - a); }
    // Hot: batches of 20 calls timed together (a coarse clock cannot time one),
    // the fastest of 3 batches. Cold: one call after each idle gap, the mean of
    // the fastest 8 of 12 (a coarse clock's jitter averages out; a busy
    // machine only adds, and a median of single calls let one busy moment set
    // a hot cost of 374 us in Node, which kept a whole run from splitting).
    // Right after start-up V8 is still compiling the module's optimized tier
    // on the same cores: a spinning worker then took 320-375 us per call in
    // Node (against 2-3 us later), which set thresholds no call reached. A
    // hot cost above the cold one is that; measure again (up to 3 times, 50
    // ms apart) and keep each cost's smallest.
    const measure = (): { hot: number; cold: number } => {
      const hot: number[] = [], cold: number[] = [];
      for (let r = 0; r < 3; r++) { const s = now(); for (let k = 0; k < 20; k++) once(); hot.push((now() - s) / 20); }
      for (let r = 0; r < 12; r++) {
        const s = now();
        while (now() - s < Math.max(1.5, 3 * spinMs)) { /* idle past the workers' spin: they sleep in Atomics.wait */ }
        cold.push(once());
      }
      cold.sort((a, b) => a - b).length = 8;
      this.splitCalls -= 72;
      return { hot: Math.min(...hot) * 1000, cold: (cold.reduce((a, b) => a + b, 0) / cold.length) * 1000 };
    };
    const dispatchUs = measure();
    for (let attempt = 1; attempt < 3 && dispatchUs.hot > dispatchUs.cold; attempt++) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      const d = measure();
      dispatchUs.hot = Math.min(dispatchUs.hot, d.hot);
      dispatchUs.cold = Math.min(dispatchUs.cold, d.cold);
    }
    for (const b of [...buf, stats]) this.mem.free(b);
    const minWork = {} as Record<KernelClass, number>, minWorkWarm = {} as Record<KernelClass, number>;
    for (const c of CLASSES) {
      minWork[c] = Math.ceil((MARGIN * dispatchUs.cold * 1000) / (nsPerUnit[c] * (1 - 1 / T)));
      minWorkWarm[c] = Math.min(minWork[c], Math.ceil((MARGIN * dispatchUs.hot * 1000) / (nsPerUnit[c] * (1 - 1 / T))));
    }
    // Spinning as long as a wake-up costs bounds the waste at 2x either way
    // (the ski-rental rule): Firefox wakes a sleeping worker in ~0.7 ms, so
    // the default spin (tens of us) had every split of a DeiT-Tiny batch-8
    // forward pay that (1.35x from two threads, not 1.7x).
    let workerSpinMs = spinMs;
    if (!this.spinGiven && spinMs > 0) {
      workerSpinMs = Math.min(2, Math.max(spinMs, dispatchUs.cold / 1000));
      const polls = Math.min(2 ** 30, Math.round((this.spin * workerSpinMs) / spinMs));
      for (const b of this.boxes) Atomics.store(this.box32, (b >> 2) + SPIN, polls);
    }
    // runChecked times a call against the clock: below CHECK_TICKS ticks of it the timing is noise
    CLASSES.forEach((c, i) => { this.minChecked[i] = (CHECK_TICKS * clockMs * 1e6) / nsPerUnit[c]; });
    this.cal = { dispatchUs, nsPerUnit, minWork, minWorkWarm, warmMs: workerSpinMs / 2, workerSpinMs, clockUs: clockMs * 1000, ms: now() - t0 };
    if (this.minWorkAll === undefined) CLASSES.forEach((c, i) => { this.minCold[i] = minWork[c]; this.minWarm[i] = minWorkWarm[c]; });
    return this.cal;
  }

  override run(kernel: KernelName, ...args: number[]): number {
    const rule = SPLITS[kernel];
    // (the common case, a call too small to split even right after another split, costs one comparison)
    if (rule !== undefined && !this.closed) {
      const work = rule.work(args);
      if (work >= this.minWarm[rule.ci!] && this.trySplit(kernel, rule, args, work)) return 0;
    }
    this.soloCalls++;
    return this.exports[kernel](...args);
  }

  /** run(kernel, ...args) with the rule and the work looked up once (src/plan.ts replays such calls). */
  override prepare(kernel: KernelName, args: readonly number[]): () => void {
    const rule = SPLITS[kernel], f = this.exports[kernel], a = [...args];
    if (rule === undefined) return () => { this.soloCalls++; f(...a); };
    const work = rule.work(a), ci = rule.ci!;
    return () => {
      if (!this.closed && work >= this.minWarm[ci] && this.trySplit(kernel, rule, a, work)) return;
      this.soloCalls++;
      f(...a);
    };
  }

  /** Splits the call if the thresholds say so (calibrating first if need be); false: run it alone. */
  private trySplit(kernel: KernelName, rule: SplitRule, args: number[], work: number): boolean {
    if (this.suspect) { this.checkSuspect(); if (this.suspect || this.closed) return false; }
    if (this.minWorkAll === undefined) {
      if (!this.cal) {
        if (!this.calibrate() || this.closed || work < this.minWarm[rule.ci!]) return false;
      }
      if (work < this.minCold[rule.ci!] && !(now() - this.lastSplit < this.cal!.warmMs)) return false;
    }
    const parts = rule.cut(args, this.threads);
    if (!parts || parts.length < 2) return false;
    const id = KERNEL_ID.get(kernel)!;
    if (this.minWorkAll !== undefined || work < this.minChecked[rule.ci!]) this.runParts(kernel, id, parts);
    else this.runChecked(kernel, id, args, parts, work);
    return true;
  }

  /**
   * The calibrated rule checked in use: per kernel and size (work rounded to
   * a power of two), the time per unit of work split and alone, each the
   * median of its last KEEP timings (an exponential average let one slow call
   * flip a DeiT-Tiny batch-8 attention GEMM to one thread for hundreds of
   * calls), one of them measured on every PROBE_EVERY-th call the other is
   * preferred. Splitting is preferred until it is measured to save less than
   * a tenth: a machine whose other core is busy (other processes) gets one
   * thread, and splits again when the core frees up.
   */
  private runChecked(kernel: KernelName, id: number, args: number[], parts: number[][], work: number): void {
    const key = id * 64 + Math.floor(Math.log2(work));
    let v = this.verdicts.get(key);
    if (!v) this.verdicts.set(key, (v = { solo: [], split: [], n: 0 }));
    const split = prefersSplit(v) !== (v.n++ % PROBE_EVERY === 1);
    const t0 = now();
    if (split) this.runParts(kernel, id, parts);
    else { this.soloCalls++; this.exports[kernel](...args); }
    const ns = ((now() - t0) * 1e6) / work, w = split ? v.split : v.solo;
    if (w.length === KEEP) w.shift();
    w.push(ns);
  }

  /** Part 0 on the caller, part p on worker p - 1; a dead worker's part is computed by the caller. */
  private runParts(kernel: KernelName, id: number, parts: number[][]): void {
    const gemm = kernel === 'gemm', f = this.exports[kernel];
    this.together(parts.length, (w) => {
      if (gemm) parts[w + 1][G.scratch] = this.workerScratch[w];
      this.post(w, id, parts[w + 1]);
    }, (p) => {
      if (p > 0 && gemm) parts[p][G.scratch] = this.scratch;
      f(...parts[p]);
    });
  }

  /**
   * Jobs 1..n-1 posted (post(w) gives job w + 1 to worker w), job 0 run here
   * (alone(0)), then each worker awaited; a job a worker did not take, or
   * stopped inside, is run here (alone(p)): every job must give the same
   * bits on any thread.
   */
  private together(n: number, post: (w: number) => void, alone: (p: number) => void): void {
    this.splitCalls++;
    for (let p = 1; p < n; p++) post(p - 1);
    let err: unknown = null;
    const t0 = now();
    try { alone(0); } catch (e) { err = e; }
    const own = now() - t0;
    let gone: string | null = null;
    for (let p = 1; p < n; p++) {
      const r = this.awaitWorker(p - 1, own);
      if (r === CANCELLED || r === GONE) {
        if (r === GONE) gone ??= `worker ${p} stopped inside a call`;
        else if (!this.suspect) {
          this.suspect = { w: p - 1, since: now() };
          console.warn(`caitjs: worker ${p} did not take its part in ${this.deadMs} ms; running on the calling thread until it answers`);
        }
        try { alone(p); } catch (e) { err ??= e; }
      } else if (r && !err) err = r;
    }
    if (gone) this.fallBack(gone);
    this.lastSplit = now();
    if (err) throw err;
  }

  /**
   * A batch's slices (src/plan.ts) at once: slice 0 on the caller, slice p
   * as a program on worker p - 1 (./worker.ts), no dispatch between its
   * kernels. Where splitting each kernel costs a dispatch per call and a
   * wait for the slower part, this costs one per forward: DeiT-Tiny at batch
   * 8 ran 1.81x faster on two threads split call by call, 2.01x as two slices
   * of 4 (bench/results/threads.json, Node). Each slice runs exactly the
   * calls one thread would (gemm with the worker's packing buffer), so the
   * bits are those of one thread. Null unless every slice has a thread and,
   * calibrated, the work moved off the caller saves MARGIN cold dispatches.
   */
  prepareParallel(parts: ReadonlyArray<readonly PlanStep[]>): ParallelRun | null {
    const n = parts.length;
    // minWork Infinity: this pool never posts to its workers itself (prepareOnWorker's mode)
    if (n < 2 || n > this.threads || this.closed || this.minWorkAll === Infinity) return null;
    if (this.minWorkAll === undefined) {
      const cal = this.calibrate();
      if (!cal || this.closed) return null;
      let ns = 0;
      for (const s of parts[1]) {
        if (s.kind !== 'run') continue;
        const rule = SPLITS[s.kernel];
        if (rule) ns += rule.work(s.args as number[]) * cal.nsPerUnit[rule.cls];
      }
      if (ns < MARGIN * cal.dispatchUs.cold * 1000) return null;
    }
    const solo = parts.map((steps) => steps.map((s) => this.soloStep(s)));
    const progs = parts.slice(1).map((steps, w) => this.encodeProgram(steps, this.workerScratch[w]));
    const alone = (p: number): void => { for (const c of solo[p]) c(); };
    let live = true;
    return {
      run: () => {
        if (!live) throw new Error('ParallelRun.run: disposed');
        if (this.suspect) this.checkSuspect();
        if (this.closed || this.suspect) { for (let p = 0; p < n; p++) alone(p); return; }
        this.together(n, (w) => this.post(w, PROGRAM, [progs[w].ptr, progs[w].len]), alone);
      },
      dispose: () => {
        if (!live) return;
        live = false;
        for (const q of progs) for (const b of [q.ptr, ...q.consts]) this.mem.free(b);
      },
    };
  }

  /** Workers that can take programs (0 after close() or a fallback). */
  get workerCount(): number { return this.closed ? 0 : this.workers.length; }

  /**
   * Steps (one planned forward, src/plan.ts WorkerPlan) as a program for
   * worker w, run while the caller goes on: run() resolves when the worker
   * is done (Atomics.waitAsync; the event loop stays free). For a server
   * whose workers each run whole forwards of their own batches (`cait serve
   * --instances`): the pool must then never split a call itself (minWork
   * Infinity), or a split would post to a worker inside a program. Where the
   * pool has fallen back to one thread, run() computes on the caller.
   */
  prepareOnWorker(w: number, steps: readonly PlanStep[]): { run(): Promise<void>; dispose(): void } {
    if (!Number.isInteger(w) || w < 0 || w >= this.threads - 1) throw new RangeError(`prepareOnWorker: worker ${w} of ${this.threads - 1}`);
    if (this.minWorkAll !== Infinity) throw new Error('prepareOnWorker: needs a pool made with minWork Infinity (one that never posts a split call to a worker that may be inside a program)');
    const solo = steps.map((s) => this.soloStep(s));
    const prog = this.encodeProgram(steps, this.workerScratch[w]);
    let live = true;
    return {
      run: async () => {
        if (!live) throw new Error('prepareOnWorker: run after dispose');
        if (this.closed) { for (const c of solo) c(); return; }
        // one program at a time per worker: a second post would overwrite its mailbox
        if (this.programOn.has(w)) throw new Error(`prepareOnWorker: worker ${w + 1} is running another program`);
        this.programOn.add(w);
        try {
          this.splitCalls++;
          this.post(w, PROGRAM, [prog.ptr, prog.len]);
          const r = await this.awaitWorkerAsync(w);
          if (r === GONE) { for (const c of solo) c(); return; }
          if (r) throw r;
        } finally { this.programOn.delete(w); }
      },
      dispose: () => {
        if (!live) return;
        live = false;
        for (const b of [prog.ptr, ...prog.consts]) this.mem.free(b);
      },
    };
  }

  /** awaitWorker without blocking: the worker's error, GONE when it stopped (the caller computes the job), or null. */
  private async awaitWorkerAsync(w: number): Promise<Error | typeof GONE | null> {
    const i = this.boxes[w] >> 2, s = this.seq[w], b = this.box32;
    // a pending waitAsync does not keep Node's event loop alive: this does
    const keep = setInterval(() => undefined, 1000);
    try {
      for (let d = Atomics.load(b, i + DONE); d !== s; d = Atomics.load(b, i + DONE)) {
        if (this.closed || Atomics.load(b, i + READY) === READY_FAILED) return GONE;
        Atomics.store(b, i + WAITING, 1);
        if (Atomics.load(b, i + DONE) === d) {
          const r = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } }).waitAsync(b, i + DONE, d, 100);
          if (r.async) await r.value;
        }
        Atomics.store(b, i + WAITING, 0);
      }
    } finally { clearInterval(keep); }
    if (Atomics.load(b, i + ERROR)) {
      const e = this.workerError(w, 'kernel failed');
      Atomics.store(b, i + ERROR, 0);
      return e;
    }
    return null;
  }

  /** A plan step as this thread runs it, never split. */
  private soloStep(s: PlanStep): () => void {
    if (s.kind === 'run') return super.prepare(s.kernel, s.args);
    if (s.kind === 'write') { const p = s.at, d = s.data; return () => this.write(p, d); }
    const { x, y, n } = s;
    return () => this.logf(x, y, n);
  }

  /** Steps as a worker program in the heap (./worker.ts), gemm's packing buffer set to `scratch`; `consts` hold the written data. */
  private encodeProgram(steps: readonly PlanStep[], scratch: Ptr): { ptr: Ptr; len: number; consts: Ptr[] } {
    const out: number[] = [], consts: Ptr[] = [];
    for (const s of steps) {
      if (s.kind === 'run') {
        const a = [...s.args];
        if (s.kernel === 'gemm') a[G.scratch] = scratch;
        out.push(KERNEL_ID.get(s.kernel)!, a.length, ...a);
      } else if (s.kind === 'write') {
        const c = this.mem.alloc(Math.max(4, s.data.byteLength));
        this.write(c, s.data);
        consts.push(c);
        out.push(PROG_COPY, 3, s.at, c, s.data.byteLength);
      } else out.push(PROG_LOGF, 3, s.x, s.y, s.n);
    }
    const ptr = this.mem.alloc(Math.max(8, out.length * 8));
    new Float64Array(this.memory.buffer, ptr, out.length).set(out);
    return { ptr, len: out.length, consts };
  }

  /** A suspect worker that acknowledged its cancelled job is back; one silent for deadMs more is gone. */
  private checkSuspect(): void {
    const { w, since } = this.suspect!;
    if (this.closed) { this.suspect = null; return; }
    if (Atomics.load(this.box32, (this.boxes[w] >> 2) + DONE) === this.seq[w]) {
      this.suspect = null;
      console.warn(`caitjs: worker ${w + 1} answers again; back to ${this.threads} threads`);
    } else if (now() - since > this.deadMs) {
      this.fallBack(`worker ${w + 1} is gone (no answer in ${Math.round(now() - since + this.deadMs)} ms)`);
    }
  }

  private post(w: number, id: number, args: number[]): void {
    const b = this.boxes[w], i = b >> 2, d = (b >> 3) + ARGS_F64;
    if (args.length > MAX_ARGS) throw new Error(`too many kernel arguments (${args.length})`);
    for (let k = 0; k < args.length; k++) this.box64[d + k] = args[k];
    this.box32[i + KERNEL] = id;
    this.box32[i + NARGS] = args.length;
    this.box32[i + CLAIM] = 0;
    const s = (this.seq[w] = (this.seq[w] + 1) | 0);
    Atomics.store(this.box32, i + SEQ, s);
    if (Atomics.load(this.box32, i + SLEEPING)) Atomics.notify(this.box32, i + SEQ, 1);
  }

  /** Waits for worker w's current job; returns its error, CANCELLED or GONE when the caller must run the part, or null. */
  private awaitWorker(w: number, ownMs: number): Error | typeof CANCELLED | typeof GONE | null {
    const i = this.boxes[w] >> 2, s = this.seq[w], b = this.box32;
    let d = Atomics.load(b, i + DONE);
    for (let n = this.spin; d !== s && n > 0; n--) d = Atomics.load(b, i + DONE);
    if (d !== s) {
      const t0 = now(), giveUp = this.deadMs + 100 * ownMs;
      while (d !== s) {
        if (Atomics.load(b, i + READY) === READY_FAILED) { this.fallBack(`worker ${w + 1} could not start`); return this.workerError(w, 'could not start'); }
        const waited = now() - t0;
        // not claimed in deadMs: cancel the job (the worker skips it if it ever wakes) and run it here
        if (waited > this.deadMs && Atomics.compareExchange(b, i + CLAIM, 0, 2) === 0) return CANCELLED;
        if (waited > giveUp) return GONE;
        Atomics.store(b, i + WAITING, 1);
        if (Atomics.load(b, i + DONE) === d) Atomics.wait(b, i + DONE, d, 20);
        Atomics.store(b, i + WAITING, 0);
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

  /** Continue on the calling thread alone, with a warning (once). */
  private fallBack(why: string): void {
    if (this.closed && this.fallback) return;
    this.closed = true;
    this.fallback = why;
    console.warn(`caitjs: ${why}; continuing on one thread`);
    this.closing = true;
    void this.terminateAll();
  }

  private terminateAll(): Promise<unknown[]> {
    const ws = this.workers.splice(0);
    return Promise.all(ws.map((x) => Promise.resolve().then(() => x.terminate()).catch(() => undefined)));
  }

  /** Stops the workers (they leave their loop, then are terminated). The heap stays usable; later calls run on the calling thread alone. */
  async close(): Promise<void> {
    if (this.closed && !this.workers.length) return;
    this.closed = true;
    this.closing = true;
    for (let w = 0; w < this.workers.length; w++) this.post(w, QUIT, []);
    await this.terminateAll();
  }
}

function nodeSpawn(): Spawn {
  const proc = process as unknown as { getBuiltinModule(m: string): unknown };
  const wt = proc.getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads');
  return (data, onDeath) => {
    const w = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: data, execArgv: [], stdout: false, stderr: false });
    w.unref();   // an idle pool does not keep the process alive
    w.on('exit', (code) => onDeath(`exited (code ${code})`));
    w.on('error', (e) => onDeath(`failed: ${e.message}`));
    return w;
  };
}

function browserSpawn(): Spawn {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  return (data, onDeath) => {
    const w = new Worker(url);
    w.addEventListener('error', (e) => onDeath(`failed: ${e.message}`));
    w.postMessage(data);
    return w;
  };
}

/** Node: a pool over build/cait.<variant>.shared.wasm, synchronously (usable at once; calibrated at the first splittable call). */
export function loadThreadedWasmSync(o: ThreadOptions & { variant?: WasmVariant | 'auto' }): ThreadedWasmBackend {
  const v = resolveVariant(o.variant);
  return new ThreadedWasmBackend(compileBuildSync(`cait.${v}.shared.wasm`), v, o, nodeSpawn());
}

/** Browsers (inside a Web Worker, cross-origin isolated) or Node: fetch the shared build from baseUrl; resolves when the pool is up and calibrated. */
export async function loadThreadedWasm(baseUrl: string | URL, o: ThreadOptions & { variant?: WasmVariant | 'auto' }): Promise<ThreadedWasmBackend> {
  const v = resolveVariant(o.variant);
  return startThreadedWasm(await compileBuild(baseUrl, `cait.${v}.shared.wasm`), v, o);
}

/** A pool over `module`, a compiled shared build of `variant` (src/api/browser.ts finds it as it finds the one-thread builds); resolves when the pool is up and calibrated. */
export async function startThreadedWasm(module: WebAssembly.Module, variant: WasmVariant, o: ThreadOptions): Promise<ThreadedWasmBackend> {
  const be = new ThreadedWasmBackend(module, variant, o, isNode ? nodeSpawn() : browserSpawn());
  await be.ready();
  return be;
}
