// Paired A/B of two relaxed builds on the kernels whose constants come from
// tables loaded before their loops (assembly/math.ts: exp, the exact GELU, the
// int8 GEMM's rational GELU, the int8 quantizers): the same calls on the same operands in each build, one
// process, one CPU, interleaved round by round (the order alternating), as
// bench/qgemm-ab.ts does for qgemm. Before timing, every call's output must be
// bit-identical between the builds (a constant moved to memory changes no
// value). Each round times REPS calls per side; the first WARM rounds are
// discarded; the figure is the median over the rest with its median absolute
// deviation, and b/a is the median of the per-round time ratios.
//
// Usage: npm run bench:kernels-ab -- --a OLD.wasm --b NEW.wasm   (node --import tsx bench/kernels-ab.ts ...)
//          [--label-a S] [--label-b S] [--out NAME] [--rounds R] [--cpu K|none]
//   OLD/NEW as for bench/qgemm-ab.ts (a build at another commit:
//     git worktree add /tmp/wt REV && ln -s "$PWD/node_modules" /tmp/wt/ &&
//     (cd /tmp/wt && npx asc assembly/index.ts --target relaxed)).
//   Writes bench/results/NAME.json (default kernels-ab.json). Committed runs:
//   kernels-ab-tables-node20.json, -node22.json, -node24.json (v128.const
//   constants against tables loaded before the loops; Node 22 and 24 run as
//   "$(bash scripts/node-from-npm.sh 24)" --import tsx bench/kernels-ab.ts ...).
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WasmBackend } from '../src/backend/wasm.js';
import { NN, GELU, QGEMM_GELU, qPackedBytes, qRowsBytes } from '../src/backend/kernels.js';
import { quantizeWeight } from '../src/quant/int8.js';
import { environment } from '../src/util/timing.js';
import { rand } from './operands.js';
import { pairedRounds, abSummary, abBuilds } from './ab.js';

const WARM = 5;
const { sides: builds, rounds, out, pinning } = abBuilds('kernels-ab', { rounds: 40, warm: WARM });

