// Where a forward's time goes, for the README's inference-path and structure notes:
//   1. per-step time of the planned forward (src/plan.ts) of dense DeiT-Tiny
//      and its 1.7x CAIT structure (bench/structure.ts): the plan's kernel
//      calls are timed one by one through a wrapped backend.run over R
//      interleaved rounds, each step's median taken, and the medians summed by
//      class (GEMM role, or kernel name) with the GEMMs' GFLOP/s; with the
//      planned arena against the op-by-op peak;
//   2. the pre-packed (NP) GEMM alone at the shapes those models run, with
//      197, 99 and 50 rows: GFLOP/s with the weight hot in cache, and cold
//      (a new copy of it at every call).
// With --int8, part 1 only, on both models quantized with quantizeModel's
// defaults (src/quant/: every Linear through quantize_rows + qgemm, and
// attention's two products through qgemm too; GFLOP/s counting a
// multiply-add as two operations), into profile-int8.json.
// Usage: node --import tsx bench/profile.ts [rounds=40] [--int8] [--out NAME]
//        writes bench/results/NAME (default profile.json, with --int8 profile-int8.json)
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setBackend } from '../src/tensor.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { NP, NT, packedSize, call } from '../src/backend/kernels.js';
import { chosenStructure } from './structure.js';
import { CaitModel } from '../src/cait/wrap.js';
import { InferencePlan } from '../src/plan.js';
import { environment } from '../src/util/timing.js';
import { quantizeModel } from '../src/quant/int8.js';
import { scriptArgs } from './args.js';

const cli = scriptArgs(process.argv.slice(2), { int8: 'boolean', out: 'string' },
  `node --import tsx bench/profile.ts [rounds=40] [--int8] [--out NAME.json]
  Writes bench/results/NAME.json (by default over the committed profile.json, with --int8 profile-int8.json).`);
const { flags, rest } = cli;
const INT8 = flags.int8 === true;
const R = Number(rest[0] ?? 40);
if (!(Number.isInteger(R) && R > 0) || rest.length > 1) cli.fail(`rounds: one positive integer, got '${rest.join(' ')}'`);
const file = (flags.out as string | undefined) ?? (INT8 ? 'profile-int8.json' : 'profile.json');
if (!/^[\w.-]+\.json$/.test(file)) cli.fail(`--out: a file name ending in .json (written under bench/results/), got '${file}'`);
const be = loadWasmSync('auto');
setBackend(be);
const cfg = getPreset('deit_tiny_patch16_224'), s = chosenStructure(cfg, 1.7);
const vits = [createModel(cfg, 0), createModel({ ...cfg, widths: s.widths, merge: s.merge }, 0)];
if (INT8) for (const v of vits) quantizeModel(v);
const models = { dense: vits[0], cait: new CaitModel(vits[1], { merge: s.merge }) };
const shape = [1, 3, 224, 224], x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i));
const D = cfg.embedDim;
/** A GEMM call's role, from its shape: NP rows of one image are the linears, the batched ones attention. */
function role(a: number[], patch: boolean): string {
  const [layout, M, N, K, , , , , , , , , , , , batch] = a;
  if (batch > 1) return (layout & 3) === 1 ? 'attention QK^T' : 'attention PV';
  return linearRole(M, N, K, (layout & 4) !== 0, patch);
}
function linearRole(M: number, N: number, K: number, gelu: boolean, patch = false): string {
  if (M === 1) return 'head';
  // (by its place, not its shape: DeiT-Tiny's fc2 is 768 -> 192 like it, and at batch 1 also runs 196 rows, the class token's apart)
  if (patch) return 'patch embedding';
  if (gelu) return 'fc1 (+GELU)';
  if (K === D && N !== D) return 'qkv';
  return N === D && K <= D ? 'proj' : 'fc2';
}
/** The class of a kernel call (qgemm's arguments: M N K qa rowp wp wscale bias c ldc flags) and its multiply-adds. */
// (int8 attention, src/quant/attention.ts: a qgemm right after quantize_pack_qb
// is one of its two products, P V when softmax_quantize_rows came before that)
let before: string[] = [];
function classify(k: string, a: number[]): { cls: string; macs: number } {
  const prev = before;
  before = [prev[prev.length - 1], k];
  // the patch embedding is the GEMM after patchify (float: right after; int8: after its quantize_rows)
  if (k === 'gemm') return { cls: `gemm ${role(a, prev[1] === 'patchify')}`, macs: a[1] * a[2] * a[3] * a[15] };
  const macs = a[0] * a[1] * a[2];
  if (k === 'qgemm' && prev[1] === 'quantize_pack_qb') return { cls: `qgemm attention ${prev[0] === 'softmax_quantize_rows' ? 'PV' : 'QK^T'}`, macs };
  // (the prefix rows' two parts run without bias, src/quant/int8.ts; every ViT Linear has one)
  if (k === 'qgemm') return { cls: `qgemm ${a[7] === 0 ? 'prefix rows' : linearRole(a[0], a[1], a[2], (a[10] & 1) !== 0, prev[0] === 'patchify')}`, macs };
  return { cls: k, macs: 0 };
}
// the plans' calls go through be.run (wrapped below to time them), not be.prepare's bound calls
Object.defineProperty(be, 'prepare', { value: undefined });
const plans = Object.fromEntries(Object.entries(models).map(([n, m]) => [n, InferencePlan.capture(be, x, shape, (t) => m.forward(t))])) as Record<keyof typeof models, InferencePlan>;
const run = be.run.bind(be);
let rec: Array<{ cls: string; ms: number; macs: number }> = [];
be.run = (k, ...a) => {
  const t = performance.now(), r = run(k, ...a);
  rec.push({ ...classify(k, a), ms: performance.now() - t });
  return r;
};
const names = Object.keys(plans) as Array<keyof typeof models>;
const per: Record<string, Array<typeof rec>> = { dense: [], cait: [] }, wall: Record<string, number[]> = { dense: [], cait: [] };
for (let r = 0; r < R + 5; r++) {
  for (let j = 0; j < names.length; j++) {
    const n = names[(j + r) % names.length];
    rec = [];
    const t0 = performance.now();
    plans[n].run(x);
    if (r >= 5) { wall[n].push(performance.now() - t0); per[n].push(rec); }
  }
}
be.run = run;
const median = (v: number[]) => { const w = [...v].sort((p, q) => p - q), h = w.length >> 1; return w.length & 1 ? w[h] : (w[h - 1] + w[h]) / 2; };
const forwards: Record<string, unknown> = {};
for (const n of names) {
  const classes = new Map<string, { ms: number; macs: number }>();
  per[n][0].forEach((step, i) => {
    const c = classes.get(step.cls) ?? { ms: 0, macs: 0 };
    c.ms += median(per[n].map((p) => p[i].ms)); c.macs += step.macs;
    classes.set(step.cls, c);
  });
  const rows = [...classes].map(([k, v]) => ({ kernel: k, ms: +v.ms.toFixed(3), ...(v.macs ? { gflops: +(2 * v.macs / v.ms / 1e6).toFixed(1) } : {}) })).sort((p, q) => q.ms - p.ms);
  const stepSum = rows.reduce((t, r) => t + r.ms, 0);
  forwards[n] = { planned_ms_median: +median(wall[n]).toFixed(3), step_median_sum_ms: +stepSum.toFixed(3), kernels: rows, plan_steps: plans[n].steps, arena_mb: +(plans[n].arenaBytes / 2 ** 20).toFixed(2), eager_peak_mb: +(plans[n].eagerBytes / 2 ** 20).toFixed(2) };
  console.log(`${n}: planned ${median(wall[n]).toFixed(2)} ms (step medians sum ${stepSum.toFixed(2)}); arena ${(plans[n].arenaBytes / 2 ** 20).toFixed(2)} MB vs ${(plans[n].eagerBytes / 2 ** 20).toFixed(2)} MB op by op`);
  for (const k of rows) console.log(`  ${k.ms.toFixed(3).padStart(8)} ms  ${k.kernel}${'gflops' in k ? `  ${k.gflops} GFLOP/s` : ''}`);
}
const fd = forwards.dense as { step_median_sum_ms: number }, fc = forwards.cait as { step_median_sum_ms: number };
console.log(`step-median ratio ${(fd.step_median_sum_ms / fc.step_median_sum_ms).toFixed(3)} for ${s.ratio.toFixed(3)}x fewer MACs`);
for (const p of Object.values(plans)) p.dispose();
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const head = { env: { ...environment(), backend: be.name }, cait_structure: { merge: s.merge, prune: s.prune, keep: s.keep, mac_ratio: s.ratio, source: s.source }, rounds: R };
const more = INT8 ? { scheme: 'int8-dynamic (src/quant/)' } : { gemm_np: gemmRates() };
writeFileSync(`${dir}${file}`, JSON.stringify({ ...head, forwards, step_median_ratio: fd.step_median_sum_ms / fc.step_median_sum_ms, ...more }, null, 2) + '\n');
console.log(`wrote ${dir}${file}`);

