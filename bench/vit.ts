// Whole-model latency (issue #6): this engine against ONNX Runtime on the same
// DeiT-Tiny (random weights from createModel(cfg, 0); latency does not depend
// on them), exported by src/io/onnx.ts with a dynamic batch:
//   caitjs          this engine, WASM SIMD (relaxed where supported), 1 thread
//   caitjs xN       the same kernels on a pool of N threads over one shared
//                   memory (src/backend/threads.ts; N = 2 unless given), which
//                   must give caitjs's logits bit for bit (else abort)
//   ort-node x1/x2  onnxruntime-node, native CPU EP, intraOpNumThreads 1 and 2
//   ort-web         onnxruntime-web, wasm EP, numThreads 1
// Batch 1 and 8. Before timing, every runtime's logits are checked against
// this engine's (max |diff| <= 1e-4, else abort). Each round runs every
// runtime once, the order rotating, after discarded warm-up rounds, so a busy
// spell on a shared machine lands on all of them; medians are reported, with
// each runtime's median time over caitjs's (time_vs_caitjs < 1: faster).
// A timed run is one forward of one batch with its output read back into JS
// (caitjs: forward, toArray, free; ORT: session.run, which returns JS data).
//
// Usage: node --import tsx bench/vit.ts [runs=15] [warmup=3] [threads=2]   (threads 1: no caitjs xN rows)
//        writes bench/results/vit.json ({env, model, onnx, verify, results})
import os from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { Tensor, scope, setBackend, getBackend } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { Rng } from '../src/util/rng.js';
import { exportVitOnnx, ONNX_OPSET } from '../src/io/onnx.js';
import { environment, latencyStats } from '../src/cli/bench.js';
import { loadWasmSync, relaxedSimdSupported } from '../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../src/backend/threads.js';

const runs = Number(process.argv[2] ?? 15), warmup = Number(process.argv[3] ?? 3), THREADS = Number(process.argv[4] ?? 2);
const PRESET = 'deit_tiny_patch16_224', BATCHES = [1, 8], TOL = 1e-4;

interface Runner { name: string; threads: number; run(x: Float32Array, shape: number[]): Promise<Float32Array> }

const single = loadWasmSync('auto');
setBackend(single);
const cfg = getPreset(PRESET), vit = createModel(cfg, 0);
const onnx = exportVitOnnx(vit, { batch: 'dynamic' });

