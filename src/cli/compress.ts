// cait compress: the CAIT pipeline from the command line.
//   with data:   search (ATME + CDCP masks under the MAC budget, distilled from
//                the dense model) -> extract -> fine-tune -> report dense vs
//                compressed (accuracy, MACs, params, latency in the same run)
//   --structure-only: pick a schedule and widths for a MAC target without
//                data or weights (by default: time a few candidate
//                structures and keep the fastest; --prune uniform|mlp: the
//                analytic choice), save that (randomly initialised) compact
//                model, and measure its speed against the dense one.
import { dirname, join } from 'node:path';
import { copyFileSync, mkdirSync } from 'node:fs';
import { loadDataset } from '../data/mnist.js';
import type { DatasetName } from '../data/dataset.js';
import { createModel, loadModel, saveModel } from '../nn/model.js';
import { getPreset } from '../nn/presets.js';
import { countMacs, countParams } from '../cait/macs.js';
import { compress, measureLatencies, searchStructure, type CompressReport, type StageOptions } from '../cait/compress.js';
import type { TrainData } from '../train/trainer.js';
import type { VisionTransformer } from '../nn/vit.js';
import { pickStructure, structureCandidates, PRUNE_STYLES, type PruneStyle, type Structure } from '../cait/structure.js';
import { CaitModel } from '../cait/wrap.js';
import { formatSchedule, toSteps } from '../cait/atme.js';
import type { CdcpOptions } from '../cait/cdcp.js';
import { environment } from '../util/timing.js';
import { parseArgs, UsageError } from './args.js';
import { applyUnmergeFlag, emitJson, need, useBackend } from './common.js';
import { SEG_FLAGS, sceneSpecOf, scenesFor, taskOf } from './segment.js';
import { SegHead, segMacs } from '../seg/model.js';
import { evaluateSegmentation } from '../seg/metrics.js';
import type { CompressTask } from '../cait/compress.js';

const FLAGS = {
  model: 'string', preset: 'string', data: 'string', 'target-macs': 'number', merge: 'string', 'search-epochs': 'number',
  'finetune-epochs': 'number', out: 'string', json: 'boolean', 'structure-only': 'boolean', limit: 'number', 'eval-limit': 'number',
  batch: 'number', lr: 'number', 'finetune-lr': 'number', masks: 'string', 'shared-qkv': 'boolean', allocation: 'string',
  lambda: 'number', alpha: 'number', tau: 'number', 'hard-distill': 'boolean', runs: 'number', 'latency-batch': 'number',
  seed: 'number', backend: 'string', quiet: 'boolean', similarity: 'string', 'no-prop-attn': 'boolean', 'crop-pad': 'number', prune: 'string', 'search-runs': 'number', ...SEG_FLAGS,
} as const;

/** --target-macs RATIO: a reduction factor (1.7 = 1.7x fewer MACs), or a fraction of the dense MACs when below 1. */
export function reductionOf(v: number): number {
  if (!(v > 0)) throw new UsageError(`--target-macs must be positive, got ${v}`);
  return v >= 1 ? v : 1 / v;
}

