// cait eval | predict | forward: run a model file.
import { readSafetensorsFile, writeSafetensorsFile } from '../io/safetensors.js';
import { readImageFile } from '../io/image.js';
import { loadDataset } from '../data/mnist.js';
import type { DatasetName } from '../data/dataset.js';
import { evaluate } from '../train/trainer.js';
import { Tensor, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { parseArgs, UsageError } from './args.js';
import { MERGE_FLAGS, emitJson, imageToInput, need, openRunner, softmax, useBackend } from './common.js';

export function evalCommand(argv: string[]): void {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', data: 'string', json: 'boolean', limit: 'number', batch: 'number', backend: 'string', quiet: 'boolean', ...MERGE_FLAGS });
  useBackend(f.backend as string | undefined);
  const model = openRunner(need(f.model as string | undefined, 'model'), f.preset as string | undefined, f);
  const dataName = (f.data as string | undefined) ?? 'fashion-mnist';
  if (dataName !== 'fashion-mnist' && dataName !== 'mnist') throw new UsageError(`--data must be fashion-mnist or mnist, got '${dataName}'`);
  const ds = loadDataset(dataName as DatasetName);
  const t0 = performance.now();
  const r = evaluate(model, ds.test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: f.limit as number | undefined, batchSize: f.batch as number | undefined, quiet: !!f.quiet || !!f.json });
  const seconds = (performance.now() - t0) / 1000;
  const merge = model.cfg.merge ?? '';
  if (!f.json) console.log(`accuracy ${(100 * r.accuracy).toFixed(2)}% on ${r.n} ${dataName} test images (${(r.n / seconds).toFixed(0)} img/s)${merge ? `, merging ${merge}` : ''}`);
  emitJson({ accuracy: r.accuracy, n: r.n, merge });
}

export function predictCommand(argv: string[]): void {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', image: 'string', json: 'boolean', top: 'number', backend: 'string', ...MERGE_FLAGS });
  useBackend(f.backend as string | undefined);
  const model = openRunner(need(f.model as string | undefined, 'model'), f.preset as string | undefined, f);
  const file = need(f.image as string | undefined, 'image');
  const cfg = model.cfg, S = cfg.imgSize;
  const x = imageToInput(readImageFile(file), cfg);
  const logits = noGrad(() => scope(() => model.forward(Tensor.from(x, [1, cfg.inChans, S, S])).toArray()));
  const p = softmax(logits);
  const k = Math.min((f.top as number | undefined) ?? 5, p.length);
  const top = p.map((prob, id) => ({ id, label: cfg.classes?.[id] ?? String(id), prob })).sort((a, b) => b.prob - a.prob).slice(0, k);
  if (!f.json) for (const t of top) console.log(`${(100 * t.prob).toFixed(2).padStart(6)}%  ${t.id}  ${t.label}`);
  emitJson({ image: file, top });
}

export function forwardCommand(argv: string[]): void {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', input: 'string', out: 'string', backend: 'string', json: 'boolean', ...MERGE_FLAGS });
  useBackend(f.backend as string | undefined);
  const model = openRunner(need(f.model as string | undefined, 'model'), f.preset as string | undefined, f);
  const inFile = need(f.input as string | undefined, 'input'), outFile = need(f.out as string | undefined, 'out');
  const pv = readSafetensorsFile(inFile).tensors.get('pixel_values');
  if (!pv) throw new UsageError(`${inFile}: no tensor 'pixel_values'`);
  const cfg = model.cfg;
  const want = [cfg.inChans, cfg.imgSize, cfg.imgSize];
  if (pv.shape.length !== 4 || pv.shape.slice(1).some((d, i) => d !== want[i]))
    throw new UsageError(`${inFile}: tensor 'pixel_values' has shape [${pv.shape}], expected [B, ${want}]`);
  const logits = noGrad(() => scope(() => model.forward(Tensor.from(pv.data, pv.shape)).toArray()));
  writeSafetensorsFile(outFile, { logits: { shape: [pv.shape[0], cfg.numClasses], data: logits } }, { model: f.model as string });
  if (!f.json) console.log(`wrote logits [${pv.shape[0]}, ${cfg.numClasses}] to ${outFile}`);
  emitJson({ out: outFile, shape: [pv.shape[0], cfg.numClasses] });
}
