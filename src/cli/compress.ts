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
import { readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic, type NamedInput } from '../io/output.js';
import { quantizeModel } from '../quant/int8.js';
import { quantizedFileBytes } from '../quant/format.js';
import { loadDataset } from '../data/mnist.js';
import type { DatasetName } from '../data/dataset.js';
import { createModel, loadModel, saveModel } from '../nn/model.js';
import { getPreset, type VitConfig } from '../nn/presets.js';
import { countMacs, countParams } from '../cait/macs.js';
import { compress, measureLatencies, searchStructure, type CompressReport, type StageOptions } from '../cait/compress.js';
import type { TrainData } from '../train/trainer.js';
import type { VisionTransformer } from '../nn/vit.js';
import { importanceMasks, pickStructure, structureCandidates, type Structure } from '../cait/structure.js';
import { extractCompact } from '../cait/extract.js';
import { CROP_PAD_FLAG, FOLDER_FLAGS, checkFolderFlags, isFolder, openFolder, refuseCropPad, scoreFolderSync } from './folder.js';
import { evaluate } from '../train/trainer.js';
import { CaitModel } from '../cait/wrap.js';
import { formatSchedule, toSteps } from '../cait/atme.js';
import type { CdcpOptions } from '../cait/cdcp.js';
import { environment } from '../util/timing.js';
import { getBackend } from '../tensor.js';
import { BACKEND_FLAGS, MERGE_FLAGS, MODEL_FLAGS, OUTPUT_FLAGS, SEG_FLAGS, UsageError, command, flagsSet, type Flags } from './flags.js';
import { applyUnmergeFlag, checkBatchBytes, checkOutputFlag, emitJson, loadModelFlags, mergeSteps, modelInputs, need, needModelForLoadFlags, noteInt8Input, useBackend } from './common.js';
import { PREFIX_WEIGHTS_FLAG, prefixWeightsOf, writeQuantized } from './quantize.js';
import { SCENE_FLAGS, refuseSceneFlags, sceneSpecOf, scenesFor, taskOf } from './segment.js';
import { SegHead, segMacs } from '../seg/model.js';
import { evaluateSegmentation } from '../seg/metrics.js';
import type { CompressTask } from '../cait/compress.js';