export function compressCommand(argv: string[]): void {
  const { flags: f } = parseArgs(argv, FLAGS);
  useBackend(f.backend as string | undefined);
  const ratio = reductionOf(need(f['target-macs'] as number | undefined, 'target-macs'));
  const out = need(f.out as string | undefined, 'out');
  if (f['structure-only']) return structureOnly(f, ratio, out);
  const file = need(f.model as string | undefined, 'model');
  const { model: dense } = loadModel(file, { preset: f.preset as string | undefined });
  const seg = taskOf(f, dense.cfg) === 'segment';
  const dataName = seg ? sceneSpecOf(dense.cfg, f).data : (f.data as string | undefined) ?? 'fashion-mnist';
  if (dataName !== 'fashion-mnist' && dataName !== 'mnist') throw new UsageError(`--data must be fashion-mnist or mnist, got '${dataName}'`);
  const merge = f.merge !== undefined ? formatSchedule(toSteps(f.merge as string, dense.cfg.depth)) : pickStructure(dense.cfg, ratio).merge;
  // segmentation: scenes of the model's spec, its segmentation head in every stage, mean IoU as the score
  let data: { train: TrainData; test: unknown }, task: CompressTask | undefined;
  if (seg) {
    const scenes = scenesFor(sceneSpecOf(dense.cfg, f), f), mean = dense.cfg.mean[0], std = dense.cfg.std[0];
    applyUnmergeFlag(dense.cfg, f);   // the compressed model's config is a copy of this one
    data = scenes;
    task = {
      head: new SegHead(dense.cfg.segUnmerge), macs: (cfg, schedule) => segMacs(cfg, schedule).total,
      score: (m) => evaluateSegmentation(m, scenes.test, { mean, std, limit: f['eval-limit'] as number | undefined, quiet: !!f.quiet }).miou,
    };
  } else {
    const ds = loadDataset(dataName as DatasetName);
    data = { train: ds.train, test: ds.test };
  }
  const cropPad = (f['crop-pad'] as number | undefined) ?? 2;
  if (!Number.isInteger(cropPad) || cropPad < 0) throw new UsageError(`--crop-pad must be an integer >= 0 (pixels of random shift), got ${cropPad}`);
  const stage = (epochs: number, lr: number): StageOptions => ({
    epochs, batchSize: (f.batch as number) ?? (seg ? 64 : 128), lr, minLr: lr / 100, weightDecay: 0.05, warmupEpochs: Math.min(0.5, epochs / 4),
    smoothing: seg ? 0 : 0.1, clip: 1, seed: (f.seed as number) ?? 0, cropPad: seg ? 0 : cropPad, flip: dataName === 'fashion-mnist', limit: f.limit as number | undefined,
  });
  const cdcp: Partial<CdcpOptions> = { targetMacs: countMacs(dense.cfg, '').total / ratio };
  if (f.masks) cdcp.masks = f.masks as CdcpOptions['masks'];
  if (f['shared-qkv']) cdcp.sharedQkv = true;
  if (f.allocation) cdcp.allocation = f.allocation as CdcpOptions['allocation'];
  if (f.lambda !== undefined) cdcp.lambda = f.lambda as number;
  const runDir = join(dirname(out), `.compress-${Date.now()}`);
  const { model, report } = compress(dense, data, {
    merge, outDir: runDir, cdcp, task,
    atme: { ...(f.similarity ? { similarity: f.similarity as 'keys' } : {}), ...(f['no-prop-attn'] ? { propAttn: false } : {}) },
    distill: { ...(f.alpha !== undefined ? { alpha: f.alpha as number } : {}), ...(f.tau !== undefined ? { tau: f.tau as number } : {}), ...(f['hard-distill'] ? { hard: true } : {}) },
    search: stage((f['search-epochs'] as number) ?? 3, (f.lr as number) ?? 5e-4),
    finetune: stage((f['finetune-epochs'] as number) ?? 3, (f['finetune-lr'] as number) ?? 3e-4),
    evalLimit: f['eval-limit'] as number | undefined, latencyBatch: (f['latency-batch'] as number) ?? 1, latencyRuns: (f.runs as number) ?? 200,
    quiet: !!f.quiet,
  });
  mkdirSync(dirname(out) || '.', { recursive: true });
  copyFileSync(report.file, out);
  const rows = [
    { model: 'dense', ...report.dense },
    { model: 'compressed', ...report.compressed },
  ];
  if (seg) return segmentReport(f, out, merge, report, model);
  if (!f.json) {
    console.log(`\n${'model'.padEnd(12)}${'accuracy'.padEnd(10)}${'MMACs'.padEnd(10)}${'params'.padEnd(10)}latency (batch ${(f['latency-batch'] as number) ?? 1})`);
    for (const r of rows) console.log(`${r.model.padEnd(12)}${((100 * r.accuracy).toFixed(2) + '%').padEnd(10)}${(r.macs / 1e6).toFixed(2).padEnd(10)}${((r.params / 1e3).toFixed(0) + 'k').padEnd(10)}${r.latencyMs.toFixed(3)} ms`);
    console.log(`MACs ${report.macsRatio.toFixed(2)}x fewer, ${report.speedup.toFixed(2)}x faster, accuracy ${(100 * (report.compressed.accuracy - report.dense.accuracy)).toFixed(2)} points; merge ${merge || 'none'}; saved ${out}`);
  }
  emitJson({
    out, merge, widths: report.widths, dense: report.dense, compressed: report.compressed, mac_ratio: report.macsRatio, speedup: report.speedup,
    accuracy_drop: report.dense.accuracy - report.compressed.accuracy, extracted_accuracy: report.extractedAccuracy, env: environment(),
  });
  model.dispose();
}

