// The training loop: shuffled minibatches with augmentation, label-smoothed
// cross-entropy, AdamW, warmup + cosine schedule, global-norm clipping, and an
// atomically written checkpoint after every epoch (and every `saveEvery` steps)
// from which training resumes bit-exactly (parameters, moments, step, RNG
// state, the position within the epoch), written together with the model file
// of the same step. A non-finite loss or gradient stops the run before
// anything is saved (or, with nan: 'skip', the batch is skipped and counted);
// nothing non-finite is ever saved; a resume trims log.jsonl to its step.
//
// What is trained is a `Trainable`: the plain ViT, or a CAIT wrapper around one
// (ATME merging, CDCP masks), which may add loss terms.
//
// Data is an image split (one label per image, batches by makeBatch) or any
// `BatchSource` that assembles its own batches, e.g. segmentation scenes
// (src/data/scenes.ts) whose y holds one label per pixel: the loss is the
// same cross-entropy over the rows of the model's output, one row per label.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, scope } from '../tensor.js';
import { backward, noGrad, zeroGrad } from '../autograd.js';
import { crossEntropy, weightedSum as weighted } from '../ops/index.js';
import { Rng, type RngState } from '../util/rng.js';
import { makeBatch, epochOrder, type Batch, type BatchOptions, type ImageSource } from '../data/augment.js';
import { writeSafetensors, SafetensorsError } from '../io/safetensors.js';
import { readSafetensorsFile } from '../io/safetensors-file.js';
import { checkOutput, cleanStaleTemporaries, makeFolder, outputTarget, writeFileAtomic, type NamedInput } from '../io/output.js';
import { AdamW, clipGradNorm, cosineLr } from './optim.js';
import { Progress } from '../util/progress.js';
import { showValue } from '../util/suggest.js';
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
  /** The images of the split to train on (default: all); `limit` then spreads over these (a held-out validation split is left out). */
  indices?: Int32Array;
  outDir: string;
  resume?: string;
  quiet?: boolean;
  /** Stop after this epoch even if `epochs` is larger (the schedule still spans `epochs`). */
  stopAfter?: number;
  /** Stop after this optimizer step without saving, as a kill would (tests of mid-epoch resume). */
  stopAfterStep?: number;
  /** Also save a resumable checkpoint every this many steps within an epoch (resume continues mid-epoch exactly). */
  saveEvery?: number;
  /** A non-finite loss or gradient: stop (default; the last good checkpoint stays as it is) or skip the batch and count it. */
  nan?: 'stop' | 'skip';
  /** Progress label (default 'epoch'): compress says 'search', 'fine-tune'. */
  label?: string;
  /** Called after each epoch: accuracy on a validation split, logged as valAccuracy. */
  validate?: () => { accuracy: number; n: number };
  /** Called with each epoch's log line as it is written. */
  onEpoch?: (log: EpochLog) => void;
  /** Files the run must not overwrite (io/output.ts), e.g. the model it started from. */
  inputs?: readonly NamedInput[];
}

export interface EpochLog {
  epoch: number; step: number; loss: number; lr: number; imagesPerSec: number; seconds: number; gradNorm: number;
  /** Accuracy on the validation split, when there is one. */
  valAccuracy?: number;
  /** Batches skipped for a non-finite loss or gradient (--nan skip). */
  skipped?: number;
}

/** A non-finite loss or gradient stopped training (nothing was saved for the step that caused it). */
export class NonFiniteError extends Error {
  constructor(message: string) { super(message); this.name = 'NonFiniteError'; }
}

/**
 * The checkpoint's train_state. At the end of an epoch `epoch` counts the
 * epochs done; mid-epoch (--save-every) it is the epoch in progress, with
 * `batch` batches of it done, the RNG state it started with (to redraw its
 * order) and its running loss.
 */
