// Model: a loaded model behind four calls (classify, segment, forward,
// preprocess). It owns every tensor it makes: forwards run through a plan
// (src/plan.ts: one arena, replayed) cached per batch size, or, where a
// forward cannot be planned (WebGPU, host reads), op by op inside a scope; so
// repeated calls leave live tensors and the WASM heap as they were
// (test/api.test.ts runs 1,000 classify calls, bench/api.ts 10,000).
import { Tensor, getBackend, scope, setBackend } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { readsAsync, type Backend } from '../backend/backend.js';
import { InferencePlan, CaptureError } from '../plan.js';
import type { VisionTransformer } from '../nn/vit.js';
import { countParams } from '../cait/macs.js';
import { isSegmentation, modelMacs } from '../seg/model.js';
import type { Runner } from './runner.js';
import { deepFreeze, imageName, toModelInput } from './preprocess.js';
import type { ClassifyOptions, ImageInput, ModelInfo, Prediction, RgbaLike, Segmentation } from './types.js';
import { checkOptionKeys, showValue } from '../util/suggest.js';
import { overflowText } from '../util/overflow.js';

/** How a platform (src/api/node.ts, src/api/browser.ts) turns an ImageInput into RGBA pixels. */
export interface ImageReader {
  /** Synchronously, for inputs that allow it (decoded pixels; Node: encoded bytes and paths; browsers: drawables). */
  rgbaSync(image: ImageInput): RgbaLike;
  /** Any input (Blob, URL, and in browsers encoded bytes, are decoded asynchronously). */
  rgba(image: ImageInput): Promise<RgbaLike>;
}

/** Plans kept per model (one per batch size); the least recently used beyond this is dropped. */
const MAX_PLANS = 4;

/** Runs fn with `be` as the default backend (tensors the model makes internally without naming one land there). */
function on<T>(be: Backend, fn: () => T): T {
  const prev = getBackend();
  if (prev === be) return fn();
  setBackend(be);
  try { return fn(); } finally { setBackend(prev); }
}

export class Model {
  /** Config, cost, schedule, widths, labels. */
  readonly info: ModelInfo;
  private readonly plans = new Map<number, InferencePlan | null>();
  private disposed = false;

  /** @internal Use `load()`. */
  constructor(
    private readonly vit: VisionTransformer,
    private readonly run: Runner,
    /** The backend the model's tensors live on. */
    readonly backend: Backend,
    private readonly images: ImageReader,
    private readonly release: (() => void) | null,
    source: string,
    private readonly quant: { scheme: string | null; handle: { dispose(): void } | null } = { scheme: null, handle: null },
  ) {
    const cfg = run.runner.cfg;
    const labels = cfg.classes?.length === cfg.numClasses ? [...cfg.classes] : Array.from({ length: cfg.numClasses }, (_, i) => String(i));
    this.info = {
      config: structuredClone(cfg), task: isSegmentation(cfg) ? 'segment' : 'classify',
      macs: modelMacs(cfg, run.merge), parameters: countParams(cfg), merge: run.merge, atme: run.atme ? structuredClone(run.atme) : null,
      widths: cfg.widths ? structuredClone(cfg.widths) : null, labels,
      inputShape: [cfg.inChans, cfg.imgSize, cfg.imgSize], backend: backend.name, source,
      quant: quant.scheme, int8: !!quant.handle, int8Dot: quant.handle ? backend.int8Dot ?? null : null,
    };
    deepFreeze(this.info);
  }

  /** Values in one preprocessed image: channels x size x size. */
  get inputSize(): number { const [c, h, w] = this.info.inputShape; return c * h * w; }

  /**
   * The model's input for one image (NCHW, batch 1): resized, laid out and
   * normalised exactly as the model was trained (the config's size, mean/std
   * and padding). Synchronous, so it takes decoded pixels, and in Node also
   * encoded bytes and file paths; `classify` takes every ImageInput.
   */
  preprocess(image: ImageInput): Float32Array {
    this.check();
    return toModelInput(this.images.rgbaSync(image), this.run.runner.cfg, imageName(image));
  }

