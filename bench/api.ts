// The high-level API's costs, into bench/results/api.json:
// 1. correctness first: load()'s forward against the reference backend's
//    eager forward of the same file (max |difference| of the logits);
// 2. memory: 10,000 classify calls of a sample PNG on the committed CAIT
//    model; live tensors, heap bytes in use and WASM memory before and after
//    (after 3 warm-up calls: plan captured, weights packed);
// 3. latency: Model.forward at batch 1 against `cait bench`'s planned
//    forward of the same file (src/util/timing.ts timeRunners: a plan captured
//    from the CLI's runner, InferencePlan.run per round), interleaved in
//    A B / B A rounds in one process (the machine is shared: the ratio is what
//    counts), warm-up discarded, median and spread; target: within 5%.
// Models: models/fmnist-cait.safetensors, its int8 file (the reference
// runs the int8 kernels' reference too), and a DeiT-Tiny (random weights,
// saved to a temporary file) unless --quick.
//
// Usage: node --import tsx bench/api.ts [--calls 10000] [--runs 200] [--quick] [--out bench/results/api.json]
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from '../src/api/node.js';
import { runnerFor } from '../src/api/runner.js';
import { Tensor, liveTensorCount, scope, setBackend } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { InferencePlan } from '../src/plan.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { WasmBackend } from '../src/backend/wasm.js';
import { createModel, loadModel, saveModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { environment, latencyStats } from '../src/util/timing.js';
import { scriptArgs } from './args.js';
import { quantizeLoaded } from '../src/quant/format.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const cli = scriptArgs(process.argv.slice(2), { calls: 'number', runs: 'number', quick: 'boolean', out: 'string' },
  `node --import tsx bench/api.ts [--calls 10000] [--runs 200] [--quick] [--out bench/results/api.json]   (npm run bench:api)
  Writes --out (by default over the committed bench/results/api.json); --quick leaves out DeiT-Tiny.`);
const { flags } = cli;
const CALLS = cli.int('calls', 10_000, 1);
const RUNS = cli.int('runs', 200, 1);
const OUT = resolve((flags.out as string | undefined) ?? join(ROOT, 'bench/results/api.json'));
const SAMPLE = join(ROOT, 'web/public/samples/07-sneaker.png');

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

/** Logits of the file on the reference backend, op by op (the executable spec). */
function referenceLogits(file: string, x: Float32Array): Float32Array {
  const be = new ReferenceBackend();
  setBackend(be);
  const { model, metadata } = loadModel(file);
  const q = quantizeLoaded(model, metadata);
  const { runner } = runnerFor(model, metadata);
  const S = model.cfg.imgSize;
  const z = noGrad(() => scope(() => runner.forward(Tensor.from(x, [1, model.cfg.inChans, S, S], be)).toArray()));
  q?.dispose(); model.dispose();
  return z;
}

async function leakRow(file: string) {
  const m = await load(file);
  const be = m.backend as WasmBackend;
  for (let i = 0; i < 3; i++) await m.classify(SAMPLE);
  const before = { live_tensors: liveTensorCount(), heap_bytes_in_use: be.stats().bytesInUse, wasm_memory_bytes: be.memory.buffer.byteLength };
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) await m.classify(SAMPLE);
  const ms = (performance.now() - t0) / CALLS;
  const after = { live_tensors: liveTensorCount(), heap_bytes_in_use: be.stats().bytesInUse, wasm_memory_bytes: be.memory.buffer.byteLength };
  m.dispose();
  const growth = { live_tensors: after.live_tensors - before.live_tensors, heap_bytes_in_use: after.heap_bytes_in_use - before.heap_bytes_in_use, wasm_memory_bytes: after.wasm_memory_bytes - before.wasm_memory_bytes };
  console.log(`memory: ${CALLS} classify calls (${ms.toFixed(3)} ms each, PNG decode + preprocess + forward): growth ${JSON.stringify(growth)}`);
  return { model: file.replace(ROOT, ''), calls: CALLS, ms_per_call: +ms.toFixed(4), before, after, growth, ok: Object.values(growth).every((g) => g === 0) };
}

async function latencyRow(file: string, name: string, runs: number) {
  const m = await load(file);
  const x = m.preprocess(SAMPLE);
  const ref = referenceLogits(file, x);
  setBackend(m.backend);
  const api = await m.forward(x);
  const refDiff = maxDiff(api, ref);
  // what `cait bench --model FILE` times: its own runner (the CLI's loader and wrapper), planned
  const { model: vit, metadata } = loadModel(file);
  const q = quantizeLoaded(vit, metadata);   // as openRunner: an int8 file runs int8
  const { runner } = runnerFor(vit, metadata);
  const plan = InferencePlan.capture(m.backend, x, [1, ...m.info.inputShape], (t) => runner.forward(t));
  const benchDiff = maxDiff(api, plan.run(x));
  const warmup = Math.max(5, runs >> 3), tApi: number[] = [], tBench: number[] = [];
  for (let r = 0; r < warmup + runs; r++) {
    for (let j = 0; j < 2; j++) {
      const which = (j + r) % 2;
      const t0 = performance.now();
      if (which === 0) await m.forward(x); else plan.run(x);
      const t = performance.now() - t0;
      if (r >= warmup) (which === 0 ? tApi : tBench).push(t);
    }
  }
  plan.dispose(); q?.dispose(); vit.dispose(); m.dispose();
  const a = latencyStats(tApi), b = latencyStats(tBench), ratio = +(a.median_ms / b.median_ms).toFixed(4);
  console.log(`latency ${name} b1 (${m.info.backend}): Model.forward median ${a.median_ms} ms vs cait bench planned ${b.median_ms} ms: ratio ${ratio} (target <= 1.05); max |logit - reference| ${refDiff.toExponential(2)}, vs cait bench's plan ${benchDiff.toExponential(2)}`);
  return {
    model: name, batch: 1, backend: m.info.backend, merge: m.info.merge, macs: m.info.macs,
    max_abs_diff_vs_reference: refDiff, max_abs_diff_vs_cait_bench: benchDiff,
    api_forward: a, cait_bench_planned: b, ratio, within_5pct: ratio <= 1.05,
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'cait-bench-api-'));
try {
  const cait = join(ROOT, 'models/fmnist-cait.safetensors');
  const memory = await leakRow(cait);
  const latency = [await latencyRow(cait, 'models/fmnist-cait.safetensors', RUNS)];
  const int8 = join(ROOT, 'models/fmnist-cait-int8.safetensors');
  if (existsSync(int8)) latency.push(await latencyRow(int8, 'models/fmnist-cait-int8.safetensors', RUNS));
  if (!flags.quick) {
    const deit = join(tmp, 'deit_tiny.safetensors');
    const be = (await load(cait)).backend;   // the shared WASM backend
    setBackend(be);
    const v = createModel(getPreset('deit_tiny_patch16_224'), 0);
    saveModel(deit, v); v.dispose();
    latency.push(await latencyRow(deit, 'deit_tiny_patch16_224 (random weights)', Math.max(20, RUNS >> 3)));
  }
  const report = {
    environment: { ...environment(), note: 'shared machine (other jobs running): compare the ratios, measured interleaved in one process' },
    memory, latency,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(report, null, 1) + '\n');
  console.log(`wrote ${OUT}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