interface TrainState {
  epoch: number; step: number; rng: RngState; options: Partial<TrainOptions>;
  batch?: number; epochRng?: RngState; lossSum?: number; seen?: number; skipped?: number;
}

type TensorRecord = Record<string, { shape: number[]; data: Float32Array }>;

/** What a run directory (TrainOptions.outDir) holds: the trained model, the resumable checkpoint, the per-epoch log. */
export const RUN_FILES = { model: 'model.safetensors', checkpoint: 'checkpoint.safetensors', log: 'log.jsonl' } as const;

export function train(model: Trainable, data: TrainData, o: TrainOptions): EpochLog[] {
  makeFolder(o.outDir);
  const files = { model: join(o.outDir, RUN_FILES.model), checkpoint: join(o.outDir, RUN_FILES.checkpoint), log: join(o.outDir, RUN_FILES.log) };
  // the run's own checkpoint is read before it is replaced, so --resume DIR/checkpoint.safetensors is fine
  const inputs = o.inputs ?? [];
  for (const f of Object.values(files)) {
    checkOutput(f, f === files.checkpoint ? inputs : [...inputs, { flag: '--resume', path: o.resume }]);
    cleanStaleTemporaries(outputTarget(f));   // left by a run killed while writing
  }
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const pool = o.indices ?? null, total = pool ? pool.length : data.n;
  const n = Math.min(o.limit ?? total, total), pick = subset(total, n);
  if (pool) for (let i = 0; i < n; i++) pick[i] = pool[pick[i]];
  if (n < 1) throw new Error(`nothing to train on: ${n} images`);
  const stepsPerEpoch = Math.ceil(n / o.batchSize);
  const totalSteps = stepsPerEpoch * o.epochs, warmup = Math.round(stepsPerEpoch * o.warmupEpochs);
  const opt = new AdamW(named, { lr: o.lr, weightDecay: o.weightDecay });
  const rng = new Rng(o.seed);
  let epoch0 = 0, resumed: TrainState | null = null;
  if (o.resume) {
    resumed = loadCheckpoint(o.resume, named, opt, o, model.cfg);
    rng.setState(resumed.rng);
    epoch0 = resumed.epoch;
    model.afterStep?.(opt.step, totalSteps);
  }
  // the log holds what the checkpoint holds: lines past its step (a resumed run re-logs them) are dropped
  truncateLog(files.log, opt.step);
  // the model file matches the checkpoint it resumes from (a kill between the two writes left it behind or ahead)
  if (resumed) writeFileAtomic(files.model, trainedBytes(model, { epoch: String(resumed.epoch), step: String(opt.step) }), inputs);
  const S = model.cfg.imgSize, nanSkip = o.nan === 'skip';
  const logs: EpochLog[] = [];
  const last = Math.min(o.epochs, o.stopAfter ?? o.epochs);
  try {
    for (let epoch = epoch0; epoch < last; epoch++) {
      const mid = resumed && resumed.batch && epoch === epoch0 ? resumed : null;
      if (mid) rng.setState(mid.epochRng!);
      const epochRng = rng.state();
      const order = epochOrder(n, rng).map((i) => pick[i]);
      if (mid) rng.setState(mid.rng);
      const bar = new Progress(`${o.label ?? 'epoch'} ${epoch + 1}/${Math.ceil(o.epochs)}`, n, 'img', o.quiet);
      const t0 = performance.now();
      let lossSum = mid?.lossSum ?? 0, seen = mid?.seen ?? 0, skipped = mid?.skipped ?? 0, lr = o.lr, gradNorm = 0, timed = 0;
      for (let s = mid?.batch ?? 0; s < stepsPerEpoch; s++) {
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
        const norm = clipGradNorm(params, o.clip);
        if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
          zeroGrad(params);
          const what = `non-finite ${Number.isFinite(loss) ? 'gradient (norm ' + norm + ')' : 'loss (' + loss + ')'} at epoch ${epoch + 1}, step ${opt.step + 1} (lr ${lr.toExponential(2)})`;
          if (!nanSkip) throw new NonFiniteError(`${what}: training stopped; ${existsSync(files.checkpoint) ? `the last good checkpoint (${files.checkpoint}) is kept as it was` : resumed ? `${files.model} holds the model as resumed from ${o.resume}` : 'nothing was saved'}. A lower --lr, or --nan skip to skip such batches`);
          skipped++;
          continue;
        }
        gradNorm = norm;
        opt.update(lr);
        zeroGrad(params);
        model.afterStep?.(opt.step, totalSteps);
        lossSum += loss * idx.length;
        seen += idx.length;
        timed += idx.length;
        bar.update(Math.min(n, (s + 1) * o.batchSize), `loss ${(lossSum / seen).toFixed(4)} lr ${lr.toExponential(2)}${skipped ? ` skipped ${skipped}` : ''}`);
        if (o.stopAfterStep !== undefined && opt.step >= o.stopAfterStep) return logs;
        if (o.saveEvery && opt.step % o.saveEvery === 0 && s + 1 < stepsPerEpoch) {
          saveBoth(files, model, opt, { epoch, step: opt.step, rng: rng.state(), options: { ...o, resume: undefined }, batch: s + 1, epochRng, lossSum, seen, skipped }, inputs);
        }
      }
      if (!seen) throw new NonFiniteError(`every batch of epoch ${epoch + 1} had a non-finite loss or gradient (${skipped} skipped): training stopped; the last good checkpoint (${files.checkpoint}) is kept as it was`);
      const seconds = (performance.now() - t0) / 1000;
      const log: EpochLog = { epoch: epoch + 1, step: opt.step, loss: lossSum / seen, lr, imagesPerSec: timed / seconds, seconds, gradNorm };
      if (o.validate) log.valAccuracy = o.validate().accuracy;
      if (skipped) log.skipped = skipped;
      saveBoth(files, model, opt, { epoch: epoch + 1, step: opt.step, rng: rng.state(), options: { ...o, resume: undefined } }, inputs);
      appendFileSync(files.log, JSON.stringify(log) + '\n');
      logs.push(log);
      o.onEpoch?.(log);
    }
  } finally {
    opt.dispose();
  }
  return logs;
}

