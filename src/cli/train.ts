// cait train: train a ViT from scratch (or fine-tune a model file) on an image dataset.
import { join } from 'node:path';
import { loadDataset, FASHION_MNIST_MEAN, FASHION_MNIST_STD } from '../data/mnist.js';
import { createModel } from '../nn/model.js';
import { getPreset, FASHION_MNIST_CLASSES } from '../nn/presets.js';
import { train, evaluate, subset, RUN_FILES, type EpochLog, type Trainable, type TrainOptions } from '../train/trainer.js';
import type { ImageSource } from '../data/augment.js';
import { existsSync, statSync } from 'node:fs';
import { getBackend } from '../tensor.js';
import { modelMacs } from '../seg/model.js';
import { denseArchitecture } from '../cait/macs.js';
import type { DatasetName } from '../data/dataset.js';
import { BACKEND_FLAGS, MERGE_FLAGS, MODEL_FLAGS, OUTPUT_FLAGS, SEG_FLAGS, UsageError, command, type Flags } from './flags.js';
import { checkBatchBytes, checkOutputFlag, emitJson, lossText, loadModelFlags, modelInputs, need, needModelForLoadFlags, noteInt8Input, useBackend, withMerging } from './common.js';
import { SCENE_FLAGS, printScores, refuseSceneFlags, sceneSpecOf, scenesFor, scoresJson, taskOf } from './segment.js';
import { isSegmentation } from '../seg/model.js';
import { evaluateSegmentation } from '../seg/metrics.js';
import { sceneClasses } from '../data/scenes.js';
import type { VisionTransformer } from '../nn/vit.js';
import { CROP_PAD_FLAG, FOLDER_FLAGS, checkFolderFlags, isFolder, refuseCropPad, trainFolder } from './folder.js';

/** The optimisation flags of train (compress's stages take a subset with their own defaults). */
export const TRAIN_FLAGS = {
  ...MODEL_FLAGS,
  data: { type: 'string', value: 'NAME|DIR', help: 'dataset: fashion-mnist, mnist, or an image folder (DIR/train/<class>/* + DIR/val/<class>/*, or DIR/<class>/*)', defaultText: "fashion-mnist (segmentation: the model's scenes)" },
  epochs: { type: 'int', min: 1, max: 100000, help: 'epochs of the schedule (required)' },
  out: { type: 'string', value: 'DIR', help: 'run directory: model.safetensors, checkpoint.safetensors, log.jsonl (required)' },
  resume: { type: 'string', value: 'FILE', help: 'continue from a checkpoint.safetensors (parameters, optimizer, step, RNG state)' },
  batch: { type: 'int', min: 1, max: 4096, help: 'images per step', defaultText: '128 (segmentation 64)' },
  lr: { type: 'number', above: 0, default: 2e-3, help: 'peak learning rate (AdamW)' },
  'min-lr': { type: 'number', min: 0, max: 10, default: 1e-5, help: 'learning rate at the end of the cosine schedule' },
  wd: { type: 'number', min: 0, max: 10, default: 0.05, help: 'AdamW weight decay' },
  warmup: { type: 'number', min: 0, max: 100000, default: 1, help: 'epochs of linear warm-up (fractions allowed)' },
  smoothing: { type: 'number', min: 0, max: 0.99, help: 'label smoothing', defaultText: '0.1 (segmentation 0)' },
  clip: { type: 'number', min: 0, default: 1, help: 'clip the global gradient norm to this (0: no clipping)' },
  ...CROP_PAD_FLAG,
  seed: { type: 'int', min: 0, default: 0, help: 'seed of initialisation, shuffling and augmentation' },
  limit: { type: 'int', min: 1, help: 'train on this many images (spread over the split)', defaultText: 'all' },
  'stop-after': { type: 'int', min: 1, help: 'stop after this epoch (the schedule still spans --epochs)' },
  'eval-limit': { type: 'int', min: 1, help: 'test images (or scenes) for the final evaluation', defaultText: 'all' },
  val: { type: 'int', min: 1, value: 'N', help: 'hold out N training images (spread over the split) as a validation split, scored after every epoch', defaultText: 'none' },
  'save-every': { type: 'int', min: 1, value: 'STEPS', help: 'also save a resumable checkpoint every STEPS steps within an epoch (--resume continues mid-epoch exactly)', defaultText: 'end of each epoch only' },
  nan: { type: 'enum', choices: ['stop', 'skip'], default: 'stop', help: 'a non-finite loss or gradient: stop (exit 1, the last good checkpoint kept) or skip the batch and count it' },
  overwrite: { type: 'boolean', help: 'start afresh in an --out that holds a run, replacing its model, checkpoint and log (without it: refused unless --resume)' },
  ...FOLDER_FLAGS, ...BACKEND_FLAGS, ...MERGE_FLAGS, ...SEG_FLAGS, ...OUTPUT_FLAGS,
} as const;
type TrainFlags = Flags<typeof TRAIN_FLAGS>;

