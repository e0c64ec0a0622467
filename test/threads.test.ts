// ThreadedWasmBackend (src/backend/threads.ts): with 2 and 3 threads, every
// split kernel and a whole ViT forward give the same bits as the
// single-threaded WasmBackend; the heap grows under live workers; errors in a
// worker reach the caller; the calibrated thresholds decide what is split; a
// dead worker is noticed and the pool falls back to one thread; close() ends
// the workers, and an unclosed pool does not keep a process alive.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWasmSync, type WasmBackend } from '../src/backend/wasm.js';
import { loadThreadedWasmSync, type ThreadedWasmBackend } from '../src/backend/threads.js';
import { NN, NT, TN, type KernelName } from '../src/backend/kernels.js';
import type { Backend } from '../src/backend/backend.js';
import { Tensor, scope, setBackend, getBackend } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { InferencePlan, WorkerPlan } from '../src/plan.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { CaitModel } from '../src/cait/wrap.js';
import { quantizeModel } from '../src/quant/int8.js';
import { randn } from './util.js';

const test = suite('threads: pool over one shared memory');
const ROOT = fileURLToPath(new URL('..', import.meta.url));

let single: WasmBackend;
const pools: ThreadedWasmBackend[] = [];
let saved: Backend;

test.before(() => {
  saved = getBackend();
  single = loadWasmSync('auto');
  // minWork 0: split every call that can be, however small
  for (const threads of [2, 3]) pools.push(loadThreadedWasmSync({ threads, variant: single.variant, minWork: 0 }));
});
test.after(async () => {
  setBackend(saved);
  for (const p of pools) await p.close();
});

/** Bitwise equality of two float arrays, naming the first difference. */
function same(got: Float32Array, want: Float32Array, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) assert.unreachable(`${what}: element ${i} is ${got[i]}, single-threaded ${want[i]}`);
}

/**
 * Runs `kernel` on each backend over the same inputs (`bufs`: arrays written
 * to fresh allocations; args refer to buffer k as {buf: k}) and returns every
 * buffer afterwards, per backend.
 */
type Arg = number | { buf: number };
function runOn(be: Backend, kernel: KernelName, bufs: Float32Array[], args: Arg[]): Float32Array[] {
  const ptrs = bufs.map((b) => { const p = be.alloc(b.length); be.write(p, b); return p; });
  be.run(kernel, ...args.map((a) => (typeof a === 'number' ? a : ptrs[a.buf])));
  const out = ptrs.map((p, k) => be.read(p, bufs[k].length));
  ptrs.forEach((p) => be.free(p));
  return out;
}
function check(kernel: KernelName, bufs: Float32Array[], args: Arg[], what: string): void {
  const want = runOn(single, kernel, bufs, args);
  for (const p of pools) {
    const got = runOn(p, kernel, bufs, args);
    got.forEach((g, k) => same(g, want[k], `${what} x${p.threads} buffer ${k}`));
  }
}

test('gemm: every layout, odd shapes, alpha/beta/bias, batched: same bits as one thread', () => {
  let seed = 1, splits = 0;
  const before = pools.map((p) => p.splitCalls);
  for (const layout of [NN, NT, TN])
    for (const [M, N, K] of [[1, 7, 5], [3, 9, 300], [5, 8, 64], [197, 100, 64], [13, 33, 520], [64, 197, 17]])
      for (const batch of [1, 3])
        for (const [alpha, beta, bias] of [[1, 0, false], [0.5, 0.75, true]] as const) {
          // op(A) M x K, op(B) K x N, per batch entry; strided batches with a gap
          const lda = layout === TN ? M + 1 : K + 2, ldb = layout === NT ? K + 3 : N + 1, ldc = N + 2;
          const aRows = layout === TN ? K : M, bRows = layout === NT ? N : K;
          const sa = aRows * lda + 5, sb = bRows * ldb + 3, sc = M * ldc + 1;
          const a = randn(sa * batch, seed++), b = randn(sb * batch, seed++), c = randn(sc * batch, seed++), bv = randn(N, seed++);
          const args: Arg[] = [layout, M, N, K, alpha, { buf: 0 }, lda, sa, { buf: 1 }, ldb, sb, beta, { buf: 2 }, ldc, sc, batch, bias ? { buf: 3 } : 0];
          // each backend appends its own scratch
          const want = runOnGemm(single, [a, b, c, bv], args);
          for (const p of pools) {
            const got = runOnGemm(p, [a, b, c, bv], args);
            same(got, want, `gemm layout ${layout} M${M} N${N} K${K} batch ${batch} alpha ${alpha} beta ${beta} bias ${bias} x${p.threads}`);
          }
          splits++;
        }
  pools.forEach((p, i) => assert.ok(p.splitCalls - before[i] >= splits * 0.8, `x${p.threads}: only ${p.splitCalls - before[i]} of ${splits} calls were split`));
});