/** Keeps the lines of a run's log up to `step` (all of them when resuming from the last epoch; none for a fresh run); unreadable lines go. */
function truncateLog(file: string, step: number): void {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { return; }
  const keep = text.split('\n').filter((line) => {
    if (!line.trim()) return false;
    try { const o = JSON.parse(line) as { step?: unknown }; return typeof o.step === 'number' && o.step <= step; } catch { return false; }
  });
  const out = keep.map((l) => l + '\n').join('');
  if (out !== text) writeFileAtomic(file, Buffer.from(out, 'utf8'));
}

/** Every value finite, else an error naming the tensor (a checkpoint is never written with NaN or Inf in it). */
function assertFinite(tensors: TensorRecord, what: string): void {
  for (const [name, t] of Object.entries(tensors)) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) throw new NonFiniteError(`${what}: tensor '${name}' has a non-finite value (${d[i]}) at ${i}; not saved`);
  }
}

function trainedTensors(model: Trainable): { tensors: TensorRecord; metadata: Record<string, string> } {
  const tensors: TensorRecord = {};
  for (const [n, p] of model.namedParameters()) tensors[n] = { shape: p.shape, data: p.toArray() };
  const ex = model.saveExtras?.();
  if (ex) Object.assign(tensors, ex.tensors);
  return { tensors, metadata: { format: 'pt', config: JSON.stringify(model.cfg), ...(ex?.metadata ?? {}) } };
}

function trainedBytes(model: Trainable, meta: Record<string, string>): Uint8Array {
  const t = trainedTensors(model);
  assertFinite(t.tensors, 'model');
  const { config, format, ...extras } = t.metadata;
  return writeSafetensors(t.tensors, { format, config, ...meta, ...extras });
}

