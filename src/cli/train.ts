// cait train: train a ViT from scratch (or fine-tune a model file) on an image dataset.
import { join } from 'node:path';
import { loadDataset, FASHION_MNIST_MEAN, FASHION_MNIST_STD } from '../data/mnist.js';
import { createModel, loadModel } from '../nn/model.js';
import { getPreset, FASHION_MNIST_CLASSES } from '../nn/presets.js';
import { train, evaluate, type Trainable } from '../train/trainer.js';
import type { DatasetName } from '../data/dataset.js';
import { parseArgs, UsageError } from './args.js';
import { MERGE_FLAGS, THREAD_FLAGS, emitJson, need, useBackend, withMerging } from './common.js';
import { SEG_FLAGS, printScores, sceneSpecOf, scenesFor, scoresJson, taskOf } from './segment.js';
import { isSegmentation } from '../seg/model.js';
import { evaluateSegmentation } from '../seg/metrics.js';
import { sceneClasses } from '../data/scenes.js';
import type { VisionTransformer } from '../nn/vit.js';

export const TRAIN_FLAGS = {
  preset: 'string', model: 'string', data: 'string', epochs: 'number', out: 'string', resume: 'string',
  batch: 'number', lr: 'number', 'min-lr': 'number', wd: 'number', warmup: 'number', smoothing: 'number',
  clip: 'number', 'crop-pad': 'number', seed: 'number', limit: 'number', 'stop-after': 'number', json: 'boolean', quiet: 'boolean',
  backend: 'string', 'eval-limit': 'number', ...MERGE_FLAGS, ...THREAD_FLAGS, ...SEG_FLAGS,
} as const;

export function trainCommand(argv: string[]): void {
  const { flags: f } = parseArgs(argv, TRAIN_FLAGS);
  useBackend(f.backend as string | undefined, f.threads as number | undefined);
  const loaded = f.model ? loadModel(f.model as string, { preset: f.preset as string | undefined }) : undefined;
  if (taskOf(f, loaded?.model.cfg) === 'segment') return trainSegment(f, loaded);
  const dataName = (f.data as string | undefined) ?? 'fashion-mnist';
  if (dataName !== 'fashion-mnist' && dataName !== 'mnist') throw new UsageError(`--data must be fashion-mnist or mnist, got '${dataName}'`);
  const out = need(f.out as string | undefined, 'out');
  const ds = loadDataset(dataName as DatasetName);
  let model, metadata: Record<string, string> = {};
  if (loaded) ({ model, metadata } = loaded);
  else {
    const cfg = getPreset((f.preset as string | undefined) ?? 'vit_fmnist');
    if (cfg.inChans !== 1 || cfg.imgSize < 28) throw new UsageError(`preset '${cfg.name}' takes ${cfg.inChans}x${cfg.imgSize}x${cfg.imgSize} input; ${dataName} needs a 1-channel preset of size >= 28 (e.g. vit_fmnist)`);
    cfg.mean = [ds.mean]; cfg.std = [ds.std]; cfg.dataSize = 28;
    cfg.classes = dataName === 'fashion-mnist' ? FASHION_MNIST_CLASSES : ds.classes;
    model = createModel(cfg, (f.seed as number | undefined) ?? 0);
  }
  // with --merge (or a saved schedule) the wrapper trains; its cfg.merge is saved with the model
  const runner: Trainable = withMerging(model, f, metadata);
  const cropPad = (f['crop-pad'] as number | undefined) ?? 2;
  if (!Number.isInteger(cropPad) || cropPad < 0) throw new UsageError(`--crop-pad must be an integer >= 0 (pixels of random shift), got ${cropPad}`);
  const epochs = need(f.epochs as number | undefined, 'epochs');
  const logs = train(runner, ds.train, {
    epochs, outDir: out, resume: f.resume as string | undefined,
    batchSize: (f.batch as number) ?? 128, lr: (f.lr as number) ?? 2e-3, minLr: (f['min-lr'] as number) ?? 1e-5,
    weightDecay: (f.wd as number) ?? 0.05, warmupEpochs: (f.warmup as number) ?? 1, smoothing: (f.smoothing as number) ?? 0.1,
    clip: (f.clip as number) ?? 1, seed: (f.seed as number) ?? 0, cropPad, flip: dataName === 'fashion-mnist',
    mean: model.cfg.mean[0] ?? FASHION_MNIST_MEAN, std: model.cfg.std[0] ?? FASHION_MNIST_STD,
    limit: f.limit as number | undefined, stopAfter: f['stop-after'] as number | undefined, quiet: !!f.quiet,
  });
  const ev = evaluate(runner, ds.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f['eval-limit'] as number | undefined, quiet: !!f.quiet });
  const last = logs[logs.length - 1];
  const merge = runner.cfg.merge ?? '';
  if (!f.json) console.log(`trained ${logs.length} epoch(s)${merge ? ` merging ${merge}` : ''}: loss ${last?.loss.toFixed(4)}, test accuracy ${(100 * ev.accuracy).toFixed(2)}% (${ev.n} images); model in ${join(out, 'model.safetensors')}`);
  emitJson({ model: join(out, 'model.safetensors'), epochs: last?.epoch ?? 0, loss: last?.loss ?? null, accuracy: ev.accuracy, n: ev.n, images_per_sec: last?.imagesPerSec ?? null, merge });
}

