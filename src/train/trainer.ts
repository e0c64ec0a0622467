// The training loop: shuffled minibatches with augmentation, label-smoothed
// cross-entropy, AdamW, warmup + cosine schedule, global-norm clipping, and an
// atomically written checkpoint after every epoch from which training resumes
// bit-exactly (parameters, moments, step, RNG state).
//
// What is trained is a `Trainable`: the plain ViT, or a CAIT wrapper around one
// (ATME merging, CDCP masks), which may add loss terms.
//
// Data is an image split (one label per image, batches by makeBatch) or any
// `BatchSource` that assembles its own batches, e.g. segmentation scenes
// (src/data/scenes.ts) whose y holds one label per pixel: the loss is the
// same cross-entropy over the rows of the model's output, one row per label.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, scope } from '../tensor.js';
import { backward, noGrad, zeroGrad } from '../autograd.js';
import { crossEntropy, weightedSum as weighted } from '../ops/index.js';
import { Rng, type RngState } from '../util/rng.js';
import { makeBatch, epochOrder, type Batch, type BatchOptions, type ImageSource } from '../data/augment.js';
import { readSafetensorsFile, writeSafetensorsFile, SafetensorsError } from '../io/safetensors.js';
import { AdamW, clipGradNorm, cosineLr } from './optim.js';
import { Progress } from '../util/progress.js';
import type { VitConfig } from '../nn/presets.js';

export interface Trainable {
  cfg: VitConfig;
  namedParameters(): Array<[string, Tensor]>;
  /** Logits for a batch; `train` says whether this is a training step. */
  forward(x: Tensor, train?: boolean): Tensor;
  /** Extra loss terms for this step (e.g. CDCP's budget, distillation), given the logits. */
  extraLoss?(logits: Tensor, x: Tensor, step: number, totalSteps: number): Array<[Tensor, number]>;
  /** Called after each optimizer step (e.g. to refresh masks). */
  afterStep?(step: number, totalSteps: number): void;
  /** Extra tensors and metadata to save with the model. */
  saveExtras?(): { tensors: Record<string, { shape: number[]; data: Float32Array }>; metadata: Record<string, string> };
}

/** A data source that makes its own batches (x [B, C, S, S] normalised, y one label per output row). */
export interface BatchSource { n: number; makeBatch(indices: ArrayLike<number>, opts: BatchOptions): Batch }
export type TrainData = ImageSource | BatchSource;

/** One batch of `data`: its own makeBatch, or the image-split one. */
export function batchOf(data: TrainData, indices: ArrayLike<number>, opts: BatchOptions): Batch {
  return 'makeBatch' in data ? data.makeBatch(indices, opts) : makeBatch(data, indices, opts);
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  warmupEpochs: number;
  smoothing: number;
  clip: number;
  seed: number;
  cropPad: number;
  flip: boolean;
  mean: number;
  std: number;
  /** Train on the first `limit` images of the split (tests, smoke runs). */
  limit?: number;
  outDir: string;
  resume?: string;
  quiet?: boolean;
  /** Stop after this epoch even if `epochs` is larger (the schedule still spans `epochs`). */
  stopAfter?: number;
}

export interface EpochLog { epoch: number; step: number; loss: number; lr: number; imagesPerSec: number; seconds: number; gradNorm: number }

interface TrainState { epoch: number; step: number; rng: RngState; options: Partial<TrainOptions> }

