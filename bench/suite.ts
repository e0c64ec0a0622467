// The cross-platform benchmark suite (issue #19): the same code times caitjs
// in Node (bench/browsers.ts) and in a browser (web/bench.html, whose worker,
// web/src/bench-worker.ts, calls runSuite). Browser-safe: no node: imports;
// the caller hands in the backends, the structure rows and the model bytes.
//
// What it times, on one thread (WasmBackend) and on the pool (ThreadedWasmBackend):
//   gemm    the README's / bench/gemm.ts's shapes, NN layout, checked against a
//           float64 triple loop first (the pool bit for bit against one thread).
//           Rows in bench/gemm.ts's schema (M, K, N, threads, impl, gflops,
//           gflopsMean, gflopsBest, rme, samples). int8 rows (impl caitjs-int8-*,
//           2MNK integer multiply-adds counted as flops): quantize_rows of the
//           float input then qgemm against weights packed once (pack_qb), as
//           int8 inference runs a layer; checked against the float64 product
//           with the quantized weights, within the activation rounding bound.
//           bench/gemm.ts times with
//           benchmark.js; here each call is timed alone (performance.now), in
//           ROUNDS interleaved rounds of GEMM_ROUND_MS per shape and thread
//           count, and gflops is the median call of the best round (as there).
//   models  DeiT-Tiny / DeiT-Small, random weights (createModel(cfg, 0)), dense
//           and the CAIT structure bench/vit.ts times (`cait compress
//           --structure-only`'s choice, bench/results/compress-structure.json),
//           at each batch; plus the committed demo models (Fashion-MNIST) at
//           batch 1. Planned forwards (src/plan.ts), as bench/vit.ts and `cait
//           bench`; the pool's logits must equal one thread's bit for bit.
//           Timing as bench/vit.ts: per (model, batch), warm-up rounds discarded,
//           then rounds in which every runner runs once, order rotating (a
//           sample of a model faster than SAMPLE_MS is the mean of as many
//           forwards as fill it: forwards_per_sample); rows in bench/vit.ts's
//           schema (latencyStats, images_per_sec, time_vs_caitjs,
//           throughput_vs_1_thread).
// Checks (issue #19): the pool's median at batch 1 is at most 1.05x one
// thread's for every committed model and DeiT-Tiny (dense and CAIT), and
// DeiT-Tiny dense at batch 8 gets >= 1.7x throughput from the pool.
import type { Backend } from '../src/backend/backend.js';
import { NN, qPackedBytes, qRowsBytes } from '../src/backend/kernels.js';
import { rand, naive } from './operands.js';
import { setBackend, getBackend, Tensor, scope } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { InferencePlan, CaptureError } from '../src/plan.js';
import { createModel } from '../src/nn/model.js';
import { modelFromBytes } from '../src/nn/load-bytes.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import type { VisionTransformer } from '../src/nn/vit.js';
import { CaitModel, atmeOptionsFromMetadata } from '../src/cait/wrap.js';
import { countMacs } from '../src/cait/macs.js';
import { fitStructure, pickStructure, type PruneStyle, type Structure } from '../src/cait/structure.js';
import { latencyStats } from '../src/util/timing.js';
import { Rng } from '../src/util/rng.js';
import { quantizeModel } from '../src/quant/int8.js';

/** M x K x N, bench/gemm.ts's shapes (the README's GEMM table). */
export const GEMM_SHAPES: Array<[number, number, number]> = [[197, 192, 576], [197, 192, 768], [197, 768, 192], [512, 512, 512]];
/** int8: also the model quantized (quantizeModel's defaults), dense and CAIT, as rows 'dense-int8' and 'cait-int8' (with SuiteOptions.int8). */
export const MODELS: Record<string, { preset: string; target: number; int8?: boolean }> = {
  tiny: { preset: 'deit_tiny_patch16_224', target: 1.7, int8: true },
  small: { preset: 'deit_small_patch16_224', target: 1.9 },
};
export const LIMITS = { pool_b1_vs_1_thread: 1.05, b8_thread_scaling: 1.7 };
/** Milliseconds one timing sample of a model lasts at least (several forwards of a small model; see runSuite). */
export const SAMPLE_MS = 25;