function runOnGemm(be: Backend, bufs: Float32Array[], args: Arg[]): Float32Array {
  const ptrs = bufs.map((b) => { const p = be.alloc(b.length); be.write(p, b); return p; });
  be.run('gemm', ...args.map((a) => (typeof a === 'number' ? a : ptrs[a.buf])), be.scratch);
  const out = be.read(ptrs[2], bufs[2].length);
  ptrs.forEach((p) => be.free(p));
  return out;
}

test('other split kernels: same bits as one thread', () => {
  const rows = 37, cols = 203, n = rows * cols;
  const x = randn(n, 11, 4), y = randn(n, 12), dy = randn(n, 13);
  check('softmax_fwd', [x, y], [{ buf: 0 }, { buf: 1 }, rows, cols], 'softmax_fwd');
  check('softmax_fwd', [x], [{ buf: 0 }, { buf: 0 }, rows, cols], 'softmax_fwd in place');
  check('softmax_bwd', [randn(n, 14, 0.1), dy, y], [{ buf: 0 }, { buf: 1 }, { buf: 2 }, rows, cols], 'softmax_bwd');
  check('layernorm_fwd', [x, randn(cols, 15), randn(cols, 16), y, new Float32Array(rows), new Float32Array(rows)],
    [{ buf: 0 }, { buf: 1 }, { buf: 2 }, { buf: 3 }, { buf: 4 }, { buf: 5 }, rows, cols, 1e-6], 'layernorm_fwd');
  for (const len of [n, 50, 7]) {
    check('gelu_fwd', [x.subarray(0, len), y.subarray(0, len)], [{ buf: 0 }, { buf: 1 }, len], `gelu_fwd n=${len}`);
    check('gelu_bwd', [x.subarray(0, len), dy.subarray(0, len), y.subarray(0, len)], [{ buf: 0 }, { buf: 1 }, { buf: 2 }, len], `gelu_bwd n=${len}`);
    check('scale', [x.subarray(0, len), y.subarray(0, len)], [{ buf: 0 }, { buf: 1 }, len, 0.3], `scale n=${len}`);
    check('axpy', [x.subarray(0, len), y.subarray(0, len)], [{ buf: 0 }, { buf: 1 }, len, 0.3], `axpy n=${len}`);
    check('fill', [y.subarray(0, len)], [{ buf: 0 }, len, 2.5], `fill n=${len}`);
  }
  for (const kernel of ['add', 'mul'] as const)
    for (const m of [1, 2, 3, cols, n, 17]) {
      check(kernel, [x, randn(m, 20 + m), y], [{ buf: 0 }, { buf: 1 }, { buf: 2 }, n, m], `${kernel} m=${m}`);
    }
  check('add', [x, y], [{ buf: 0 }, { buf: 1 }, { buf: 1 }, n, n], 'add into b');
  const [B, C, H, W, P] = [5, 3, 20, 24, 4];
  check('patchify', [randn(B * C * H * W, 30), new Float32Array(B * (H / P) * (W / P) * C * P * P)],
    [{ buf: 0 }, { buf: 1 }, B, C, H, W, P], 'patchify');
});

function logits(be: Backend, preset: string, B: number, seed: number): Float32Array {
  setBackend(be);
  const cfg = getPreset(preset), vit = createModel(cfg, 7);
  const S = cfg.imgSize, x = randn(B * cfg.inChans * S * S, seed);
  const out = noGrad(() => scope(() => vit.forward(Tensor.from(x, [B, cfg.inChans, S, S])).toArray()));
  vit.dispose();
  return out;
}

