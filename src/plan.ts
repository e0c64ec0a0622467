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
// A plan is for one input shape, one backend and the parameters as they are
// placed now: their values may change between runs only if the forward does
// not cache anything derived from them (linear's pre-packed weights are
// refreshed by the eager forward, not by replay: capture again after training).
import { Tensor, scope } from './tensor.js';
import { noGrad } from './autograd.js';
import type { Backend, Ptr } from './backend/backend.js';
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

export class InferencePlan {
  private arena: Ptr;
  private readonly calls: (() => void)[];
  private readonly outPtr: Ptr;
  private disposed = false;

  private constructor(
    readonly backend: Backend,
    readonly inputShape: readonly number[],
    readonly outputShape: readonly number[],
    private readonly input: Tensor,
    readonly arenaBytes: number,
    /** Bytes the same forward held at its peak when run eagerly, for comparison. */
    readonly eagerBytes: number,
    steps: Step[],
    blocks: Block[],
    private readonly output: Ref,
  ) {
    this.arena = arenaBytes > 0 ? backend.alloc(arenaBytes / 4) : 0;
    const at = (a: Arg): number => (typeof a === 'number' ? a : this.arena + blocks[a.block].offset + a.off);
    const be = backend;
    this.calls = steps.map((s): (() => void) => {
      if (s.kind === 'run') {
        const args = s.args.map(at), k = s.kernel;
        return be.prepare ? be.prepare(k, args) : () => { be.run(k, ...args); };
      }
      if (s.kind === 'write') { const p = at(s.at), d = s.data; return () => be.write(p, d); }
      const x = at(s.x), y = at(s.y), n = s.n;
      return () => be.logf(x, y, n);
    });
    this.outPtr = at(output);
  }

  get steps(): number { return this.calls.length; }

  /** One forward: input values in, output values out (a copy). */
  run(x: Float32Array): Float32Array {
    if (this.disposed) throw new Error('InferencePlan.run: plan disposed');
    if (x.length !== this.input.size) throw new RangeError(`InferencePlan.run: input has ${x.length} values, the plan was captured for [${this.inputShape}] (${this.input.size})`);
    this.backend.write(this.input.ptr, x);
    for (const c of this.calls) c();
    return this.backend.read(this.outPtr, this.outputShape.reduce((a, b) => a * b, 1));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.arena) this.backend.free(this.arena);
    this.input.dispose();
  }

  /**
   * Record fn (one forward from an input of `shape`, returning one tensor) on
   * backend `be`, eagerly once with `example` as input, and plan it.
   * Throws CaptureError when fn cannot be replayed (it reads the heap).
   */
  static capture(be: Backend, example: Float32Array, shape: readonly number[], fn: (x: Tensor) => Tensor): InferencePlan {
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
    return new InferencePlan(be, [...shape], outShape, input, arenaBytes, eagerPeak, steps, blocks, output!);
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
