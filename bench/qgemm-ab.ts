// Paired A/B of two builds of the int8 GEMM (assembly/qgemm.ts): the same
// qgemm calls on the same operands in each build, one process, one CPU,
// interleaved round by round (the order alternating), so that a change of
// the machine's speed lands on both sides. Answers "how much did this kernel
// change buy", which two separate bench/gemm.ts runs cannot: between runs
// this machine's speed moves by more than a kernel change does.
//
// Usage: node --import tsx bench/qgemm-ab.ts --a OLD.wasm --b NEW.wasm
//          [--label-a S] [--label-b S] [--out NAME] [--rounds R] [--cpu K|none]
//   OLD/NEW: relaxed builds: npm run build:wasm's build/cait.relaxed.wasm, or
//   one built at another commit:
//     git worktree add /tmp/wt REV && ln -s "$PWD/node_modules" /tmp/wt/ &&
//     (cd /tmp/wt && npx asc assembly/index.ts --target relaxed)
//   Writes bench/results/NAME.json (default qgemm-ab.json). Committed runs:
//   qgemm-ab-tile2.json (before and after the two-row tile),
//   qgemm-ab-fold.json (the two tiles as two functions and as one body),
//   qgemm-ab-fused-node24.json and -node20.json (the composed dot only, and
//   the fused one where the engine computes it exactly; run under Node 24 with
//   "$(bash scripts/node-from-npm.sh 24)" --import tsx bench/qgemm-ab.ts ...).
//
// Before timing, the two builds' outputs must be bit-identical at every
// shape (a kernel change that alters the bits is not a speed A/B). Each
// round times REPS calls per side; the first WARM rounds are discarded
// (tier-up); the figure is the median over the other rounds, with the median
// absolute deviation (src/util/timing.ts latencyStats), and b/a is the
// median of the per-round time ratios.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { quantizeWeight } from '../src/quant/int8.js';
import { environment } from '../src/util/timing.js';
import { rand, int8Run } from './operands.js';
import { pairedRounds, abSummary, abBuilds } from './ab.js';

// M x K x N: the ViT-Tiny qkv shape at 197 tokens (4-row strips and a 1-row
// tail), 200 (no tail), and the 2-row strips of the int8 prefix rows
// (src/quant/int8.ts) at a block's qkv and at fc2.
const SHAPES: Array<[number, number, number]> = [[197, 192, 576], [200, 192, 576], [2, 192, 576], [2, 768, 192]];
const WARM = 5;

const { sides, rounds, out: outName, pinning } = abBuilds('qgemm-ab', { rounds: 30, warm: WARM });

const stamp = environment(), env = { ...stamp, pinned_cpu: pinning.cpu, pinning: pinning.why };
console.log(`node ${stamp.node}, ${stamp.cpu} (load ${stamp.loadavg}; ${pinning.why}); a = ${sides[0].label}, b = ${sides[1].label}`);
const results = [];
for (const [M, K, N] of SHAPES) {
  const qw = quantizeWeight(rand(N * K, 2), N), A = rand(M * K, 1);
  const runs = sides.map((s) => int8Run(s.be, A, qw, M, N, K));
  if (runs[0].c.some((v, i) => !Object.is(v, runs[1].c[i]))) throw new Error(`${M}x${K}x${N}: the two builds' qgemm outputs differ: not a speed A/B`);
  // about 5 ms of calls per side and round (at 50 GMAC/s): shorter rounds
  // leave the per-round ratio to the timer and to single interruptions
  const reps = Math.max(1, Math.round(5e6 / (M * N * K / 50)));
  const t = pairedRounds([() => runs[0].gemm(), () => runs[1].gemm()], rounds, WARM, reps);
  for (const run of runs) run.free();
  const ab = abSummary(t), st = [ab.a, ab.b];
  const gops = (t: number) => +((2 * M * N * K) / t / 1e6).toFixed(1);
  const row = {
    M, K, N, reps, a: { ...st[0], gops: gops(st[0].median_ms) }, b: { ...st[1], gops: gops(st[1].median_ms) },
    b_over_a_time: ab.b_over_a_time, b_over_a_time_p10_p90: ab.b_over_a_time_p10_p90,
  };
  results.push(row);
  console.log(`  ${`${M}x${K}x${N}`.padEnd(12)} a ${row.a.gops.toFixed(1).padStart(6)} GOP/s (±${(st[0].spread * 100).toFixed(1)}%)  b ${row.b.gops.toFixed(1).padStart(6)} GOP/s (±${(st[1].spread * 100).toFixed(1)}%)  b/a time ${row.b_over_a_time} [p10 ${row.b_over_a_time_p10_p90[0]}, p90 ${row.b_over_a_time_p10_p90[1]}]`);
}
const out = `${outName}.json`, dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(dir + out, JSON.stringify({ env: { ...env, loadavgAfter: environment().loadavg }, a: { file: sides[0].file, label: sides[0].label }, b: { file: sides[1].file, label: sides[1].label }, rounds, warmup_rounds: WARM, results }, null, 2) + '\n');
console.log(`wrote bench/results/${out}`);
