// Uploaded images to model inputs without stalling the server: decoding a
// large PNG or JPEG takes the thread for a long while (pngjs and jpeg-js are
// synchronous; decoding and preprocessing a 4096x4096 PNG, this server's
// default pixel limit, took 1.30 s here, a 2048x2048 one 0.25 s:
// bench/decode.ts, bench/results/decode.json), during which no other request, health check or finished forward
// could be answered. Images over INLINE_PIXELS go to one worker thread
// (src/serve/decode-worker.ts), spawned at the first such image; smaller
// ones, milliseconds to decode, stay on the server's thread, where a
// worker's round trip would cost more than it saves. Both give the same
// bits (the same functions). A worker that dies fails its jobs with an
// error and is replaced at the next large image.
import { Worker } from 'node:worker_threads';
import { decodeImage, ImageError } from '../io/image.js';
import { imageToInput } from '../data/preprocess.js';
import type { VitConfig } from '../nn/presets.js';
import type { DecodeJob, DecodeReply } from './decode-worker.js';

/**
 * Images with at most this many pixels are decoded on the server's thread:
 * a 256x256 PNG takes it about 7 ms, 512x512 about 20 ms (bench/decode.ts);
 * the worker's round trip costs little either way (128x128: 2.6 against 2.4 ms).
 */
export const INLINE_PIXELS = 256 * 256;

export class ImageDecoder {
  /** Images decoded on the server's thread and in the worker, for tests and metrics. */
  readonly counts = { inline: 0, worker: 0 };
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(x: Float32Array): void; reject(e: Error): void }>();
  private closed = false;

  constructor(private readonly maxPixels: number) {}

  /** The model input of an uploaded image whose header said width x height (checkImageSize). */
  async input(bytes: Uint8Array, pixels: number, cfg: VitConfig): Promise<Float32Array> {
    if (pixels <= INLINE_PIXELS) {
      this.counts.inline++;
      return imageToInput(decodeImage(bytes, 'upload', { maxPixels: this.maxPixels }), cfg, 'upload');
    }
    if (this.closed) throw new Error('image decoder closed');
    this.counts.worker++;
    const w = this.spawn(), id = this.nextId++;
    // a copy of its own: the body may be a view into a larger buffer, which would be cloned whole
    const own = bytes.slice();
    const job: DecodeJob = { id, bytes: own, cfg, maxPixels: this.maxPixels };
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage(job, [own.buffer as ArrayBuffer]);
    });
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
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if ('x' in r) p.resolve(r.x);
      else p.reject(r.image ? new ImageError('upload', r.error) : new Error(r.error));
    });
    const fail = (why: string) => {
      if (this.worker === w) this.worker = null;
      for (const p of this.pending.values()) p.reject(new Error(`image decode worker ${why}`));
      this.pending.clear();
    };
    w.on('error', (e) => fail(`failed: ${e.message}`));
    w.on('exit', (code) => fail(`exited (code ${code})`));
    this.worker = w;
    return w;
  }

  /** Stops the worker (jobs still in it fail). */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
