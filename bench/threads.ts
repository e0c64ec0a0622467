// One thread against the worker pool (issue #19, "threads that pay or are not
// used"): every committed model (models/*.safetensors) at batch 1, and a
// DeiT-Tiny with random weights, float and int8 (quantizeModel's defaults),
// at batch 1 and 8, each as a planned forward
// (src/plan.ts) on WasmBackend and on ThreadedWasmBackend (2 threads, its
// calibrated thresholds). The pool's output is checked against one thread's,
// bit for bit, before anything is timed. Timing: per case, warm-up rounds
// discarded, then rounds in which both run once, the order alternating, so a
// busy moment of a shared machine hits both; medians, spread (MAD / median),
// and the median of the per-round ratios (pool / one thread), which is the
// robust figure on a noisy machine.
//
// Checks: pool / one thread <= 1.05 at batch 1 for every case (never
// measurably slower), and >= 1.7x throughput for DeiT-Tiny at batch 8.
// Writes bench/results/threads.json with the environment (load average before
// and after: other processes on the machine show there) and the pool's
// calibration (dispatch cost per split call, thresholds per kernel class).
//
//   node --import tsx bench/threads.ts [--quick] [--threads 2] [--out bench/results/threads.json]   (npm run bench:threads)
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWasmSync } from '../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../src/backend/threads.js';
import type { Backend } from '../src/backend/backend.js';
import { setBackend } from '../src/tensor.js';
import { InferencePlan } from '../src/plan.js';
import { loadModel, createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { runnerFor } from '../src/api/runner.js';
import { quantizeLoaded } from '../src/quant/format.js';
import { quantizeModel } from '../src/quant/int8.js';
import { latencyStats, environment } from '../src/util/timing.js';
import { Rng } from '../src/util/rng.js';
import { pairedRounds } from './ab.js';
import { scriptArgs } from './args.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const cli = scriptArgs(process.argv.slice(2), { quick: 'boolean', threads: 'number', out: 'string' },
  `node --import tsx bench/threads.ts [--quick] [--threads 2] [--out bench/results/threads.json]   (npm run bench:threads)
  Writes --out (by default over the committed bench/results/threads.json); exit 1 when a check fails.`);
const quick = !!cli.flags.quick;
const T = cli.int('threads', 2, 2);
const out = resolve((cli.flags.out as string | undefined) ?? join(ROOT, 'bench/results/threads.json'));
const LIMITS = { b1_pool_vs_one: 1.05, b8_speedup: 1.7 };

interface Case { label: string; batch: number; make: (be: Backend) => { forward(x: import('../src/tensor.js').Tensor): import('../src/tensor.js').Tensor; cfg: { inChans: number; imgSize: number }; dispose(): void } }

const cases: Case[] = [];
for (const f of readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.safetensors')).sort()) {
  cases.push({
    label: `models/${f}`, batch: 1,
    make: (be) => {
      setBackend(be);
      const { model, metadata } = loadModel(join(ROOT, 'models', f));
      quantizeLoaded(model, metadata);   // an int8 file runs the int8 kernels, as the CLI runs it
      const { runner } = runnerFor(model, metadata);
      return { forward: (x) => runner.forward(x), cfg: model.cfg, dispose: () => model.dispose() };
    },
  });
}
for (const int8 of [false, true]) {
  for (const batch of [1, 8]) {
    cases.push({
      label: `deit_tiny_patch16_224 (random weights${int8 ? ', int8' : ''})`, batch,
      make: (be) => {
        setBackend(be);
        const m = createModel(getPreset('deit_tiny_patch16_224'), 0);
        if (int8) quantizeModel(m);
        return { forward: (x) => m.forward(x), cfg: m.cfg, dispose: () => m.dispose() };
      },
    });
  }
}

const single = loadWasmSync('auto');
const pool = loadThreadedWasmSync({ threads: T, variant: single.variant, maxMemoryPages: 32768 });
await pool.ready();
const env = { ...environment(), loadavg_before: os.loadavg().map((v) => +v.toFixed(2)) };
console.log(`one thread (${single.name}) vs pool (${pool.name}); calibration ${JSON.stringify(pool.poolStats().calibration)}`);