/**
 * `cait train --task segment`: a segmentation model (preset vit_seg64 by
 * default, or --model to continue one) on scenes of --data items, per-pixel
 * cross-entropy, then mean IoU on the test scenes. A new model records its
 * scene spec, classes and the training scenes' pixel mean/std in its config.
 */
function trainSegment(f: Record<string, string | number | boolean | undefined>, loaded?: { model: VisionTransformer; metadata: Record<string, string> }): void {
  const out = need(f.out as string | undefined, 'out');
  let model: VisionTransformer, metadata: Record<string, string> = {};
  if (loaded) ({ model, metadata } = loaded);
  else {
    const cfg = getPreset((f.preset as string | undefined) ?? 'vit_seg64');
    if (!isSegmentation(cfg)) throw new UsageError(`preset '${cfg.name}' is a classification model; --task segment needs a segmentation preset (e.g. vit_seg64)`);
    if (cfg.inChans !== 1) throw new UsageError(`preset '${cfg.name}' takes ${cfg.inChans} channels; scenes are grey (1 channel)`);
    cfg.scenes = sceneSpecOf(cfg, f);
    model = createModel(cfg, (f.seed as number | undefined) ?? 0);
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
    epochs: need(f.epochs as number | undefined, 'epochs'), outDir: out, resume: f.resume as string | undefined,
    batchSize: (f.batch as number) ?? 64, lr: (f.lr as number) ?? 2e-3, minLr: (f['min-lr'] as number) ?? 1e-5,
    weightDecay: (f.wd as number) ?? 0.05, warmupEpochs: (f.warmup as number) ?? 1, smoothing: (f.smoothing as number) ?? 0,
    clip: (f.clip as number) ?? 1, seed: (f.seed as number) ?? 0, cropPad: 0, flip: spec.data === 'fashion-mnist',
    mean: model.cfg.mean[0], std: model.cfg.std[0],
    limit: f.limit as number | undefined, stopAfter: f['stop-after'] as number | undefined, quiet: !!f.quiet,
  });
  const r = evaluateSegmentation(runner, scenes.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f['eval-limit'] as number | undefined, quiet: !!f.quiet });
  const last = logs[logs.length - 1], merge = runner.cfg.merge ?? '';
  if (!f.json) {
    console.log(`trained ${logs.length} epoch(s)${merge ? ` merging ${merge}` : ''} on ${Math.min(scenes.train.n, (f.limit as number | undefined) ?? Infinity)} ${spec.data} scenes: loss ${last?.loss.toFixed(4)}; model in ${join(out, 'model.safetensors')}`);
    printScores(r, model.cfg.classes ?? [], `${spec.data} test scenes`);
  }
  emitJson({ model: join(out, 'model.safetensors'), epochs: last?.epoch ?? 0, loss: last?.loss ?? null, ...scoresJson(r), images_per_sec: last?.imagesPerSec ?? null, merge });
}