export const trainCommand = command({
  name: 'train',
  summary: 'train a ViT from scratch (or fine-tune a model file) on Fashion-MNIST, MNIST or segmentation scenes',
  usage: [
    '--preset vit_fmnist --data fashion-mnist --epochs 15 --out runs/fmnist',
    '--preset vit_fmnist --epochs 15 --out runs/fmnist --resume runs/fmnist/checkpoint.safetensors',
    '--model models/fmnist-dense.safetensors --merge h@1 --epochs 2 --lr 3e-4 --out runs/atme',
    '--task segment --preset vit_seg64 --epochs 15 --scenes 20000 --out runs/seg',
  ],
  flags: TRAIN_FLAGS,
  run: trainRun,
});

/**
 * The checks before any work: --out and --epochs given, the run directory's
 * files neither inputs nor special files (the trainer writes them atomically),
 * and a run already in --out not replaced by a fresh one unless --overwrite
 * says so (it would truncate that run's log and replace its model: hours of
 * training lost to a repeated command). A --resume, from that run's
 * checkpoint or another, continues it as the trainer documents (the log
 * trimmed to the checkpoint's step).
 */
function checkRun(f: TrainFlags): { out: string; epochs: number; inputs: Array<{ flag: string; path: string | undefined }> } {
  const out = need(f.out, 'out'), epochs = need(f.epochs, 'epochs');
  const names = Object.values(RUN_FILES);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out ${out}: not a directory (the run directory gets ${names.join(', ')})`);
  const inputs = modelInputs(f.model);
  checkOutputFlag('out', join(out, RUN_FILES.checkpoint), inputs);
  for (const file of [RUN_FILES.model, RUN_FILES.log]) checkOutputFlag('out', join(out, file), [...inputs, { flag: '--resume', path: f.resume }]);
  const held = names.filter((n) => existsSync(join(out, n)));
  if (held.length && f.resume === undefined && !f.overwrite) {
    throw new UsageError(`--out ${out} already holds a run (${held.join(', ')}): continue it with --resume ${join(out, RUN_FILES.checkpoint)}, choose another --out, or add --overwrite to replace it`);
  }
  if (f['stop-after'] !== undefined && f['stop-after'] > epochs) throw new UsageError(`--stop-after ${f['stop-after']} is past --epochs ${epochs}`);
  return { out, epochs, inputs };
}

/** The trainer's options shared by both tasks: the flags, checked. */
function runOptions(f: TrainFlags, run: ReturnType<typeof checkRun>, defaults: { batch: number; smoothing: number }): Omit<TrainOptions, 'cropPad' | 'flip' | 'mean' | 'std'> {
  return {
    epochs: run.epochs, outDir: run.out, resume: f.resume, inputs: run.inputs,
    batchSize: f.batch ?? defaults.batch, lr: f.lr, minLr: f['min-lr'],
    weightDecay: f.wd, warmupEpochs: f.warmup, smoothing: f.smoothing ?? defaults.smoothing,
    clip: f.clip, seed: f.seed, limit: f.limit, stopAfter: f['stop-after'], quiet: f.quiet,
    saveEvery: f['save-every'], nan: f.nan,
    onEpoch: f.json ? undefined : (l: EpochLog) => console.log(epochLine(l, run.epochs)),
  };
}

function epochLine(l: EpochLog, epochs: number): string {
  return `epoch ${l.epoch}/${epochs}: loss ${l.loss.toFixed(4)}${l.valAccuracy !== undefined ? `, validation accuracy ${(100 * l.valAccuracy).toFixed(2)}%` : ''}` +
    `, ${l.imagesPerSec.toFixed(0)} img/s, ${l.seconds.toFixed(1)} s${l.skipped ? `, ${l.skipped} non-finite batches skipped` : ''}`;
}

/** Where the run stands before it starts: model, size, cost, backend, data. */
function printHeader(runner: Trainable, vit: VisionTransformer, data: string): void {
  const be = getBackend(), threads = (be as { threads?: number }).threads ?? 1, merge = runner.cfg.merge ?? '';
  const macs = modelMacs(vit.cfg, merge), dense = modelMacs(denseArchitecture(vit.cfg), '');
  const params = vit.numParams(), count = params >= 1e6 ? `${(params / 1e6).toFixed(2)} M` : `${(params / 1e3).toFixed(1)} k`;
  console.log(`model ${vit.cfg.name}${vit.cfg.widths ? ' (compact)' : ''}: ${count} parameters, ${(macs / 1e6).toFixed(2)} MMACs per image` +
    `${merge || vit.cfg.widths ? ` (${[merge && `merging ${merge}`, vit.cfg.widths && 'pruned widths'].filter(Boolean).join(', ')}: ${(dense / macs).toFixed(2)}x fewer than the dense full-width model)` : ''}; backend ${be.name}, ${threads} thread${threads === 1 ? '' : 's'}`);
  console.log(`data ${data}`);
}

/** The images `idx` of a split, as a split of their own (the validation split). */
function pickImages(src: ImageSource, idx: Int32Array): ImageSource {
  const px = src.h * src.w, images = new Uint8Array(idx.length * px), labels = new (src.labels instanceof Uint16Array ? Uint16Array : Uint8Array)(idx.length);
  idx.forEach((j, i) => { images.set(src.images.subarray(j * px, (j + 1) * px), i * px); labels[i] = src.labels[j]; });
  return { images, labels, n: idx.length, h: src.h, w: src.w };
}

function trainRun(f: TrainFlags): void {
  const run = checkRun(f);
  useBackend(f.backend, f.threads);
  needModelForLoadFlags(f);
  const loaded = f.model ? loadModelFlags(f.model, f.preset, f) : undefined;
  if (loaded) noteInt8Input('train', f.model!, loaded.metadata, 'the model it saves is float (cait quantize it again)');
  // the forward alone, a lower bound of a training step (gradients and optimizer state come on top)
  if (f.batch !== undefined && (loaded || f.preset)) checkBatchBytes(loaded ? loaded.model.cfg : getPreset(f.preset!), f.batch, '--batch');
  // a new model's task is its preset's (--preset vit_seg64 alone trained it as a classifier and failed in the loss)
  const seg = taskOf(f, loaded?.model.cfg ?? (f.preset ? getPreset(f.preset) : undefined)) === 'segment';
  if (seg || !isFolder(f.data)) checkFolderFlags(f, seg ? 'segmentation scenes' : `the built-in dataset ${f.data ?? 'fashion-mnist'}`);
  if (!seg) refuseSceneFlags(f, SCENE_FLAGS, 'segmentation scenes (a segmentation model, --task segment)');
  if (seg) return trainSegment(f, run, loaded);
  if (isFolder(f.data)) {
    const opts = runOptions(f, run, { batch: 128, smoothing: 0.1 });
    const header = (runner: Trainable, vit: VisionTransformer, train: number, val: number, heldOut: boolean): void => {
      if (!f.json) printHeader(runner, vit, `${f.data}: ${train} training images, ${heldOut ? `${val} validation` : 'scored on them too (none held out)'}; ${run.epochs} epoch${run.epochs === 1 ? '' : 's'} of ${Math.ceil(train / opts.batchSize)} steps (batch ${opts.batchSize})${f.resume ? `, resuming from ${f.resume}` : ''}`);
    };
    return emitJson(f, trainFolder(f, loaded, (m, md) => withMerging(m, f, md), opts, header));
  }
  const dataName = f.data ?? 'fashion-mnist';
  const out = run.out;
  const ds = loadDataset(dataName as DatasetName);
  if (f.val !== undefined && f.val >= ds.train.n) throw new UsageError(`--val ${f.val} leaves nothing to train on (${ds.train.n} training images)`);
  let model, metadata: Record<string, string> = {};
  if (loaded) ({ model, metadata } = loaded);
  else {
    const cfg = getPreset(f.preset ?? 'vit_fmnist');
    if (cfg.inChans !== 1 || cfg.imgSize < 28) throw new UsageError(`preset '${cfg.name}' takes ${cfg.inChans}x${cfg.imgSize}x${cfg.imgSize} input; ${dataName} needs a 1-channel preset of size >= 28 (e.g. vit_fmnist)`);
    cfg.mean = [ds.mean]; cfg.std = [ds.std]; cfg.dataSize = 28;
    cfg.classes = dataName === 'fashion-mnist' ? FASHION_MNIST_CLASSES : ds.classes;
    model = createModel(cfg, f.seed);
  }
  // with --merge (or a saved schedule) the wrapper trains; its cfg.merge is saved with the model
  const runner: Trainable = withMerging(model, f, metadata);
  const mean = model.cfg.mean[0] ?? FASHION_MNIST_MEAN, std = model.cfg.std[0] ?? FASHION_MNIST_STD;
  // --val N: N training images spread over the split, left out of training and scored after each epoch
  let indices: Int32Array | undefined, validate: TrainOptions['validate'];
  if (f.val !== undefined) {
    const valIdx = subset(ds.train.n, f.val), held = new Uint8Array(ds.train.n);
    for (const j of valIdx) held[j] = 1;
    indices = new Int32Array(ds.train.n - f.val);
    for (let j = 0, k = 0; j < ds.train.n; j++) if (!held[j]) indices[k++] = j;
    const val = pickImages(ds.train, valIdx);
    validate = () => evaluate(runner, val, { mean, std, quiet: true });
  }
  const used = Math.min(f.limit ?? Infinity, indices?.length ?? ds.train.n), batch = f.batch ?? 128;
  if (!f.json) printHeader(runner, model, `${dataName}: ${used} training images${f.val ? ` (${f.val} held out for validation)` : ''}, ${f['eval-limit'] ? Math.min(f['eval-limit'], ds.test.n) : ds.test.n} test; ` +
    `${run.epochs} epoch${run.epochs === 1 ? '' : 's'} of ${Math.ceil(used / batch)} steps (batch ${batch})${f.resume ? `, resuming from ${f.resume}` : ''}`);
  const logs = train(runner, ds.train, {
    ...runOptions(f, run, { batch: 128, smoothing: 0.1 }),
    cropPad: f['crop-pad'], flip: dataName === 'fashion-mnist', mean, std, indices, validate,
  });
  const ev = evaluate(runner, ds.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f['eval-limit'], quiet: f.quiet });
  const last = logs[logs.length - 1];
  const merge = runner.cfg.merge ?? '';
  if (!f.json) console.log(`trained ${logs.length} epoch(s)${merge ? ` merging ${merge}` : ''}: ${lossText(last)}, test accuracy ${(100 * ev.accuracy).toFixed(2)}% (${ev.n} images); model in ${join(out, 'model.safetensors')}`);
  emitJson(f, { model: join(out, 'model.safetensors'), epochs: last?.epoch ?? 0, loss: last?.loss ?? null, accuracy: ev.accuracy, n: ev.n, images_per_sec: last?.imagesPerSec ?? null, merge, skipped: logs.reduce((k, l) => k + (l.skipped ?? 0), 0) });
}

/**
 * `cait train --task segment`: a segmentation model (preset vit_seg64 by
 * default, or --model to continue one) on scenes of --data items, per-pixel
 * cross-entropy, then mean IoU on the test scenes. A new model records its
 * scene spec, classes and the training scenes' pixel mean/std in its config.
 */
function trainSegment(f: TrainFlags, run: ReturnType<typeof checkRun>, loaded?: { model: VisionTransformer; metadata: Record<string, string> }): void {
  const out = run.out;
  if (f.val !== undefined) throw new UsageError('--val applies to classification (segmentation keeps its test scenes apart already)');
  refuseCropPad(f, 'applies to classification (segmentation scenes place their items at random already)');
  let model: VisionTransformer, metadata: Record<string, string> = {};
  if (loaded) ({ model, metadata } = loaded);
  else {
    const cfg = getPreset(f.preset ?? 'vit_seg64');
    if (!isSegmentation(cfg)) throw new UsageError(`preset '${cfg.name}' is a classification model; --task segment needs a segmentation preset (e.g. vit_seg64)`);
    if (cfg.inChans !== 1) throw new UsageError(`preset '${cfg.name}' takes ${cfg.inChans} channels; scenes are grey (1 channel)`);
    cfg.scenes = sceneSpecOf(cfg, f);
    model = createModel(cfg, f.seed);
  }
  const spec = sceneSpecOf(model.cfg, f), scenes = scenesFor(spec, f);
  if (!loaded) {
    // input normalisation measured on the first 1,000 training scenes; classes: background + the items'
    const { mean, std } = scenes.train.pixelStats();
    Object.assign(model.cfg, { mean: [mean], std: [std], classes: sceneClasses(scenes.classes), numClasses: 1 + scenes.classes.length });
    if (model.head.outFeatures !== model.cfg.numClasses) throw new UsageError(`preset '${model.cfg.name}' has ${model.head.outFeatures} classes, ${spec.data} scenes need ${model.cfg.numClasses}`);
  }
  const runner = withMerging(model, f, metadata);
  const used = Math.min(f.limit ?? Infinity, scenes.train.n), batch = f.batch ?? 64;
  if (!f.json) printHeader(runner, model, `${spec.data} scenes: ${used} training, ${f['eval-limit'] ? Math.min(f['eval-limit'], scenes.test.n) : scenes.test.n} test; ` +
    `${run.epochs} epoch${run.epochs === 1 ? '' : 's'} of ${Math.ceil(used / batch)} steps (batch ${batch})${f.resume ? `, resuming from ${f.resume}` : ''}`);
  const logs = train(runner, scenes.train, {
    ...runOptions(f, run, { batch: 64, smoothing: 0 }),
    cropPad: 0, flip: spec.data === 'fashion-mnist', mean: model.cfg.mean[0], std: model.cfg.std[0],
  });
  const r = evaluateSegmentation(runner, scenes.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f['eval-limit'], quiet: f.quiet });
  const last = logs[logs.length - 1], merge = runner.cfg.merge ?? '';
  if (!f.json) {
    console.log(`trained ${logs.length} epoch(s)${merge ? ` merging ${merge}` : ''} on ${Math.min(scenes.train.n, f.limit ?? Infinity)} ${spec.data} scenes: ${lossText(last)}; model in ${join(out, 'model.safetensors')}`);
    printScores(r, model.cfg.classes ?? [], `${spec.data} test scenes`);
  }
  emitJson(f, { model: join(out, 'model.safetensors'), epochs: last?.epoch ?? 0, loss: last?.loss ?? null, ...scoresJson(r), images_per_sec: last?.imagesPerSec ?? null, merge, skipped: logs.reduce((k, l) => k + (l.skipped ?? 0), 0) });
}