/** The model alone (what eval/predict/bench load). */
export function saveTrained(file: string, model: Trainable, meta: Record<string, string> = {}, inputs?: readonly NamedInput[]): void {
  writeFileAtomic(file, trainedBytes(model, meta), inputs);
}

/**
 * The model file and the checkpoint, both serialized (and checked finite)
 * before either is written, then the model file and last the checkpoint:
 * both carry the same epoch and step, and a kill between the two writes is
 * repaired by the resume, which rewrites the model from the checkpoint.
 */
function saveBoth(files: { model: string; checkpoint: string }, model: Trainable, opt: AdamW, st: TrainState, inputs: readonly NamedInput[]): void {
  const done = st.batch ? `${st.epoch}+${st.batch}/batches` : String(st.epoch);
  const modelBytes = trainedBytes(model, { epoch: done, step: String(st.step) });
  const tensors: TensorRecord = {};
  for (const [n, p] of model.namedParameters()) {
    tensors[n] = { shape: p.shape, data: p.toArray() };
    tensors[`optim.m.${n}`] = { shape: p.shape, data: opt.m.get(n)!.toArray() };
    tensors[`optim.v.${n}`] = { shape: p.shape, data: opt.v.get(n)!.toArray() };
  }
  assertFinite(tensors, 'checkpoint');
  const ckptBytes = writeSafetensors(tensors, { format: 'pt', config: JSON.stringify(model.cfg), train_state: JSON.stringify({ ...st, optimStep: opt.step }) });
  writeFileAtomic(files.model, modelBytes, inputs);
  writeFileAtomic(files.checkpoint, ckptBytes, inputs);
}

