// Dynamic batching: requests wait in one bounded queue (per model, counted in
// images across models). An idle server starts a forward when a model has
// --max-batch images waiting or its oldest one has waited --max-wait-ms; a
// busy one starts the next forward as soon as the last ends, with what came
// in meanwhile. Either way a batch that is not full also waits (--max-wait-ms
// > 0 only) for a request of that model still receiving its body (the server
// counts them, receiving()), at most RECEIVE_WAIT_MS, and for the clients the
// last forward answered, while they would fit, at most a tenth of that
// forward: under closed-loop load those clients send again together, and a
// 224x224 FP32 body (602 KB) takes ~5-30 ms to come back on a busy 2-core
// machine, so without these waits a batch split in two groups stayed split
// (each group's forward runs while the other's requests arrive; DeiT-Tiny at
// 8 connections ran batches of ~4 and ~5, not 8). A forward takes whole
// requests in arrival order up to --max-batch images (a request larger than
// that runs alone, in forwards of --max-batch). Forwards run one at a time on this thread (the thread pool
// splits each one's kernels); requests that arrive during one are read by the
// event loop when it ends, so under load the next batch is already there.
// This is the scheme of
// Triton's dynamic batcher and TF Serving's batching session.
//
// With `instances` > 1 (`cait serve --instances N`), Triton's model instances:
// N workers each run whole forwards of their own batches (src/plan.ts
// WorkerPlan) while this thread only receives and answers. A free instance
// takes its share of what waits (up to --max-batch, split evenly over the
// free instances), and while another instance computes it starts at once,
// without the waits above: one thread's time per image does not depend on
// the batch, so a smaller batch loses nothing, and the instances drift apart
// so that one computes while the other's clients send again (a batch split
// over the pool leaves both cores waiting while its clients come back).
import type { ServedModel } from './model.js';
import { HttpError } from './protocol.js';

/** Longest a batch that is not full waits for bodies still arriving (a slow client delays others by at most this). */
export const RECEIVE_WAIT_MS = 20;

export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
  /** Images that may wait at once (all models). */
  maxQueue: number;
  /** Milliseconds an image may wait in the queue before its request is answered 504. */
  timeoutMs: number;
  /** Longest wait for a body still arriving (default RECEIVE_WAIT_MS). */
  receiveWaitMs?: number;
  /** Forwards that may run at once, each on its own worker (default 1: one at a time on this thread). */
  instances?: number;
  onBatch?(model: ServedModel, images: number): void;
  onQueue?(images: number): void;
}

interface Job {
  model: ServedModel;
  x: Float32Array;
  n: number;
  at: number;
  timer: NodeJS.Timeout | null;
  resolve(y: Float32Array): void;
  reject(e: Error): void;
}

export class Batcher {
  private readonly queues = new Map<ServedModel, Job[]>();
  private queued = 0;
  /** Forwards running now, and the instances free to start one. */
  private busy = 0;
  private readonly free: number[];
  private wake: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private idle: Array<() => void> = [];
  private readonly receivingBy = new Map<ServedModel, number>();
  /** When the last forward ended: jobs queued before it waited for it already. */
  private lastEnd = -Infinity;
  /** The last forward: its model, requests answered, milliseconds, and requests for that model arrived since. */
  private last: { model: ServedModel | null; answered: number; ms: number; back: number } = { model: null, answered: 0, ms: 0, back: 0 };

  constructor(private readonly o: BatcherOptions) {
    this.free = Array.from({ length: this.instances }, (_, i) => i).reverse();
  }

  private get instances(): number { return Math.max(1, this.o.instances ?? 1); }

  get depth(): number { return this.queued; }

  /**
   * Outputs of n images of `model`: a promise settled when their forward has
   * run; 503 (Retry-After) at once when the queue cannot take n more images,
   * 504 when they waited past the timeout.
   */
  submit(model: ServedModel, x: Float32Array, n: number, signal?: AbortSignal): Promise<Float32Array> {
    if (this.queued + n > this.o.maxQueue)
      return Promise.reject(new HttpError(503, `queue full (${this.queued} of ${this.o.maxQueue} images waiting); retry later`, { 'Retry-After': '1' }));
    return new Promise((resolve, reject) => {
      const job: Job = { model, x, n, at: performance.now(), timer: null, resolve, reject };
      job.timer = setTimeout(() => {
        if (!this.remove(job)) return;
        reject(new HttpError(504, `timed out after ${this.o.timeoutMs} ms in the queue`));
      }, this.o.timeoutMs);
      // a client that went away while waiting: its images leave the queue, uncomputed
      signal?.addEventListener('abort', () => {
        if (!this.remove(job)) return;
        if (job.timer) clearTimeout(job.timer);
        reject(new HttpError(499, 'client closed the request'));
      }, { once: true });
      let q = this.queues.get(model);
      if (!q) this.queues.set(model, (q = []));
      q.push(job);
      this.setQueued(this.queued + n);
      this.schedule();
    });
  }