const COMPRESS_FLAGS = {
  ...MODEL_FLAGS,
  data: { type: 'string', value: 'NAME|DIR', help: 'training and test data: fashion-mnist, mnist, or an image folder (train split for the stages, val for the report)', defaultText: "fashion-mnist (segmentation: the model's scenes)" },
  'target-macs': { type: 'number', above: 0, max: 1000, value: 'RATIO', help: 'MAC budget: a reduction factor (1.7 = 1.7x fewer), or a fraction of the dense MACs when below 1 (required)' },
  out: { type: 'string', value: 'FILE', help: 'the compressed model (required)' },
  quantize: { type: 'enum', choices: ['int8'], help: 'write the compressed model as an int8 file (as cait quantize does)' },
  'prefix-weights': { ...PREFIX_WEIGHTS_FLAG, help: `with --quantize int8: ${PREFIX_WEIGHTS_FLAG.help}` },
  'structure-only': { type: 'boolean', help: 'no training: pick a schedule and widths for the target, time it; with --model the compact model keeps its weights (channels by weight importance) and --data reports its accuracy, else it is randomly initialised' },
  'search-epochs': { type: 'number', above: 0, max: 10000, default: 3, help: 'epochs of the mask search (ATME + CDCP, distilled)' },
  'finetune-epochs': { type: 'number', min: 0, max: 10000, default: 3, help: 'epochs of fine-tuning the extracted model' },
  batch: { type: 'int', min: 1, max: 4096, help: 'images per step', defaultText: '128 (segmentation 64)' },
  lr: { type: 'number', above: 0, max: 10, default: 5e-4, help: 'peak learning rate of the search' },
  'finetune-lr': { type: 'number', above: 0, max: 10, default: 3e-4, help: 'peak learning rate of the fine-tuning' },
  ...CROP_PAD_FLAG,
  limit: { type: 'int', min: 1, help: 'train on this many images', defaultText: 'all' },
  'eval-limit': { type: 'int', min: 1, help: 'test images (or scenes) for the accuracy report', defaultText: 'all' },
  masks: { type: 'enum', choices: ['topk', 'gates'], default: 'topk', help: "CDCP masks: hard top-k (straight-through) or ViT-Slim's continuous gates" },
  'shared-qkv': { type: 'boolean', help: 'one CDCP mask for the query/key and value channels' },
  allocation: { type: 'enum', choices: ['learned', 'uniform'], default: 'learned', help: 'CDCP keep per mask: learned from the scores, or the same fraction everywhere' },
  lambda: { type: 'number', min: 0, max: 1e6, default: 2, help: 'weight of the MAC-budget loss in the search' },
  alpha: { type: 'number', min: 0, max: 100, default: 1, help: 'weight of the distillation loss (the label loss has weight 1)' },
  tau: { type: 'number', above: 0, max: 100, default: 2, help: 'distillation temperature' },
  'hard-distill': { type: 'boolean', help: "distil from the dense model's argmax instead of its softened logits" },
  runs: { type: 'int', min: 1, max: 100000, help: 'timed rounds of the latency report', defaultText: '200 (--structure-only 30)' },
  'latency-batch': { type: 'int', min: 1, max: 256, default: 1, help: 'batch of the latency report' },
  prune: { type: 'enum', choices: ['search', 'uniform', 'mlp'], default: 'search', help: '--structure-only: time candidate structures and keep the fastest, or the analytic uniform / MLP-only choice' },
  'search-runs': { type: 'int', min: 1, max: 10000, default: 8, help: '--structure-only: timed rounds per candidate' },
  seed: { type: 'int', min: 0, default: 0, help: 'seed of shuffling, augmentation (and of the weights with --structure-only)' },
  ...FOLDER_FLAGS, ...BACKEND_FLAGS, ...MERGE_FLAGS, ...SEG_FLAGS, ...OUTPUT_FLAGS,
} as const;
type CompressFlags = Flags<typeof COMPRESS_FLAGS>;
/** The flags of the search and fine-tuning stages (and of ATME's switches there), which --structure-only does not run. */
const TRAINING_FLAGS = ['search-epochs', 'finetune-epochs', 'batch', 'lr', 'finetune-lr', 'crop-pad', 'limit', 'masks', 'shared-qkv', 'allocation',
  'lambda', 'alpha', 'tau', 'hard-distill', 'no-flip', 'no-rrc', 'rrc-scale', 'similarity', 'no-prop-attn'] as const satisfies ReadonlyArray<keyof typeof COMPRESS_FLAGS>;

export const compressCommand = command({
  name: 'compress',
  summary: 'CAIT: search ATME + CDCP under a MAC budget, extract, fine-tune, report dense vs compressed',
  usage: [
    '--model models/fmnist-dense.safetensors --data fashion-mnist --target-macs 2 --merge h@1 --out models/c.safetensors --json',
    '--preset deit_tiny_patch16_224 --structure-only --target-macs 1.7 --out deit-tiny-cait.safetensors',
    '--task segment --model models/seg-dense.safetensors --target-macs 1.8 --merge h@4,v@5 --out models/seg-cait.safetensors',
  ],
  notes: 'Without --merge a schedule is chosen for the target; --merge none compresses by pruning alone.',
  flags: COMPRESS_FLAGS,
  run: compressRun,
});

/** --target-macs RATIO: a reduction factor (1.7 = 1.7x fewer MACs), or a fraction of the dense MACs when below 1. */
export function reductionOf(v: number): number {
  if (!(v > 0)) throw new UsageError(`--target-macs must be positive, got ${v}`);
  return v >= 1 ? v : 1 / v;
}

