// Planned inference: record one forward's kernel calls, give its activations
// one reused arena, replay. No per-op allocation, no op or tape logic, no JS
// objects per call at replay: a loop of backend.run over precomputed argument
// lists. What CUDA graphs and TFLite's arena planner do, on the backend
// interface (src/backend/backend.ts).
//
// Capture runs fn once, eagerly, with the backend's verbs hooked:
//   alloc   a block with an id, live from this event on
//   run     a step; every pointer argument (KERNEL_PTR_ARGS) inside a block
//           live at that moment becomes (block, offset), others (weights,
//           scratch, the input) stay as they are
//   write   a step that re-writes the same bytes (constants an op makes on
//           the host, e.g. a zero bias); recorded data, so it must not depend
//           on the input:
//   read    ...which is why any host read during fn fails the capture: what
//           follows a read may depend on the data (ATME's composeMaps reads
//           the maps; merge and unmerge do not), and replay would bake in
//           the captured image.
//   logf    a step (proportional attention's log sizes, with no read-back).
// A block lives from its allocation to its last use by a step (not to its
// free: eager scopes free everything at the end); the output lives to the end.
// Blocks are then placed greedily by size, first fit among those whose
// lifetimes overlap (Pisarchyk & Lee 2020, "Efficient memory management for
// deep neural net inference", the greedy-by-size strategy TFLite uses), into
// one arena.
//
// Batch slices: on a backend with threads (prepareParallel), a batch of n >= 2
// images is captured as one plan per thread, each for its slice of the batch
// over its own arena, and the slices run at once, one per thread, with no
// dispatch between kernels (see ThreadedWasmBackend.prepareParallel). Every
// kernel on the inference path computes an image from that image alone, in
// an order that does not depend on the batch (src/serve/model.ts), so the
// output is the same bits as one plan of n (test/threads.test.ts checks it).
// Slices are made only when they share the batch within 15% (7 = 4 + 3 is,
// 3 = 2 + 1 is not: one thread would wait a third of the forward for the
// other, where splitting each call keeps both busy).
//
// A plan is for one input shape, one backend and the parameters as they are
// placed now: their values may change between runs only if the forward does
// not cache anything derived from them (linear's pre-packed weights are
// refreshed by the eager forward, not by replay: capture again after training).
import { Tensor, scope } from './tensor.js';
import { noGrad } from './autograd.js';
import type { Backend, Ptr, PlanStep, ParallelRun } from './backend/backend.js';
import { KERNEL_PTR_ARGS, type KernelName } from './backend/kernels.js';

const ALIGN = 64;

interface Block { id: number; ptr: Ptr; bytes: number; first: number; last: number; offset: number }
type Ref = { block: number; off: number };
type Arg = number | Ref;
type Step =
  | { kind: 'run'; kernel: KernelName; args: Arg[] }
  | { kind: 'write'; at: Arg; data: Float32Array | Int32Array }
  | { kind: 'logf'; x: Arg; y: Arg; n: number };

export class CaptureError extends Error {}

/** One captured forward over one arena. */
class PlanPart {
  private arena: Ptr;
  private bound: (() => void)[] | null = null;
  /** The steps with every pointer resolved (what prepareParallel and prepareOnWorker take). */
  readonly resolved: PlanStep[];
  readonly outPtr: Ptr;
  readonly outSize: number;
  private disposed = false;

  constructor(
    readonly backend: Backend,
    readonly inputShape: readonly number[],
    readonly outputShape: readonly number[],
    readonly input: Tensor,
    readonly arenaBytes: number,
    readonly eagerBytes: number,
    steps: Step[],
    blocks: Block[],
    output: Ref,
  ) {
    this.arena = arenaBytes > 0 ? backend.alloc(arenaBytes / 4) : 0;
    const at = (a: Arg): number => (typeof a === 'number' ? a : this.arena + blocks[a.block].offset + a.off);
    this.resolved = steps.map((s): PlanStep => (s.kind === 'run' ? { kind: 'run', kernel: s.kernel, args: s.args.map(at) }
      : s.kind === 'write' ? { kind: 'write', at: at(s.at), data: s.data } : { kind: 'logf', x: at(s.x), y: at(s.y), n: s.n }));
    this.outPtr = at(output);
    this.outSize = outputShape.reduce((a, b) => a * b, 1);
  }