async function ortNode(threads: number): Promise<Runner> {
  const s = await ort.InferenceSession.create(onnx.bytes, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  return {
    name: `ort-node x${threads}`, threads,
    run: async (x, shape) => (await s.run({ pixel_values: new ort.Tensor('float32', x, shape) })).logits.data as Float32Array,
  };
}

async function ortWebWasm(): Promise<Runner> {
  ortWeb.env.wasm.numThreads = 1;
  const s = await ortWeb.InferenceSession.create(onnx.bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  return {
    name: 'ort-web wasm', threads: 1,
    run: async (x, shape) => (await s.run({ pixel_values: new ortWeb.Tensor('float32', x, shape) })).logits.data as Float32Array,
  };
}

const caitjs: Runner = {
  name: 'caitjs', threads: 1,
  run: async (x, shape) => noGrad(() => scope(() => vit.forward(Tensor.from(x, shape)).toArray())),
};

// the same weights (createModel(cfg, 0)) in the pool's shared heap
const pool = THREADS > 1 ? loadThreadedWasmSync({ threads: THREADS, variant: single.variant }) : null;
const caitjsThreads: Runner[] = [];
if (pool) {
  await pool.ready();
  setBackend(pool);
  const vitN = createModel(cfg, 0);
  setBackend(single);
  caitjsThreads.push({
    name: `caitjs x${THREADS}`, threads: THREADS,
    run: async (x, shape) => noGrad(() => scope(() => vitN.forward(Tensor.from(x, shape, pool)).toArray())),
  });
}

const runners: Runner[] = [caitjs, ...caitjsThreads, await ortNode(1), await ortNode(2), await ortWebWasm()];
const env: Record<string, string | number | boolean> = {
  ...environment(), platform: `${os.platform()}-${os.arch()}`, relaxedSimd: relaxedSimdSupported(), backend: getBackend().name,
  onnxruntime_node: ort.env.versions.node ?? ort.env.versions.common, onnxruntime_web: ortWeb.env.versions.web ?? ortWeb.env.versions.common,
};
console.log(`node ${env.node}, ${env.cpu} (${env.cores} cores, load ${env.loadavg}), caitjs ${env.backend}; ` +
  `${PRESET} exported to ONNX opset ${ONNX_OPSET} (${(onnx.bytes.length / 1e6).toFixed(1)} MB, ${onnx.model.graph.nodes.length} nodes); ${runs} rounds after ${warmup} warm-up`);

const verify: Array<Record<string, unknown>> = [];
const results: Array<Record<string, unknown>> = [];
const samples: Record<string, number[]> = {};
for (const B of BATCHES) {
  const shape = [B, cfg.inChans, cfg.imgSize, cfg.imgSize], rng = new Rng(1 + B);
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const want = await caitjs.run(x, shape);
  const maxLogit = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (const r of runners.slice(1)) {
    const got = await r.run(x, shape);
    let d = 0;
    for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
    if (!(d <= TOL) || got.length !== want.length) throw new Error(`${r.name}, batch ${B}: logits differ from caitjs by ${d} (> ${TOL})`);
    if (caitjsThreads.includes(r) && got.some((v, i) => !Object.is(v, want[i]))) throw new Error(`${r.name}, batch ${B}: logits not bit-identical to caitjs (max |diff| ${d})`);
    verify.push({ batch: B, impl: r.name, max_abs_diff: d, max_abs_logit: maxLogit });
  }
  const times = runners.map(() => [] as number[]);
  for (let round = 0; round < warmup + runs; round++) {
    for (let j = 0; j < runners.length; j++) {
      const k = (j + round) % runners.length, t0 = performance.now();
      await runners[k].run(x, shape);
      const t = performance.now() - t0;
      if (round >= warmup) times[k].push(t);
    }
  }
  const base = latencyStats(times[0]).median_ms;
  runners.forEach((r, k) => {
    const s = latencyStats(times[k]);
    results.push({
      batch: B, impl: r.name, threads: r.threads, ...s,
      images_per_sec: +(1000 * B / s.median_ms).toFixed(2), time_vs_caitjs: +(s.median_ms / base).toFixed(3),
    });
    samples[`${r.name} b${B}`] = times[k].map((t) => +t.toFixed(3));
  });
  console.log(`batch ${B} (logits agree: max |diff| ${Math.max(...verify.filter((v) => v.batch === B).map((v) => v.max_abs_diff as number)).toExponential(2)}, max |logit| ${maxLogit.toExponential(2)})`);
  for (const r of results.filter((q) => q.batch === B))
    console.log(`  ${String(r.impl).padEnd(14)} median ${(r.median_ms as number).toFixed(2).padStart(8)} ms  (min ${(r.min_ms as number).toFixed(2)}, MAD ${(r.mad_ms as number).toFixed(2)})  ` +
      `${(r.images_per_sec as number).toFixed(1).padStart(7)} img/s  x${(r.time_vs_caitjs as number).toFixed(2)} of caitjs time`);
  for (const r of caitjsThreads) {
    const t = results.find((q) => q.batch === B && q.impl === r.name)!;
    t.throughput_vs_caitjs = +(base / (t.median_ms as number)).toFixed(3);
    console.log(`  ${r.name}: ${t.throughput_vs_caitjs}x the throughput of caitjs (1 thread)`);
  }
}

const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}vit.json`, JSON.stringify({
  env: { ...env, loadavgAfter: environment().loadavg },
  model: PRESET, weights: 'random, createModel(cfg, 0)', runs, warmup,
  onnx: { opset: ONNX_OPSET, bytes: onnx.bytes.length, nodes: onnx.model.graph.nodes.length, batch: 'dynamic' },
  verify, results, samples_ms: samples,
}, null, 2) + '\n');
console.log(`wrote ${dir}vit.json`);
await pool?.close();
