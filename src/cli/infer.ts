// cait eval | predict | forward: run a model file.
import { readSafetensorsFile, writeSafetensorsFile } from '../io/safetensors-file.js';
import { statSync } from 'node:fs';
import { readImageFile } from '../io/image.js';
import { listImages } from '../data/folder.js';
import { Tensor, getBackend } from '../tensor.js';
import { BACKEND_FLAGS, INT8_FLAGS, JSON_FLAG, MERGE_FLAGS, MODEL_FLAGS, OUTPUT_FLAGS, SEG_FLAGS, UsageError, command, type Flags } from './flags.js';
import { checkBatchBytes, checkOutputFlag, emitJson, forwardLogits, imageToInput, modelInputs, need, openRunner, softmax, useBackendAsync } from './common.js';
import { readsAsync } from '../backend/webgpu/index.js';
import { SCENE_FLAGS, evaluateScenes, printScores, refuseSceneFlags, sceneSpecOf, scenesFor, scoresJson, taskOf } from './segment.js';
import { isSegmentation } from '../seg/model.js';
import { overflowText } from '../util/overflow.js';
import { FOLDER_FLAGS, checkFolderFlags, isFolder, warnSkipped, printFolderScores, scoreFolder, scoresJson as folderScoresJson, testSplitOf } from './folder.js';

const EVAL_FLAGS = {
  ...MODEL_FLAGS, ...INT8_FLAGS,
  data: { type: 'string', value: 'NAME|DIR', help: 'test split: fashion-mnist, mnist, or an image folder (DIR/val/<class>/*, or DIR/<class>/*)', defaultText: "fashion-mnist (segmentation: the model's scenes)" },
  limit: { type: 'int', min: 1, help: 'evaluate this many test images (spread over the split)', defaultText: 'all' },
  'val-split': FOLDER_FLAGS['val-split'],
  seed: { type: 'int', min: 0, default: 0, help: "--val-split: the seed that chose the held-out images (train's --seed)" },
  batch: { type: 'int', min: 1, max: 4096, help: 'images per forward', defaultText: '250 (an image folder 100; webgpu and segmentation 50)' },
  ...BACKEND_FLAGS, ...MERGE_FLAGS, ...SEG_FLAGS, ...OUTPUT_FLAGS,
} as const;

export const evalCommand = command({
  name: 'eval',
  summary: 'test accuracy of a model file (mean IoU for segmentation)',
  usage: ['--model models/fmnist-dense.safetensors --data fashion-mnist --json', '--model models/fmnist-dense.safetensors --merge h@1 --limit 1000', '--task segment --model models/seg-cait.safetensors --json'],
  flags: EVAL_FLAGS,
  run: evalRun,
});

async function evalRun(f: Flags<typeof EVAL_FLAGS>): Promise<void> {
  const file = need(f.model, 'model');   // before a GPU device starts
  await useBackendAsync(f.backend, f.threads);
  const model = openRunner(file, f.preset, f);
  if (f.batch !== undefined) checkBatchBytes(model.cfg, f.batch, '--batch');
  const seg = taskOf(f, model.cfg) === 'segment';
  if (seg || !isFolder(f.data)) checkFolderFlags(f, seg ? 'segmentation scenes' : `the built-in dataset ${f.data ?? 'fashion-mnist'}`);
  refuseSceneFlags(f, seg ? ['scenes'] : SCENE_FLAGS, seg ? 'training (train, compress); eval scores the test scenes (--test-scenes)' : 'segmentation scenes (a segmentation model, --task segment)');
  if (seg) {
    // mean IoU on the model's test scenes: {"miou", "per_class_iou", "pixel_accuracy", "n", "merge"}
    const spec = sceneSpecOf(model.cfg, f), { test } = scenesFor(spec, f);
    const t0 = performance.now();
    const r = await evaluateScenes(model, test, { limit: f.limit, batchSize: f.batch, quiet: f.quiet || f.json });
    const merge = model.cfg.merge ?? '';
    if (!f.json) printScores(r, model.cfg.classes ?? [], `${spec.data} test scenes (${(r.n / ((performance.now() - t0) / 1000)).toFixed(0)} img/s)${merge ? `, merging ${merge}` : ''}`);
    emitJson(f, { ...scoresJson(r), merge });
    return;
  }
  // folders and the built-in datasets alike: {"accuracy" (= top1), "top1", "top5", "per_class", "classes",
  // "confusion" [true][predicted], "n", "data", "images_per_sec", "merge"}
  const data = f.data ?? 'fashion-mnist', quiet = f.quiet || f.json;
  const { split, what, classes } = testSplitOf(data, model.cfg, f);
  // WebGPU: the heap is one storage binding (128 MiB on some adapters), so smaller batches by default
  const t0 = performance.now();
  const s = await scoreFolder(model, split, { batchSize: f.batch ?? (readsAsync(getBackend()) ? 50 : isFolder(data) ? 100 : 250), limit: f.limit, classes, quiet, allowNonFinite: f['allow-nonfinite'] });
  const rate = s.n / ((performance.now() - t0) / 1000), merge = model.cfg.merge ?? '';
  if (!f.json) printFolderScores(s, `${what} (${rate.toFixed(0)} img/s)${merge ? `, merging ${merge}` : ''}`);
  emitJson(f, { ...folderScoresJson(s), data, images_per_sec: rate, merge });
}