/** The segmentation report: mean IoU where classification reports accuracy ({"dense": {"miou", ...}, "compressed": {...}, "miou_drop", ...}). */
function segmentReport(f: Record<string, unknown>, out: string, merge: string, report: CompressReport, model: VisionTransformer): void {
  const row = (r: CompressReport['dense']) => ({ miou: r.accuracy, macs: r.macs, params: r.params, latencyMs: r.latencyMs });
  if (!f.json) {
    console.log(`\n${'model'.padEnd(12)}${'mean IoU'.padEnd(10)}${'MMACs'.padEnd(10)}${'params'.padEnd(10)}latency (batch ${(f['latency-batch'] as number) ?? 1})`);
    for (const [name, r] of [['dense', report.dense], ['compressed', report.compressed]] as const)
      console.log(`${name.padEnd(12)}${((100 * r.accuracy).toFixed(2) + '%').padEnd(10)}${(r.macs / 1e6).toFixed(2).padEnd(10)}${((r.params / 1e3).toFixed(0) + 'k').padEnd(10)}${r.latencyMs.toFixed(3)} ms`);
    console.log(`MACs ${report.macsRatio.toFixed(2)}x fewer, ${report.speedup.toFixed(2)}x faster, mean IoU ${(100 * (report.compressed.accuracy - report.dense.accuracy)).toFixed(2)} points; merge ${merge || 'none'}; saved ${out}`);
  }
  emitJson({
    out, task: 'segment', merge, widths: report.widths, dense: row(report.dense), compressed: row(report.compressed), mac_ratio: report.macsRatio, speedup: report.speedup,
    miou_drop: report.dense.accuracy - report.compressed.accuracy, extracted_miou: report.extractedAccuracy, env: environment(),
  });
  model.dispose();
}

function structureOnly(f: Record<string, unknown>, ratio: number, out: string): void {
  if (f.model) throw new UsageError('--structure-only takes --preset NAME (no weights or data are used)');
  const cfg = getPreset(need(f.preset as string | undefined, 'preset'));
  const policy = (f.prune as string | undefined) ?? 'search';
  if (policy !== 'search' && !PRUNE_STYLES.includes(policy as PruneStyle)) throw new UsageError(`--prune must be search, ${PRUNE_STYLES.join(' or ')}, got '${policy}'`);
  const merge = f.merge !== undefined ? formatSchedule(toSteps(f.merge as string, cfg.depth)) : undefined;
  const batch = (f['latency-batch'] as number) ?? 1, seed = (f.seed as number) ?? 0;
  let s: Structure, candidates: Array<Record<string, unknown>> | undefined;
  if (policy === 'search') {
    const timed = searchStructure(cfg, structureCandidates(cfg, ratio, merge), { batch, seed, runs: (f['search-runs'] as number) ?? 8 });
    s = timed.reduce((a, b) => (b.latencyMs < a.latencyMs ? b : a));
    candidates = timed.map((c) => ({ merge: c.merge, prune: c.prune, keep: +c.keep.toFixed(4), mac_ratio: c.ratio, latency_ms: c.latencyMs }));
    if (!f.json) for (const c of timed) console.log(`  candidate ${(c.merge || 'none').padEnd(10)} ${c.prune.padEnd(7)} keep ${c.keep.toFixed(3)}  ${c.ratio.toFixed(3)}x fewer MACs  ${c.latencyMs.toFixed(2)} ms${c === s ? '  <- fastest' : ''}`);
  } else s = pickStructure(cfg, ratio, merge, policy as PruneStyle);
  const dense = createModel(cfg, seed);
  const compact = createModel({ ...cfg, widths: s.widths, merge: s.merge }, seed);
  mkdirSync(dirname(out) || '.', { recursive: true });
  saveModel(out, compact, { stage: 'structure-only' });
  const runner = s.merge ? new CaitModel(compact, { merge: s.merge }) : compact;
  // fresh runs for the reported speedup (the search's own timings pick, they do not report)
  const [dMs, cMs] = measureLatencies([dense, runner], batch, (f.runs as number) ?? 30);
  const res = {
    out, model: cfg.name, policy, merge: s.merge, prune: s.prune, keep: +s.keep.toFixed(4), widths: s.widths,
    dense: { macs: s.denseMacs, params: countParams(cfg), latencyMs: dMs },
    compressed: { macs: s.macs, params: countParams(compact.cfg), latencyMs: cMs },
    mac_ratio: s.ratio, speedup: dMs / cMs, ...(candidates ? { candidates } : {}), env: environment(),
  };
  if (!f.json) console.log(`${cfg.name}: merge ${s.merge || 'none'}, ${s.prune} keep ${s.keep.toFixed(3)} -> ${(s.macs / 1e9).toFixed(3)} GMACs (${s.ratio.toFixed(2)}x fewer); latency ${dMs.toFixed(2)} -> ${cMs.toFixed(2)} ms (${(dMs / cMs).toFixed(2)}x); saved ${out}`);
  emitJson(res);
  dense.dispose(); compact.dispose();
}