  /** Resolves once nothing waits and no forward runs. */
  drained(): Promise<void> {
    if (!this.queued && !this.busy) return Promise.resolve();
    return new Promise((res) => this.idle.push(res));
  }

  /**
   * A request for `model` started (+1) or stopped (-1) receiving its body;
   * call -1 before submit() (or when the body failed), exactly once per +1.
   */
  receiving(model: ServedModel, delta: 1 | -1): void {
    const v = (this.receivingBy.get(model) ?? 0) + delta;
    if (v > 0) this.receivingBy.set(model, v); else this.receivingBy.delete(model);
    if (delta > 0 && model === this.last.model) this.last.back++;
    if (delta < 0) this.schedule();
  }

  private images(model: ServedModel): number { return (this.queues.get(model) ?? []).reduce((s, j) => s + j.n, 0); }

  private setQueued(v: number): void { this.queued = v; this.o.onQueue?.(v); }

  private remove(job: Job): boolean {
    const q = this.queues.get(job.model);
    const i = q ? q.indexOf(job) : -1;
    if (i < 0) return false;
    q!.splice(i, 1);
    this.setQueued(this.queued - job.n);
    this.settleIdle();
    return true;
  }

  private settleIdle(): void {
    if (this.queued || this.busy) return;
    for (const f of this.idle.splice(0)) f();
  }

  /** The model whose oldest job is oldest, that job's arrival, and whether some model has a full batch. */
  private oldest(): { model: ServedModel; at: number; ready: boolean } | null {
    let best: Job | null = null, ready = false;
    for (const q of this.queues.values()) {
      if (!q.length) continue;
      if (!best || q[0].at < best.at) best = q[0];
      if (q.reduce((s, j) => s + j.n, 0) >= this.o.maxBatch) ready = true;
    }
    if (!best) return null;
    return { model: best.model, at: best.at, ready };
  }

  /** Milliseconds until a forward should start (<= 0: now; Infinity: nothing queued). */
  private due(): number {
    const o = this.oldest();
    if (!o) return Infinity;
    // another instance is computing: start now (see the header)
    if (o.ready || this.busy > 0) return 0;
    const now = performance.now();
    const l = this.last;
    // --max-wait-ms is for an idle server to gather concurrent arrivals; jobs
    // queued during the last forward waited for it, and once every client it
    // answered is back (soon after it) there is nobody left to gather: without
    // this a lone client waited --max-wait-ms for itself on every request
    // (fmnist batched at 1 connection: 250 req/s, 350 before the waits below)
    const allBack = l.model === o.model && l.answered > 0 && l.back >= l.answered && o.at - this.lastEnd <= (this.o.receiveWaitMs ?? RECEIVE_WAIT_MS);
    const waitLeft = o.at <= this.lastEnd || allBack ? 0 : this.o.maxWaitMs - (now - o.at);
    // --max-wait-ms 0 means never wait, for bodies either
    const rx = this.o.maxWaitMs > 0 && this.receivingBy.has(o.model);
    const rxLeft = rx ? (this.o.receiveWaitMs ?? RECEIVE_WAIT_MS) - (now - Math.max(o.at, this.lastEnd)) : 0;
    // the clients the last forward answered (closed loop: they send again at
    // once): while some have not and they would fit, wait, at most a tenth of
    // that forward (10% latency at most, for batches not split in two groups)
    const q = this.images(o.model);
    const away = l.model === o.model ? l.answered - l.back : 0;
    const backLeft = this.o.maxWaitMs > 0 && away > 0 && q + away <= this.o.maxBatch ? l.ms / 10 - (now - this.lastEnd) : 0;
    return Math.max(waitLeft, rxLeft, backLeft);
  }

  private schedule(): void {
    // after a forward, the next check phase runs whatever the poll phase read
    // meanwhile (see runOne): those requests waited for the forward already
    if (!this.free.length || this.immediate) return;
    const left = this.due();
    if (left === Infinity) return;
    if (left <= 0) {
      if (this.wake) { clearTimeout(this.wake); this.wake = null; }
      // setImmediate: after the event loop's poll phase, so requests that
      // arrived meanwhile join this batch
      this.immediate = setImmediate(() => { this.immediate = null; this.runOne(); });
      return;
    }
    if (!this.wake) this.wake = setTimeout(() => { this.wake = null; this.schedule(); }, left);
  }