const PREDICT_FLAGS = {
  ...MODEL_FLAGS, ...INT8_FLAGS,
  image: { type: 'string', value: 'FILE|DIR', help: 'a PNG or JPEG, or a folder: every PNG and JPEG in it and its subfolders, in sorted order (required)' },
  top: { type: 'int', min: 1, max: 1000, default: 5, help: 'classes to print, most probable first' },
  batch: { type: 'int', min: 1, max: 4096, default: 32, help: 'images per forward (a folder)' },
  ...BACKEND_FLAGS, ...MERGE_FLAGS, ...JSON_FLAG,
} as const;

export const predictCommand = command({
  name: 'predict',
  summary: 'the most probable classes of an image, or of every image in a folder',
  usage: ['--model models/fmnist-dense.safetensors --image shirt.png --json', '--model models/fmnist-cait.safetensors --image photos/ --top 1'],
  flags: PREDICT_FLAGS,
  run: predictRun,
});

interface Guess { id: number; label: string; prob: number }

// one image: {"image", "top": [{"id", "label", "prob"}]}; a folder: {"folder", "n", "predictions": [{"image", "top"}]}
async function predictRun(f: Flags<typeof PREDICT_FLAGS>): Promise<void> {
  const file = need(f.model, 'model'), path = need(f.image, 'image');   // before a GPU device starts
  await useBackendAsync(f.backend, f.threads);
  const model = openRunner(file, f.preset, f);
  const cfg = model.cfg, S = cfg.imgSize, C = cfg.inChans, n = C * S * S;
  if (isSegmentation(cfg)) throw new UsageError(`${f.model} is a segmentation model: use cait segment --model ${f.model} --image ${path} --out MASK.png`);
  const folder = (() => { try { return statSync(path).isDirectory(); } catch { return false; } })();   // else readImageFile names what is wrong
  const walk = folder ? listImages(path) : null, files = walk ? walk.files : [path];
  if (walk) warnSkipped(path, walk);
  if (!files.length) throw new Error(`--image ${path}: no PNG or JPEG images in the folder or its subfolders`);
  const B = Math.min(f.batch, files.length);
  checkBatchBytes(cfg, B, '--batch');
  const topOf = (p: number[]): Guess[] => p.map((prob, id) => ({ id, label: cfg.classes?.[id] ?? String(id), prob }))
    .sort((a, b) => b.prob - a.prob).slice(0, Math.min(f.top, p.length));
  const pct = (g: Guess) => `${(100 * g.prob).toFixed(2)}%`;
  const predictions: Array<{ image: string; top: Guess[] }> = [];
  const x = new Float32Array(B * n);
  for (let i = 0; i < files.length; i += B) {
    const batch = files.slice(i, i + B), m = batch.length;
    batch.forEach((file, j) => x.set(imageToInput(readImageFile(file), cfg, file), j * n));
    const logits = await forwardLogits(model, () => Tensor.from(x.subarray(0, m * n), [m, C, S, S]));
    const K = logits.length / m;
    // (NaN rows printed NaN% for every class, exit 0; --allow-nonfinite loads NaN weights on purpose, as forward)
    const bad = f['allow-nonfinite'] ? -1 : batch.findIndex((_, j) => !logits.subarray(j * K, (j + 1) * K).every(Number.isFinite));
    if (bad >= 0) throw new Error(`${batch[bad]}: gives non-finite logits: ${overflowText(x.subarray(bad * n, (bad + 1) * n))}; ${folder ? 'the images before it are predicted above' : 'nothing predicted'}`);
    batch.forEach((image, j) => {
      const top = topOf(softmax(logits.subarray(j * K, (j + 1) * K)));
      if (folder && !f.json) console.log(`${image}\t${top.map((t) => `${t.label} ${pct(t)}`).join(', ')}`);
      else if (!f.json) for (const t of top) console.log(`${pct(t).padStart(7)}  ${t.id}  ${t.label}`);
      predictions.push({ image, top });
    });
  }
  emitJson(f, folder ? { folder: path, n: predictions.length, predictions } : predictions[0]);
}