// DeiT-Tiny's sizes: fc1's output at 197 tokens (GELU), three heads' 197x197
// attention scores (softmax), fc1's GEMM at 99 tokens (a CAIT block), fc2's
// input at 99 tokens (quantize_rows) and one head's k and v at 197 tokens
// (quantize_pack_qb, as src/quant/attention.ts calls it).
const GN = 197 * 768, SR = 3 * 197, SC = 197, M = 99, K = 192, N = 768;
interface Case { name: string; reps: number; run(): void; out: () => Int32Array }
function cases(be: WasmBackend): Case[] {
  const put = (v: Float32Array) => { const p = be.alloc(v.length); be.write(p, v); return p; };
  const x = put(rand(GN, 1).map((v) => v * 12)), dy = put(rand(GN, 2)), y = be.alloc(GN);
  const S = rand(SR * SC, 3).map((v) => v * 12), s = put(S), sy = be.alloc(SR * SC);
  const qa = be.alloc(Math.ceil(qRowsBytes(SR, SC) / 4)), rp = be.alloc(2 * SR + 8);
  const a = put(rand(M * K, 4)), w = put(rand(K * N, 5).map((v) => v * 0.1)), c = be.alloc(M * N);
  const qw = quantizeWeight(rand(N * K, 6), N);
  const raw = new Int32Array(Math.ceil((N * K) / 4));
  new Int8Array(raw.buffer).set(qw.q);
  const w8 = put(new Float32Array(raw.buffer)), wp = be.alloc(qPackedBytes(K, N) / 4), ws = put(qw.scale);
  const qa2 = be.alloc(qRowsBytes(M, K) / 4), rp2 = be.alloc(2 * M);
  be.run('pack_qb', K, N, w8, K, wp);
  be.run('quantize_rows', a, K, M, K, qa2, rp2, 127);
  const T = 197, W = 576, D = 64, qkv = put(rand(T * W, 7).map((v) => v * 4));
  const dk = be.alloc(qPackedBytes(D, T) / 4), sk = be.alloc(T + 8), dv = be.alloc(qPackedBytes(T, D) / 4), sv = be.alloc(D + 8), mid = be.alloc(D + 8);
  const f2 = put(rand(M * N, 8).map((v) => v * 6)), qa3 = be.alloc(qRowsBytes(M, N) / 4), rp3 = be.alloc(2 * M);
  const read = (p: number, n: number) => () => be.readI32(p, n); // bits
  return [
    { name: 'gelu_fwd 197x768', reps: 20, run: () => { be.run('gelu_fwd', x, y, GN); }, out: read(y, GN) },
    { name: 'gelu_bwd 197x768', reps: 10, run: () => { be.run('gelu_bwd', x, dy, y, GN); }, out: read(y, GN) },
    { name: 'softmax_fwd 591x197', reps: 20, run: () => { be.run('softmax_fwd', s, sy, SR, SC); }, out: read(sy, SR * SC) },
    // (softmax_quantize_rows leaves exp in its input: it is rewritten first, on both sides)
    { name: 'softmax_quantize_rows 591x197', reps: 20, run: () => { be.write(s, S); be.run('softmax_quantize_rows', s, SR, SC, qa, rp, 127); }, out: () => Int32Array.from([...be.readI32(rp, 2 * SR), ...be.readI32(qa, Math.ceil(qRowsBytes(SR, SC) / 4))]) },
    { name: 'gemm NN+GELU 99x192x768', reps: 5, run: () => { be.run('gemm', NN | GELU, M, N, K, 1, a, K, 0, w, N, 0, 0, c, N, 0, 1, 0, be.scratch); }, out: read(c, M * N) },
    { name: 'qgemm+GELU 99x192x768', reps: 10, run: () => { be.run('qgemm', M, N, K, qa2, rp2, wp, ws, 0, c, N, QGEMM_GELU); }, out: read(c, M * N) },
    { name: 'quantize_rows 99x768', reps: 50, run: () => { be.run('quantize_rows', f2, N, M, N, qa3, rp3, 127); }, out: () => Int32Array.from([...be.readI32(qa3, qRowsBytes(M, N) / 4), ...be.readI32(rp3, 2 * M)]) },
    { name: 'quantize_pack_qb k 64x197', reps: 100, run: () => { be.run('quantize_pack_qb', D, T, qkv + 4 * 192, 1, W, 0.125, dk, sk, 0); }, out: () => Int32Array.from([...be.readI32(dk, qPackedBytes(D, T) / 4), ...be.readI32(sk, T)]) },
    { name: 'quantize_pack_qb v 197x64', reps: 100, run: () => { be.run('quantize_pack_qb', T, D, qkv + 4 * 384, W, 1, 1, dv, sv, mid); }, out: () => Int32Array.from([...be.readI32(dv, qPackedBytes(T, D) / 4), ...be.readI32(sv, D), ...be.readI32(mid, D)]) },
  ];
}

const sides = builds.map((s) => ({ ...s, cases: cases(s.be) }));
const stamp = environment(), env = { ...stamp, pinned_cpu: pinning.cpu, pinning: pinning.why };
console.log(`node ${stamp.node}, ${stamp.cpu} (load ${stamp.loadavg}; ${pinning.why}); a = ${sides[0].label}, b = ${sides[1].label}`);
const results = [];
for (let ci = 0; ci < sides[0].cases.length; ci++) {
  const cs = sides.map((s) => s.cases[ci]);
  const outs = cs.map((c) => { c.run(); return c.out(); });
  if (outs[0].length !== outs[1].length || outs[0].some((v, i) => v !== outs[1][i])) throw new Error(`${cs[0].name}: the two builds' outputs differ: not a speed A/B`);
  const ab = abSummary(pairedRounds([() => cs[0].run(), () => cs[1].run()], rounds, WARM, cs[0].reps)), st = [ab.a, ab.b];
  const row = { kernel: cs[0].name, reps: cs[0].reps, ...ab };
  results.push(row);
  console.log(`  ${row.kernel.padEnd(30)} a ${(st[0].median_ms * 1000).toFixed(1).padStart(7)} us  b ${(st[1].median_ms * 1000).toFixed(1).padStart(7)} us  b/a time ${row.b_over_a_time} [p10 ${row.b_over_a_time_p10_p90[0]}, p90 ${row.b_over_a_time_p10_p90[1]}]`);
}
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}${out}.json`, JSON.stringify({ env: { ...env, loadavgAfter: environment().loadavg }, a: { file: sides[0].file, label: sides[0].label }, b: { file: sides[1].file, label: sides[1].label }, rounds, warmup_rounds: WARM, results }, null, 2) + '\n');
console.log(`wrote bench/results/${out}.json`);
