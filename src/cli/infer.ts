// cait eval | predict | forward: run a model file.
import { readSafetensorsFile, writeSafetensorsFile } from '../io/safetensors.js';
import { readImageFile } from '../io/image.js';
import { loadDataset } from '../data/mnist.js';
import type { DatasetName } from '../data/dataset.js';
import { countCorrect, evalBatches, evaluate, type EvalOptions, type Trainable } from '../train/trainer.js';
import { Tensor, getBackend } from '../tensor.js';
import { parseArgs, UsageError } from './args.js';
import { MERGE_FLAGS, THREAD_FLAGS, emitJson, forwardLogits, imageToInput, need, openRunner, softmax, useBackendAsync } from './common.js';
import { readsAsync } from '../backend/webgpu/index.js';
import type { ImageSource } from '../data/augment.js';
import { SEG_FLAGS, evaluateScenes, printScores, sceneSpecOf, scenesFor, scoresJson, taskOf } from './segment.js';
import { isSegmentation } from '../seg/model.js';

/** trainer.ts's evaluate over the same batches, awaiting each batch's logits: for backends that read back asynchronously (WebGPU). */
async function evaluateAsync(model: Pick<Trainable, 'forward' | 'cfg'>, data: ImageSource, o: EvalOptions): Promise<{ accuracy: number; n: number; correct: number }> {
  let correct = 0, n = 0;
  for (const b of evalBatches(data, model.cfg.imgSize, o)) {
    const logits = await forwardLogits(model, () => Tensor.from(b.x, b.shape));
    correct += countCorrect(logits, b.y, b.m);
    n += b.m;
  }
  return { accuracy: n ? correct / n : 0, n, correct };
}

export async function evalCommand(argv: string[]): Promise<void> {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', data: 'string', json: 'boolean', limit: 'number', batch: 'number', backend: 'string', quiet: 'boolean', ...MERGE_FLAGS, ...THREAD_FLAGS, ...SEG_FLAGS });
  await useBackendAsync(f.backend as string | undefined, f.threads as number | undefined);
  const model = openRunner(need(f.model as string | undefined, 'model'), f.preset as string | undefined, f);
  if (taskOf(f, model.cfg) === 'segment') {
    // mean IoU on the model's test scenes: {"miou", "per_class_iou", "pixel_accuracy", "n", "merge"}
    const spec = sceneSpecOf(model.cfg, f), { test } = scenesFor(spec, f);
    const t0 = performance.now();
    const r = await evaluateScenes(model, test, { limit: f.limit as number | undefined, batchSize: f.batch as number | undefined, quiet: !!f.quiet || !!f.json });
    const merge = model.cfg.merge ?? '';
    if (!f.json) printScores(r, model.cfg.classes ?? [], `${spec.data} test scenes (${(r.n / ((performance.now() - t0) / 1000)).toFixed(0)} img/s)${merge ? `, merging ${merge}` : ''}`);
    emitJson({ ...scoresJson(r), merge });
    return;
  }
  const dataName = (f.data as string | undefined) ?? 'fashion-mnist';
  if (dataName !== 'fashion-mnist' && dataName !== 'mnist') throw new UsageError(`--data must be fashion-mnist or mnist, got '${dataName}'`);
  const ds = loadDataset(dataName as DatasetName);
  const t0 = performance.now();
  const eo = { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f.limit as number | undefined, batchSize: f.batch as number | undefined, quiet: !!f.quiet || !!f.json };
  // WebGPU: the heap is one storage binding (128 MiB on some adapters), so smaller batches by default
  const r = readsAsync(getBackend()) ? await evaluateAsync(model, ds.test, { ...eo, batchSize: eo.batchSize ?? 50 }) : evaluate(model, ds.test, eo);
  const seconds = (performance.now() - t0) / 1000;
  const merge = model.cfg.merge ?? '';
  if (!f.json) console.log(`accuracy ${(100 * r.accuracy).toFixed(2)}% on ${r.n} ${dataName} test images (${(r.n / seconds).toFixed(0)} img/s)${merge ? `, merging ${merge}` : ''}`);
  emitJson({ accuracy: r.accuracy, n: r.n, merge });
}

export async function predictCommand(argv: string[]): Promise<void> {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', image: 'string', json: 'boolean', top: 'number', backend: 'string', ...MERGE_FLAGS, ...THREAD_FLAGS });
  await useBackendAsync(f.backend as string | undefined, f.threads as number | undefined);
  const model = openRunner(need(f.model as string | undefined, 'model'), f.preset as string | undefined, f);
  const file = need(f.image as string | undefined, 'image');
  const cfg = model.cfg, S = cfg.imgSize;
  if (isSegmentation(cfg)) throw new UsageError(`${f.model} is a segmentation model: use cait segment --model ${f.model} --image ${file} --out MASK.png`);
  const x = imageToInput(readImageFile(file), cfg);
  const logits = await forwardLogits(model, () => Tensor.from(x, [1, cfg.inChans, S, S]));
  const p = softmax(logits);
  const k = Math.min((f.top as number | undefined) ?? 5, p.length);
  const top = p.map((prob, id) => ({ id, label: cfg.classes?.[id] ?? String(id), prob })).sort((a, b) => b.prob - a.prob).slice(0, k);
  if (!f.json) for (const t of top) console.log(`${(100 * t.prob).toFixed(2).padStart(6)}%  ${t.id}  ${t.label}`);
  emitJson({ image: file, top });
}

export async function forwardCommand(argv: string[]): Promise<void> {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', input: 'string', out: 'string', backend: 'string', json: 'boolean', ...MERGE_FLAGS, ...THREAD_FLAGS });
  await useBackendAsync(f.backend as string | undefined, f.threads as number | undefined);
  const model = openRunner(need(f.model as string | undefined, 'model'), f.preset as string | undefined, f);
  const inFile = need(f.input as string | undefined, 'input'), outFile = need(f.out as string | undefined, 'out');
  const pv = readSafetensorsFile(inFile).tensors.get('pixel_values');
  if (!pv) throw new UsageError(`${inFile}: no tensor 'pixel_values'`);
  const cfg = model.cfg;
  if (isSegmentation(cfg)) throw new UsageError(`${f.model} is a segmentation model: forward writes class logits [B, classes]; use cait segment`);
  const want = [cfg.inChans, cfg.imgSize, cfg.imgSize];
  if (pv.shape.length !== 4 || pv.shape.slice(1).some((d, i) => d !== want[i]))
    throw new UsageError(`${inFile}: tensor 'pixel_values' has shape [${pv.shape}], expected [B, ${want}]`);
  const logits = await forwardLogits(model, () => Tensor.from(pv.data, pv.shape));
  writeSafetensorsFile(outFile, { logits: { shape: [pv.shape[0], cfg.numClasses], data: logits } }, { model: f.model as string });
  if (!f.json) console.log(`wrote logits [${pv.shape[0]}, ${cfg.numClasses}] to ${outFile}`);
  emitJson({ out: outFile, shape: [pv.shape[0], cfg.numClasses] });
}
