// Training throughput: images/s of the vit_fmnist preset at batch 128 and the
// time of one DeiT-Tiny training step at batch 8, single-threaded.
// Warm-up steps are discarded; medians with spread go to bench/results/train.json.
// Usage: node --import tsx bench/train.ts [--out bench/results/train.json]   (npm run bench:train)
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, scope, setBackend } from '../src/tensor.js';
import { backward, zeroGrad } from '../src/autograd.js';
import { crossEntropy } from '../src/ops/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';
import { environment, latencyStats } from '../src/cli/bench.js';
import { scriptArgs } from './args.js';

const cli = scriptArgs(process.argv.slice(2), { out: 'string' },
  `node --import tsx bench/train.ts [--out bench/results/train.json]   (npm run bench:train)
  Writes --out (by default over the committed bench/results/train.json).`);
const out = resolve((cli.flags.out as string | undefined) ?? fileURLToPath(new URL('./results/train.json', import.meta.url)));

const be = loadWasmSync('auto');
setBackend(be);

function stepTimes(preset: string, batch: number, warmup: number, runs: number): number[] {
  const cfg = getPreset(preset), model = createModel(cfg, 0), named = model.namedParameters();
  const params = named.map(([, p]) => p), opt = new AdamW(named, { lr: 1e-4 });
  const S = cfg.imgSize, x = new Float32Array(batch * cfg.inChans * S * S).map((_, i) => Math.sin(i)), y = Array.from({ length: batch }, (_, i) => i % cfg.numClasses);
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    scope(() => backward(crossEntropy(model.forward(Tensor.from(x, [batch, cfg.inChans, S, S])), y, 0.1)));
    clipGradNorm(params, 1);
    opt.update(1e-4);
    zeroGrad(params);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  opt.dispose(); model.dispose();
  return times;
}

const fm = latencyStats(stepTimes('vit_fmnist', 128, 3, 15));
console.log(`vit_fmnist batch 128: ${fm.median_ms.toFixed(1)} ms/step (min ${fm.min_ms.toFixed(1)}, max ${fm.max_ms.toFixed(1)}) = ${(128 * 1000 / fm.median_ms).toFixed(0)} images/s`);
const dt = latencyStats(stepTimes('deit_tiny_patch16_224', 8, 1, 5));
console.log(`deit_tiny batch 8: ${dt.median_ms.toFixed(0)} ms/step (min ${dt.min_ms.toFixed(0)}, max ${dt.max_ms.toFixed(0)})`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({
  env: { ...environment(), backend: be.name, threads: 1 },
  results: [
    { preset: 'vit_fmnist', batch: 128, threads: 1, ms_per_step: fm, images_per_sec: (128 * 1000) / fm.median_ms },
    { preset: 'deit_tiny_patch16_224', batch: 8, threads: 1, ms_per_step: dt, images_per_sec: (8 * 1000) / dt.median_ms },
  ],
}, null, 2) + '\n');
console.log(`wrote ${out}`);
