// cait train: train a ViT from scratch (or fine-tune a model file) on an image dataset.
import { join } from 'node:path';
import { loadDataset, FASHION_MNIST_MEAN, FASHION_MNIST_STD } from '../data/mnist.js';
import { createModel, loadModel } from '../nn/model.js';
import { getPreset, FASHION_MNIST_CLASSES } from '../nn/presets.js';
import { train, evaluate, type Trainable } from '../train/trainer.js';
import type { DatasetName } from '../data/dataset.js';
import { BACKEND_FLAGS, MERGE_FLAGS, MODEL_FLAGS, OUTPUT_FLAGS, SEG_FLAGS, UsageError, command, type Flags } from './flags.js';
import { emitJson, need, useBackend, withMerging } from './common.js';
import { printScores, sceneSpecOf, scenesFor, scoresJson, taskOf } from './segment.js';
import { isSegmentation } from '../seg/model.js';
import { evaluateSegmentation } from '../seg/metrics.js';
import { sceneClasses } from '../data/scenes.js';
import type { VisionTransformer } from '../nn/vit.js';

/** The optimisation flags of train (compress's stages take a subset with their own defaults). */
export const TRAIN_FLAGS = {
  ...MODEL_FLAGS,
  data: { type: 'string', value: 'NAME', help: 'dataset: fashion-mnist or mnist', defaultText: "fashion-mnist (segmentation: the model's scenes)" },
  epochs: { type: 'int', min: 1, max: 100000, help: 'epochs of the schedule (required)' },
  out: { type: 'string', value: 'DIR', help: 'run directory: model.safetensors, checkpoint.safetensors, log.jsonl (required)' },
  resume: { type: 'string', value: 'FILE', help: 'continue from a checkpoint.safetensors (parameters, optimizer, step, RNG state)' },
  batch: { type: 'int', min: 1, max: 4096, help: 'images per step', defaultText: '128 (segmentation 64)' },
  lr: { type: 'number', above: 0, max: 10, default: 2e-3, help: 'peak learning rate (AdamW)' },
  'min-lr': { type: 'number', min: 0, max: 10, default: 1e-5, help: 'learning rate at the end of the cosine schedule' },
  wd: { type: 'number', min: 0, max: 10, default: 0.05, help: 'AdamW weight decay' },
  warmup: { type: 'number', min: 0, max: 100000, default: 1, help: 'epochs of linear warm-up (fractions allowed)' },
  smoothing: { type: 'number', min: 0, max: 0.99, help: 'label smoothing', defaultText: '0.1 (segmentation 0)' },
  clip: { type: 'number', min: 0, default: 1, help: 'clip the global gradient norm to this (0: no clipping)' },
  'crop-pad': { type: 'int', min: 0, max: 64, default: 2, help: 'pixels of random shift (augmentation)' },
  seed: { type: 'int', min: 0, default: 0, help: 'seed of initialisation, shuffling and augmentation' },
  limit: { type: 'int', min: 1, help: 'train on this many images (spread over the split)', defaultText: 'all' },
  'stop-after': { type: 'int', min: 1, help: 'stop after this epoch (the schedule still spans --epochs)' },
  'eval-limit': { type: 'int', min: 1, help: 'test images (or scenes) for the final evaluation', defaultText: 'all' },
  ...BACKEND_FLAGS, ...MERGE_FLAGS, ...SEG_FLAGS, ...OUTPUT_FLAGS,
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

function trainRun(f: TrainFlags): void {
  useBackend(f.backend, f.threads);
  const loaded = f.model ? loadModel(f.model, { preset: f.preset }) : undefined;
  if (taskOf(f, loaded?.model.cfg) === 'segment') return trainSegment(f, loaded);
  const dataName = f.data ?? 'fashion-mnist';
  if (dataName !== 'fashion-mnist' && dataName !== 'mnist') throw new UsageError(`--data must be fashion-mnist or mnist, got '${dataName}'`);
  const out = need(f.out, 'out');
  const ds = loadDataset(dataName as DatasetName);
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
  const epochs = need(f.epochs, 'epochs');
  const logs = train(runner, ds.train, {
    epochs, outDir: out, resume: f.resume,
    batchSize: f.batch ?? 128, lr: f.lr, minLr: f['min-lr'],
    weightDecay: f.wd, warmupEpochs: f.warmup, smoothing: f.smoothing ?? 0.1,
    clip: f.clip, seed: f.seed, cropPad: f['crop-pad'], flip: dataName === 'fashion-mnist',
    mean: model.cfg.mean[0] ?? FASHION_MNIST_MEAN, std: model.cfg.std[0] ?? FASHION_MNIST_STD,
    limit: f.limit, stopAfter: f['stop-after'], quiet: f.quiet,
  });
  const ev = evaluate(runner, ds.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f['eval-limit'], quiet: f.quiet });
  const last = logs[logs.length - 1];
  const merge = runner.cfg.merge ?? '';
  if (!f.json) console.log(`trained ${logs.length} epoch(s)${merge ? ` merging ${merge}` : ''}: loss ${last?.loss.toFixed(4)}, test accuracy ${(100 * ev.accuracy).toFixed(2)}% (${ev.n} images); model in ${join(out, 'model.safetensors')}`);
  emitJson(f, { model: join(out, 'model.safetensors'), epochs: last?.epoch ?? 0, loss: last?.loss ?? null, accuracy: ev.accuracy, n: ev.n, images_per_sec: last?.imagesPerSec ?? null, merge });
}

/**
 * `cait train --task segment`: a segmentation model (preset vit_seg64 by
 * default, or --model to continue one) on scenes of --data items, per-pixel
 * cross-entropy, then mean IoU on the test scenes. A new model records its
 * scene spec, classes and the training scenes' pixel mean/std in its config.
 */
function trainSegment(f: TrainFlags, loaded?: { model: VisionTransformer; metadata: Record<string, string> }): void {
  const out = need(f.out, 'out');
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
  const logs = train(runner, scenes.train, {
    epochs: need(f.epochs, 'epochs'), outDir: out, resume: f.resume,
    batchSize: f.batch ?? 64, lr: f.lr, minLr: f['min-lr'],
    weightDecay: f.wd, warmupEpochs: f.warmup, smoothing: f.smoothing ?? 0,
    clip: f.clip, seed: f.seed, cropPad: 0, flip: spec.data === 'fashion-mnist',
    mean: model.cfg.mean[0], std: model.cfg.std[0],
    limit: f.limit, stopAfter: f['stop-after'], quiet: f.quiet,
  });
  const r = evaluateSegmentation(runner, scenes.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f['eval-limit'], quiet: f.quiet });
  const last = logs[logs.length - 1], merge = runner.cfg.merge ?? '';
  if (!f.json) {
    console.log(`trained ${logs.length} epoch(s)${merge ? ` merging ${merge}` : ''} on ${Math.min(scenes.train.n, f.limit ?? Infinity)} ${spec.data} scenes: loss ${last?.loss.toFixed(4)}; model in ${join(out, 'model.safetensors')}`);
    printScores(r, model.cfg.classes ?? [], `${spec.data} test scenes`);
  }
  emitJson(f, { model: join(out, 'model.safetensors'), epochs: last?.epoch ?? 0, loss: last?.loss ?? null, ...scoresJson(r), images_per_sec: last?.imagesPerSec ?? null, merge });
}
