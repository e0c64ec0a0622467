// A served model: a model file (or whatever loadModel accepts) run as saved
// (runnerFor: the library's rule, the same as `cait predict`'s withMerging
// without flags; an int8 file on its int8 kernels, as load() and `cait
// predict` run it), plus one planned forward per batch size (src/plan.ts),
// captured on first use and kept while they fit a byte budget (least recently
// used out). load()'s Model (src/api/) keeps 4 plans, which a server whose
// batches take every size up to --max-batch would keep re-capturing. On
// WebGPU (a backend that reads back only asynchronously) there is no plan: each
// forward runs op by op and is read back with await (forwardOn).
//
// Batched equals one by one: every kernel on the inference path computes a
// row of its output from that row's inputs with an order that does not depend
// on the batch (gemm by rows of C, attention by (image, head), layernorm and
// softmax by rows, ATME per image), so image i of a batch of n gets the same
// bits as it alone (test/serve.test.ts checks it).
import { basename, extname } from 'node:path';
import { Tensor, getBackend, readTensor, scope, setBackend } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { readsAsync, type Backend } from '../backend/backend.js';
import { InferencePlan, CaptureError, WorkerPlan, type WorkerBackend } from '../plan.js';
import { loadModel } from '../nn/model.js';
import type { VitConfig } from '../nn/presets.js';
import type { Trainable } from '../train/trainer.js';
import { runnerFor } from '../api/runner.js';
import { isSegmentation } from '../seg/model.js';
import { quantizeForInference, type LoadQuantize, type QuantizedModel } from '../quant/index.js';

export interface ModelSpec { name: string; path: string }

/**
 * `NAME=PATH` or `PATH` (named by its file or folder name without the
 * extension: models/fmnist-cait.safetensors is fmnist-cait).
 */
export function parseModelSpec(s: string): ModelSpec {
  const eq = s.indexOf('=');
  // a '=' inside a path (./a=b/model.safetensors) is a path: names are plain words
  if (eq > 0 && /^[A-Za-z0-9_.-]+$/.test(s.slice(0, eq))) return { name: s.slice(0, eq), path: s.slice(eq + 1) };
  const base = basename(s.replace(/[\\/]+$/, ''));
  return { name: base.slice(0, base.length - extname(base).length) || base, path: s };
}

/** Runs fn with `be` as the default backend (parameters are created on the default one). */
export function onBackend<T>(be: Backend, fn: () => T): T {
  const prev = getBackend();
  setBackend(be);
  try { return fn(); } finally { setBackend(prev); }
}

export class ServedModel {
  readonly cfg: VitConfig;
  /** [C, S, S]: one image. */
  readonly itemShape: readonly number[];
  /** One image's output shape ([classes] for a classifier, [S, S, classes] for a segmentation model). */
  readonly outShape: readonly number[];
  readonly itemSize: number;
  readonly outSize: number;
  /** 'planned', or 'eager' when the forward cannot be captured (it reads the heap) or replayed (WebGPU: no synchronous read-back). */
  readonly path: 'planned' | 'eager';
  /** The backend reads back only asynchronously (WebGPU): forwards go through forwardOn, never forward. */
  readonly readsAsync: boolean;
  private readonly plans = new Map<number, InferencePlan>();
  private planBytes = 0;
  /** --instances: a plan per batch size and worker (key n * 1024 + worker), and those running now (never evicted). */
  private readonly workerPlans = new Map<number, WorkerPlan>();
  private readonly running = new Set<object>();

  constructor(
    readonly name: string,
    readonly file: string,
    readonly runner: Trainable,
    readonly backend: Backend,
    /** Arena bytes all cached plans may hold together (the newest one is always kept). */
    readonly planBudgetBytes = 512 * 2 ** 20,
    /** The int8 forwards of an int8 file, or of a float one quantized as it loaded, released by dispose; null: float. */
    private readonly quantized: QuantizedModel | null = null,
    /** The loaded model under `runner`, whose weights dispose frees (null: the caller keeps them). */
    private readonly model: { dispose(): void } | null = null,
  ) {
    this.cfg = runner.cfg;
    const S = this.cfg.imgSize;
    this.itemShape = [this.cfg.inChans, S, S];
    this.itemSize = this.cfg.inChans * S * S;
    // warm-up: the batch-1 plan (or one eager forward) fixes the output shape and
    // fills the forward's caches (pre-packed weights) before the first request
    const zero = new Float32Array(this.itemSize);
    let shape: readonly number[] | null = null;
    this.readsAsync = readsAsync(backend);
    // a plan's replay reads its output synchronously, which WebGPU cannot
    if (!this.readsAsync) {
      try {
        shape = this.plan(1, zero).outputShape;
      } catch (e) {
        if (!(e instanceof CaptureError)) throw e;
      }
    }
    this.path = shape ? 'planned' : 'eager';
    shape ??= noGrad(() => scope(() => [...runner.forward(Tensor.from(zero, [1, ...this.itemShape], backend)).shape]));
    // a segmentation model's forward gives [n * S * S, classes] (pixel rows, as segment() in
    // src/api/model.ts reads them): one image's output is [S, S, classes], not shape.slice(1)
    this.outShape = isSegmentation(this.cfg) ? [S, S, this.cfg.numClasses] : shape.slice(1);
    this.outSize = this.outShape.reduce((a, b) => a * b, 1);
    const total = shape.reduce((a, b) => a * b, 1);
    if (total !== this.outSize) {
      for (const p of this.plans.values()) p.dispose();
      throw new Error(`${name}: one image's forward gives ${total} values [${shape}], expected ${this.outSize} [${this.outShape}]`);
    }
  }