test('vit_fmnist forward, batch 4: identical logits (split everything, and default thresholds)', () => {
  const want = logits(single, 'vit_fmnist', 4, 3);
  for (const p of pools) same(logits(p, 'vit_fmnist', 4, 3), want, `vit_fmnist logits x${p.threads}`);
  const dflt = loadThreadedWasmSync({ threads: 2, variant: single.variant });
  try {
    same(logits(dflt, 'vit_fmnist', 4, 3), want, 'vit_fmnist logits x2 (default minWork)');
    assert.ok(dflt.splitCalls + dflt.soloCalls > 0, 'the default pool ran the forward');
  } finally { void dflt.close(); }
});

test('calibration: dispatch cost and per-class thresholds measured in tens of ms; a gemm splits exactly when its work reaches the threshold', async () => {
  const p = loadThreadedWasmSync({ threads: 2, variant: single.variant });
  try {
    await p.ready();
    const st = p.poolStats(), cal = st.calibration!;
    assert.ok(cal, 'calibrated at ready()');
    assert.ok(cal.ms < 1000, `calibration took ${cal.ms} ms`);
    assert.ok(cal.dispatchUs.hot > 0 && cal.dispatchUs.cold > 0 && Number.isFinite(cal.dispatchUs.cold), `dispatch ${JSON.stringify(cal.dispatchUs)}`);
    for (const c of ['gemm', 'softmax', 'layernorm', 'gelu', 'elementwise'] as const) {
      assert.ok(cal.nsPerUnit[c] > 0 && Number.isFinite(cal.nsPerUnit[c]), `${c}: ${cal.nsPerUnit[c]} ns per unit`);
      // the rule: a split must save 3 dispatch costs with 2 threads, W r / 2 >= 3 D
      const want = (3 * cal.dispatchUs.cold * 1000) / (cal.nsPerUnit[c] / 2);
      assert.ok(Math.abs(st.minWork![c] - want) <= 1, `${c}: threshold ${st.minWork![c]}, rule gives ${want}`);
    }
    // gemm [M x 64] = [M x 64][64 x 64]: work 4096 M; one M at the threshold, one below
    const t = st.minWork!.gemm, N = 64, K = 64;
    const Mhi = Math.max(8, Math.ceil(t / (N * K) / 4) * 4), Mlo = Math.floor((t - 1) / (N * K));
    const pa = p.alloc(Mhi * K), pb = p.alloc(K * N), pc = p.alloc(Mhi * N);
    p.run('fill', pa, Mhi * K, 0.5); p.run('fill', pb, K * N, 0.25);
    // the fills may be checked sizes too (their class's calibrated threshold varies with the machine's load)
    const sizes0 = p.poolStats().checked.sizes;
    let s0 = p.splitCalls;
    p.run('gemm', NN, Mhi, N, K, 1, pa, K, 0, pb, N, 0, 0, pc, N, 0, 1, 0, p.scratch);
    assert.is(p.splitCalls, s0 + 1, `gemm of ${Mhi * N * K} MACs (threshold ${t}) was split`);
    // the rule is checked in use: the same call again is timed on one thread (the first probe), then split
    s0 = p.splitCalls;
    const solo0 = p.soloCalls;
    p.run('gemm', NN, Mhi, N, K, 1, pa, K, 0, pb, N, 0, 0, pc, N, 0, 1, 0, p.scratch);
    assert.is(p.soloCalls, solo0 + 1, 'second call of that size: timed on one thread');
    assert.equal(p.poolStats().checked.sizes, sizes0 + 1, 'the gemm size is one checked size');
    assert.ok(cal.minWorkWarm.gemm <= t && cal.warmMs >= 0, `warm threshold ${cal.minWorkWarm.gemm} (within ${cal.warmMs} ms of a split) <= cold ${t}`);
    if (Mlo >= 1) {
      for (const until = performance.now() + 5; performance.now() < until;) { /* past the warm window */ }
      s0 = p.splitCalls;
      p.run('gemm', NN, Mlo, N, K, 1, pa, K, 0, pb, N, 0, 0, pc, N, 0, 1, 0, p.scratch);
      assert.is(p.splitCalls, s0, `gemm of ${Mlo * N * K} MACs (threshold ${t}) ran on one thread`);
    }
    assert.is(p.read(pc, 1)[0], 0.5 * 0.25 * K);
    p.free(pa); p.free(pb); p.free(pc);
  } finally { await p.close(); }
});