  /** Top-k classes of one image, best first, with softmax scores. */
  async classify(image: ImageInput, o: ClassifyOptions = {}): Promise<Prediction[]> {
    this.check();
    if (this.info.task !== 'classify') throw new Error(`${this.info.source} is a segmentation model: use segment(image)`);
    checkOptionKeys(o, ['topk'], 'classify: ');
    const k = o.topk ?? 5;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`classify: topk must be an integer >= 1, got ${showValue(k)}`);
    const x = toModelInput(await this.images.rgba(image), this.run.runner.cfg, imageName(image));
    const p = softmax(await this.forward(x, 1));
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
    return order.map((i) => ({ label: this.info.labels[i], index: i, score: p[i] }));
  }

  /** Segmentation models: the class of every pixel of the (preprocessed) image. */
  async segment(image: ImageInput): Promise<Segmentation> {
    this.check();
    if (this.info.task !== 'segment') throw new Error(`${this.info.source} is a classification model: use classify(image)`);
    const x = toModelInput(await this.images.rgba(image), this.run.runner.cfg, imageName(image));
    const z = await this.forward(x, 1), K = this.info.config.numClasses, S = this.info.inputShape[1];
    const classes = new Uint8Array(S * S);
    for (let i = 0; i < S * S; i++) {
      let best = 0;
      for (let c = 1; c < K; c++) if (z[i * K + c] > z[i * K + best]) best = c;
      classes[i] = best;
    }
    return { width: S, height: S, classes, labels: [...this.info.labels] };
  }

  /**
   * Logits of `batch` preprocessed images (NCHW, `batch * inputSize` values):
   * [batch, classes] for classifiers, [batch * size * size, classes] for
   * segmentation models. Planned (captured on the first call with this batch
   * size, replayed after) where the backend allows.
   */
  async forward(pixels: Float32Array, batch = 1): Promise<Float32Array> {
    this.check();
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`forward: batch must be an integer >= 1, got ${showValue(batch)}`);
    const want = batch * this.inputSize;
    if (!(pixels instanceof Float32Array) || pixels.length !== want) {
      throw new RangeError(`forward: expected a Float32Array of ${want} values (batch ${batch} x [${this.info.inputShape}]), got ${pixels instanceof Float32Array ? pixels.length + ' values' : Object.prototype.toString.call(pixels)}`);
    }
    // a NaN or infinity would come back as NaN logits, not as an error
    for (let i = 0; i < want; i++) if (!Number.isFinite(pixels[i])) throw new RangeError(`forward: pixels[${i}] is ${pixels[i]}; inputs must be finite`);
    const z = await this.logits(pixels, batch);
    // finite inputs far outside a preprocessed image's range (3e38) overflow inside the model
    if (!z.every(Number.isFinite)) throw new RangeError(`forward: the logits are not finite: ${overflowText(pixels)}`);
    return z;
  }

  private async logits(pixels: Float32Array, batch: number): Promise<Float32Array> {
    const be = this.backend, shape = [batch, ...this.info.inputShape], runner = this.run.runner;
    if (readsAsync(be)) {
      const y = on(be, () => noGrad(() => scope(() => runner.forward(Tensor.from(pixels, shape, be)))));
      try { return await be.readAsync(y.ptr, y.size); } finally { y.dispose(); }
    }
    const plan = this.planFor(batch, pixels, shape);
    if (plan) return plan.run(pixels);
    return on(be, () => noGrad(() => scope(() => runner.forward(Tensor.from(pixels, shape, be)).toArray())));
  }

  /** The cached plan for this batch size (captured now if new; null when the forward cannot be planned). */
  private planFor(batch: number, example: Float32Array, shape: number[]): InferencePlan | null {
    if (this.plans.has(batch)) {
      const p = this.plans.get(batch)!;
      this.plans.delete(batch); this.plans.set(batch, p);   // most recently used last
      return p;
    }
    let p: InferencePlan | null;
    try {
      p = on(this.backend, () => InferencePlan.capture(this.backend, example, shape, (t) => this.run.runner.forward(t)));
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e;
      p = null;
    }
    this.plans.set(batch, p);
    if (this.plans.size > MAX_PLANS) {
      const [oldest, q] = this.plans.entries().next().value as [number, InferencePlan | null];
      q?.dispose(); this.plans.delete(oldest);
    }
    return p;
  }

  /** Frees the model's weights, plans and (if `load` made it for this model alone) its backend. Further calls throw. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.plans.values()) p?.dispose();
    this.plans.clear();
    const head = (this.run.runner as { head?: { dispose?(): void } | null }).head;
    head?.dispose?.();
    this.quant.handle?.dispose();
    this.vit.dispose();
    this.release?.();
  }

  get isDisposed(): boolean { return this.disposed; }

  private check(): void { if (this.disposed) throw new Error(`model ${this.info.source} has been disposed`); }
}

function softmax(z: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v);
  const e = Float64Array.from(z, (v) => Math.exp(v - m));
  let s = 0;
  for (const v of e) s += v;
  for (let i = 0; i < e.length; i++) e[i] /= s;
  return e;
}
