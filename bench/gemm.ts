// GEMM throughput, single thread: caitjs (plain SIMD and relaxed-SIMD builds)
// against the peer tfjs-backend-wasm (XNNPACK, SIMD binary), NN layout,
// GFLOP/s = 2*M*N*K / time.
//
// Timing is benchmark.js. The machine may be shared with other work, and
// interference only ever makes a run slower, so each implementation is timed
// in ROUNDS short benchmark.js runs, interleaved with all the others; the
// figure reported is the median sample of its best round, with that round's
// relative margin of error and sample count.
// gflopsBest is the single fastest sample seen.
//
// Usage: npm run bench:gemm [-- --cpu K|none] [--out NAME]   writes bench/results/NAME (default gemm.json)
//   (one thread: pinned to CPU K, 0 by default; bench/pin.ts says why)
//
// Before timing, each shape's result from every implementation is checked
// against a plain float64 triple loop; the bench aborts if one is wrong.
//
// int8 rows (assembly/qgemm.ts, issue 17), same shapes, interleaved with the
// float ones in the same rounds; GOP/s counts a multiply-add as two
// operations, as GFLOP/s does:
//   caitjs-<build>-np        float GEMM on pre-packed weights (layout NP, as
//                            inference runs it), the fair float baseline
//   caitjs-<build>-int8      qgemm alone: int8 weights pre-packed (pack_qb),
//                            activations already quantized
//   caitjs-<build>-int8+q    quantize_rows + qgemm: what an int8 Linear costs
//   caitjs-<build>-int8-6bit qgemm alone on 6-bit rows (QGEMM_A6: the composed
//                            dot sums pairs of groups in i16; src/quant/int8.ts
//                            runs qkv, fc1, fc2 and attention proj so)
// An int8 result is checked bit for bit against the reference backend's
// qgemm (smallest shape) and within quantization error (3% of the largest
// |C|) of the float64 product. `int8_vs_float` in the JSON: each int8 row's
// GOP/s over the same build's float NN and NP rows, per shape.
import os from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import Benchmark from 'benchmark';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { loadWasmSync, relaxedSimdSupported, type WasmBackend } from '../src/backend/wasm.js';
import { NN, NT, NP } from '../src/backend/kernels.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { quantizeWeight } from '../src/quant/int8.js';
import { rand, naive, int8Run } from './operands.js';
import { pinToOneCpu } from './pin.js';
import { scriptArgs } from './args.js';

// M x K x N, as in the issue: ViT-S/16 and ViT-B/16 projection shapes (197 tokens) and a square one.
const SHAPES: Array<[number, number, number]> = [[197, 192, 576], [197, 192, 768], [197, 768, 192], [512, 512, 512]];
const WARM_S = 0.5;
const ROUNDS = 5;
const MAX_TIME_S = 0.5; // per round: 4 shapes x 9 impls x (0.5 s + 5 x ~0.8 s): about 6 minutes

interface Row {
  M: number; K: number; N: number; threads: 1; impl: string;
  gflops: number; gflopsMean: number; gflopsBest: number; rme: number; samples: number;
}

function verify(impl: string, got: ArrayLike<number>, want: Float64Array, K: number, rel = 1e-6 * K): void {
  let worst = 0, ref = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
    ref = Math.max(ref, Math.abs(want[i]));
  }
  if (!(worst <= rel * ref)) {
    console.error(`${impl}: wrong result, max |diff| ${worst} (max |want| ${ref})`);
    process.exit(1);
  }
}

async function initTfjs(): Promise<string> {
  // Offline: point the backend at the binaries in node_modules. Only the
  // single-threaded SIMD binary gets a real path, so if tfjs decided SIMD was
  // unsupported (or wanted threads) initialization would fail rather than
  // silently benchmark the scalar build.
  const require = createRequire(import.meta.url);
  const dist = pathToFileURL(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));
  const simd = fileURLToPath(dist);
  setWasmPaths({
    'tfjs-backend-wasm-simd.wasm': simd,
    'tfjs-backend-wasm.wasm': '/nonexistent/tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm': '/nonexistent/tfjs-backend-wasm-threaded-simd.wasm',
  });
  setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialize');
  await tf.ready();
  if (tf.getBackend() !== 'wasm') throw new Error(`tfjs backend is ${tf.getBackend()}, not wasm`);
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('tfjs reports no WASM SIMD');
  if (getThreadsCount() !== 1) throw new Error(`tfjs XNNPACK uses ${getThreadsCount()} threads`);
  return 'tfjs-backend-wasm-simd.wasm';
}

function bench(name: string, fn: () => void): Promise<Benchmark> {
  return new Promise((resolve, reject) => {
    const b = new Benchmark(name, fn, { maxTime: MAX_TIME_S, minSamples: 15 });
    b.on('complete', () => (b.error ? reject(b.error) : resolve(b)));
    b.on('error', () => reject(b.error));
    b.run();
  });
}