const rows = [];
let failures = 0;
for (const c of cases) {
  const mk = [c.make(single), c.make(pool)];
  const { inChans, imgSize } = mk[0].cfg, shape = [c.batch, inChans, imgSize, imgSize];
  const rng = new Rng(7), data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  const plans = [single, pool].map((be, k) => InferencePlan.capture(be, data, shape, (x) => mk[k].forward(x)));
  // check first: the pool's output equals one thread's, bit for bit
  const want = plans[0].run(data), got = plans[1].run(data);
  const wb = new Uint32Array(want.buffer, want.byteOffset, want.length), gb = new Uint32Array(got.buffer, got.byteOffset, got.length);
  for (let i = 0; i < wb.length; i++) if (wb[i] !== gb[i]) throw new Error(`${c.label} batch ${c.batch}: pool output ${got[i]} at ${i}, one thread ${want[i]}`);
  // rounds: enough for ~2 s per runner (0.5 s with --quick), at least 8, at most 400
  const t0 = performance.now(); plans[0].run(data); const once = performance.now() - t0;
  const runs = Math.max(8, Math.min(400, Math.round((quick ? 500 : 2000) / Math.max(once, 0.01))));
  const warmup = Math.max(2, Math.round(runs / 10));
  const split0 = pool.splitCalls, solo0 = pool.soloCalls;
  const t = pairedRounds([() => { plans[0].run(data); }, () => { plans[1].run(data); }], warmup + runs, warmup);
  const splitPerRun = (pool.splitCalls - split0) / (warmup + runs), soloPerRun = (pool.soloCalls - solo0) / (warmup + runs);
  const one = latencyStats(t.a), pl = latencyStats(t.b);
  const ratio = pl.median_ms / one.median_ms, pairRatio = latencyStats(t.ratios).median_ms;
  const ok = c.batch === 1 ? ratio <= LIMITS.b1_pool_vs_one : 1 / ratio >= LIMITS.b8_speedup;
  if (!ok) failures++;
  const row = {
    model: c.label, batch: c.batch, runs, warmup,
    one_thread: one, pool: pl,
    pool_vs_one: +ratio.toFixed(3), pool_vs_one_paired: +pairRatio.toFixed(3), speedup: +(1 / ratio).toFixed(3),
    pool_split_calls_per_run: +splitPerRun.toFixed(1), pool_solo_calls_per_run: +soloPerRun.toFixed(1),
    check: c.batch === 1 ? `pool/one <= ${LIMITS.b1_pool_vs_one}` : `speedup >= ${LIMITS.b8_speedup}`, ok,
  };
  rows.push(row);
  console.log(`${c.label.padEnd(40)} b${c.batch}  one ${one.median_ms.toFixed(3)} ms (±${(one.spread * 100).toFixed(1)}%)  pool ${pl.median_ms.toFixed(3)} ms (±${(pl.spread * 100).toFixed(1)}%)  ` +
    `pool/one ${ratio.toFixed(3)} (paired ${pairRatio.toFixed(3)})  splits/run ${splitPerRun.toFixed(0)}/${(splitPerRun + soloPerRun).toFixed(0)}  ${ok ? 'ok' : 'FAIL'}`);
  plans.forEach((p) => p.dispose());
  mk.forEach((m) => m.dispose());
}

const result = {
  what: `one thread (WasmBackend) vs the pool (ThreadedWasmBackend, ${T} threads, calibrated thresholds), planned forwards, interleaved rounds; every committed model at batch 1, DeiT-Tiny (random weights) at batch 1 and 8`,
  command: `npx tsx bench/threads.ts${quick ? ' --quick' : ''}${T !== 2 ? ` --threads ${T}` : ''}`,
  limits: LIMITS,
  all_ok: failures === 0,
  pool: { name: pool.name, ...pool.poolStats() },
  env: { ...env, loadavg_after: os.loadavg().map((v) => +v.toFixed(2)) },
  rows,
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(`${failures ? `${failures} check(s) failed` : 'all checks ok'}; wrote ${out}`);
await pool.close();
process.exitCode = failures ? 1 : 0;