function compressRun(f: CompressFlags): void {
  useBackend(f.backend, f.threads);
  const ratio = reductionOf(need(f['target-macs'], 'target-macs'));
  const out = need(f.out, 'out'), inputs = modelInputs(f.model);
  checkOutputFlag('out', out, inputs);
  needModelForLoadFlags(f);
  // each mode's own flags, given to the other, were ignored without a word (--finetune-epochs 5 --structure-only trained nothing)
  const ignored = flagsSet(f, COMPRESS_FLAGS, f['structure-only'] ? TRAINING_FLAGS : ['prune', 'search-runs']);
  if (ignored.length) {
    throw new UsageError(f['structure-only']
      ? `${ignored.join(', ')}: --structure-only does not train (it picks a schedule and widths, keeps or initialises the weights, and runs ATME's defaults); leave ${ignored.length === 1 ? 'it' : 'them'} out, or drop --structure-only`
      : `${ignored.join(', ')} appl${ignored.length === 1 ? 'ies' : 'y'} to --structure-only (the search without training); a trained compress learns its widths`);
  }
  if (!f.quantize && flagsSet(f, COMPRESS_FLAGS, ['prefix-weights']).length) throw new UsageError('--prefix-weights applies to the int8 file: give --quantize int8');
  if (f['structure-only']) return structureOnly(f, ratio, out, inputs);
  const file = need(f.model, 'model');
  const { model: dense, metadata: denseMeta } = loadModelFlags(file, f.preset, f);
  noteInt8(f, file, denseMeta);
  // the forward alone, a lower bound of a training step (gradients and optimizer state come on top)
  if (f.batch !== undefined) checkBatchBytes(dense.cfg, f.batch, '--batch');
  checkBatchBytes(dense.cfg, f['latency-batch'], '--latency-batch');
  const seg = taskOf(f, dense.cfg) === 'segment';
  const folder = !seg && isFolder(f.data);
  if (!seg) refuseSceneFlags(f, SCENE_FLAGS, 'segmentation scenes (a segmentation model, --task segment)');
  if (!folder) checkFolderFlags(f, seg ? 'segmentation scenes' : `the built-in dataset ${f.data ?? 'fashion-mnist'}`);
  const dataName = seg ? sceneSpecOf(dense.cfg, f).data : f.data ?? 'fashion-mnist';
  // parsed once here; the library gets the steps, the report and the saved config the string
  const steps = f.merge !== undefined ? mergeSteps(f.merge, dense.cfg) : toSteps(pickStructure(dense.cfg, ratio).merge, dense.cfg);
  const merge = formatSchedule(steps);
  // segmentation: scenes of the model's spec, its segmentation head in every stage, mean IoU as the score
  let data: { train: TrainData; test: unknown }, task: CompressTask | undefined;
  let testWhat = seg ? 'test scenes' : 'test images';
  if (seg) {
    refuseCropPad(f, 'applies to classification (segmentation scenes place their items at random already)');
    const scenes = scenesFor(sceneSpecOf(dense.cfg, f), f), mean = dense.cfg.mean[0], std = dense.cfg.std[0];
    applyUnmergeFlag(dense.cfg, f);   // the compressed model's config is a copy of this one
    data = scenes;
    task = {
      head: new SegHead(dense.cfg.segUnmerge), macs: (cfg, schedule) => segMacs(cfg, schedule).total,
      score: (m) => evaluateSegmentation(m, scenes.test, { mean, std, limit: f['eval-limit'], quiet: f.quiet }).miou,
    };
  } else if (folder) {
    // the folder's train split for search and fine-tuning; its val split scores every model of the report
    const fd = openFolder(dataName, dense.cfg, f, ['train', 'val'], { train: f.limit, val: f['eval-limit'] });
    data = { train: fd.train, test: fd.val };
    testWhat = fd.listing.heldOut ? `${fd.listing.valDir ?? 'held-out'} images` : 'of them scored (none held out)';
    task = { score: (m) => scoreFolderSync(m, fd.val, { limit: f['eval-limit'] }).top1 };
  } else {
    const ds = loadDataset(dataName as DatasetName);
    data = { train: ds.train, test: ds.test };
  }
  const cropPad = f['crop-pad'];
  const stage = (epochs: number, lr: number): StageOptions => ({
    epochs, batchSize: f.batch ?? (seg ? 64 : 128), lr, minLr: lr / 100, weightDecay: 0.05, warmupEpochs: Math.min(0.5, epochs / 4),
    smoothing: seg ? 0 : 0.1, clip: 1, seed: f.seed, cropPad: seg ? 0 : cropPad, flip: folder ? !f['no-flip'] : dataName === 'fashion-mnist', limit: f.limit,
  });
  // the budget is on the count the report gives: a segmentation model's head and upsampling do not
  // depend on the widths, so CDCP's target (its MAC model counts the classifier) is the task's target
  // less that constant (it was the classifier's count / ratio: a 1.8x target reported 1.78x)
  const taskMacs = task?.macs ?? ((c: VitConfig, s: string) => countMacs(c, s).total);
  const fixedMacs = taskMacs(dense.cfg, merge) - countMacs(dense.cfg, merge).total;
  const cdcp: Partial<CdcpOptions> = { targetMacs: taskMacs(dense.cfg, '') / ratio - fixedMacs, masks: f.masks, allocation: f.allocation, lambda: f.lambda };
  if (f['shared-qkv']) cdcp.sharedQkv = true;
  const runDir = join(dirname(out), `.compress-${Date.now()}`);
  if (!f.json) {
    // the header: where the run starts from and what it aims at
    const be = getBackend(), threads = (be as { threads?: number }).threads ?? 1, denseMacs = countMacs(dense.cfg, '').total;
    const nTest = (data.test as { n?: number } | undefined)?.n;
    console.log(`compress ${dense.cfg.name} (${file}): ${(dense.numParams() / 1e6).toFixed(2)} M parameters, ${(denseMacs / 1e6).toFixed(2)} MMACs -> budget ${(denseMacs / ratio / 1e6).toFixed(2)} (${ratio.toFixed(2)}x fewer), ATME ${merge || 'none'}; backend ${be.name}, ${threads} thread${threads === 1 ? '' : 's'}`);
    console.log(`data ${dataName}: ${Math.min(f.limit ?? Infinity, data.train.n)} training ${seg ? 'scenes' : 'images'}${nTest ? `, ${Math.min(f['eval-limit'] ?? Infinity, nTest)} ${testWhat}` : ''}; stages: search (${f['search-epochs']} epoch${f['search-epochs'] === 1 ? '' : 's'}), extract, fine-tune (${f['finetune-epochs']} epoch${f['finetune-epochs'] === 1 ? '' : 's'}), report`);
  }
  // the stages' checkpoints and logs go to a scratch folder beside --out, removed however the run ends
  let model: VisionTransformer, report: CompressReport;
  try {
    ({ model, report } = compress(dense, data, {
      log: f.json ? undefined : (line) => console.log(line),
      merge: steps, outDir: runDir, cdcp, task,
      atme: { ...(f.similarity ? { similarity: f.similarity } : {}), ...(f['no-prop-attn'] ? { propAttn: false } : {}) },
      distill: { alpha: f.alpha, tau: f.tau, hard: f['hard-distill'] },
      search: stage(f['search-epochs'], f.lr),
      finetune: stage(f['finetune-epochs'], f['finetune-lr']),
      evalLimit: f['eval-limit'], latencyBatch: f['latency-batch'], latencyRuns: f.runs ?? 200,
      quiet: f.quiet,
    }));
    if (f.quantize) {
      const saved = loadModel(report.file);
      writeQuantized(saved.model, out, saved.metadata, inputs, undefined, { prefixWeights: prefixWeightsOf(f) }).qm.dispose();
      saved.model.dispose();
    } else writeFileAtomic(out, readFileSync(report.file), inputs);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  const rows = [
    { model: 'dense', ...report.dense },
    { model: 'compressed', ...report.compressed },
  ];
  if (seg) return segmentReport(f, out, merge, report, model);
  if (!f.json) {
    console.log(`\n${'model'.padEnd(12)}${'accuracy'.padEnd(10)}${'MMACs'.padEnd(10)}${'params'.padEnd(10)}latency (batch ${f['latency-batch']})`);
    for (const r of rows) console.log(`${r.model.padEnd(12)}${((100 * r.accuracy).toFixed(2) + '%').padEnd(10)}${(r.macs / 1e6).toFixed(2).padEnd(10)}${((r.params / 1e3).toFixed(0) + 'k').padEnd(10)}${r.latencyMs.toFixed(3)} ms`);
    console.log(`MACs ${report.macsRatio.toFixed(2)}x fewer, ${report.speedup.toFixed(2)}x faster, accuracy ${(100 * (report.compressed.accuracy - report.dense.accuracy)).toFixed(2)} points; merge ${merge || 'none'}; saved ${out}`);
  }
  emitJson(f, {
    out, merge, widths: report.widths, dense: report.dense, compressed: report.compressed, mac_ratio: report.macsRatio, speedup: report.speedup,
    accuracy_drop: report.dense.accuracy - report.compressed.accuracy, extracted_accuracy: report.extractedAccuracy, env: environment(),
    ...(f.quantize ? { quantize: f.quantize } : {}),
  });
  model.dispose();
}

/** The segmentation report: mean IoU where classification reports accuracy ({"dense": {"miou", ...}, "compressed": {...}, "miou_drop", ...}). */
function segmentReport(f: CompressFlags, out: string, merge: string, report: CompressReport, model: VisionTransformer): void {
  const row = (r: CompressReport['dense']) => ({ miou: r.accuracy, macs: r.macs, params: r.params, latencyMs: r.latencyMs });
  if (!f.json) {
    console.log(`\n${'model'.padEnd(12)}${'mean IoU'.padEnd(10)}${'MMACs'.padEnd(10)}${'params'.padEnd(10)}latency (batch ${f['latency-batch']})`);
    for (const [name, r] of [['dense', report.dense], ['compressed', report.compressed]] as const)
      console.log(`${name.padEnd(12)}${((100 * r.accuracy).toFixed(2) + '%').padEnd(10)}${(r.macs / 1e6).toFixed(2).padEnd(10)}${((r.params / 1e3).toFixed(0) + 'k').padEnd(10)}${r.latencyMs.toFixed(3)} ms`);
    console.log(`MACs ${report.macsRatio.toFixed(2)}x fewer, ${report.speedup.toFixed(2)}x faster, mean IoU ${(100 * (report.compressed.accuracy - report.dense.accuracy)).toFixed(2)} points; merge ${merge || 'none'}; saved ${out}`);
  }
  emitJson(f, {
    out, task: 'segment', merge, widths: report.widths, dense: row(report.dense), compressed: row(report.compressed), mac_ratio: report.macsRatio, speedup: report.speedup,
    miou_drop: report.dense.accuracy - report.compressed.accuracy, extracted_miou: report.extractedAccuracy, env: environment(),
  });
  model.dispose();
}

/** An int8 --model: compress works on its dequantized weights (noteInt8Input). */
const noteInt8 = (f: CompressFlags, file: string, metadata: Record<string, string>): void =>
  noteInt8Input('compress', file, metadata, f.quantize ? 'its output is quantized again (--quantize int8)' : 'the model it saves is float (add --quantize int8)');

function structureOnly(f: CompressFlags, ratio: number, out: string, inputs: readonly NamedInput[]): void {
  const loaded = f.model ? loadModelFlags(f.model, f.preset, f) : undefined;
  if (loaded) noteInt8(f, f.model!, loaded.metadata);
  const cfg = loaded ? structuredClone(loaded.model.cfg) : getPreset(need(f.preset, 'preset'));
  // it times and counts the classifier's graph and scores --data as classes: a segmentation
  // model got the class-token head's MACs and latency, and 10% 'accuracy'
  if (taskOf(f, cfg) === 'segment') throw new UsageError(`${f.model ?? f.preset} is a segmentation model: --structure-only times and scores classifiers; compress it with training (drop --structure-only)`);
  refuseSceneFlags(f, SCENE_FLAGS, 'segmentation scenes (a segmentation model, --task segment)');
  checkBatchBytes(cfg, f['latency-batch'], '--latency-batch');
  // --data is read before the search: a bad one fails before any work
  if (f.data !== undefined && !isFolder(f.data)) checkFolderFlags(f, `the built-in dataset ${f.data}`);
  const evalData = loaded && f.data !== undefined
    ? (isFolder(f.data) ? { folder: openFolder(f.data, cfg, f, ['val'], { val: f['eval-limit'] }).val } : { test: loadDataset(f.data as DatasetName).test })
    : null;
  if (loaded && cfg.merge) delete cfg.merge; // the structure's schedule replaces a saved one
  const policy = f.prune;
  const merge = f.merge !== undefined ? formatSchedule(mergeSteps(f.merge, cfg)) : undefined;
  const batch = f['latency-batch'], seed = f.seed;
  let s: Structure, candidates: Array<Record<string, unknown>> | undefined;
  if (policy === 'search') {
    const timed = searchStructure(cfg, structureCandidates(cfg, ratio, merge), { batch, seed, runs: f['search-runs'] });
    s = timed.reduce((a, b) => (b.latencyMs < a.latencyMs ? b : a));
    candidates = timed.map((c) => ({ merge: c.merge, prune: c.prune, keep: +c.keep.toFixed(4), mac_ratio: c.ratio, latency_ms: c.latencyMs }));
    if (!f.json) for (const c of timed) console.log(`  candidate ${(c.merge || 'none').padEnd(10)} ${c.prune.padEnd(7)} keep ${c.keep.toFixed(3)}  ${c.ratio.toFixed(3)}x fewer MACs  ${c.latencyMs.toFixed(2)} ms${c === s ? '  <- fastest' : ''}`);
  } else s = pickStructure(cfg, ratio, merge, policy);
  // with --model: its own weights, the channels kept by weight importance (no data needed)
  const dense = loaded?.model ?? createModel(cfg, seed);
  const compact = loaded ? extractCompact(dense, importanceMasks(dense, s.widths), s.merge) : createModel({ ...cfg, widths: s.widths, merge: s.merge }, seed);
  const stage = { stage: loaded ? 'structure-only-weights' : 'structure-only' };
  const qm = f.quantize ? quantizeModel(compact, { prefixWeights: prefixWeightsOf(f) }) : null;   // compact then runs int8 below
  const runner = s.merge ? new CaitModel(compact, { merge: s.merge }) : compact;
  // --model with --data: accuracy before any fine-tuning, dense and compact on the same images
  let accuracy: { dense: number; compressed: number; n: number } | undefined;
  if (evalData) {
    if (evalData.folder) {
      const d = scoreFolderSync(dense, evalData.folder, { limit: f['eval-limit'] });
      accuracy = { dense: d.top1, compressed: scoreFolderSync(runner, evalData.folder, { limit: f['eval-limit'] }).top1, n: d.n };
    } else {
      const eo = { mean: cfg.mean[0], std: cfg.std[0], limit: f['eval-limit'], quiet: f.quiet || f.json };
      const d = evaluate(dense, evalData.test!, eo);
      accuracy = { dense: d.accuracy, compressed: evaluate(runner, evalData.test!, eo).accuracy, n: d.n };
    }
  }
  // fresh runs for the reported speedup (the search's own timings pick, they do not report)
  const [dMs, cMs] = measureLatencies([dense, runner], batch, f.runs ?? 30);
  const res = {
    out, model: cfg.name, policy, merge: s.merge, prune: s.prune, keep: +s.keep.toFixed(4), widths: s.widths,
    dense: { macs: s.denseMacs, params: countParams(cfg), latencyMs: dMs },
    compressed: { macs: s.macs, params: countParams(compact.cfg), latencyMs: cMs },
    mac_ratio: s.ratio, speedup: dMs / cMs, ...(f.quantize ? { quantize: f.quantize } : {}), ...(candidates ? { candidates } : {}), ...(accuracy ? { accuracy_before_finetune: accuracy } : {}), env: environment(),
  };
  if (!f.json) console.log(`${cfg.name}: merge ${s.merge || 'none'}, ${s.prune} keep ${s.keep.toFixed(3)} -> ${(s.macs / 1e9).toFixed(3)} GMACs (${s.ratio.toFixed(2)}x fewer); latency ${dMs.toFixed(2)} -> ${cMs.toFixed(2)} ms (${(dMs / cMs).toFixed(2)}x); saved ${out}`);
  if (!f.json && accuracy) console.log(`accuracy before fine-tuning on ${accuracy.n} ${f.data} images: dense ${(100 * accuracy.dense).toFixed(2)}%, compact ${(100 * accuracy.compressed).toFixed(2)}%`);
  // written last: a failure above leaves --out as it was
  if (qm) { writeFileAtomic(out, quantizedFileBytes(compact, qm, stage), inputs); qm.dispose(); }
  else saveModel(out, compact, stage, inputs);
  emitJson(f, res);
  dense.dispose(); compact.dispose();
}