/**
 * Runs fn for WARM_S first. V8 starts wasm functions in its baseline compiler
 * (Liftoff) and tiers up to TurboFan in the background; benchmark.js's own
 * short warm-up can end before the packing routines have tiered up.
 */
function warm(fn: () => void): void {
  const end = performance.now() + WARM_S * 1000;
  do fn(); while (performance.now() < end);
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main(): Promise<void> {
  const cli = scriptArgs(process.argv.slice(2), { cpu: 'string', out: 'string' },
    `node --import tsx bench/gemm.ts [--cpu K|none] [--out NAME.json]   (npm run bench:gemm; about 6 minutes)
  Writes bench/results/NAME.json (by default over the committed gemm.json).`);
  const args = cli.flags;
  const out = (args.out as string | undefined) ?? 'gemm.json';
  if (!/^[\w.-]+\.json$/.test(out)) cli.fail(`--out: a file name ending in .json (written under bench/results/), got '${out}'`);
  const pinning = cli.check(() => pinToOneCpu(args.cpu as string | undefined, 1));
  const relaxed = relaxedSimdSupported();
  const engines: Array<[string, WasmBackend]> = [['caitjs-simd', loadWasmSync('simd')]];
  if (relaxed) engines.push(['caitjs-relaxed', loadWasmSync('relaxed')]);
  else console.warn('relaxed SIMD not supported here: caitjs-relaxed skipped');
  const tfBinary = await initTfjs();

  const env = {
    node: process.versions.node, v8: process.versions.v8, cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length, date: new Date().toISOString(), relaxed,
    int8_dot: Object.fromEntries(engines.map(([name, be]) => [name, be.int8Dot])),
    pinned_cpu: pinning.cpu, pinning: pinning.why,
    // other processes share these cores: the load average says how quiet the run was
    loadavg1m: { start: +os.loadavg()[0].toFixed(2), end: 0 },
    tfjs: { version: tf.version_core, binary: tfBinary, threads: getThreadsCount() },
  };
  console.log(`node ${env.node}, V8 ${env.v8}, ${env.cpu} (${env.cores} cores; ${pinning.why}), relaxed SIMD: ${relaxed}; ` +
    `tfjs-core ${env.tfjs.version} wasm (${tfBinary}, ${env.tfjs.threads} thread)`);

  interface Run { M: number; K: number; N: number; impl: string; fn: () => void; free: () => void; rounds: Benchmark.Stats[] }
  const runs: Run[] = [];
  for (const [M, K, N] of SHAPES) {
    const A = rand(M * K, 1), B = rand(K * N, 2);
    const want = naive(A, B, M, K, N);
    for (const [impl, be] of engines) {
      const a = be.alloc(M * K), b = be.alloc(K * N), c = be.alloc(M * N);
      be.write(a, A); be.write(b, B);
      const fn = () => { be.run('gemm', NN, M, N, K, 1, a, K, 0, b, N, 0, 0, c, N, 0, 1, 0, be.scratch); };
      fn();
      verify(impl, be.read(c, M * N), want, K);
      runs.push({ M, K, N, impl, fn, free: () => { be.free(a); be.free(b); be.free(c); }, rounds: [] });
    }
    // int8: W = B^T [N, K] quantized per output channel, as a Linear's weight
    const Wt = new Float32Array(N * K);
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) Wt[j * K + k] = B[k * N + j];
    const qw = quantizeWeight(Wt, N);
    // each int8 variant: 7-bit rows (within 3% of the float64 product), 6-bit rows (5%)
    const LEVELS = [[127, '', 0.03], [63, '-6bit', 0.05]] as const;
    const ref = M * N * K <= 197 * 192 * 576 ? new ReferenceBackend(1 << 24) : null;
    const refC = LEVELS.map(([L]) => (ref ? int8Run(ref, A, qw, M, N, K, L).c : null));
    /** The int8 run at `levels` on `be`, checked bit for bit against the reference's (smallest shape) and against the product. */
    const int8Checked = (impl: string, be: WasmBackend, li: number) => {
      const [L, suffix, tol] = LEVELS[li], q = int8Run(be, A, qw, M, N, K, L), r = refC[li];
      if (r && q.c.some((v, i) => !Object.is(v, r[i]))) { console.error(`${impl}-int8${suffix}: not bit-identical to the reference qgemm at ${M}x${K}x${N}`); process.exit(1); }
      verify(`${impl}-int8${suffix}`, q.c, want, 0, tol);
      return q;
    };
    for (const [impl, be] of engines) {
      const np = be.alloc(Math.ceil(N / 8) * 8 * K), bt = be.alloc(N * K), a = be.alloc(M * K), c = be.alloc(M * N);
      be.write(bt, Wt); be.write(a, A);
      be.run('pack_b', NT, K, N, bt, K, np);
      const fnp = () => { be.run('gemm', NP, M, N, K, 1, a, K, 0, np, K, 0, 0, c, N, 0, 1, 0, be.scratch); };
      fnp();
      verify(`${impl}-np`, be.read(c, M * N), want, K);
      runs.push({ M, K, N, impl: `${impl}-np`, fn: fnp, free: () => { be.free(np); be.free(bt); be.free(a); be.free(c); }, rounds: [] });
      const q = int8Checked(impl, be, 0);
      runs.push({ M, K, N, impl: `${impl}-int8`, fn: q.gemm, free: () => {}, rounds: [] });
      runs.push({ M, K, N, impl: `${impl}-int8+q`, fn: q.both, free: q.free, rounds: [] });
      const q6 = int8Checked(impl, be, 1);
      runs.push({ M, K, N, impl: `${impl}-int8-6bit`, fn: q6.gemm, free: q6.free, rounds: [] });
    }
    const ta = tf.tensor2d(A, [M, K]), tb = tf.tensor2d(B, [K, N]);
    const tc = tf.matMul(ta, tb);
    verify('tfjs-wasm', tc.dataSync(), want, K);
    tc.dispose();
    // The wasm backend runs each kernel synchronously inside matMul (its
    // dataSync only copies the output out of the wasm heap), so the timed call
    // is matMul + dispose: the result is complete, and tfjs is not charged
    // for a copy that caitjs (whose output stays in its heap) does not make.
    runs.push({ M, K, N, impl: 'tfjs-wasm', fn: () => { tf.matMul(ta, tb).dispose(); },
      free: () => { ta.dispose(); tb.dispose(); }, rounds: [] });
  }
  console.log('results verified against a float64 triple loop');

  for (const r of runs) warm(r.fn);
  // Rounds span every shape and implementation, so a busy spell on the
  // machine lands on different measurements in different rounds.
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of runs) r.rounds.push((await bench(`${r.impl} ${r.M}x${r.K}x${r.N}`, r.fn)).stats);
    process.stdout.write(`round ${round + 1}/${ROUNDS} done\r`);
  }
  console.log('');

  const results: Row[] = [];
  for (const { M, K, N, impl, rounds } of runs) {
    const flop = 2 * M * N * K;
    const best = rounds.reduce((x, y) => (median(y.sample) < median(x.sample) ? y : x));
    const row: Row = {
      M, K, N, threads: 1, impl,
      gflops: +(flop / median(best.sample) / 1e9).toFixed(2),
      gflopsMean: +(flop / best.mean / 1e9).toFixed(2),
      gflopsBest: +(flop / Math.min(...rounds.flatMap((r) => r.sample)) / 1e9).toFixed(2),
      rme: +best.rme.toFixed(2), samples: best.sample.length,
    };
    results.push(row);
    console.log(`  ${`${M}x${K}x${N}`.padEnd(12)} ${impl.padEnd(15)} ${row.gflops.toFixed(1).padStart(6)} GFLOP/s  ` +
      `±${row.rme.toFixed(1)}%  (${row.samples} samples; round medians ${rounds.map((r) => (flop / median(r.sample) / 1e9).toFixed(1)).join(' ')})`);
  }
  for (const r of runs) r.free();

  // Table: one row per shape, one column per implementation.
  const impls = [...new Set(results.map((r) => r.impl))];
  console.log(`\nGFLOP/s, 1 thread (median sample of the best round)\n${'M x K x N'.padEnd(14)}${impls.map((i) => i.padStart(16)).join('')}`);
  for (const [M, K, N] of SHAPES) {
    const cells = impls.map((i) => results.find((r) => r.impl === i && r.M === M && r.K === K && r.N === N));
    console.log(`${`${M}x${K}x${N}`.padEnd(14)}${cells.map((r) => (r ? r.gflops.toFixed(1) : '-').padStart(16)).join('')}`);
  }

  // int8 over float, same build, same shape, same run
  const int8VsFloat = results.filter((r) => r.impl.includes('-int8')).map((r) => {
    const build = r.impl.replace(/-int8.*$/, '');
    const f = (impl: string) => results.find((x) => x.impl === impl && x.M === r.M && x.K === r.K && x.N === r.N)?.gflops;
    const nn = f(build), np = f(`${build}-np`);
    return { M: r.M, K: r.K, N: r.N, impl: r.impl, gops: r.gflops, vs_float_nn: nn ? +(r.gflops / nn).toFixed(3) : null, vs_float_np: np ? +(r.gflops / np).toFixed(3) : null };
  });
  console.log('\nint8 GOP/s over float GFLOP/s (same build, same run)');
  for (const x of int8VsFloat) console.log(`  ${`${x.M}x${x.K}x${x.N}`.padEnd(12)} ${x.impl.padEnd(22)} ${x.gops.toFixed(1).padStart(6)} GOP/s  x${x.vs_float_nn} of float NN, x${x.vs_float_np} of float NP`);

  env.loadavg1m.end = +os.loadavg()[0].toFixed(2);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${out}`, JSON.stringify({ env, results, int8_vs_float: int8VsFloat }, null, 2) + '\n');
  console.log(`\nwrote ${dir}${out}`);
}

await main();