test('a planned forward captured on a pool not yet calibrated: calibration stays out of the plan, output unchanged', () => {
  const cfg = getPreset('vit_fmnist'), S = cfg.imgSize, shape = [2, cfg.inChans, S, S], x = randn(2 * cfg.inChans * S * S, 5);
  const capture = (be: Backend) => {
    setBackend(be);
    const vit = createModel(cfg, 7);
    const plan = InferencePlan.capture(be, x, shape, (t) => vit.forward(t));
    const y = plan.run(x);
    plan.dispose(); vit.dispose();
    return y;
  };
  const p = loadThreadedWasmSync({ threads: 2, variant: single.variant });
  try {
    assert.is(p.poolStats().calibration, null, 'not calibrated before the first call');
    same(capture(p), capture(single), 'planned vit_fmnist logits');
    assert.ok(p.poolStats().calibration, 'calibrated during the capture');
  } finally { void p.close(); }
});

test("a batch's slices at once (planned forward on the pool): dense, ATME with proportional attention, int8: same bits as one thread", async () => {
  const cfg = getPreset('vit_fmnist'), S = cfg.imgSize, item = cfg.inChans * S * S;
  const models = (be: Backend) => {
    setBackend(be);
    const q = createModel(cfg, 9);
    quantizeModel(q);
    return [['dense', createModel(cfg, 7)], ['ATME h@1,v@2', new CaitModel(createModel(cfg, 8), { merge: 'h@1,v@2' })], ['int8', q]] as const;
  };
  const run = (be: Backend, B: number) => models(be).map(([label, m]) => {
    const x = randn(B * item, 11), plan = InferencePlan.capture(be, x, [B, cfg.inChans, S, S], (t) => m.forward(t));
    const out = { label, slices: plan.slices, y: plan.run(x), again: plan.run(x) };
    plan.dispose(); (m instanceof CaitModel ? m.vit : m).dispose();
    return out;
  });
  for (const B of [2, 4, 7]) {
    const want = run(single, B);
    for (const p of pools) {
      for (const [i, got] of run(p, B).entries()) {
        // slices within 15% of each other: 4 on 3 threads would be 1 + 1 + 2, 7 would be 2 + 2 + 3
        assert.is(got.slices, p.threads === 2 || B === 2 ? 2 : 1, `${got.label} batch ${B} x${p.threads}: slices`);
        same(got.y, want[i].y, `${got.label} batch ${B} x${p.threads}`);
        same(got.again, want[i].y, `${got.label} batch ${B} x${p.threads}, second run`);
      }
    }
  }
  // 3 images on 2 threads would be 2 + 1: one list, its calls split
  assert.ok(run(pools[0], 3).every((r) => r.slices === 1), 'batch 3 on 2 threads: one list');
  // a pool closed after the capture: the slices run in turn on the caller, same bits
  const p = loadThreadedWasmSync({ threads: 2, variant: single.variant, minWork: 0 });
  setBackend(p);
  const m = new CaitModel(createModel(cfg, 8), { merge: 'h@1,v@2' }), x = randn(4 * item, 11);
  const plan = InferencePlan.capture(p, x, [4, cfg.inChans, S, S], (t) => m.forward(t));
  assert.is(plan.slices, 2);
  const y = plan.run(x);
  await p.close();
  same(plan.run(x), y, 'after close()');
  same(y, run(single, 4)[1].y, 'ATME batch 4 x2');
  plan.dispose(); m.vit.dispose();
});