  /** The steps bound to the backend (Backend.prepare), made on the first replay: a slice or a WorkerPlan never replays them here. */
  get calls(): (() => void)[] {
    const be = this.backend;
    return (this.bound ??= this.resolved.map((s): (() => void) => {
      if (s.kind === 'run') {
        const args = s.args, k = s.kernel;
        return be.prepare ? be.prepare(k, args) : () => { be.run(k, ...args); };
      }
      if (s.kind === 'write') { const p = s.at, d = s.data; return () => be.write(p, d); }
      const { x, y, n } = s;
      return () => be.logf(x, y, n);
    }));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.arena) this.backend.free(this.arena);
    this.input.dispose();
  }
}

export class InferencePlan {
  private disposed = false;

  private constructor(
    readonly backend: Backend,
    readonly inputShape: readonly number[],
    readonly outputShape: readonly number[],
    /** One part, or the batch's slices in order. */
    private readonly parts: PlanPart[],
    private readonly together: ParallelRun | null,
  ) {}

  get steps(): number { return this.parts.reduce((s, p) => s + p.resolved.length, 0); }
  /** Arena bytes (all slices). */
  get arenaBytes(): number { return this.parts.reduce((s, p) => s + p.arenaBytes, 0); }
  /** Bytes the same forward held at its peak when run eagerly, for comparison. */
  get eagerBytes(): number { return this.parts.reduce((s, p) => s + p.eagerBytes, 0); }
  /** Batch slices run at once, one per thread (1: one list of calls). */
  get slices(): number { return this.parts.length; }

  /** One forward: input values in, output values out (a copy). */
  run(x: Float32Array): Float32Array {
    if (this.disposed) throw new Error('InferencePlan.run: plan disposed');
    const size = this.inputShape.reduce((a, b) => a * b, 1);
    if (x.length !== size) throw new RangeError(`InferencePlan.run: input has ${x.length} values, the plan was captured for [${this.inputShape}] (${size})`);
    const be = this.backend;
    if (!this.together) {
      const p = this.parts[0];
      be.write(p.input.ptr, x);
      for (const c of p.calls) c();
      return be.read(p.outPtr, p.outSize);
    }
    let off = 0;
    for (const p of this.parts) { be.write(p.input.ptr, x.subarray(off, off + p.input.size)); off += p.input.size; }
    this.together.run();
    const y = new Float32Array(this.outputShape.reduce((a, b) => a * b, 1));
    off = 0;
    for (const p of this.parts) { y.set(be.read(p.outPtr, p.outSize), off); off += p.outSize; }
    return y;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.together?.dispose();
    for (const p of this.parts) p.dispose();
  }

