// The CAIT pipeline (../shared/docs/cait-method.md, "Pipeline") as a library
// function for `cait compress`:
//   1. the dense model (given), frozen as the teacher;
//   2. search: a copy of it under ATME merging with CDCP masks, trained with
//      the budget loss and distillation from the teacher;
//   3. extract the compact model (widths + merge schedule in its config) and
//      fine-tune it with distillation;
//   4. report accuracy, MACs, parameters and measured latency of the dense
//      and the compressed model, measured in the same run; save the compact model.
import { join } from 'node:path';
import { Tensor } from '../tensor.js';
import { latencyStats, timeRunners } from '../util/timing.js';
import { VisionTransformer } from '../nn/vit.js';
import type { Init } from '../nn/module.js';
import { train, evaluate, saveTrained, type TrainOptions, type Trainable, type EpochLog } from '../train/trainer.js';
import type { ImageSource } from '../data/augment.js';
import type { AtmeOptions } from './atme.js';
import { CaitModel } from './wrap.js';
import { countMacs } from './macs.js';
import type { CdcpOptions } from './cdcp.js';
import { CdcpModel } from './search.js';
import { Distiller, withDistillation, type DistillOptions } from './distill.js';

export type StageOptions = Omit<TrainOptions, 'outDir' | 'mean' | 'std' | 'resume'>;

export interface CompressOptions {
  /** ATME schedule of the compressed model, e.g. "h@1,v@3" ('' = channel pruning only). */
  merge: string;
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
}

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

const ZERO_INIT: Init = { truncNormal: () => 0, uniform: () => 0 };

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
  const times = timeRunners(models, x, runs, Math.max(5, runs >> 3));
  x.dispose();
  return times.map((t) => latencyStats(t).median_ms);
}

export function compress(dense: VisionTransformer, data: { train: ImageSource; test: ImageSource }, o: CompressOptions): { model: VisionTransformer; report: CompressReport } {
  const mean = dense.cfg.mean[0], std = dense.cfg.std[0], quiet = o.quiet;
  const ev = (m: Pick<Trainable, 'forward' | 'cfg'>) => evaluate(m, data.test, { mean, std, limit: o.evalLimit, quiet }).accuracy;
  const report = (m: VisionTransformer, runner: Pick<Trainable, 'forward' | 'cfg'>, schedule: string): ModelReport => ({
    accuracy: ev(runner), macs: countMacs(m.cfg, schedule).total, params: m.numParams(), latencyMs: 0,
  });
  const teacher = new Distiller(dense, o.distill);

  // 2. search
  const student = cloneModel(dense);
  const search = new CdcpModel(student, { ...o.atme, merge: o.merge, cdcp: o.cdcp, distill: teacher });
  const searchLog = train(search, data.train, { ...o.search, mean, std, outDir: join(o.outDir, 'search'), quiet });

  // 3. extract, fine-tune
  const compact = search.extract();
  search.dispose();
  student.dispose();
  const runner = new CaitModel(compact, { ...o.atme, merge: o.merge });
  const extractedAccuracy = ev(runner);
  const finetuneLog = train(withDistillation(runner, teacher), data.train, { ...o.finetune, mean, std, outDir: join(o.outDir, 'finetune'), quiet });
  const file = join(o.outDir, 'compressed.safetensors');
  saveTrained(file, runner, { stage: 'compressed' });

  // 4. report, dense and compressed measured in the same process
  const d = report(dense, dense, ''), c = report(compact, runner, o.merge);
  [d.latencyMs, c.latencyMs] = measureLatencies([dense, runner], o.latencyBatch, o.latencyRuns);
  return {
    model: compact,
    report: {
      dense: d, compressed: c, macsRatio: d.macs / c.macs, speedup: d.latencyMs / c.latencyMs,
      widths: compact.cfg.widths ?? [], merge: o.merge, extractedAccuracy, searchLog, finetuneLog, file,
    },
  };
}