test('WorkerPlan: two workers run their own forwards at once while the caller waits asynchronously; same bits; after close() the caller computes', async () => {
  const cfg = getPreset('vit_fmnist'), S = cfg.imgSize, item = cfg.inChans * S * S, shape = [3, cfg.inChans, S, S];
  setBackend(single);
  const ref = new CaitModel(createModel(cfg, 8), { merge: 'h@1,v@2' });
  const xs = [randn(3 * item, 31), randn(3 * item, 32)];
  const want = xs.map((x) => noGrad(() => scope(() => ref.forward(Tensor.from(x, shape)).toArray())));
  ref.vit.dispose();
  // the pool of an --instances server: 2 workers, never splitting a call itself
  const p = loadThreadedWasmSync({ threads: 3, variant: single.variant, minWork: Infinity });
  setBackend(p);
  const m = new CaitModel(createModel(cfg, 8), { merge: 'h@1,v@2' });
  const plans = [0, 1].map((w) => new WorkerPlan(p, w, xs[w], shape, (t) => m.forward(t)));
  // a pool that splits calls itself may post to a worker inside a program: refused
  setBackend(pools[1]);
  const other = createModel(cfg, 8);
  assert.throws(() => new WorkerPlan(pools[1], 0, xs[0], shape, (t) => other.forward(t)), /minWork Infinity/);
  other.dispose();
  setBackend(p);
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 0);
  for (let r = 0; r < 3; r++) {
    const got = await Promise.all(plans.map((q, w) => q.run(xs[w])));
    got.forEach((y, w) => same(y, want[w], `worker ${w} round ${r}`));
  }
  clearInterval(timer);
  assert.ok(p.splitCalls >= 6, `programs posted: ${p.splitCalls}`);
  await p.close();
  same(await plans[1].run(xs[1]), want[1], 'after close(): on the caller');
  for (const q of plans) q.dispose();
  m.vit.dispose();
  assert.ok(ticks > 0, 'the event loop ran while the workers computed');
});

test('prepareParallel: a worker program runs kernel, write and logf steps as the caller does', () => {
  const p = pools[0], n = 37;
  const src = randn(n, 21).map((v) => Math.abs(v) + 0.1), consts = randn(n, 22);
  const parts = [0, 1].map(() => {
    const x = p.alloc(n), y = p.alloc(n), z = p.alloc(n), w = p.alloc(n);
    p.write(x, src);
    return { x, y, z, w, steps: [
      { kind: 'write', at: z, data: consts },
      { kind: 'logf', x, y, n },
      { kind: 'run', kernel: 'add', args: [y, z, w, n, n] },
    ] as const };
  });
  const run = p.prepareParallel(parts.map((q) => [...q.steps]))!;
  assert.ok(run, 'two slices on two threads');
  const s0 = p.splitCalls;
  run.run();
  assert.is(p.splitCalls, s0 + 1, 'one dispatch for the whole program');
  const want = p.read(parts[0].w, n);
  for (let i = 0; i < n; i++) assert.is(want[i], Math.fround(Math.fround(Math.log(src[i])) + consts[i]), `caller's slice, element ${i}`);
  same(p.read(parts[1].w, n), want, "the worker's slice");
  run.dispose();
  for (const q of parts) for (const b of [q.x, q.y, q.z, q.w]) p.free(b);
});

/** Runs `f` with console.warn captured; returns the warnings. */
function warnings(f: () => void): string[] {
  const got: string[] = [], warn = console.warn;
  console.warn = (...a: unknown[]) => { got.push(a.join(' ')); };
  try { f(); } finally { console.warn = warn; }
  return got;
}

test('a dead worker (exit seen while idle): the pool falls back to one thread with a warning, results unchanged', async () => {
  const p = loadThreadedWasmSync({ threads: 2, variant: single.variant, minWork: 0 });
  const n = 4096, x = p.alloc(n);
  p.run('fill', x, n, 1);
  assert.is(p.splitCalls, 1);
  const w = (p as unknown as { workers: Array<{ terminate(): Promise<number> }> }).workers[0];
  const got = await new Promise<string[]>((res) => {
    const warn = console.warn, seen: string[] = [];
    console.warn = (...a: unknown[]) => { seen.push(a.join(' ')); console.warn = warn; res(seen); };
    void w.terminate();
  });
  assert.match(got[0], /worker 1 exited.*continuing on one thread/);
  assert.is(p.poolStats().workers, 0);
  p.run('fill', x, n, 2);
  assert.is(p.splitCalls, 1, 'no split after the fallback');
  assert.is(p.read(x, n)[n - 1], 2);
  await p.close();
});

