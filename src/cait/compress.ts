// The CAIT pipeline (docs/cait-method.md, "Pipeline") as a library
// function for `cait compress`:
//   1. the dense model (given), frozen as the teacher;
//   2. search: a copy of it under ATME merging with CDCP masks, trained with
//      the budget loss and distillation from the teacher;
//   3. extract the compact model (widths + merge schedule in its config) and
//      fine-tune it with distillation;
//   4. report accuracy, MACs, parameters and measured latency of the dense
//      and the compressed model, measured in the same run; save the compact model.
// The task decides what runs on the final tokens, how a model is scored and
// its MACs: classification by default (class-token head, top-1 accuracy,
// countMacs); segmentation passes its token head, mean IoU and segMacs
// (src/seg/), and every stage (teacher, search, compact) runs with that head.
import { join } from 'node:path';
import { Tensor } from '../tensor.js';
import { latencyStats, timeRunners } from '../util/timing.js';
import { VisionTransformer } from '../nn/vit.js';
import { ZERO_INIT } from '../nn/module.js';
import { train, evaluate, saveTrained, type TrainData, type TrainOptions, type Trainable, type EpochLog } from '../train/trainer.js';
import type { ImageSource } from '../data/augment.js';
import type { VitConfig } from '../nn/presets.js';
import { formatSchedule, toSteps, type AtmeOptions, type MergeStep } from './atme.js';
import { CaitModel, type TokenHead } from './wrap.js';
import { countMacs } from './macs.js';
import type { Structure } from './structure.js';
import { createModel } from '../nn/model.js';
import type { CdcpOptions } from './cdcp.js';
import { CdcpModel } from './search.js';
import { Distiller, withDistillation, type DistillOptions } from './distill.js';

export type StageOptions = Omit<TrainOptions, 'outDir' | 'mean' | 'std' | 'resume'>;

/** What differs between tasks; every member defaults to classification's. */
export interface CompressTask {
  /** The head every stage runs on its final tokens (default: the ViT's class-token head). */
  head?: TokenHead;
  /** Score of a runner on the test data (default: top-1 accuracy on an image split); `label` names the stage for its progress bar. */
  score?(runner: Pick<Trainable, 'forward' | 'cfg'>, label?: string): number;
  /** MACs of one image (default: countMacs). */
  macs?(cfg: VitConfig, schedule: string): number;
}

export interface CompressOptions {
  /** ATME schedule of the compressed model: steps, or a string such as "h@1,v@3" ('' = channel pruning only), parsed once here. */
  merge: string | readonly MergeStep[];
  atme?: Partial<AtmeOptions>;
  cdcp?: Partial<CdcpOptions>;
  distill?: Partial<DistillOptions>;
  search: StageOptions;
  finetune: StageOptions;
  /** Run directory: search/, finetune/ (checkpoints, logs) and compressed.safetensors. */
  outDir: string;
  /** Test images used for accuracy (default: all). */
  evalLimit?: number;
  /** Latency: batch size (default 1) and timed rounds (default 100), dense and compressed interleaved; medians reported. */
  latencyBatch?: number;
  latencyRuns?: number;
  quiet?: boolean;
  task?: CompressTask;
  /** Where each stage's one-line announcement goes ("search", "extract", "fine-tune", "report"); progress bars are labelled the same. */
  log?: (line: string) => void;
}

/** `accuracy` is the task's score: top-1 accuracy, or mean IoU for segmentation. */
export interface ModelReport { accuracy: number; macs: number; params: number; latencyMs: number }

export interface CompressReport {
  dense: ModelReport;
  compressed: ModelReport;
  /** dense / compressed */
  macsRatio: number;
  speedup: number;
  widths: Array<{ qk: number; v: number; mlp: number }>;
  merge: string;
  /** Accuracy of the extracted model before fine-tuning. */
  extractedAccuracy: number;
  searchLog: EpochLog[];
  finetuneLog: EpochLog[];
  file: string;
}


/** A parameter-for-parameter copy (the search trains its own weights; the teacher stays frozen). */
export function cloneModel(m: VisionTransformer): VisionTransformer {
  const c = new VisionTransformer(structuredClone(m.cfg), ZERO_INIT);
  const src = new Map(m.namedParameters());
  for (const [n, p] of c.namedParameters()) p.write(src.get(n)!.toArray());
  return c;
}

/**
 * Median latency of each model on one input, interleaved round by round (the
 * bench protocol of src/cli/bench.ts), so both feel the same machine load.
 */
export function measureLatencies(models: Array<Pick<Trainable, 'forward' | 'cfg'>>, batch = 1, runs = 100): number[] {
  const S = models[0].cfg.imgSize, C = models[0].cfg.inChans;
  const x = Tensor.from(new Float32Array(batch * C * S * S).map((_, i) => Math.sin(i)), [batch, C, S, S]);
  const times = timeRunners(models, x, runs, Math.max(5, runs >> 3), { planned: true });
  x.dispose();
  return times.map((t) => latencyStats(t).median_ms);
}