  private pickModel(): ServedModel | null {
    // a model with a full batch first (oldest such), else the oldest job's
    let full: Job | null = null, any: Job | null = null;
    for (const q of this.queues.values()) {
      if (!q.length) continue;
      if (!any || q[0].at < any.at) any = q[0];
      if (q.reduce((s, j) => s + j.n, 0) >= this.o.maxBatch && (!full || q[0].at < full.at)) full = q[0];
    }
    return (full ?? any)?.model ?? null;
  }

  private runOne(): void {
    const model = this.pickModel();
    if (!model) return;
    const q = this.queues.get(model)!;
    const jobs: Job[] = [];
    let images = 0;
    // with instances, this one's share of what waits
    const cap = this.instances > 1 ? Math.min(this.o.maxBatch, Math.ceil(this.images(model) / this.free.length)) : this.o.maxBatch;
    while (q.length && (jobs.length === 0 || images + q[0].n <= cap)) {
      const j = q.shift()!;
      if (j.timer) clearTimeout(j.timer);
      jobs.push(j); images += j.n;
    }
    this.setQueued(this.queued - images);
    // instances, or a backend that reads back asynchronously (WebGPU): answered when the forward is read back
    if (this.instances > 1 || model.readsAsync) { void this.runOn(this.free.pop()!, model, jobs, images); return; }
    const slot = this.free.pop()!;
    this.busy++;
    const t0 = performance.now();
    try {
      const io = this.buffers(model, jobs, images);
      for (const [x, m, at] of io.pieces) { io.y.set(model.forward(x, m), at); this.o.onBatch?.(model, m); }
      this.settle(slot, model, jobs, io.y, null, t0);
    } catch (e) { this.settle(slot, model, jobs, null, e, t0); }
    // requests that arrived during the forward sit unread in their sockets: the
    // poll phase reads them, then this check-phase callback runs them at once,
    // without --max-wait-ms (that wait is for an idle server, where waiting a
    // little costs nothing; here the forward was the wait), unless a body is
    // still arriving (due())
    this.immediate = setImmediate(() => {
      this.immediate = null;
      if (this.due() <= 0) this.runOne(); else this.schedule();
    });
  }

  /** One forward of `jobs` on instance `slot` (--instances; or the one slot, on WebGPU), answered when its worker (or read-back) is done. */
  private async runOn(slot: number, model: ServedModel, jobs: Job[], images: number): Promise<void> {
    this.busy++;
    // the other free instances may take what still waits, now
    this.schedule();
    const t0 = performance.now();
    try {
      const io = this.buffers(model, jobs, images);
      for (const [x, m, at] of io.pieces) { io.y.set(await model.forwardOn(slot, x, m), at); this.o.onBatch?.(model, m); }
      this.settle(slot, model, jobs, io.y, null, t0);
    } catch (e) { this.settle(slot, model, jobs, null, e, t0); }
    this.schedule();
  }

  /**
   * A forward's output, and its input (the jobs' images in order; a lone
   * job's own array) in pieces of at most --max-batch images (a request
   * larger than that): [images, count, offset of their outputs in y].
   */
  private buffers(model: ServedModel, jobs: Job[], images: number): { y: Float32Array; pieces: Array<[Float32Array, number, number]> } {
    const x = jobs.length === 1 ? jobs[0].x : new Float32Array(images * model.itemSize);
    if (jobs.length > 1) { let off = 0; for (const j of jobs) { x.set(j.x, off); off += j.x.length; } }
    const pieces: Array<[Float32Array, number, number]> = [], item = model.itemSize;
    for (let s = 0; s < images; s += this.o.maxBatch) {
      const m = Math.min(this.o.maxBatch, images - s);
      pieces.push([x.subarray(s * item, (s + m) * item), m, s * model.outSize]);
    }
    return { y: new Float32Array(images * model.outSize), pieces };
  }

  /** A forward ended: each job gets its rows of y (or all the error), its instance is free again. */
  private settle(slot: number, model: ServedModel, jobs: Job[], y: Float32Array | null, e: unknown, t0: number): void {
    if (e || !y) {
      const err = new HttpError(500, `forward failed: ${(e as Error).message}`);
      for (const j of jobs) j.reject(err);
    } else {
      let off = 0;
      const out = model.outSize;
      for (const j of jobs) { j.resolve(y.subarray(off * out, (off + j.n) * out)); off += j.n; }
    }
    this.busy--;
    this.free.push(slot);
    this.lastEnd = performance.now();
    this.last = { model, answered: jobs.length, ms: this.lastEnd - t0, back: 0 };
    this.settleIdle();
  }
}