test('a dead worker noticed during a call (no exit event): detected within a second, its part computed by the caller', async () => {
  const p = loadThreadedWasmSync({ threads: 3, variant: single.variant, minWork: 0 });
  const M = 64, N = 40, K = 24;
  const a = randn(M * K, 61), b = randn(K * N, 62);
  const want = runOnGemm(single, [a, b, new Float32Array(M * N), new Float32Array(N)], [NN, M, N, K, 1, { buf: 0 }, K, 0, { buf: 1 }, N, 0, 0, { buf: 2 }, N, 0, 1, 0]);
  same(runOnGemm(p, [a, b, new Float32Array(M * N), new Float32Array(N)], [NN, M, N, K, 1, { buf: 0 }, K, 0, { buf: 1 }, N, 0, 0, { buf: 2 }, N, 0, 1, 0]), want, 'gemm before');
  // kill worker 2 behind the pool's back: its exit event is not delivered (the listeners are gone)
  const w = (p as unknown as { workers: Array<{ removeAllListeners(e: string): void; terminate(): Promise<number> }> }).workers[1];
  w.removeAllListeners('exit'); w.removeAllListeners('error');
  await w.terminate();
  let got!: Float32Array;
  const t0 = performance.now();
  const warned = warnings(() => {
    got = runOnGemm(p, [a, b, new Float32Array(M * N), new Float32Array(N)], [NN, M, N, K, 1, { buf: 0 }, K, 0, { buf: 1 }, N, 0, 0, { buf: 2 }, N, 0, 1, 0]);
  });
  const ms = performance.now() - t0;
  same(got, want, 'gemm with a dead worker');
  assert.ok(ms < 1000, `detected in ${ms.toFixed(0)} ms`);
  assert.is(warned.length, 1, warned.join('\n'));
  assert.match(warned[0], /worker 2 did not take its part in 500 ms; running on the calling thread/);
  const s0 = p.splitCalls, gemmArgs: Arg[] = [NN, M, N, K, 1, { buf: 0 }, K, 0, { buf: 1 }, N, 0, 0, { buf: 2 }, N, 0, 1, 0];
  same(runOnGemm(p, [a, b, new Float32Array(M * N), new Float32Array(N)], gemmArgs), want, 'gemm while the worker is suspect');
  assert.is(p.splitCalls, s0, 'one thread while the worker is suspect');
  // a live worker would have acknowledged the cancelled job by now; this one is gone for good
  await new Promise((r) => setTimeout(r, 600));
  const later = warnings(() => same(runOnGemm(p, [a, b, new Float32Array(M * N), new Float32Array(N)], gemmArgs), want, 'gemm after'));
  assert.match(later.join('\n'), /worker 2 is gone .*continuing on one thread/);
  assert.is(p.splitCalls, s0, 'one thread after the fallback');
  assert.is(p.poolStats().workers, 0);
  assert.match(p.poolStats().fallback!, /worker 2 is gone/);
  await p.close();
});

test('memory growth under live workers: views re-made, workers see the new pages', () => {
  const p = loadThreadedWasmSync({ threads: 2, variant: single.variant, minWork: 0, initialPages: 80 });
  try {
    const size0 = p.memory.buffer.byteLength;
    const M = 64, N = 48, K = 40;
    const a = randn(M * K, 41), b = randn(K * N, 42), bias = randn(N, 43);
    const want = runOnGemm(single, [a, b, new Float32Array(M * N), bias], [NN, M, N, K, 1, { buf: 0 }, K, 0, { buf: 1 }, N, 0, 0, { buf: 2 }, N, 0, 1, { buf: 3 }]);
    const hold = p.alloc(size0);  // past the end: the heap must grow
    p.write(hold, randn(16, 44));
    const grown = p.memory.buffer.byteLength;
    assert.ok(grown > size0, `memory grew (${size0} -> ${grown})`);
    const pa = p.alloc(a.length), pb = p.alloc(b.length), pc = p.alloc(M * N), pbias = p.alloc(N);
    assert.ok(pc + M * N * 4 > size0, 'operands live in the grown part');
    p.write(pa, a); p.write(pb, b); p.write(pbias, bias);
    const before = p.splitCalls;
    p.run('gemm', NN, M, N, K, 1, pa, K, 0, pb, N, 0, 0, pc, N, 0, 1, pbias, p.scratch);
    assert.is(p.splitCalls, before + 1, 'the gemm was split');
    same(p.read(pc, M * N), want, 'gemm in grown memory');
    same(p.read(hold, 16), randn(16, 44), 'data written before more growth');
    // grow again while the old views exist, then read through them
    const more = p.alloc(2 * grown);
    assert.ok(p.memory.buffer.byteLength > grown);
    same(p.read(pc, M * N), want, 'read after a second growth');
    p.free(more); p.free(hold);
  } finally { void p.close(); }
});