/** Restores `named` and `opt` from a checkpoint of this same run (its batch size, limit and classes), or throws naming what differs. */
function loadCheckpoint(file: string, named: Array<[string, Tensor]>, opt: AdamW, o: Pick<TrainOptions, 'batchSize' | 'limit'>, cfg: Pick<VitConfig, 'classes' | 'imgSize'>): TrainState {
  const classes = cfg.classes;
  const { tensors, metadata } = readSafetensorsFile(file, 'checkpoint');
  if (!metadata.train_state) throw new SafetensorsError(file, 'not a training checkpoint (no train_state in __metadata__)');
  let st: TrainState & { optimStep: number };
  try { st = JSON.parse(metadata.train_state) as TrainState & { optimStep: number }; } catch (e) { throw new SafetensorsError(file, `train_state is not JSON (${(e as Error).message})`); }
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!st || typeof st !== 'object' || !count(st.epoch) || !count(st.step) || !count(st.optimStep) || !st.rng)
    throw new SafetensorsError(file, `train_state: expected {epoch, step, optimStep, rng, ...} with non-negative integer counts, got ${metadata.train_state.slice(0, 120)}`);
  if (st.batch !== undefined && (!Number.isInteger(st.batch) || st.batch < 0 || !st.epochRng))
    throw new SafetensorsError(file, `train_state: a mid-epoch checkpoint needs an integer batch and epochRng`);
  // a bad RNG state stopped the run with Rng's bare TypeError, not naming the file; a bad running
  // loss or count went on into the log ("loss": null, "skipped": -3)
  for (const k of ['rng', 'epochRng'] as const) {
    if (st[k] === undefined) continue;
    try { Rng.fromState(st[k]!); } catch (e) { throw new SafetensorsError(file, `train_state.${k}: ${(e as Error).message.replace(/^Rng\.setState: /, '')}, got ${showValue(st[k])}`); }
  }
  if (st.lossSum !== undefined && !(typeof st.lossSum === 'number' && Number.isFinite(st.lossSum)))
    throw new SafetensorsError(file, `train_state.lossSum: expected a finite number (the epoch's running loss), got ${showValue(st.lossSum)}`);
  for (const k of ['seen', 'skipped'] as const)
    if (st[k] !== undefined && !count(st[k])) throw new SafetensorsError(file, `train_state.${k}: expected a non-negative integer count, got ${showValue(st[k])}`);
  // a resume continues the same run: the batches it replays must be the ones the checkpoint saw, its classes these
  const was = st.options ?? {};
  for (const [k, flag] of [['batchSize', '--batch'], ['limit', '--limit']] as const) {
    if (was[k] !== o[k]) {
      const said = (v: unknown) => (v === undefined ? `no ${flag}` : `${flag} ${v}`);
      throw new SafetensorsError(file, `the checkpoint was trained with ${said(was[k])}, this run has ${said(o[k])}; a resume continues the same run (${was[k] === undefined ? `leave ${flag} out` : `give ${flag} ${was[k]}`})`);
    }
  }
  let saved: string[] | undefined, savedSize: unknown;
  try { ({ classes: saved, imgSize: savedSize } = (JSON.parse(metadata.config ?? 'null') as { classes?: string[]; imgSize?: unknown } | null) ?? {}); } catch { /* checked with the tensors */ }
  // a run at another --img-size (its position embedding resampled) is resumed at that size: say so, not only the tensor's shape
  if (typeof savedSize === 'number' && savedSize !== cfg.imgSize)
    throw new SafetensorsError(file, `the checkpoint was trained at ${savedSize}x${savedSize} input, this run is at ${cfg.imgSize}x${cfg.imgSize}; a resume continues the same run (give --img-size ${savedSize})`);
  if (saved && classes && JSON.stringify(saved) !== JSON.stringify(classes)) {
    const i = saved.findIndex((c, j) => c !== classes[j]), at = i < 0 ? saved.length : i;
    throw new SafetensorsError(file, `the checkpoint's classes are not this run's: class ${at} is ${JSON.stringify(saved[at] ?? null)} there, ${JSON.stringify(classes[at] ?? null)} here (${saved.length} against ${classes.length} classes)`);
  }
  for (const [n, p] of named) {
    for (const [key, dst] of [[n, p], [`optim.m.${n}`, opt.m.get(n)!], [`optim.v.${n}`, opt.v.get(n)!]] as const) {
      const t = tensors.get(key);
      if (!t) throw new SafetensorsError(file, `checkpoint lacks tensor '${key}'`);
      if (t.data.length !== p.size) throw new SafetensorsError(file, `tensor '${key}' has shape [${t.shape}], expected [${p.shape}]`);
      for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) throw new SafetensorsError(file, `tensor '${key}' has a non-finite value (${t.data[i]}) at ${i}`);
      // Adam's second moment is a mean of squares: a negative one gives NaN at the first step
      if (key.startsWith('optim.v.')) for (let i = 0; i < t.data.length; i++) if (t.data[i] < 0) throw new SafetensorsError(file, `tensor '${key}' holds ${t.data[i]} at ${i}; a second moment must be >= 0`);
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

export interface EvalOptions { mean: number; std: number; batchSize?: number; limit?: number; quiet?: boolean; /** Progress label (default 'eval'). */ label?: string }

/**
 * The evaluation batches of a split (no augmentation): the first `limit`
 * images spread evenly over it (subset), `batchSize` at a time as NCHW on the
 * model's S x S canvas, with a progress bar advanced as each batch is taken.
 * Shared by the sync loop below and the async one of WebGPU (src/cli/infer.ts).
 */
export function* evalBatches(data: ImageSource, S: number, o: EvalOptions): Generator<{ x: Float32Array; y: ArrayLike<number>; m: number; shape: number[] }> {
  const n = Math.min(o.limit ?? data.n, data.n), B = o.batchSize ?? 250;
  const bar = new Progress(o.label ?? 'eval', n, 'img', o.quiet);
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
