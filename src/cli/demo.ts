// cait demo: what a new user sees first. Evaluates the committed Fashion-MNIST
// models (dense, ATME-merged, CAIT-compressed: whichever are present), shows a
// few test predictions, and prints accuracy, MACs and measured latency side by
// side (latency interleaved in one run, batch 1, one thread).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnist } from '../data/mnist.js';
import { makeBatch } from '../data/augment.js';
import { evaluate, type Trainable } from '../train/trainer.js';
import { countMacs, countParams } from '../cait/macs.js';
import { Tensor, getBackend, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { BACKEND_FLAGS, JSON_FLAG, command, type Flags } from './flags.js';
import { emitJson, openRunner, softmax, useBackend } from './common.js';
import { environment, latencyStats, timeRunners } from './bench.js';

const MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));
export const DEMO_MODELS: Array<[label: string, file: string]> = [
  ['dense ViT', 'fmnist-dense.safetensors'],
  ['ATME (merging)', 'fmnist-atme.safetensors'],
  ['CDCP (pruning)', 'fmnist-cdcp.safetensors'],
  ['CAIT (ATME+CDCP)', 'fmnist-cait.safetensors'],
];

const DEMO_FLAGS = {
  limit: { type: 'int', min: 1, help: 'test images per model', defaultText: 'all 10,000' },
  runs: { type: 'int', min: 1, max: 100000, default: 200, help: 'timed latency rounds (after 20 warm-up rounds)' },
  models: { type: 'string', value: 'DIR', help: 'where the fmnist-*.safetensors models are', defaultText: 'the package models/' },
  backend: BACKEND_FLAGS.backend, ...JSON_FLAG,
} as const;

export const demoCommand = command({
  name: 'demo',
  summary: 'evaluate the committed Fashion-MNIST models (dense, ATME, CDCP, CAIT) and compare accuracy, MACs and latency',
  usage: ['', '--limit 1000 --runs 50 --json'],
  flags: DEMO_FLAGS,
  run: demoRun,
});

function demoRun(f: Flags<typeof DEMO_FLAGS>): void {
  useBackend(f.backend);
  const dir = f.models ?? MODELS_DIR;
  const present = DEMO_MODELS.filter(([, file]) => existsSync(join(dir, file)));
  if (!present.length) throw new Error(`no models in ${dir}: train one with \`cait train --preset vit_fmnist --data fashion-mnist --epochs 15 --out runs/fmnist\``);
  console.log('Loading Fashion-MNIST (the first run builds a cache in .cache/) ...');
  const ds = loadFashionMnist();
  const runners: Array<[string, Trainable, string]> = present.map(([label, file]) => [label, openRunner(join(dir, file), undefined, {}), file]);

  const base = runners[0][1];
  const picks = [0, 1234, 4321, 7777, 9999];
  const cfg = base.cfg, S = cfg.imgSize, classes = cfg.classes ?? ds.classes;
  const batch = makeBatch(ds.test, picks, { pad: S, mean: cfg.mean[0], std: cfg.std[0] });
  console.log(`\nA few test images, predicted by the ${runners[0][0]}:`);
  const logits = noGrad(() => scope(() => base.forward(Tensor.from(batch.x, [picks.length, 1, S, S])).toArray()));
  const K = logits.length / picks.length;
  picks.forEach((idx, i) => {
    const p = softmax(logits.subarray(i * K, (i + 1) * K));
    const best = p.indexOf(Math.max(...p));
    console.log(`  test #${String(idx).padStart(4)}  true: ${classes[batch.y[i]].padEnd(12)} predicted: ${classes[best].padEnd(12)} ${(100 * p[best]).toFixed(1)}% ${best === batch.y[i] ? 'ok' : 'WRONG'}`);
  });

  const rows = runners.map(([label, r, file]) => {
    console.log(`\nEvaluating ${label} (${file}) on ${f.limit ?? ds.test.n} test images ...`);
    const ev = evaluate(r, ds.test, { mean: r.cfg.mean[0], std: r.cfg.std[0], limit: f.limit });
    const macs = countMacs(r.cfg, r.cfg.merge ?? '').total;
    return { label, file, accuracy: ev.accuracy, n: ev.n, macs, params: countParams(r.cfg), merge: r.cfg.merge ?? '' };
  });

  console.log('\nMeasuring latency (batch 1, one thread, models interleaved) ...');
  const x = Tensor.from(batch.x.subarray(0, S * S), [1, 1, S, S]);
  const times = timeRunners(runners.map(([, r]) => r), x, f.runs, 20, { planned: true });
  x.dispose();
  const lat = times.map(latencyStats), base_ms = lat[0].median_ms;
  const table = rows.map((r, i) => ({ ...r, median_ms: lat[i].median_ms, p10_ms: lat[i].p10_ms, p90_ms: lat[i].p90_ms, speedup: +(base_ms / lat[i].median_ms).toFixed(3), mac_ratio: +(rows[0].macs / r.macs).toFixed(3) }));
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n${pad('model', 18)}${pad('accuracy', 10)}${pad('MMACs', 9)}${pad('params', 9)}${pad('latency', 16)}speedup`);
  for (const r of table) {
    console.log(`${pad(r.label, 18)}${pad((100 * r.accuracy).toFixed(2) + '%', 10)}${pad((r.macs / 1e6).toFixed(2), 9)}${pad((r.params / 1e3).toFixed(0) + 'k', 9)}${pad(r.median_ms.toFixed(3) + ' ms', 16)}${r.speedup.toFixed(2)}x`);
  }
  emitJson(f, { models: table, env: { ...environment(), backend: getBackend().name, threads: 1 } });
}