test('an error in a worker reaches the caller; the pool keeps working', () => {
  const p = pools[0];
  const M = 64, N = 8, K = 8, end = p.memory.buffer.byteLength;
  const pa = p.alloc(M * K), pb = p.alloc(K * N);
  // C's first rows (the caller's part) lie inside the heap, its last rows (the worker's) past its end
  const pc = end - (M / 2) * N * 4;
  assert.throws(() => p.run('gemm', NN, M, N, K, 1, pa, K, 0, pb, N, 0, 0, pc, N, 0, 1, 0, p.scratch),
    (e: Error) => /worker 1 kernel failed/.test(e.message), 'worker trap reported');
  p.free(pa); p.free(pb);
  same(runOnGemm(p, [randn(6 * 5, 50), randn(5 * 4, 51), new Float32Array(24), new Float32Array(4)], [NN, 6, 4, 5, 1, { buf: 0 }, 5, 0, { buf: 1 }, 4, 0, 0, { buf: 2 }, 4, 0, 1, 0]),
    runOnGemm(single, [randn(6 * 5, 50), randn(5 * 4, 51), new Float32Array(24), new Float32Array(4)], [NN, 6, 4, 5, 1, { buf: 0 }, 5, 0, { buf: 1 }, 4, 0, 0, { buf: 2 }, 4, 0, 1, 0]),
    'gemm after the error');
});

test('close() ends the workers; the heap stays usable on the calling thread', async () => {
  const p = loadThreadedWasmSync({ threads: 3, variant: single.variant, minWork: 0 });
  const x = p.alloc(1000);
  p.run('fill', x, 1000, 2);
  assert.ok(p.splitCalls === 1);
  await p.close();
  p.run('fill', x, 1000, 3);
  assert.is(p.splitCalls, 1, 'no split after close');
  assert.is(p.read(x, 1000)[999], 3);
  await p.close();   // idempotent
});

test('an unclosed pool does not keep the process alive', () => {
  const code = `import { loadThreadedWasmSync } from './src/backend/threads.ts';
const p = loadThreadedWasmSync({ threads: 2, minWork: 0 }); const x = p.alloc(4096); p.run('fill', x, 4096, 1);
console.log('ran', p.splitCalls, p.read(x, 4096)[4095]);`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 15000 });
  assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
  assert.match(r.stdout, /ran 1 1/);
  assert.ok(Date.now() - t0 < 15000);
});

test('cait forward --threads 2 writes the logits of one thread, bit for bit', () => {
  const FIX = join(ROOT, '../shared/fixtures/micro-vit');
  const dir = mkdtempSync(join(tmpdir(), 'cait-threads-'));
  const logitsWith = (...extra: string[]) => {
    const out = join(dir, `logits${extra.join('')}.safetensors`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'forward', '--model', join(FIX, 'model.safetensors'),
      '--preset', 'micro', '--input', join(FIX, 'input.safetensors'), '--out', out, '--json', ...extra], { cwd: ROOT, encoding: 'utf8', timeout: 30000 });
    assert.is(r.status, 0, r.stderr);
    return readSafetensorsFile(out).tensors.get('logits')!.data;
  };
  same(logitsWith('--threads', '2'), logitsWith(), 'cait forward logits');
});

test.run();