export interface StructureRow { model: string; target: number; merge: string; prune?: PruneStyle }

/** bench/structure.ts's choice from the rows of compress-structure.json (passed in: no file access here). */
export function structureFromRows(cfg: VitConfig, target: number, rows: StructureRow[]): Structure & { source: string } {
  const r = rows.find((x) => x.model === cfg.name && x.target === target);
  if (r) return { ...fitStructure(cfg, target, r.merge, r.prune ?? 'uniform'), source: 'cait compress --structure-only search (bench/results/compress-structure.json)' };
  return { ...pickStructure(cfg, target), source: 'pickStructure (analytic)' };
}

export interface SuiteOptions {
  /** One thread (WasmBackend). */
  single: Backend;
  /** The pool (ThreadedWasmBackend), or null where threads are unavailable (then no pool rows). */
  pool: (Backend & { threads: number }) | null;
  models: string[];
  batches: number[];
  runs: number;
  warmup: number;
  gemm: Array<[number, number, number]>;
  gemmRounds: number;
  /** Milliseconds of calls per round, shape and thread count. */
  gemmRoundMs: number;
  /** Also the int8 GEMM (quantize_rows + qgemm) at the same shapes, and the int8 models of MODELS (default true). */
  int8?: boolean;
  structures: StructureRow[];
  /** Committed models to time at batch 1: label and safetensors bytes. */
  committed: Array<{ label: string; file: string; bytes: Uint8Array }>;
  log?: (line: string) => void;
  /** Called between measurements, e.g. to let a browser worker breathe; may be async. */
  tick?: () => Promise<void> | void;
}

export interface GemmRow {
  M: number; K: number; N: number; threads: number; impl: string;
  gflops: number; gflopsMean: number; gflopsBest: number; rme: number; samples: number;
}
export type ModelRow = Record<string, unknown> & { model: string; batch: number; threads: number; runtime: string; variant: string; median_ms: number };

export interface SuiteResult {
  config: Record<string, unknown>;
  models: Record<string, unknown>;
  gemm: GemmRow[];
  results: ModelRow[];
  verify: Array<Record<string, unknown>>;
  checks: Record<string, unknown>;
  samples_ms: Record<string, number[]>;
}