export interface TimedStructure extends Structure { latencyMs: number }

/**
 * Time candidate structures (random weights, planned forwards, interleaved
 * rounds, medians) so `--structure-only` can keep the fastest. The winner of
 * a short noisy race is biased fast, so the caller measures it again against
 * the dense model in fresh runs before reporting a speedup.
 */
export function searchStructure(cfg: VitConfig, candidates: Structure[], o: { batch?: number; runs?: number; seed?: number } = {}): TimedStructure[] {
  const models = candidates.map((c) => createModel({ ...cfg, widths: c.widths, merge: c.merge }, o.seed ?? 0));
  try {
    const runners = models.map((m, i) => (candidates[i].merge ? new CaitModel(m, { merge: candidates[i].merge }) : m));
    const ms = measureLatencies(runners, o.batch ?? 1, o.runs ?? 8);
    return candidates.map((c, i) => ({ ...c, latencyMs: ms[i] }));
  } finally { for (const m of models) m.dispose(); }
}

/** `data.test` is whatever task.score reads (an image split for the default score). */
export function compress(dense: VisionTransformer, data: { train: TrainData; test: ImageSource | unknown }, o: CompressOptions): { model: VisionTransformer; report: CompressReport } {
  const mean = dense.cfg.mean[0], std = dense.cfg.std[0], quiet = o.quiet, head = o.task?.head, log = o.log ?? (() => {});
  const ev = o.task?.score ?? ((m: Pick<Trainable, 'forward' | 'cfg'>, label?: string) => evaluate(m, data.test as ImageSource, { mean, std, limit: o.evalLimit, quiet, label }).accuracy);
  const macsOf = o.task?.macs ?? ((cfg: VitConfig, schedule: string) => countMacs(cfg, schedule).total);
  const report = (m: VisionTransformer, runner: Pick<Trainable, 'forward' | 'cfg'>, schedule: string, label: string): ModelReport => ({
    accuracy: ev(runner, label), macs: macsOf(m.cfg, schedule), params: m.numParams(), latencyMs: 0,
  });
  // with a token head the dense model runs through the wrapper (empty schedule: exactly its own ops)
  const denseRunner = head ? new CaitModel(dense, { merge: '', head }) : dense;
  const teacher = new Distiller(denseRunner, o.distill);
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const steps = toSteps(o.merge, dense.cfg), merge = formatSchedule(steps);

  // 2. search
  log(`search: ATME ${merge || 'none'} + CDCP masks under the MAC budget, distilled from the dense model, ${o.search.epochs} epoch(s)`);
  const student = cloneModel(dense);
  const search = new CdcpModel(student, { ...o.atme, merge: steps, cdcp: o.cdcp, distill: teacher, head });
  const searchLog = train(search, data.train, { ...o.search, mean, std, outDir: join(o.outDir, 'search'), quiet, label: 'search' });

  // 3. extract, fine-tune
  const compact = search.extract();
  search.dispose();
  student.dispose();
  const runner = new CaitModel(compact, { ...o.atme, merge: steps, head });
  const extractedAccuracy = ev(runner, 'extract');
  log(`extract: compact model of ${(compact.numParams() / 1e3).toFixed(0)}k parameters, ${(macsOf(compact.cfg, merge) / 1e6).toFixed(2)} MMACs; score before fine-tuning ${pct(extractedAccuracy)}`);
  log(`fine-tune: ${o.finetune.epochs} epoch(s), distilled from the dense model`);
  const finetuneLog = train(withDistillation(runner, teacher), data.train, { ...o.finetune, mean, std, outDir: join(o.outDir, 'finetune'), quiet, label: 'fine-tune' });
  const file = join(o.outDir, 'compressed.safetensors');
  saveTrained(file, runner, { stage: 'compressed' });

  // 4. report, dense and compressed measured in the same process
  log(`report: score, MACs and latency (batch ${o.latencyBatch ?? 1}, ${o.latencyRuns ?? 100} interleaved runs) of the dense and the compressed model`);
  const d = report(dense, denseRunner, '', 'report dense'), c = report(compact, runner, merge, 'report compressed');
  [d.latencyMs, c.latencyMs] = measureLatencies([denseRunner, runner], o.latencyBatch, o.latencyRuns);
  return {
    model: compact,
    report: {
      dense: d, compressed: c, macsRatio: d.macs / c.macs, speedup: d.latencyMs / c.latencyMs,
      widths: compact.cfg.widths ?? [], merge, extractedAccuracy, searchLog, finetuneLog, file,
    },
  };
}
