// Uploaded images to model inputs without stalling the server: decoding a
// large PNG or JPEG takes the thread for a long while (pngjs and jpeg-js are
// synchronous; decoding and preprocessing a 4096x4096 PNG, this server's
// default pixel limit, took 1.30 s here, a 2048x2048 one 0.25 s:
// bench/decode.ts, bench/results/decode.json), during which no other request, health check or finished forward
// could be answered. Images over INLINE_PIXELS go to one worker thread
// (src/serve/decode-worker.ts), spawned at the first such image; smaller
// ones, milliseconds to decode, stay on the server's thread, where a
// worker's round trip would cost more than it saves. Both give the same
// bits (the same functions). A worker that dies fails the job it was
// decoding with an error and is replaced at the next job.
//
// The worker gets one job at a time; the others wait here, in arrival order,
// under the batch queue's limits (--max-queue images waiting, beyond it 503
// with Retry-After; --timeout-ms waiting, then 504), and a waiting job whose
// client has gone is dropped undecoded. Posted all at once, they sat in the
// worker's message queue beyond reach: 20 uploads of a 4096x4096 PNG with
// --max-queue 2 --timeout-ms 3000 were all decoded, the last answered after
// 20.7 s, and decoded still after their clients left.
import { Worker } from 'node:worker_threads';
import { decodeImage, ImageError } from '../io/image.js';
import { imageToInput } from '../data/preprocess.js';
import type { VitConfig } from '../nn/presets.js';
import type { DecodeJob, DecodeReply } from './decode-worker.js';
import { HttpError } from './protocol.js';

/**
 * Images with at most this many pixels are decoded on the server's thread:
 * a 256x256 PNG takes it about 7 ms, 512x512 about 20 ms (bench/decode.ts);
 * the worker's round trip costs little either way (128x128: 2.6 against 2.4 ms).
 */
export const INLINE_PIXELS = 256 * 256;

/** Limits on jobs waiting for the worker (the server passes --max-queue and --timeout-ms). */
export interface DecodeLimits {
  /** Images that may wait at once (beyond: 503 with Retry-After). */
  maxQueue: number;
  /** Milliseconds an image may wait before its request is answered 504. */
  timeoutMs: number;
}

interface Waiting {
  job: DecodeJob;
  resolve(x: Float32Array): void;
  reject(e: Error): void;
  /** Clears its timer and abort listener: called when it leaves the queue, whichever way. */
  leave(): void;
}

export class ImageDecoder {
  /** Images decoded on the server's thread and in the worker (counted as they start), for tests and metrics. */
  readonly counts = { inline: 0, worker: 0 };
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting: Waiting[] = [];
  /** The job in the worker now. */
  private running: Waiting | null = null;
  private closed = false;

  constructor(private readonly maxPixels: number, private readonly limits: DecodeLimits = { maxQueue: Infinity, timeoutMs: 2 ** 31 - 1 }) {}

  /**
   * The model input of an uploaded image whose header said width x height
   * (checkImageSize). `signal`: the client went away (a job still waiting is
   * dropped, 499).
   */
  async input(bytes: Uint8Array, pixels: number, cfg: VitConfig, signal?: AbortSignal): Promise<Float32Array> {
    if (pixels <= INLINE_PIXELS) {
      this.counts.inline++;
      return imageToInput(decodeImage(bytes, 'upload', { maxPixels: this.maxPixels }), cfg, 'upload');
    }
    if (this.closed) throw new Error('image decoder closed');
    if (signal?.aborted) throw new HttpError(499, 'client closed the request');
    const { maxQueue, timeoutMs } = this.limits;
    // the job that would start at once does not wait
    if (this.running && this.waiting.length >= maxQueue)
      throw new HttpError(503, `decode queue full (${this.waiting.length} of ${maxQueue} images waiting to be decoded); retry later`, { 'Retry-After': '1' });
    // a copy of its own: the body may be a view into a larger buffer, which would be cloned whole
    const own = bytes.slice();
    const job: DecodeJob = { id: this.nextId++, bytes: own, cfg, maxPixels: this.maxPixels };
    return new Promise<Float32Array>((resolve, reject) => {
      const drop = (e: HttpError) => {
        const i = this.waiting.indexOf(w);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        w.leave();
        reject(e);
      };
      const timer = setTimeout(() => drop(new HttpError(504, `timed out after ${timeoutMs} ms waiting to be decoded`)), timeoutMs);
      const onAbort = () => drop(new HttpError(499, 'client closed the request'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const w: Waiting = { job, resolve, reject, leave: () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); } };
      this.waiting.push(w);
      this.next();
    });
  }

  /** Posts the oldest waiting job to the worker, when it is free. */
  private next(): void {
    while (!this.running && this.waiting.length && !this.closed) {
      const w = this.waiting.shift()!;
      w.leave();
      this.counts.worker++;
      // a worker that cannot start fails this job, not every later one
      try { this.spawn().postMessage(w.job, [w.job.bytes.buffer as ArrayBuffer]); this.running = w; } catch (e) { w.reject(e as Error); }
    }
  }

  /** The running job ended: settle it, start the next. */
  private done(settle: (w: Waiting) => void): void {
    const w = this.running;
    if (!w) return;
    this.running = null;
    settle(w);
    this.next();
  }

  private spawn(): Worker {
    if (this.worker) return this.worker;
    // under tsx (the tests, the benches) this module is the .ts source, and a worker does not
    // inherit tsx's loader hooks: a bootstrap registers them before importing the worker's source
    const w = import.meta.url.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(new URL('../serve/decode-worker.ts', import.meta.url).href)}); });`, { eval: true })
      // (../serve/: from the CommonJS bundle, dist/cjs/serve.cjs, as from dist/serve/decode.js)
      : new Worker(new URL('../serve/decode-worker.js', import.meta.url));
    w.unref();
    w.on('message', (r: DecodeReply) => {
      if (this.running?.job.id !== r.id) return;
      this.done((p) => {
        if ('x' in r) p.resolve(r.x);
        else p.reject(r.image ? new ImageError('upload', r.error) : new Error(r.error));
      });
    });
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      this.done((p) => p.reject(new Error(`image decode worker ${why}`)));
    };
    w.on('error', (e) => fail(`failed: ${e.message}`));
    w.on('exit', (code) => fail(`exited (code ${code})`));
    this.worker = w;
    return w;
  }

  /** Stops the worker: the job in it and those waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) { w.leave(); w.reject(new Error('image decoder closed')); }
    const w = this.worker;
    if (w) await w.terminate();
  }
}