  /**
   * Record fn (one forward from an input of `shape`, returning one tensor) on
   * backend `be`, eagerly once with `example` as input, and plan it (in
   * slices of the batch where `be` runs them at once, see the header).
   * Throws CaptureError when fn cannot be replayed (it reads the heap).
   */
  static capture(be: Backend, example: Float32Array, shape: readonly number[], fn: (x: Tensor) => Tensor): InferencePlan {
    const n = shape[0], T = Math.min(be.threads ?? 1, n);
    if (be.prepareParallel && T >= 2 && shape.length >= 2) {
      const sizes: number[] = [];
      for (let p = 0; p < T; p++) sizes.push(Math.floor(((p + 1) * n) / T) - Math.floor((p * n) / T));
      if (Math.max(...sizes) <= 1.15 * (n / T)) {
        const item = example.length / n, parts: PlanPart[] = [];
        try {
          let off = 0;
          for (const m of sizes) {
            parts.push(InferencePlan.capturePart(be, example.subarray(off * item, (off + m) * item), [m, ...shape.slice(1)], fn));
            off += m;
          }
          // (outputs whose first axis is not the batch cannot be concatenated)
          const together = parts.every((p, i) => p.outputShape[0] === sizes[i]) ? be.prepareParallel(parts.map((p) => p.resolved)) : null;
          if (together) {
            const out = parts[0].outputShape;
            return new InferencePlan(be, [...shape], [n, ...out.slice(1)], parts, together);
          }
        } catch (e) {
          for (const p of parts) p.dispose();
          throw e;
        }
        for (const p of parts) p.dispose();
      }
    }
    const p = InferencePlan.capturePart(be, example, shape, fn);
    return new InferencePlan(be, [...shape], p.outputShape, [p], null);
  }

  /** capture, as one list of calls (also WorkerPlan's). @internal */
  static capturePart(be: Backend, example: Float32Array, shape: readonly number[], fn: (x: Tensor) => Tensor): PlanPart {
    const input = Tensor.from(example, shape, be);
    // one plain run first, so that caches the forward fills on first use
    // (pre-packed weights) are allocated outside the arena
    try { noGrad(() => scope(() => { fn(input); return null; })); } catch (e) { input.dispose(); throw e; }
    const blocks: Block[] = [], live = new Map<Ptr, Block>(), steps: Step[] = [];
    let output: Ref | null = null, outShape: number[] = [], eagerPeak = 0, eagerNow = 0;
    const orig = { alloc: be.alloc, free: be.free, run: be.run, write: be.write, read: be.read, readI32: be.readI32, logf: be.logf };
    const ref = (p: number): Arg => {
      if (p === 0) return 0;
      for (const b of live.values()) {
        if (p >= b.ptr && p < b.ptr + b.bytes) { b.last = steps.length; return { block: b.id, off: p - b.ptr }; }
      }
      return p;
    };
    const hooks: Partial<Backend> & Record<string, unknown> = {
      alloc(n: number): Ptr {
        const p = orig.alloc.call(be, n);
        const bytes = Math.ceil((n * 4) / ALIGN) * ALIGN;
        const b: Block = { id: blocks.length, ptr: p, bytes, first: steps.length, last: -1, offset: 0 };
        blocks.push(b); live.set(p, b);
        eagerNow += bytes; eagerPeak = Math.max(eagerPeak, eagerNow);
        return p;
      },
      free(p: Ptr): void {
        const b = live.get(p);
        if (b) { live.delete(p); eagerNow -= b.bytes; }
        orig.free.call(be, p);
      },
      run(kernel: KernelName, ...args: number[]): number {
        const ptrs = KERNEL_PTR_ARGS[kernel];
        if (!ptrs) throw new CaptureError(`capture: kernel '${kernel}' has no pointer table (src/backend/kernels.ts KERNEL_PTR_ARGS)`);
        const rec: Arg[] = args.slice();
        for (const i of ptrs) rec[i] = ref(args[i]);
        steps.push({ kind: 'run', kernel, args: rec });
        return orig.run.call(be, kernel, ...args);
      },
      write(p: Ptr, data: Float32Array | Int32Array): void {
        steps.push({ kind: 'write', at: ref(p), data: data.slice() });
        orig.write.call(be, p, data);
      },
      read(p: Ptr): Float32Array {
        throw new CaptureError(`capture: the forward reads ${p === input.ptr ? 'its input' : 'the heap'} on the host, so its later steps may depend on the data and cannot be replayed`);
      },
      readI32(): Int32Array {
        throw new CaptureError('capture: the forward reads the heap on the host (int32), so its later steps may depend on the data and cannot be replayed');
      },
    };
    hooks.logf = (x: Ptr, y: Ptr, n: number) => {
      steps.push({ kind: 'logf', x: ref(x), y: ref(y), n });
      orig.logf.call(be, x, y, n);
    };
    const target = be as unknown as Record<string, unknown>;
    const saved: Record<string, unknown> = {};
    for (const k of Object.keys(hooks)) { saved[k] = Object.prototype.hasOwnProperty.call(be, k) ? target[k] : undefined; target[k] = hooks[k]; }
    try {
      noGrad(() => scope(() => {
        const y = fn(input);
        const r = ref(y.ptr);
        if (typeof r === 'number') throw new CaptureError('capture: the output is not a tensor computed by the forward');
        output = r; outShape = [...y.shape];
        blocks[r.block].last = Number.POSITIVE_INFINITY;
        return null;
      }));
    } catch (e) {
      input.dispose();
      throw e;
    } finally {
      for (const k of Object.keys(hooks)) { if (saved[k] === undefined) delete target[k]; else target[k] = saved[k]; }
    }
    const used = blocks.filter((b) => b.last >= 0);
    const arenaBytes = placeGreedyBySize(used);
    return new PlanPart(be, [...shape], outShape, input, arenaBytes, eagerPeak, steps, blocks, output!);
  }
}