const median = (xs: number[]) => { const s = xs.slice().sort((a, b) => a - b), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** Relative margin of error at 95 %, percent (benchmark.js's rme, normal approximation). */
function rme(xs: number[]): number {
  const n = xs.length, mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return 0;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return (1.96 * sd / Math.sqrt(n) / mean) * 100;
}

async function runGemm(o: SuiteOptions, say: (s: string) => void): Promise<{ rows: GemmRow[]; verify: Array<Record<string, unknown>> }> {
  const bes: Array<[Backend, number]> = [[o.single, 1]];
  if (o.pool) bes.push([o.pool, o.pool.threads]);
  interface Run { M: number; K: number; N: number; threads: number; impl: string; fn: () => void; free: () => void; rounds: number[][] }
  const runs: Run[] = [], verify: Array<Record<string, unknown>> = [];
  for (const [M, K, N] of o.gemm) {
    const A = rand(M * K, 1), B = rand(K * N, 2), want = naive(A, B, M, K, N);
    let one: Float32Array | null = null;
    for (const [be, threads] of bes) {
      const a = be.alloc(M * K), b = be.alloc(K * N), c = be.alloc(M * N);
      be.write(a, A); be.write(b, B);
      const fn = () => { be.run('gemm', NN, M, N, K, 1, a, K, 0, b, N, 0, 0, c, N, 0, 1, 0, be.scratch); };
      fn();
      const got = be.read(c, M * N);
      let worst = 0, ref = 0;
      for (let i = 0; i < want.length; i++) { const d = Math.abs(got[i] - want[i]); worst = Number.isNaN(d) ? Infinity : Math.max(worst, d); ref = Math.max(ref, Math.abs(want[i])); }
      if (!(worst <= 1e-6 * K * ref)) throw new Error(`gemm ${M}x${K}x${N} x${threads}: wrong result, max |diff| ${worst} (max |want| ${ref})`);
      if (one && got.some((v, i) => !Object.is(v, one![i]))) throw new Error(`gemm ${M}x${K}x${N}: the pool's result is not bit-identical to one thread's`);
      one ??= got;
      verify.push({ gemm: `${M}x${K}x${N}`, threads, against: 'float64 triple loop', max_abs_diff: worst, max_abs_want: ref });
      const variant = (be as unknown as { variant?: string }).variant ?? be.name;
      runs.push({ M, K, N, threads, impl: `caitjs-${variant}`, fn, free: () => { be.free(a); be.free(b); be.free(c); }, rounds: [] });
    }
  }
  if (o.int8 !== false) for (const [M, K, N] of o.gemm) {
    // weights per output channel (N x K int8, row stride K) with their scales; the float input quantized per call
    const X = rand(M * K, 3), Wq = new Int8Array(Math.ceil(N * K / 4) * 4), sw = new Float32Array(N);
    for (let i = 0; i < N * K; i++) Wq[i] = Math.round((rand(1, i + 7)[0]) * 254);
    for (let j = 0; j < N; j++) sw[j] = 0.01 * (1 + (j % 5) / 5);
    // float64 product with the quantized weights, and the bound the 7-bit activation rounding allows (half a step per term)
    const want = new Float64Array(M * N), bound = new Float64Array(M * N);
    for (let i = 0; i < M; i++) {
      let lo = 0, hi = 0;
      for (let k = 0; k < K; k++) { lo = Math.min(lo, X[i * K + k]); hi = Math.max(hi, X[i * K + k]); }
      const half = (hi - lo) / 127 / 2;
      for (let j = 0; j < N; j++) {
        let acc = 0, abs = 0;
        for (let k = 0; k < K; k++) { const wv = sw[j] * Wq[j * K + k]; acc += wv * X[i * K + k]; abs += Math.abs(wv); }
        want[i * N + j] = acc; bound[i * N + j] = abs * half * 1.001 + 1e-5;
      }
    }
    let one: Float32Array | null = null;
    for (const [be, threads] of bes) {
      const x = be.alloc(M * K), w = be.alloc(Wq.length / 4), wp = be.alloc(Math.ceil(qPackedBytes(K, N) / 4)), scale = be.alloc(N);
      const qa = be.alloc(Math.ceil(qRowsBytes(M, K) / 4)), rowp = be.alloc(2 * Math.ceil(M / 4) * 4), c = be.alloc(M * N);
      const free = () => { for (const q of [x, w, wp, scale, qa, rowp, c]) be.free(q); };
      try {
        be.write(x, X); be.write(w, new Int32Array(Wq.buffer)); be.write(scale, sw);
        be.run('pack_qb', K, N, w, K, wp);
      } catch (e) { free(); say(`gemm int8: skipped (${(e as Error).message}; an older kernel build?)`); break; }
      const fn = () => { be.run('quantize_rows', x, K, M, K, qa, rowp, 127); be.run('qgemm', M, N, K, qa, rowp, wp, scale, 0, c, N, 0); };
      fn();
      const got = be.read(c, M * N);
      let worst = 0, over = -1;
      for (let i = 0; i < want.length; i++) { const d = Math.abs(got[i] - want[i]); if (!(d <= bound[i])) over = i; worst = Number.isNaN(d) ? Infinity : Math.max(worst, d); }
      if (over >= 0) throw new Error(`int8 gemm ${M}x${K}x${N} x${threads}: [${over}] = ${got[over]}, want ${want[over]} within ${bound[over]}`);
      if (one && got.some((v, i) => !Object.is(v, one![i]))) throw new Error(`int8 gemm ${M}x${K}x${N}: the pool's result is not bit-identical to one thread's`);
      one ??= got;
      verify.push({ gemm: `${M}x${K}x${N} int8`, threads, against: 'float64 product with the quantized weights, within the 7-bit activation rounding bound', max_abs_diff: worst });
      const variant = (be as unknown as { variant?: string }).variant ?? be.name;
      runs.push({ M, K, N, threads, impl: `caitjs-int8-${variant}`, fn, free, rounds: [] });
    }
  }
  say(`gemm: ${o.gemm.length} shapes${runs.some((r) => r.impl.includes('int8')) ? ', float and int8,' : ''} verified against float64 products${o.pool ? ' (pool bit for bit against one thread)' : ''}`);
  // warm-up (tier-up of the wasm code), then interleaved rounds
  for (const r of runs) { const end = performance.now() + 150; do r.fn(); while (performance.now() < end); }
  for (let round = 0; round < o.gemmRounds; round++) {
    for (let j = 0; j < runs.length; j++) {
      const r = runs[(j + round) % runs.length], ts: number[] = [], end = performance.now() + o.gemmRoundMs;
      do { const t0 = performance.now(); r.fn(); ts.push(performance.now() - t0); } while (performance.now() < end || ts.length < 5);
      r.rounds.push(ts);
      await o.tick?.();
    }
    say(`gemm: round ${round + 1}/${o.gemmRounds}`);
  }
  const rows = runs.map((r): GemmRow => {
    const flop = 2 * r.M * r.N * r.K;
    const best = r.rounds.reduce((x, y) => (median(y) < median(x) ? y : x));
    const mean = best.reduce((a, b) => a + b, 0) / best.length;
    return {
      M: r.M, K: r.K, N: r.N, threads: r.threads, impl: r.impl,
      gflops: +(flop / median(best) / 1e6).toFixed(2), gflopsMean: +(flop / mean / 1e6).toFixed(2),
      gflopsBest: +(flop / Math.min(...r.rounds.flat()) / 1e6).toFixed(2), rme: +rme(best).toFixed(2), samples: best.length,
    };
  });
  for (const r of runs) r.free();
  return { rows, verify };
}

interface Runner { key: string; model: string; preset: string; variant: string; threads: number; runtime: string; run: (x: Float32Array) => Float32Array; dispose: () => void }

/** A planned forward of `m` on `be` for this input shape (op by op if it cannot be planned), as bench/vit.ts's caitForward. */
function planned(m: { forward(x: Tensor): Tensor }, be: Backend, shape: number[]): { run: (x: Float32Array) => Float32Array; dispose: () => void } {
  const prev = getBackend();
  setBackend(be);
  try {
    let plan: InferencePlan | null = null;
    try { plan = InferencePlan.capture(be, new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, (t) => m.forward(t)); }
    catch (e) { if (!(e instanceof CaptureError)) throw e; }
    return {
      run: plan ? (x) => plan!.run(x) : (x) => { const p = getBackend(); setBackend(be); try { return noGrad(() => scope(() => m.forward(Tensor.from(x, shape, be)).toArray())); } finally { setBackend(p); } },
      dispose: () => plan?.dispose(),
    };
  } finally { setBackend(prev); }
}

export async function runSuite(o: SuiteOptions): Promise<SuiteResult> {
  const say = o.log ?? (() => {});
  const N = o.pool?.threads ?? 1, THREADS = o.pool ? [1, N] : [1];
  const backendFor = (t: number) => (t === 1 ? o.single : o.pool!);
  const prevBackend = getBackend();
  const verify: Array<Record<string, unknown>> = [], results: ModelRow[] = [], samples: Record<string, number[]> = {}, models: Record<string, unknown> = {};

  const g = o.gemm.length ? await runGemm(o, say) : { rows: [], verify: [] };
  verify.push(...g.verify);
  for (const r of g.rows) say(`  gemm ${r.M}x${r.K}x${r.N} ${r.impl} x${r.threads}: ${r.gflops} GFLOP/s (±${r.rme}%, ${r.samples} calls)`);

  // ---- the groups timed together: (model, batch) -> runners
  interface Group { model: string; batch: number; cfg: VitConfig; make: (t: number, shape: number[]) => Runner[] }
  const groups: Group[] = [];
  for (const c of o.committed) {
    // loaded once per backend (weights live in that backend's heap)
    const loaded = new Map<number, { vit: VisionTransformer; runner: { forward(x: Tensor): Tensor } }>();
    const load = (t: number) => {
      if (!loaded.has(t)) {
        setBackend(backendFor(t));
        const { model: vit, metadata } = modelFromBytes(c.bytes, {}, c.file);
        loaded.set(t, { vit, runner: vit.cfg.merge ? new CaitModel(vit, atmeOptionsFromMetadata(metadata)) : vit });
      }
      return loaded.get(t)!;
    };
    const cfg = load(1).vit.cfg;
    const key = c.file.replace(/\.safetensors$/, '');
    models[key] = { label: c.label, file: c.file, preset: cfg.name, merge: cfg.merge ?? '', macs: countMacs(cfg, cfg.merge ?? '').total, weights: 'committed (models/)' };
    groups.push({
      model: key, batch: 1, cfg,
      make: (t, shape) => {
        const l = load(t), p = planned(l.runner, backendFor(t), shape);
        return [{ key, model: key, preset: cfg.name, variant: 'committed', threads: t, runtime: 'caitjs', ...p, dispose: () => { p.dispose(); l.vit.dispose(); } }];
      },
    });
  }
  for (const key of o.models) {
    const spec = MODELS[key];
    if (!spec) throw new Error(`unknown model '${key}' (known: ${Object.keys(MODELS).join(', ')})`);
    const cfg = getPreset(spec.preset), s = structureFromRows(cfg, spec.target, o.structures);
    const ccfg: VitConfig = { ...cfg, widths: s.widths, merge: s.merge };
    const int8 = o.int8 !== false && !!spec.int8;
    models[key] = {
      ...(int8 ? { int8: 'dense-int8 and cait-int8: the same models through quantizeModel (int8-dynamic, its defaults)' } : {}),
      preset: spec.preset, dense_macs: countMacs(cfg, '').total, weights: 'random, createModel(cfg, 0)',
      cait: { source: `structure-only (${s.source}, target ${spec.target}x, random weights)`, target: spec.target, merge: s.merge, prune: s.prune, keep: +s.keep.toFixed(4), widths_block0: s.widths[0], macs: s.macs, dense_macs: s.denseMacs, mac_ratio: +s.ratio.toFixed(4) },
    };
    // built once per backend, shared by the batches, freed after the last one
    type Pair = { dense: VisionTransformer; cait: VisionTransformer; runner: CaitModel | VisionTransformer };
    const built = new Map<number, Pair & { q: Pair | null; uses: number }>();
    const pair = (q: boolean): Pair => {
      const dense = createModel(cfg, 0), cait = createModel(ccfg, 0);
      if (q) { quantizeModel(dense); quantizeModel(cait); }
      return { dense, cait, runner: s.merge ? new CaitModel(cait, { merge: s.merge }) : cait };
    };
    const build = (t: number) => {
      if (!built.has(t)) {
        setBackend(backendFor(t));
        built.set(t, { ...pair(false), q: int8 ? pair(true) : null, uses: o.batches.length });
      }
      return built.get(t)!;
    };
    for (const batch of o.batches) {
      groups.push({
        model: key, batch, cfg,
        make: (t, shape) => {
          const b = build(t), be = backendFor(t), pd = planned(b.dense, be, shape), pc = planned(b.runner, be, shape);
          const release = () => {
            if (--b.uses > 0) return;
            for (const m of [b.dense, b.cait, b.q?.dense, b.q?.cait]) m?.dispose();
            built.delete(t);
          };
          const rows: Runner[] = [{ key, model: key, preset: spec.preset, variant: 'dense', threads: t, runtime: 'caitjs', run: pd.run, dispose: () => { pd.dispose(); } }];
          if (b.q) {
            const qd = planned(b.q.dense, be, shape), qc = planned(b.q.runner, be, shape);
            rows.push({ key, model: key, preset: spec.preset, variant: 'dense-int8', threads: t, runtime: 'caitjs-int8', run: qd.run, dispose: () => { qd.dispose(); } },
              { key, model: key, preset: spec.preset, variant: 'cait-int8', threads: t, runtime: 'caitjs-cait-int8', run: qc.run, dispose: () => { qc.dispose(); } });
          }
          // the last runner disposed frees the models
          rows.push({ key, model: key, preset: spec.preset, variant: 'cait', threads: t, runtime: 'caitjs-cait', run: pc.run, dispose: () => { pc.dispose(); release(); } });
          return rows;
        },
      });
    }
  }

  const label = (r: { runtime: string; threads: number }) => `${r.runtime} x${r.threads}`;
  for (const grp of groups) {
    const { cfg, batch: B } = grp, shape = [B, cfg.inChans, cfg.imgSize, cfg.imgSize];
    const rng = new Rng(1 + B), x = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    const runners = THREADS.flatMap((t) => grp.make(t, shape));
    try {
      // verification: every pool runner bit for bit against its one-thread twin
      const first = runners.map((r) => r.run(x));
      runners.forEach((r, k) => {
        if (first[k].length !== B * cfg.numClasses || !first[k].every(Number.isFinite)) throw new Error(`${grp.model} b${B} ${label(r)}: ${first[k].length} logits, or not finite`);
        if (r.threads === 1) return;
        const j = runners.findIndex((q) => q.threads === 1 && q.variant === r.variant);
        let d = 0;
        for (let i = 0; i < first[j].length; i++) d = Math.max(d, Math.abs(first[k][i] - first[j][i]));
        if (first[k].some((v, i) => !Object.is(v, first[j][i]))) throw new Error(`${grp.model} b${B} ${label(r)}: logits not bit-identical to one thread (max |diff| ${d})`);
        verify.push({ model: grp.model, batch: B, runtime: r.runtime, threads: r.threads, against: `${r.runtime} x1`, max_abs_diff: d, bit_identical: true });
      });
      // timing: interleaved rounds, rotating order, warm-up discarded; a sample
      // is the mean of `reps` forwards lasting about SAMPLE_MS (one forward for
      // DeiT), so that a millisecond model is not judged by single forwards
      // (a 1-2 ms forward caught by a busy moment of the shared machine once
      // made one Fashion-MNIST row 2.4x slower on the pool in a 10-round run)
      let t1 = performance.now();
      runners[0].run(x);
      t1 = performance.now() - t1;
      const reps = Math.max(1, Math.min(100, Math.round(SAMPLE_MS / Math.max(t1, 0.01))));
      const times = runners.map(() => [] as number[]);
      for (let round = 0; round < o.warmup + o.runs; round++) {
        for (let j = 0; j < runners.length; j++) {
          const k = (j + round) % runners.length, t0 = performance.now();
          for (let r = 0; r < reps; r++) runners[k].run(x);
          const ms = (performance.now() - t0) / reps;
          if (round >= o.warmup) times[k].push(ms);
        }
        await o.tick?.();
      }
      const rows = runners.map((r, k): ModelRow => {
        const s = latencyStats(times[k]);
        samples[`${grp.model} b${B} ${label(r)}`] = times[k].map((t) => +t.toFixed(3));
        return { model: grp.model, preset: r.preset, batch: B, threads: r.threads, runtime: r.runtime, variant: r.variant, ...s, forwards_per_sample: reps, images_per_sec: +(1000 * B / s.median_ms).toFixed(2) };
      });
      for (const row of rows) {
        const base = rows.find((q) => q.variant === (row.variant === 'committed' ? 'committed' : 'dense') && q.threads === row.threads)!;
        row.time_vs_caitjs = +(row.median_ms / base.median_ms).toFixed(3);
        if (row.threads !== 1) {
          const one = rows.find((q) => q.runtime === row.runtime && q.variant === row.variant && q.threads === 1);
          if (one) row.throughput_vs_1_thread = +(one.median_ms / row.median_ms).toFixed(3);
        }
        results.push(row);
        say(`  ${grp.model} b${B} ${label(row).padEnd(16)} median ${row.median_ms.toFixed(2).padStart(8)} ms (spread ${((row.spread as number) * 100).toFixed(1)}%)` +
          (row.throughput_vs_1_thread !== undefined ? `, ${row.throughput_vs_1_thread}x one thread's throughput` : ''));
      }
    } finally {
      for (const r of runners) r.dispose();
    }
  }
  setBackend(prevBackend);

  // ---- checks
  const checks: Record<string, unknown> = {};
  const find = (model: string, batch: number, threads: number, variant: string) => results.find((r) => r.model === model && r.batch === batch && r.threads === threads && r.variant === variant);
  if (o.pool) {
    const per = [...new Set(results.filter((r) => r.batch === 1).map((r) => `${r.model}|${r.variant}`))].flatMap((mv) => {
      const [model, variant] = mv.split('|'), one = find(model, 1, 1, variant), n = find(model, 1, N, variant);
      if (!one || !n || (variant === 'cait' && model !== 'tiny') || (model === 'small') || variant.endsWith('-int8')) return [];
      const ratio = +(n.median_ms / one.median_ms).toFixed(3);
      return [{ model, variant, one_thread_ms: one.median_ms, pool_ms: n.median_ms, ratio, pass: ratio <= LIMITS.pool_b1_vs_1_thread }];
    });
    checks.pool_b1_not_slower = per.length
      ? { what: `batch 1: pool (${N} threads) median / one-thread median, every committed model and DeiT-Tiny`, limit: `<= ${LIMITS.pool_b1_vs_1_thread}`, per_model: per, ratio: Math.max(...per.map((p) => p.ratio)), pass: per.every((p) => p.pass) }
      : { pass: null, reason: 'no batch-1 rows with both thread counts' };
    const one = find('tiny', 8, 1, 'dense'), n = find('tiny', 8, N, 'dense');
    checks.b8_thread_scaling = one && n
      ? { what: `DeiT-Tiny dense, batch 8: throughput with ${N} threads / with 1`, threads: N, limit: `>= ${LIMITS.b8_thread_scaling}`, ratio: +(one.median_ms / n.median_ms).toFixed(3), one_thread_ms: one.median_ms, pool_ms: n.median_ms, pass: one.median_ms / n.median_ms >= LIMITS.b8_thread_scaling }
      : { pass: null, reason: 'not measured in this run (needs tiny at batch 8 and the pool)' };
  } else {
    checks.pool_b1_not_slower = { pass: null, reason: 'no pool here (threads unavailable)' };
    checks.b8_thread_scaling = { pass: null, reason: 'no pool here (threads unavailable)' };
  }
  const verdicts = Object.values(checks).map((c) => (c as { pass: boolean | null }).pass);
  checks.all_pass = verdicts.every((p) => p === true) ? true : verdicts.some((p) => p === false) ? false : null;

  return {
    config: { models: o.models, committed: o.committed.map((c) => c.file), batches: o.batches, threads: THREADS, runs: o.runs, warmup: o.warmup, gemm_shapes: o.gemm, gemm_rounds: o.gemmRounds, gemm_round_ms: o.gemmRoundMs, limits: LIMITS },
    models, gemm: g.rows, results, verify, checks, samples_ms: samples,
  };
}

/** The run's size: the full suite, or `quick` (tests: DeiT-Tiny at batch 1, one GEMM shape, few rounds). */
export function suiteParams(quick: boolean, over: Partial<Pick<SuiteOptions, 'models' | 'batches' | 'runs' | 'warmup' | 'gemmRounds' | 'gemmRoundMs'>> & { threads?: number } = {}) {
  const base = quick
    ? { models: ['tiny'], batches: [1], runs: 3, warmup: 1, gemm: GEMM_SHAPES.slice(0, 1), gemmRounds: 2, gemmRoundMs: 60, threads: 2 }
    : { models: ['tiny', 'small'], batches: [1, 8], runs: 10, warmup: 2, gemm: GEMM_SHAPES, gemmRounds: 5, gemmRoundMs: 250, threads: 2 };
  const p = { ...base, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)), quick } as typeof base & { quick: boolean };
  // the page's URL parameters reach here unchecked (bench.html?runs=0): refused before any work, by name
  const int = (k: 'runs' | 'warmup' | 'threads', min: number) => { if (!(Number.isInteger(p[k]) && p[k] >= min)) throw new Error(`${k} must be an integer >= ${min}, got ${p[k]}`); };
  int('runs', 1); int('warmup', 0); int('threads', 1);
  if (!p.batches.length || p.batches.some((b) => !(Number.isInteger(b) && b >= 1 && b <= 16))) throw new Error(`batches must be integers in 1..16, got ${p.batches.join(',')}`);
  for (const m of p.models) if (!MODELS[m]) throw new Error(`unknown model '${m}' (known: ${Object.keys(MODELS).join(', ')})`);
  if (!p.models.length) throw new Error('models: none given');
  return p;
}

export const SUITE_WHAT = 'bench/suite.ts: GEMM GFLOP/s and whole-model latency (planned forwards) on one thread and the pool, interleaved rounds, medians; the same code in Node and in browsers (web/bench.html)';