// Hot: one packed weight, reused call after call (stays in L2). Cold: COPIES
// packed copies cycled, so each call finds its weight out of L2 as it does
// inside a forward (the case the GEMM's hand prefetch is for).
function gemmRates(): Array<Record<string, number | string>> {
  const COPIES = 24;
  const gemms: Array<Record<string, number | string>> = [];
  for (const [N, K] of [[744, 192], [192, 744], [576, 192]]) {
    for (const M of [197, 99, 50]) {
      const a = be.alloc(M * K), w = be.alloc(N * K), c = be.alloc(M * N);
      const packs = Array.from({ length: COPIES }, () => be.alloc(packedSize(K, N)));
      be.write(a, new Float32Array(M * K).map(Math.random)); be.write(w, new Float32Array(N * K).map(Math.random));
      for (const p of packs) call(be, 'pack_b', { layout: NT, K, N, b: w, ldb: K, dst: p });
      const reps = Math.max(COPIES, Math.round(1e8 / (2 * M * N * K) / COPIES) * COPIES);
      const rate = (cold: boolean) => {
        const rates: number[] = [];
        for (let r = 0; r < R + 3; r++) {
          const t = performance.now();
          for (let q = 0; q < reps; q++) call(be, 'gemm', { layout: NP, M, N, K, alpha: 1, a, lda: K, sa: 0, b: packs[cold ? q % COPIES : 0], ldb: 0, sb: 0, beta: 0, c, ldc: N, sc: 0, batch: 1, bias: 0, scratch: be.scratch });
          if (r >= 3) rates.push((2 * M * N * K * reps) / (performance.now() - t) / 1e6);
        }
        return +rates.sort((u, v) => u - v)[rates.length >> 1].toFixed(1);
      };
      const hot = rate(false), cold = rate(true);
      gemms.push({ shape: `${M}x${N}x${K}`, M, N, K, gflops_median: hot, gflops_cold_median: cold });
      console.log(`gemm NP ${M}x${N}x${K}: ${hot} GFLOP/s hot, ${cold} cold`);
      for (const q of [a, w, c, ...packs]) be.free(q);
    }
  }
  return gemms;
}