  /** int8Attention, int8SixBit, quantize: as load()'s options; preset: the architecture of weights without a config (LoadOptions.preset). */
  static open(spec: ModelSpec, backend: Backend, planBudgetBytes?: number, o: { int8Attention?: boolean; int8SixBit?: boolean; quantize?: LoadQuantize; preset?: string } = {}): ServedModel {
    return onBackend(backend, () => {
      const { model, metadata } = loadModel(spec.path, o.preset !== undefined ? { preset: o.preset } : {});
      try {
        const quantized = quantizeForInference(model, metadata, { attention: o.int8Attention, sixBit: o.int8SixBit, quantize: o.quantize });
        return new ServedModel(spec.name, spec.path, runnerFor(model, metadata).runner, backend, planBudgetBytes, quantized, model);
      } catch (e) { model.dispose(); throw e; }   // (a quantized model's dispose frees its int8 weights too)
    });
  }

  /** The int8 scheme whose kernels this model runs (int8-dynamic), or null. */
  get quant(): string | null { return this.quantized?.kernels ?? null; }

  get isClassifier(): boolean { return this.outShape.length === 1; }

  /** Batch sizes with a plan now, and the arena bytes they hold. */
  planStats(): { sizes: number[]; bytes: number } {
    const sizes = new Set([...this.plans.keys(), ...[...this.workerPlans.values()].map((p) => p.inputShape[0])]);
    return { sizes: [...sizes].sort((a, b) => a - b), bytes: this.planBytes };
  }

  private plan(n: number, x: Float32Array): InferencePlan {
    return this.cached(this.plans, n, () => InferencePlan.capture(this.backend, x, [n, ...this.itemShape], (t) => this.runner.forward(t)));
  }

  /**
   * map's plan for key, most recently used last, else a new one (make());
   * then the least recently used go while all plans' arenas pass the budget,
   * never the new one nor one running.
   */
  private cached<K, P extends { arenaBytes: number; dispose(): void }>(map: Map<K, P>, key: K, make: () => P): P {
    let p = map.get(key);
    if (p) { map.delete(key); map.set(key, p); return p; }
    p = make();
    map.set(key, p);
    this.planBytes += p.arenaBytes;
    for (const [k, q] of map) {
      if (this.planBytes <= this.planBudgetBytes) break;
      if (q === p || this.running.has(q)) continue;
      map.delete(k); this.planBytes -= q.arenaBytes; q.dispose();
    }
    return p;
  }

  /** Captures the plan of every batch size up to maxBatch now (on each of `instances` workers), so that no request waits for a capture. */
  async warm(maxBatch: number, instances = 1): Promise<void> {
    if (instances > 1) {
      for (let w = 0; w < instances; w++) for (let n = 1; n <= maxBatch; n++) await this.forwardOn(w, new Float32Array(n * this.itemSize), n);
      return;
    }
    for (let n = 2; n <= maxBatch; n++) this.forward(new Float32Array(n * this.itemSize), n);
  }

  /**
   * forward() on worker `w` of the pool (--instances), whose own arena and
   * program it uses; the event loop stays free meanwhile. Runs forward()
   * here when the forward cannot be planned or the backend has no workers.
   */
  async forwardOn(w: number, x: Float32Array, n: number): Promise<Float32Array> {
    if (x.length !== n * this.itemSize) throw new RangeError(`${this.name}: ${n} images need ${n * this.itemSize} values, got ${x.length}`);
    if (this.readsAsync) {
      const y = onBackend(this.backend, () => noGrad(() => scope(() => this.runner.forward(Tensor.from(x, [n, ...this.itemShape], this.backend)))));
      try { return await readTensor(y); } finally { y.dispose(); }
    }
    const be = this.backend as Partial<WorkerBackend>;
    if (this.path !== 'planned' || typeof be.prepareOnWorker !== 'function' || !(w < (be.workerCount ?? 0))) return this.forward(x, n);
    const p = this.cached(this.workerPlans, n * 1024 + w,
      () => onBackend(this.backend, () => new WorkerPlan(be as WorkerBackend, w, x, [n, ...this.itemShape], (t) => this.runner.forward(t))));
    this.running.add(p);
    try { return await p.run(x); } finally { this.running.delete(p); }
  }

  /** Outputs of n images (x: n * itemSize values, NCHW), n * outSize values. */
  forward(x: Float32Array, n: number): Float32Array {
    if (x.length !== n * this.itemSize) throw new RangeError(`${this.name}: ${n} images need ${n * this.itemSize} values, got ${x.length}`);
    if (this.readsAsync) throw new Error(`${this.name}: ${this.backend.name} reads its outputs back asynchronously: use forwardOn`);
    if (this.path === 'planned') return this.plan(n, x).run(x);
    return noGrad(() => scope(() => this.runner.forward(Tensor.from(x, [n, ...this.itemShape], this.backend)).toArray()));
  }

  dispose(): void {
    for (const p of this.plans.values()) p.dispose();
    this.plans.clear();
    for (const p of this.workerPlans.values()) p.dispose();
    this.workerPlans.clear();
    this.planBytes = 0;
    // as load()'s Model.dispose: a segmentation head's buffers, the int8 weights, then the model's own
    (this.runner as { head?: { dispose?(): void } | null }).head?.dispose?.();
    this.quantized?.dispose();
    this.model?.dispose();
  }
}