const FORWARD_FLAGS = {
  ...MODEL_FLAGS, ...INT8_FLAGS,
  input: { type: 'string', value: 'IN.safetensors', help: "a safetensors file with 'pixel_values' [B, C, S, S] (required)" },
  out: { type: 'string', value: 'OUT.safetensors', help: "where the 'logits' [B, classes] go (required)" },
  ...BACKEND_FLAGS, ...MERGE_FLAGS, ...JSON_FLAG,
} as const;

export const forwardCommand = command({
  name: 'forward',
  summary: 'logits of a batch of inputs, safetensors in and out (for checks against other frameworks)',
  usage: ['--model model.safetensors --preset deit_tiny_patch16_224 --input in.safetensors --out out.safetensors'],
  flags: FORWARD_FLAGS,
  run: forwardRun,
});

async function forwardRun(f: Flags<typeof FORWARD_FLAGS>): Promise<void> {
  const file = need(f.model, 'model'), inFile = need(f.input, 'input'), outFile = need(f.out, 'out');   // before a GPU device starts
  await useBackendAsync(f.backend, f.threads);
  const model = openRunner(file, f.preset, f);
  const inputs = [...modelInputs(f.model), { flag: '--input', path: inFile }];
  checkOutputFlag('out', outFile, inputs);
  const cfg = model.cfg;
  if (isSegmentation(cfg)) throw new UsageError(`${f.model} is a segmentation model: forward writes class logits [B, classes]; use cait segment`);
  // the file's contents are data (exit 1), not usage
  const tensors = readSafetensorsFile(inFile, '--input').tensors, pv = tensors.get('pixel_values');
  if (!pv) throw new Error(`${inFile}: no tensor 'pixel_values' (the file holds ${tensors.size ? [...tensors.keys()].map((k) => `'${k}'`).join(', ') : 'no tensors'})`);
  const want = [cfg.inChans, cfg.imgSize, cfg.imgSize];
  if (pv.shape.length !== 4 || pv.shape.slice(1).some((d, i) => d !== want[i]) || pv.shape[0] < 1)
    throw new Error(`${inFile}: tensor 'pixel_values' has shape [${pv.shape}], expected [B, ${want}] with B >= 1`);
  const bad = pv.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${inFile}: tensor 'pixel_values' holds ${pv.data[bad]} at element ${bad}; inputs must be finite`);
  checkBatchBytes(cfg, pv.shape[0], `--input ${inFile}: pixel_values batch`);
  const logits = await forwardLogits(model, () => Tensor.from(pv.data, pv.shape));
  // (--allow-nonfinite loads NaN weights on purpose, to see where they go)
  if (!f['allow-nonfinite'] && !logits.every(Number.isFinite)) throw new Error(`${inFile}: tensor 'pixel_values' gives non-finite logits: ${overflowText(pv.data)}; nothing written`);
  writeSafetensorsFile(outFile, { logits: { shape: [pv.shape[0], cfg.numClasses], data: logits } }, { model: f.model! }, inputs);
  if (!f.json) console.log(`wrote logits [${pv.shape[0]}, ${cfg.numClasses}] to ${outFile}`);
  emitJson(f, { out: outFile, shape: [pv.shape[0], cfg.numClasses] });
}