export function train(model: Trainable, data: TrainData, o: TrainOptions): EpochLog[] {
  mkdirSync(o.outDir, { recursive: true });
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const n = Math.min(o.limit ?? data.n, data.n), pick = subset(data.n, n);
  const stepsPerEpoch = Math.ceil(n / o.batchSize);
  const totalSteps = stepsPerEpoch * o.epochs, warmup = Math.round(stepsPerEpoch * o.warmupEpochs);
  const opt = new AdamW(named, { lr: o.lr, weightDecay: o.weightDecay });
  const rng = new Rng(o.seed);
  let epoch0 = 0;
  if (o.resume) {
    const st = loadCheckpoint(o.resume, named, opt);
    rng.setState(st.rng);
    epoch0 = st.epoch;
  }
  const S = model.cfg.imgSize;
  const logs: EpochLog[] = [];
  const last = Math.min(o.epochs, o.stopAfter ?? o.epochs);
  for (let epoch = epoch0; epoch < last; epoch++) {
    const order = epochOrder(n, rng).map((i) => pick[i]);
    const bar = new Progress(`epoch ${epoch + 1}/${o.epochs}`, n, 'img', o.quiet);
    const t0 = performance.now();
    let lossSum = 0, seen = 0, lr = o.lr, gradNorm = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      const idx = order.subarray(s * o.batchSize, Math.min(n, (s + 1) * o.batchSize));
      const batch = batchOf(data, idx, { pad: S, mean: o.mean, std: o.std, augment: { rng, cropPad: o.cropPad, flip: o.flip } });
      lr = cosineLr(opt.step, totalSteps, warmup, o.lr, o.minLr);
      const loss = scope(() => {
        const x = Tensor.from(batch.x, [idx.length, model.cfg.inChans, S, S]);
        const logits = model.forward(x, true);
        const ce = crossEntropy(logits, batch.y, o.smoothing);
        const extra = model.extraLoss?.(logits, x, opt.step, totalSteps) ?? [];
        let total = ce;
        if (extra.length) total = weighted([[ce, 1], ...extra]);
        const v = ce.item();
        backward(total);
        return v;
      });
      gradNorm = clipGradNorm(params, o.clip);
      opt.update(lr);
      zeroGrad(params);
      model.afterStep?.(opt.step, totalSteps);
      lossSum += loss * idx.length;
      seen += idx.length;
      bar.update(seen, `loss ${(lossSum / seen).toFixed(4)} lr ${lr.toExponential(2)}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const log: EpochLog = { epoch: epoch + 1, step: opt.step, loss: lossSum / seen, lr, imagesPerSec: seen / seconds, seconds, gradNorm };
    logs.push(log);
    appendFileSync(join(o.outDir, 'log.jsonl'), JSON.stringify(log) + '\n');
    saveCheckpoint(join(o.outDir, 'checkpoint.safetensors'), model, opt, { epoch: epoch + 1, step: opt.step, rng: rng.state(), options: { ...o, resume: undefined } });
    saveTrained(join(o.outDir, 'model.safetensors'), model, { epoch: String(epoch + 1) });
  }
  opt.dispose();
  return logs;
}

/** The model alone (what eval/predict/bench load). */
export function saveTrained(file: string, model: Trainable, meta: Record<string, string> = {}): void {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, p] of model.namedParameters()) tensors[n] = { shape: p.shape, data: p.toArray() };
  const ex = model.saveExtras?.();
  if (ex) Object.assign(tensors, ex.tensors);
  writeSafetensorsFile(file, tensors, { format: 'pt', config: JSON.stringify(model.cfg), ...meta, ...(ex?.metadata ?? {}) });
}

function saveCheckpoint(file: string, model: Trainable, opt: AdamW, st: TrainState): void {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, p] of model.namedParameters()) {
    tensors[n] = { shape: p.shape, data: p.toArray() };
    tensors[`optim.m.${n}`] = { shape: p.shape, data: opt.m.get(n)!.toArray() };
    tensors[`optim.v.${n}`] = { shape: p.shape, data: opt.v.get(n)!.toArray() };
  }
  writeSafetensorsFile(file, tensors, { format: 'pt', config: JSON.stringify(model.cfg), train_state: JSON.stringify({ ...st, optimStep: opt.step }) });
}

function loadCheckpoint(file: string, named: Array<[string, Tensor]>, opt: AdamW): TrainState {
  const { tensors, metadata } = readSafetensorsFile(file);
  if (!metadata.train_state) throw new SafetensorsError(file, 'not a training checkpoint (no train_state in __metadata__)');
  const st = JSON.parse(metadata.train_state) as TrainState & { optimStep: number };
  for (const [n, p] of named) {
    for (const [key, dst] of [[n, p], [`optim.m.${n}`, opt.m.get(n)!], [`optim.v.${n}`, opt.v.get(n)!]] as const) {
      const t = tensors.get(key);
      if (!t) throw new SafetensorsError(file, `checkpoint lacks tensor '${key}'`);
      if (t.data.length !== p.size) throw new SafetensorsError(file, `tensor '${key}' has shape [${t.shape}], expected [${p.shape}]`);
      dst.write(t.data);
    }
  }
  opt.step = st.optimStep;
  return st;
}

/**
 * `limit` images spread evenly over a split (the splits are stored class by
 * class, so a prefix would hold one class only).
 */
export function subset(total: number, limit: number): Int32Array {
  const out = new Int32Array(limit);
  for (let i = 0; i < limit; i++) out[i] = Math.floor((i * total) / limit);
  return out;
}

/** How many of m rows of logits have their argmax at the label. */
export function countCorrect(logits: Float32Array, labels: ArrayLike<number>, m: number): number {
  const K = logits.length / m;
  let correct = 0;
  for (let i = 0; i < m; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
    if (best === labels[i]) correct++;
  }
  return correct;
}

export interface EvalOptions { mean: number; std: number; batchSize?: number; limit?: number; quiet?: boolean }

/**
 * The evaluation batches of a split (no augmentation): the first `limit`
 * images spread evenly over it (subset), `batchSize` at a time as NCHW on the
 * model's S x S canvas, with a progress bar advanced as each batch is taken.
 * Shared by the sync loop below and the async one of WebGPU (src/cli/infer.ts).
 */
export function* evalBatches(data: ImageSource, S: number, o: EvalOptions): Generator<{ x: Float32Array; y: ArrayLike<number>; m: number; shape: number[] }> {
  const n = Math.min(o.limit ?? data.n, data.n), B = o.batchSize ?? 250;
  const bar = new Progress('eval', n, 'img', o.quiet);
  const idx = new Int32Array(B), pick = subset(data.n, n);
  for (let s = 0; s < n; s += B) {
    const m = Math.min(B, n - s);
    for (let i = 0; i < m; i++) idx[i] = pick[s + i];
    const batch = makeBatch(data, idx.subarray(0, m), { pad: S, mean: o.mean, std: o.std });
    yield { x: batch.x, y: batch.y, m, shape: [m, 1, S, S] };
    bar.update(s + m);
  }
}

/** Top-1 accuracy over a split (no augmentation, no gradients). */
export function evaluate(model: Pick<Trainable, 'forward' | 'cfg'>, data: ImageSource, o: EvalOptions): { accuracy: number; n: number; correct: number } {
  let correct = 0, n = 0;
  for (const b of evalBatches(data, model.cfg.imgSize, o)) {
    const logits = noGrad(() => scope(() => model.forward(Tensor.from(b.x, b.shape), false).toArray()));
    correct += countCorrect(logits, b.y, b.m);
    n += b.m;
  }
  return { accuracy: n ? correct / n : 0, n, correct };
}
