// Where a forward's time goes, for the README's inference-path notes:
//   1. per-kernel time of one planned-equivalent forward (the kernel calls are
//      timed one by one through a wrapped backend.run; op-by-op forward, so the
//      sum is the kernels' share) for dense DeiT-Tiny and its 1.7x CAIT
//      structure, and the planned forward's arena against the op-by-op peak;
//   2. the pre-packed (NP) GEMM alone at the shapes those models run, with
//      197, 99 and 50 rows: GFLOP/s with the weights hot in cache.
// Usage: node --import tsx bench/profile.ts [rounds=10]   writes bench/results/profile.json
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tensor, scope, setBackend } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { NP, NT, packedSize } from '../src/backend/kernels.js';
import { pickStructure } from '../src/cait/structure.js';
import { CaitModel } from '../src/cait/wrap.js';
import { InferencePlan } from '../src/plan.js';
import { environment } from '../src/util/timing.js';

const R = Number(process.argv[2] ?? 10);
const be = loadWasmSync('auto');
setBackend(be);
const cfg = getPreset('deit_tiny_patch16_224'), s = pickStructure(cfg, 1.7);
const models = { dense: createModel(cfg, 0), cait: new CaitModel(createModel({ ...cfg, widths: s.widths, merge: s.merge }, 0), { merge: s.merge }) };
const shape = [1, 3, 224, 224], x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i));

const run = be.run.bind(be);
let times: Map<string, number> | null = null;
be.run = (k, ...a) => {
  if (!times) return run(k, ...a);
  const t = performance.now(), r = run(k, ...a), key = k === 'gemm' ? `gemm layout ${a[0]} M${a[1]} N${a[2]} K${a[3]} x${a[15]}` : k;
  times.set(key, (times.get(key) ?? 0) + performance.now() - t);
  return r;
};
const forwards: Record<string, unknown> = {};
for (const [name, m] of Object.entries(models)) {
  const eager = () => noGrad(() => scope(() => m.forward(Tensor.from(x, shape)).toArray()));
  for (let i = 0; i < 3; i++) eager();
  times = new Map();
  const t0 = performance.now();
  for (let i = 0; i < R; i++) eager();
  const total = (performance.now() - t0) / R, kernels = [...times].map(([k, v]) => ({ kernel: k, ms: +(v / R).toFixed(3) })).sort((a, b) => b.ms - a.ms);
  times = null;
  const plan = InferencePlan.capture(be, x, shape, (t) => m.forward(t));
  forwards[name] = { forward_ms: +total.toFixed(3), kernels, plan_steps: plan.steps, arena_mb: +(plan.arenaBytes / 2 ** 20).toFixed(2), eager_peak_mb: +(plan.eagerBytes / 2 ** 20).toFixed(2) };
  plan.dispose();
  console.log(`${name}: ${total.toFixed(2)} ms op by op; arena ${(plan.arenaBytes / 2 ** 20).toFixed(2)} MB vs ${(plan.eagerBytes / 2 ** 20).toFixed(2)} MB`);
  for (const k of kernels.slice(0, 8)) console.log(`  ${k.ms.toFixed(3).padStart(8)} ms  ${k.kernel}`);
}

const gemms: Array<Record<string, number | string>> = [];
for (const [N, K] of [[744, 192], [192, 744], [576, 192]]) {
  for (const M of [197, 99, 50]) {
    const a = be.alloc(M * K), w = be.alloc(N * K), p = be.alloc(packedSize(K, N)), c = be.alloc(M * N);
    be.write(a, new Float32Array(M * K).map(Math.random)); be.write(w, new Float32Array(N * K).map(Math.random));
    be.run('pack_b', NT, K, N, w, K, p);
    const reps = Math.max(1, Math.round(1e8 / (2 * M * N * K))), rates: number[] = [];
    for (let r = 0; r < R + 3; r++) {
      const t = performance.now();
      for (let q = 0; q < reps; q++) be.run('gemm', NP, M, N, K, 1, a, K, 0, p, 0, 0, 0, c, N, 0, 1, 0, be.scratch);
      if (r >= 3) rates.push((2 * M * N * K * reps) / (performance.now() - t) / 1e6);
    }
    rates.sort((u, v) => u - v);
    gemms.push({ shape: `${M}x${N}x${K}`, M, N, K, gflops_median: +rates[rates.length >> 1].toFixed(1) });
    console.log(`gemm NP ${M}x${N}x${K}: ${rates[rates.length >> 1].toFixed(1)} GFLOP/s`);
    for (const q of [a, w, p, c]) be.free(q);
  }
}
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}profile.json`, JSON.stringify({ env: { ...environment(), backend: be.name }, cait_structure: { merge: s.merge, keep: s.keep }, rounds: R, forwards, gemm_np: gemms }, null, 2) + '\n');
console.log(`wrote ${dir}profile.json`);