/** What WorkerPlan needs of a backend: programs run on its workers (ThreadedWasmBackend). */
export interface WorkerBackend extends Backend {
  readonly workerCount: number;
  prepareOnWorker(w: number, steps: readonly PlanStep[]): { run(): Promise<void>; dispose(): void };
}

/**
 * A planned forward that worker `w` runs whole, on its own arena, while the
 * caller goes on (`cait serve --instances`: each worker runs its own
 * batches). Captured on the calling thread like InferencePlan; the same bits.
 */
export class WorkerPlan {
  private readonly part: PlanPart;
  private readonly prog: { run(): Promise<void>; dispose(): void };
  private disposed = false;
  readonly outputShape: readonly number[];

  constructor(readonly backend: WorkerBackend, readonly worker: number, example: Float32Array, readonly inputShape: readonly number[], fn: (x: Tensor) => Tensor) {
    this.part = InferencePlan.capturePart(backend, example, inputShape, fn);
    try { this.prog = backend.prepareOnWorker(worker, this.part.resolved); } catch (e) { this.part.dispose(); throw e; }
    this.outputShape = this.part.outputShape;
  }

  get arenaBytes(): number { return this.part.arenaBytes; }

  /** One forward on the worker: input values in, output values out (a copy). */
  async run(x: Float32Array): Promise<Float32Array> {
    if (this.disposed) throw new Error('WorkerPlan.run: plan disposed');
    if (x.length !== this.part.input.size) throw new RangeError(`WorkerPlan.run: input has ${x.length} values, the plan was captured for [${this.inputShape}] (${this.part.input.size})`);
    this.backend.write(this.part.input.ptr, x);
    await this.prog.run();
    if (this.disposed) throw new Error('WorkerPlan.run: plan disposed while it ran');
    return this.backend.read(this.part.outPtr, this.part.outSize);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.prog.dispose();
    this.part.dispose();
  }
}

/**
 * Offsets for blocks with lifetimes [first, last]: largest first, each at the
 * lowest offset that overlaps no placed block alive at the same time. Returns
 * the arena size in bytes.
 */
export function placeGreedyBySize(blocks: { bytes: number; first: number; last: number; offset: number }[]): number {
  const order = [...blocks].sort((a, b) => b.bytes - a.bytes || a.first - b.first);
  const placed: typeof blocks = [];
  let size = 0;
  for (const b of order) {
    const clash = placed.filter((p) => p.first <= b.last && b.first <= p.last).sort((p, q) => p.offset - q.offset);
    let off = 0;
    for (const p of clash) {
      if (off + b.bytes <= p.offset) break;
      off = Math.max(off, p.offset + p.bytes);
    }
    b.offset = off;
    placed.push(b);
    size = Math.max(size, off + b.bytes);
  }
  return size;
}
