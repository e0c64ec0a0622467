// CDCP: the gather/scatter kernels against their spec on both WASM builds and
// their gradients; masked models equal the compact models extracted from
// them (with and without ATME merging); mask consistency; straight-through
// gradients (finite differences, revival of a pruned channel); MACs, budget,
// ramp, gates, distillation, save/load and a short search through the trainer.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, scope, setBackend, getBackend, liveTensorCount } from '../src/tensor.js';
import { backward, noGrad, zeroGrad } from '../src/autograd.js';
import * as ops from '../src/ops/index.js';
import { gatherCols, gatherRows } from '../src/ops/gather.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import type { Backend } from '../src/backend/backend.js';
import { createModel, loadModel, saveModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import type { VisionTransformer } from '../src/nn/vit.js';
import { AdamW } from '../src/train/optim.js';
import { train } from '../src/train/trainer.js';
import type { ImageSource } from '../src/data/augment.js';
import { CaitModel } from '../src/cait/wrap.js';
import { countMacs } from '../src/cait/macs.js';
import { Cdcp, channelMask, topk, weightImportance, widthsOf, type BlockMasks, type ChannelMask, type MaskedCompute } from '../src/cait/cdcp.js';
import { CdcpModel } from '../src/cait/search.js';
import { extractCompact } from '../src/cait/extract.js';
import { Distiller } from '../src/cait/distill.js';
import { compress } from '../src/cait/compress.js';
import { randn, close, diff } from './util.js';
import { exec, dot, numericGrad } from './kernels/harness.js';
import { gradcheck } from './gradcheck.js';

const ref = new ReferenceBackend();
const wasms: Backend[] = [loadWasmSync('simd'), loadWasmSync('relaxed')];
const i32 = (a: ArrayLike<number>) => new Float32Array(Int32Array.from(a).buffer); // int32 bits through exec's float buffers
const nan = (n: number) => new Float32Array(n).fill(NaN);
let seed = 100;
const rnd = (n: number, s = 1) => randn(n, seed++, s);
/** k random indices in [0, n), repeats allowed or not. */
function indices(n: number, k: number, repeats: boolean): Int32Array {
  const u = randn(k + n, seed++);
  if (repeats) return Int32Array.from({ length: k }, (_, i) => Math.floor(((u[i] + 1) / 2) * n) % n);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => u[a] - u[b]);
  return Int32Array.from(order.slice(0, k));
}

// ---------------------------------------------------------------- kernels
{
  const test = suite('cdcp kernels: gather/scatter');
  // (rows of x, row stride, columns used, k indices): 1, vector width, odd tails, a DeiT-Tiny qkv weight
  const SHAPES: Array<[number, number, number, number]> = [[1, 1, 1, 1], [3, 5, 5, 2], [7, 9, 6, 5], [8, 8, 8, 8], [13, 17, 17, 11], [33, 37, 35, 19], [576, 192, 192, 291]];

  for (const w of wasms) {
    test(`${w.name}: gather_rows / gather_cols equal the reference, outputs never read (NaN-filled)`, () => {
      for (const [R, ld, cols, k] of SHAPES) {
        for (const repeats of [false, true]) {
          if (!repeats && k > R) continue;
          const x = rnd(R * ld), idx = indices(R, k, repeats);
          const want = exec(ref, 'gather_rows', [x, i32(idx), nan(k * cols)], (p) => [p[0], ld, p[1], k, cols, p[2]]).out[2];
          const got = exec(w, 'gather_rows', [x, i32(idx), nan(k * cols)], (p) => [p[0], ld, p[1], k, cols, p[2]]).out[2];
          close(got, want, 0, 0, `gather_rows ${R}x${ld} cols ${cols} k ${k}:`);
          for (let r = 0; r < k; r++) for (let j = 0; j < cols; j++) assert.is(want[r * cols + j], x[idx[r] * ld + j]);
          // columns: idx over the ld columns of R rows
          const cidx = indices(ld, Math.min(k, repeats ? k : ld), repeats), kc = cidx.length;
          const wantC = exec(ref, 'gather_cols', [x, i32(cidx), nan(R * kc)], (p) => [p[0], ld, R, p[1], kc, p[2]]).out[2];
          const gotC = exec(w, 'gather_cols', [x, i32(cidx), nan(R * kc)], (p) => [p[0], ld, R, p[1], kc, p[2]]).out[2];
          close(gotC, wantC, 0, 0, `gather_cols ${R}x${ld} k ${kc}:`);
          for (let r = 0; r < R; r++) for (let j = 0; j < kc; j++) assert.is(wantC[r * kc + j], x[r * ld + cidx[j]]);
        }
      }
    });

    test(`${w.name}: scatter_rows / scatter_cols accumulate like the reference (repeated indices too)`, () => {
      for (const [R, ld, cols, k] of SHAPES) {
        for (const repeats of [false, true]) {
          if (!repeats && k > R) continue;
          const x0 = rnd(R * ld), y = rnd(k * cols), idx = indices(R, k, repeats);
          const want = exec(ref, 'scatter_rows', [y, i32(idx), x0], (p) => [p[0], p[1], k, cols, p[2], ld]).out[2];
          const got = exec(w, 'scatter_rows', [y, i32(idx), x0], (p) => [p[0], p[1], k, cols, p[2], ld]).out[2];
          close(got, want, 0, 0, `scatter_rows ${R}x${ld} k ${k}:`);
          const cidx = indices(ld, Math.min(k, ld), repeats), kc = cidx.length, yc = rnd(R * kc);
          const wantC = exec(ref, 'scatter_cols', [yc, i32(cidx), x0], (p) => [p[0], R, p[1], kc, p[2], ld]).out[2];
          const gotC = exec(w, 'scatter_cols', [yc, i32(cidx), x0], (p) => [p[0], R, p[1], kc, p[2], ld]).out[2];
          close(gotC, wantC, 0, 0, `scatter_cols ${R}x${ld} k ${kc}:`);
          // the spec itself: x0 plus every y element at its destination
          const sum = Float64Array.from(x0);
          for (let r = 0; r < R; r++) for (let j = 0; j < kc; j++) sum[r * ld + cidx[j]] += yc[r * kc + j];
          close(wantC, sum, 1e-6, 0, 'scatter_cols vs float64 sum:');
        }
      }
    });
  }

  test('scatter_* are the gradients of gather_* (central differences, all backends)', () => {
    for (const b of [ref, ...wasms]) {
      const R = 7, ld = 9, cols = 6, k = 5, idx = indices(R, k, true), cidx = indices(ld, 6, true);
      const x = rnd(R * ld), wr = rnd(k * cols), wc = rnd(R * 6);
      const fr = (xx: Float32Array) => dot(wr, exec(b, 'gather_rows', [xx, i32(idx), nan(k * cols)], (p) => [p[0], ld, p[1], k, cols, p[2]]).out[2]);
      const fc = (xx: Float32Array) => dot(wc, exec(b, 'gather_cols', [xx, i32(cidx), nan(R * 6)], (p) => [p[0], ld, R, p[1], 6, p[2]]).out[2]);
      const gr = exec(b, 'scatter_rows', [wr, i32(idx), new Float32Array(R * ld)], (p) => [p[0], p[1], k, cols, p[2], ld]).out[2];
      const gc = exec(b, 'scatter_cols', [wc, i32(cidx), new Float32Array(R * ld)], (p) => [p[0], R, p[1], 6, p[2], ld]).out[2];
      const dr = close(gr, numericGrad(fr, x, 1e-2), 1e-4, 1e-3, `${b.name} rows:`);
      const dc = close(gc, numericGrad(fc, x, 1e-2), 1e-4, 1e-3, `${b.name} cols:`);
      assert.ok(dr.maxRef > 0.1 && dc.maxRef > 0.1, 'gradients should not vanish');
    }
  });

  for (const [bname, make] of [['wasm', () => loadWasmSync('auto')], ['reference', () => new ReferenceBackend()]] as const) {
    test(`gatherRows / gatherCols ops: finite differences (${bname})`, () => {
      setBackend(make());
      const rows = Int32Array.from([4, 0, 2, 4, 6]), cols = Int32Array.from([1, 8, 3, 3]);
      gradcheck('gatherRows', ([w]) => gatherRows(w, rows), [[7, 9]]);
      gradcheck('gatherRows-bias', ([w]) => gatherRows(w, rows), [[7]]);
      gradcheck('gatherRows-conv', ([w]) => gatherRows(w, rows), [[7, 2, 2, 2]]);
      gradcheck('gatherCols', ([w]) => gatherCols(w, cols), [[5, 9]]);
      // through a GEMM, as the masked linear uses it
      gradcheck('masked linear', ([x, w, b]) => ops.linear(x, gatherRows(w, rows), gatherRows(b, rows)), [[3, 9], [7, 9], [7]]);
      assert.throws(() => gatherRows(Tensor.zeros([3, 2]), Int32Array.from([3])), /out of range/);
    });
  }
  test.run();
}

// ---------------------------------------------------------------- models
// 16x16 single-channel images, 4x4 patches: a 4x4 grid (N = 17), odd head dim 5.
const small: VitConfig = {
  ...getPreset('vit_fmnist'), name: 'cdcp-test', imgSize: 16, patchSize: 4, embedDim: 15, depth: 3, numHeads: 3,
  mlpRatio: 2, numClasses: 5, classes: ['a', 'b', 'c', 'd', 'e'], dataSize: 16, mean: [0], std: [1],
};
const D = 5, M = 30;

/** A ViT whose weights are larger than timm's init (so that pruning a channel visibly matters). */
function model(cfg = small, s = 3): VisionTransformer {
  const m = createModel(cfg, s);
  for (const [n, p] of m.namedParameters()) if (/^(blocks\.\d+\.(attn|mlp)\.\w+|head)\.(weight|bias)$/.test(n)) p.write(randn(p.size, s * 1000 + p.size, n.endsWith('bias') ? 0.2 : 0.5));
  return m;
}
const images = (B: number, s = 9, cfg = small) => Tensor.from(randn(B * cfg.inChans * cfg.imgSize * cfg.imgSize, s), [B, cfg.inChans, cfg.imgSize, cfg.imgSize]);

/** Random masks: every width from 1 to full occurs; values random for gates. */
function randomMasks(depth: number, s: number, o: { shared?: boolean; gates?: boolean } = {}): BlockMasks[] {
  const u = randn(1000, s);
  let p = 0;
  const pick = (w: number): ChannelMask => {
    const k = 1 + Math.floor(((u[p++] + 1) / 2) * w) % w;
    const keep = indices(w, k, false);
    return channelMask(w, keep, null, o.gates ? Array.from(keep, () => 0.5 + u[p++]) : undefined);
  };
  return Array.from({ length: depth }, () => {
    const qk = pick(D);
    return { qk, v: o.shared ? qk : pick(D), mlp: pick(M) };
  });
}

{
  const test = suite('cdcp: masked model = extracted compact model');
  test.before(() => setBackend(loadWasmSync('auto')));

  const cases: Array<{ what: string; merge: string; similarity?: 'keys' | 'features' | 'fixed'; shared?: boolean; gates?: boolean; qkvBias?: boolean }> = [
    { what: 'no merging', merge: '' },
    { what: 'no merging, one mask for Q, K, V', merge: '', shared: true },
    { what: 'no merging, gate multipliers', merge: '', gates: true },
    { what: 'no merging, no qkv bias', merge: '', qkvBias: false },
    { what: 'ATME h@0,v@1 (keys)', merge: 'h@0,v@1', similarity: 'keys' },
    { what: 'ATME v@1 (keys), gates', merge: 'v@1', similarity: 'keys', gates: true },
    { what: 'ATME h@1,v@2 (features)', merge: 'h@1,v@2', similarity: 'features' },
    { what: 'ATME h@0 (fixed pairing)', merge: 'h@0', similarity: 'fixed' },
  ];
  for (const c of cases) {
    test(`${c.what}: max |compact - masked| <= 1e-5 for several random masks, gather and dense`, () => {
      const cfg = { ...small, qkvBias: c.qkvBias ?? true };
      const vit = model(cfg);
      const before = liveTensorCount();
      const searcher = new CdcpModel(vit, { merge: c.merge, similarity: c.similarity, cdcp: { sharedQkv: c.shared, masks: c.gates ? 'gates' : 'topk' } });
      for (let trial = 0; trial < 4; trial++) {
        const masks = randomMasks(cfg.depth, 40 + trial, c);
        const compact = extractCompact(vit, masks, c.merge);
        assert.equal(compact.cfg.widths, widthsOf(masks));
        const runner = new CaitModel(compact, { merge: c.merge, similarity: c.similarity });
        noGrad(() => scope(() => {
          const x = images(3, trial);
          const want = runner.forward(x).toArray();
          for (const compute of ['gather', 'dense'] as MaskedCompute[]) {
            const got = searcher.forwardWith(x, masks, compute).toArray();
            const d = close(got, want, 1e-5, 0, `trial ${trial} ${compute}:`);
            assert.ok(d.maxRef > 0.1, 'logits should not be trivial');
          }
          // and the masks matter: the dense model differs
          assert.ok(diff(new CaitModel(vit, { merge: c.merge, similarity: c.similarity }).forward(x).toArray(), want).maxAbs > 1e-3);
        }));
        compact.dispose();
      }
      searcher.dispose();
      vit.dispose();
      assert.is(liveTensorCount(), before - vit.parameters().length, 'tensors leaked');
    });
  }

  test('full masks reproduce the dense model exactly in form (gather = dense = ViT)', () => {
    const vit = model();
    const full = Array.from({ length: small.depth }, () => ({ qk: channelMask(D, Array.from({ length: D }, (_, i) => i)), v: channelMask(D, [0, 1, 2, 3, 4]), mlp: channelMask(M, Array.from({ length: M }, (_, i) => i)) }));
    const s = new CdcpModel(vit);
    noGrad(() => scope(() => {
      const x = images(2);
      const want = vit.forward(x).toArray();
      close(s.forwardWith(x, full, 'gather').toArray(), want, 1e-5, 0, 'gather:');
      close(s.forwardWith(x, full, 'dense').toArray(), want, 1e-5, 0, 'dense:');
    }));
    s.dispose(); vit.dispose();
  });

  test('the compact model saves and loads with the normal model files (widths and merge in the config)', () => {
    const vit = model(), masks = randomMasks(small.depth, 77);
    const compact = extractCompact(vit, masks, 'h@1');
    const file = join(mkdtempSync(join(tmpdir(), 'cdcp-')), 'compact.safetensors');
    saveModel(file, compact);
    const { model: back } = loadModel(file);
    assert.equal(back.cfg.widths, widthsOf(masks));
    assert.is(back.cfg.merge, 'h@1');
    assert.is(back.numParams(), compact.numParams());
    assert.ok(back.numParams() < vit.numParams());
    noGrad(() => scope(() => {
      const x = images(2);
      close(new CaitModel(back).forward(x).toArray(), new CaitModel(compact).forward(x).toArray(), 0, 0, 'reloaded:');
    }));
    for (const m of [vit, compact, back]) m.dispose();
  });
  test.run();
}

{
  const test = suite('cdcp: masks');
  test.before(() => setBackend(loadWasmSync('auto')));

  test('head- and attention-level consistency: every head keeps the same indices, Q and K the same', () => {
    const vit = model(), H = small.numHeads, C = small.embedDim;
    const cd = new Cdcp(vit, { allocation: 'uniform', keepRatio: 0.6 });
    cd.setProgress(10, 10);
    cd.scores.forEach((s, i) => { s.qk.write(randn(D, 500 + i)); s.v.write(randn(D, 600 + i)); s.mlp.write(randn(M, 700 + i)); });
    const masks = cd.masks(false), compact = extractCompact(vit, masks);
    masks.forEach((m, i) => {
      assert.equal(Array.from(m.qk.keep), Array.from(topk(cd.scores[i].qk.toArray(), 3)), 'top-k of the qk scores');
      assert.is(m.qk.keep.length, 3); assert.is(m.v.keep.length, 3); assert.is(m.mlp.keep.length, 18);
      // the compact qkv rows: per head h, q rows h*D + I_qk, then k rows H*D + h*D + I_qk, then v rows 2*H*D + h*D + I_v
      const W = vit.blocks[i].attn.qkv.weight.toArray(), Wc = compact.blocks[i].attn.qkv.weight.toArray();
      const kq = m.qk.keep.length, kv = m.v.keep.length;
      const rowOf = (r: number) => { for (let src = 0; src < 3 * C; src++) if (W.subarray(src * C, src * C + C).every((v, j) => v === Wc[r * C + j])) return src; return -1; };
      for (let h = 0; h < H; h++) {
        const qi = [], ki = [], vi = [];
        for (let t = 0; t < kq; t++) { qi.push(rowOf(h * kq + t) - h * D); ki.push(rowOf(H * kq + h * kq + t) - C - h * D); }
        for (let t = 0; t < kv; t++) vi.push(rowOf(2 * H * kq + h * kv + t) - 2 * C - h * D);
        assert.equal(qi, Array.from(m.qk.keep), `block ${i} head ${h}: q channels`);
        assert.equal(ki, Array.from(m.qk.keep), `block ${i} head ${h}: k channels = q channels`);
        assert.equal(vi, Array.from(m.v.keep), `block ${i} head ${h}: v channels`);
      }
    });
    const shared = new Cdcp(vit, { sharedQkv: true });
    assert.equal(shared.namedParameters().map(([n]) => n).slice(0, 2), ['cdcp.blocks.0.qkv', 'cdcp.blocks.0.mlp']);
    for (const m of shared.masks(true)) assert.ok(m.qk === m.v, 'one mask for Q, K and V');
    for (const m of [compact, vit]) m.dispose();
    cd.dispose(); shared.dispose();
  });

  test('top-k: ties keep the lower index; learned k = positive scores (at least minKeep); uniform k = round(r * width)', () => {
    assert.equal(Array.from(topk([1, 3, 3, 0, 3], 2)), [1, 2]);
    const vit = model(), cd = new Cdcp(vit, { allocation: 'learned', minKeep: 2 });
    cd.scores[0].mlp.write(Float32Array.from({ length: M }, (_, i) => (i % 3 === 0 ? 0.1 : -0.1)));
    cd.scores[1].mlp.write(new Float32Array(M).fill(-1));
    const m = cd.masks(true);
    assert.equal(Array.from(m[0].mlp.keep), Array.from({ length: 10 }, (_, i) => 3 * i));
    assert.is(m[1].mlp.keep.length, 2);
    assert.is(m[2].mlp.keep.length, M, 'scores start positive: all kept');
    assert.ok(m[0].mlp.score === cd.scores[0].mlp);
    const u = new Cdcp(vit, { allocation: 'uniform', keepRatio: 0.3, rampFraction: 0.5 });
    assert.is(u.masks()[0].mlp.keep.length, M, 'ramp starts at 1');
    u.setProgress(25, 100);
    assert.ok(Math.abs(u.keepRatioNow() - 0.65) < 1e-12);
    assert.is(u.masks()[0].mlp.keep.length, Math.round(0.65 * M));
    u.setProgress(60, 100);
    assert.is(u.masks()[0].mlp.keep.length, 9);
    assert.is(u.masks()[0].qk.keep.length, 2);
    // initial scores: spread evenly over (0, 2 scoreInit) in the order of weight importance, or constant
    const w = new Cdcp(vit, { scoreInit: 0.1 }), imp = weightImportance(vit.blocks[1]);
    const sc = w.scores[1].mlp.toArray();
    assert.ok(Math.abs(sc.reduce((a, b) => a + b, 0) / M - 0.1) < 1e-6);
    assert.equal(Array.from(topk(sc, 7)), Array.from(topk(imp.mlp, 7)));
    assert.ok(new Cdcp(vit, { init: 'constant' }).scores[0].qk.toArray().every((x) => x === Math.fround(0.05)));
    cd.dispose(); u.dispose(); w.dispose(); vit.dispose();
  });
  test.run();
}

{
  const test = suite('cdcp: straight-through gradients');
  test.before(() => setBackend(loadWasmSync('auto')));

  /** Loss of the masked model with explicit masks (a fixed random projection of the logits). */
  function lossWith(s: CdcpModel, x: Tensor, masks: BlockMasks[], compute: MaskedCompute): Tensor {
    const logits = s.forwardWith(x, masks, compute);
    return ops.crossEntropy(logits, [0, 3, 1]);
  }
  const withValue = (m: ChannelMask, c: number, u: number): ChannelMask => {
    const value = Float32Array.from(m.value); value[c] = u;
    return { ...m, value, score: null };
  };

  test('gradients reach every score, pruned channels included (dense); equal to finite differences of the loss in the mask', () => {
    const vit = model(), s = new CdcpModel(vit, { merge: 'h@1' });
    const x = images(3, 5);
    // masks with scores attached: the straight-through path
    const masks = randomMasks(small.depth, 21).map((m, i) => ({
      qk: { ...m.qk, score: s.cdcp.scores[i].qk }, v: { ...m.v, score: s.cdcp.scores[i].v }, mlp: { ...m.mlp, score: s.cdcp.scores[i].mlp },
    }));
    scope(() => backward(lossWith(s, x, masks, 'dense')));
    const grads = s.cdcp.scores.map((b) => ({ qk: b.qk.grad!.toArray(), v: b.v.grad!.toArray(), mlp: b.mlp.grad!.toArray() }));
    zeroGrad(s.namedParameters().map(([, p]) => p));
    // finite differences in the multiplier m_c, for kept and pruned channels of each kind
    const eps = 1e-2;
    let checked = 0, pruned = 0;
    for (const i of [0, 2]) {
      for (const kind of ['qk', 'v', 'mlp'] as const) {
        const m = masks[i][kind], g = grads[i][kind];
        assert.ok(g.some((v) => v !== 0), `block ${i} ${kind}: no gradient`);
        const chans = [m.keep[0], ...Array.from({ length: m.width }, (_, c) => c).filter((c) => m.value[c] === 0).slice(0, 2)];
        for (const c of chans) {
          const at = (u: number) => noGrad(() => scope(() => {
            const mm = masks.map((b, j) => (j === i ? { ...b, [kind]: withValue(b[kind], c, u) } : b));
            return lossWith(s, x, mm, 'dense').item();
          }));
          const num = (at(m.value[c] + eps) - at(m.value[c] - eps)) / (2 * eps);
          assert.ok(Math.abs(g[c] - num) <= 2e-3 + 2e-2 * Math.abs(num), `block ${i} ${kind} channel ${c} (${m.value[c] ? 'kept' : 'pruned'}): straight-through ${g[c]}, finite difference ${num}`);
          checked++;
          if (m.value[c] === 0) { pruned++; assert.ok(Math.abs(g[c]) > 1e-6, `pruned channel ${c} of ${kind} got no gradient`); }
        }
      }
    }
    assert.ok(checked >= 10 && pruned >= 4, `${checked} checked, ${pruned} pruned`);
    s.dispose(); vit.dispose(); x.dispose();
  });

  test('gather = dense for the weights\' gradients and kept channels\' scores; gather gives pruned channels none', () => {
    const vit = model(), s = new CdcpModel(vit, { merge: 'v@0' });
    const x = images(3, 6);
    const masks = randomMasks(small.depth, 22).map((m, i) => ({
      qk: { ...m.qk, score: s.cdcp.scores[i].qk }, v: { ...m.v, score: s.cdcp.scores[i].v }, mlp: { ...m.mlp, score: s.cdcp.scores[i].mlp },
    }));
    const params = s.namedParameters();
    const run = (compute: MaskedCompute) => {
      scope(() => backward(lossWith(s, x, masks, compute)));
      const g = new Map(params.map(([n, p]) => [n, p.grad ? p.grad.toArray() : null]));
      zeroGrad(params.map(([, p]) => p));
      return g;
    };
    const gd = run('dense'), gg = run('gather');
    for (const [n] of params) {
      const a = gd.get(n)!, b = gg.get(n)!;
      const sm = /^cdcp\.blocks\.(\d+)\.(qk|v|mlp)$/.exec(n);
      if (!sm) { close(b, a, 1e-5, 1e-4, `${n}:`); continue; }
      const mk = masks[Number(sm[1])][sm[2] as 'qk' | 'v' | 'mlp'];
      for (let c = 0; c < mk.width; c++) {
        if (mk.value[c]) assert.ok(Math.abs(a[c] - b[c]) <= 1e-5 + 1e-4 * Math.abs(a[c]), `${n}[${c}] kept: dense ${a[c]} gather ${b[c]}`);
        else { assert.is(b[c], 0, `${n}[${c}] pruned: gather gives no gradient`); }
      }
    }
    s.dispose(); vit.dispose(); x.dispose();
  });

  test('a channel pruned early comes back when the loss favours it (dense steps); not by its own gradient under gather', () => {
    for (const denseEvery of [1, 0]) {
      const vit = model(), teacher = model();
      const s = new CdcpModel(vit, { cdcp: { allocation: 'learned', denseEvery } });
      // block 1, MLP unit 7 matters (a strong fc2 column) and starts pruned, just below zero
      const fc2 = vit.blocks[1].mlp.fc2.weight, w2 = fc2.toArray();
      for (let r = 0; r < small.embedDim; r++) w2[r * M + 7] *= 6;
      fc2.write(w2); teacher.blocks[1].mlp.fc2.weight.write(w2);
      const score = s.cdcp.scores[1].mlp, init = new Float32Array(M).fill(1); init[7] = -0.02;
      score.write(init);
      const x = images(6, 8);
      const target = noGrad(() => scope(() => teacher.forward(x).toArray())); // the unpruned model: the loss favours unit 7
      assert.ok(!Array.from(s.cdcp.masks(true)[1].mlp.keep).includes(7), 'starts pruned');
      const opt = new AdamW([[score.name!, score]], { lr: 0.01, weightDecay: 0 });
      let back = -1;
      for (let step = 0; step < 6 && back < 0; step++) {
        s.afterStep(step, 100);
        scope(() => backward(ops.distillKL(s.forward(x, true), target, 1)));
        opt.update(0.01);
        zeroGrad(s.namedParameters().map(([, p]) => p));
        if (Array.from(s.cdcp.masks(true)[1].mlp.keep).includes(7)) back = step;
      }
      if (denseEvery) assert.ok(back >= 0, `unit 7 should revive (score ${score.toArray()[7]})`);
      else assert.is(back, -1, 'gather steps give a pruned unit no gradient');
      opt.dispose(); s.dispose(); vit.dispose(); teacher.dispose(); x.dispose();
    }
  });
  test.run();
}

{
  const test = suite('cdcp: MACs, budget, ramp, gates');
  test.before(() => setBackend(loadWasmSync('auto')));

  test('analytic MACs of the compact model equal those of the masked model it came from (with and without merging)', () => {
    const vit = model();
    for (const merge of ['', 'h@0', 'h@1,v@2']) {
      const cd = new Cdcp(vit, {}, merge);
      assert.is(cd.fullMacs(), countMacs(vit.cfg, merge).total, 'unpruned');
      for (let t = 0; t < 4; t++) {
        const masks = randomMasks(small.depth, 300 + t, { shared: t === 3 });
        const compact = extractCompact(vit, masks, merge);
        assert.is(cd.macs(masks), countMacs(compact.cfg).total, `${merge} trial ${t}`);
        assert.ok(cd.macs(masks) < cd.fullMacs());
        compact.dispose();
      }
      cd.dispose();
    }
    // the doc's DeiT-Tiny figures through the same model (no weights needed: a MAC count only)
    const tiny = getPreset('deit_tiny_patch16_224');
    assert.ok(Math.abs(countMacs(tiny, 'h@3,v@6').total / 1e9 - 0.652) < 0.001);
    vit.dispose();
  });

  test('budget: lambda max(0, MACs/T - 1)^2, straight-through gradient = marginal MACs per mask, finite differences in the counts', () => {
    const vit = model(), lambda = 3;
    const cd = new Cdcp(vit, { keepRatio: 0.4, lambda, rampFraction: 1 }, 'h@1');
    cd.setProgress(50, 100);
    const T = cd.targetMacs();
    assert.ok(Math.abs(T - (cd.fullMacs() + cd.finalTargetMacs()) / 2) < 1e-6 * T, 'target halfway along the ramp');
    const masks = cd.masks(true); // all kept: over budget
    const loss = (ms: BlockMasks[]) => { const r = cd.macs(ms) / T - 1; return lambda * Math.max(0, r) ** 2; };
    const L = cd.budgetLoss(masks)!;
    assert.ok(Math.abs(L.item() - loss(masks)) < 1e-6 * loss(masks) && L.item() > 0);
    scope(() => backward(L));
    const analytic = (ms: BlockMasks[], coef: number) => (2 * lambda * Math.max(0, cd.macs(ms) / T - 1) / T) * coef;
    for (const [i, kind] of [[0, 'mlp'], [1, 'qk'], [2, 'v']] as const) {
      const g = cd.scores[i][kind].grad!.toArray();
      assert.ok(g.every((v) => v === g[0]) && g[0] > 0, 'same push on every channel of a mask, downwards');
      const drop = (n: number) => masks.map((m, j) => (j !== i ? m : { ...m, [kind]: channelMask(m[kind].width, Array.from(m[kind].keep).slice(0, m[kind].keep.length - n)) }));
      const coef = cd.macs(masks) - cd.macs(drop(1));
      assert.ok(Math.abs(g[0] - analytic(masks, coef)) <= 1e-5 * g[0], `${kind}: ${g[0]} vs 2 lambda (MACs/T - 1) / T * dMACs/dcount`);
      // d loss / d count by central differences over counts w and w - 2 (exact for the quadratic at w - 1)
      const num = (loss(masks) - loss(drop(2))) / 2;
      assert.ok(Math.abs(num - analytic(drop(1), coef)) <= 1e-6 * num, `${kind}: difference ${num} vs derivative at w - 1`);
    }
    zeroGrad(cd.namedParameters().map(([, p]) => p));
    const under = randomMasks(small.depth, 5).map((m) => ({ ...m, qk: channelMask(D, [0], cd.scores[0].qk), v: channelMask(D, [0]), mlp: channelMask(M, [0]) }));
    assert.is(cd.budgetLoss(under)!.item(), 0, 'no loss under the target');
    assert.is(new Cdcp(vit, { allocation: 'uniform' }).budgetLoss(masks), null, 'uniform widths: no budget term');
    cd.dispose(); vit.dispose();
  });

  test('learned allocation: budget against per-channel importance settles near the target, keeping the important channels', () => {
    // stand-in for the task's straight-through gradient: a fixed importance per channel pulling its score up
    const vit = model(), cd = new Cdcp(vit, { keepRatio: 0.5, lambda: 10, scoreInit: 0.05 }, 'h@1');
    const params = cd.namedParameters(), opt = new AdamW(params, { lr: 0.01, weightDecay: 0 });
    const importance = params.map(([, p], j) => randn(p.size, 900 + j).map((v) => 2e-4 * (v + 1)));
    const total = 300;
    for (let step = 0; step < total; step++) {
      cd.setProgress(step, total);
      scope(() => { const L = cd.budgetLoss(cd.masks(true)); if (L) backward(L); });
      params.forEach(([, p], j) => {
        const g = p.grad ? p.grad.toArray() : new Float32Array(p.size);
        if (!p.grad) p.grad = Tensor.zeros(p.shape);
        p.grad.write(g.map((v, c) => v - importance[j][c]));
      });
      opt.update(0.01);
      zeroGrad(params.map(([, p]) => p));
    }
    cd.setProgress(total, total);
    const masks = cd.masks(false), macs = cd.macs(masks), T = cd.finalTargetMacs();
    assert.ok(macs <= 1.1 * T && macs >= 0.75 * T, `MACs ${macs} vs target ${T} (full ${cd.fullMacs()})`);
    // within each mask, kept channels are the more important ones (allowing one rank of slack at the cut)
    masks.forEach((m, i) => (['qk', 'v', 'mlp'] as const).forEach((kind) => {
      const imp = importance[params.findIndex(([n]) => n === `cdcp.blocks.${i}.${kind}`)];
      const want = topk(imp, m[kind].keep.length + 1);
      for (const c of m[kind].keep) assert.ok(want.includes(c), `block ${i} ${kind}: channel ${c} kept, not among the most important`);
    }));
    opt.dispose(); cd.dispose(); vit.dispose();
  });

  // the CLI gives a MAC target, never a keep ratio: with 'uniform' the target was ignored
  // (keepRatio's default 0.5 every time: 3.31x fewer MACs asked 1.2x or 3x)
  test('uniform allocation meets a MAC target: the keep ratio is the largest whose uniform widths fit it', () => {
    const vit = model(), dense = countMacs(vit.cfg, 'h@1').total;
    for (const ratio of [1.2, 2, 3]) {
      const T = dense / ratio, cd = new Cdcp(vit, { allocation: 'uniform', targetMacs: T }, 'h@1');
      const macs = cd.macs(cd.finalMasks());
      assert.ok(macs <= T, `${ratio}x: final MACs ${macs} over the target ${T}`);
      // one channel more per mask (the next ratio step) would not fit: the ratio is the largest that does
      assert.ok(cd.macsOf(cd.uniformWidths(cd.options.keepRatio + 0.02)) > T, `${ratio}x: keep ratio ${cd.options.keepRatio} is not the largest that fits`);
      assert.equal(widthsOf(cd.finalMasks()), cd.uniformWidths(cd.options.keepRatio));
      cd.dispose();
    }
    assert.throws(() => new Cdcp(vit, { allocation: 'uniform', targetMacs: -1 }), /targetMacs -1: expected a positive number/);
    vit.dispose();
  });

  test('final masks fit the final target: a short search is cut at its lowest scores', () => {
    const vit = model();
    for (const shared of [false, true]) {
      const cd = new Cdcp(vit, { keepRatio: 0.4, sharedQkv: shared }, 'h@1');
      cd.scores.forEach((b, i) => { b.qk.write(randn(D, 40 + i).map((v) => v + 2)); b.v.write(randn(D, 50 + i).map((v) => v + 2)); b.mlp.write(randn(M, 60 + i).map((v) => v + 2)); });
      const now = cd.masks(false), fin = cd.finalMasks(), T = cd.finalTargetMacs();
      assert.is(cd.macs(now), cd.fullMacs(), 'all scores positive: nothing pruned yet');
      assert.ok(cd.macs(fin) <= T && cd.macs(fin) > 0.9 * T, `final ${cd.macs(fin)} vs target ${T}`);
      // every dropped channel scores no higher than every kept one still above minKeep (one global cut)
      const kinds = shared ? (['qk', 'mlp'] as const) : (['qk', 'v', 'mlp'] as const);
      let keptMin = Infinity, droppedMax = -Infinity;
      fin.forEach((m, i) => kinds.forEach((k) => {
        const sc = cd.scores[i][k].toArray();
        sc.forEach((v, c) => { if (m[k].value[c]) { if (m[k].keep.length > 1) keptMin = Math.min(keptMin, v); } else droppedMax = Math.max(droppedMax, v); });
        if (shared) assert.ok(m.qk === m.v);
      }));
      assert.ok(droppedMax <= keptMin, `dropped ${droppedMax} > kept ${keptMin}`);
      const u = new Cdcp(vit, { keepRatio: 0.4, allocation: 'uniform' });
      assert.equal(widthsOf(u.finalMasks()), u.uniformWidths(0.4), 'uniform: the final ratio even before the ramp ends');
      cd.dispose(); u.dispose();
    }
    vit.dispose();
  });

  test('gates: soft in training, one global threshold meeting the target; compact = thresholded masked model; L1 gradient', () => {
    const vit = model(), s = new CdcpModel(vit, { merge: 'h@1', cdcp: { masks: 'gates', keepRatio: 0.5, l1: 0.01 } });
    s.cdcp.scores.forEach((b, i) => { b.qk.write(randn(D, 800 + i, 2)); b.v.write(randn(D, 810 + i, 2)); b.mlp.write(randn(M, 820 + i, 2)); });
    s.afterStep(100, 100);
    const soft = s.cdcp.masks(true);
    assert.ok(soft.every((m) => m.mlp.keep.length === M && m.mlp.score), 'training gates are soft, all channels');
    const cut = s.cdcp.masks(false), T = s.cdcp.targetMacs();
    assert.ok(s.cdcp.macs(cut) <= T, 'within the target');
    // one threshold: every kept gate (beyond each mask's minimum) is at least as large as every dropped one
    const keptMin = Math.min(...cut.flatMap((m) => [m.qk, m.v, m.mlp].filter((c) => c.keep.length > 1).flatMap((c) => Array.from(c.keep, (k) => Math.abs(c.value[k])))));
    const droppedMax = Math.max(...cut.flatMap((m, i) => (['qk', 'v', 'mlp'] as const).flatMap((kind) => {
      const g = s.cdcp.scores[i][kind].toArray();
      return Array.from(g, (v, c) => (m[kind].value[c] === 0 ? Math.abs(v) : 0));
    })));
    assert.ok(keptMin >= droppedMax, `kept ${keptMin} vs dropped ${droppedMax}`);
    const compact = s.extract();
    noGrad(() => scope(() => {
      const x = images(2);
      close(s.forward(x, false).toArray(), new CaitModel(compact).forward(x).toArray(), 1e-5, 0, 'compact vs masked:');
    }));
    scope(() => backward(s.cdcp.l1Loss()!));
    const g = s.cdcp.scores[0].mlp.grad!.toArray(), v = s.cdcp.scores[0].mlp.toArray();
    for (let c = 0; c < M; c++) assert.ok(Math.abs(g[c] - 0.01 * Math.sign(v[c])) < 1e-7);
    compact.dispose(); s.dispose(); vit.dispose();
  });
  test.run();
}

{
  const test = suite('cdcp: distillation and a search through the trainer');
  test.before(() => setBackend(loadWasmSync('auto')));

  test('distillation: soft KL at tau with weight alpha, or hard teacher labels; the teacher gets no gradient', () => {
    const teacher = model(small, 4), student = model(small, 5);
    scope(() => {
      const x = images(4, 3);
      const t = noGrad(() => teacher.forward(x).toArray());
      const logits = student.forward(x);
      const [[soft, a]] = new Distiller(teacher, { alpha: 0.7, tau: 3 }).terms(logits, x);
      assert.is(a, 0.7);
      assert.is(soft.item(), ops.distillKL(logits, t, 3).item());
      const [[hard]] = new Distiller(teacher, { hard: true }).terms(logits, x);
      const labels = Array.from({ length: 4 }, (_, b) => { const r = t.subarray(b * 5, b * 5 + 5); return r.indexOf(Math.max(...r)); });
      assert.is(hard.item(), ops.crossEntropy(logits, labels).item());
      backward(ops.weightedSum([[soft, 1], [hard, 1]]));
    });
    assert.ok(teacher.parameters().every((p) => !p.grad), 'teacher untouched');
    assert.ok(student.parameters().some((p) => p.grad));
    zeroGrad(student.parameters());
    teacher.dispose(); student.dispose();
  });

  /** n synthetic 16x16 images of 5 classes (a bright row per class). */
  function synthetic(n: number, s: number): ImageSource {
    const imgs = new Uint8Array(n * 256), labels = new Uint8Array(n), noise = randn(n * 256, s);
    for (let i = 0; i < n; i++) { labels[i] = i % 5; for (let p = 0; p < 256; p++) imgs[i * 256 + p] = Math.max(0, Math.min(255, Math.round(100 + 60 * noise[i * 256 + p] + (Math.floor(p / 16) === 3 * labels[i] ? 90 : 0)))); }
    return { images: imgs, labels, n, h: 16, w: 16 };
  }

  test('a short search (ATME on, budget, KD) trains through train(), prunes toward the target, extracts, and leaks nothing', () => {
    const data = synthetic(24, 12);
    const teacher = model(small, 6), vit = model(small, 6);
    const s = new CdcpModel(vit, { merge: 'h@1', cdcp: { keepRatio: 0.5, lambda: 20, scoreInit: 0.05, denseEvery: 2, rampFraction: 0.5 }, distill: new Distiller(teacher, { alpha: 1, tau: 2 }) });
    const before = liveTensorCount(), heap = getBackend().stats().bytesInUse;
    const logs = train(s, data, { epochs: 30, batchSize: 4, lr: 1e-3, minLr: 1e-3, weightDecay: 0.05, warmupEpochs: 0, smoothing: 0, clip: 0, seed: 1, cropPad: 0, flip: false, mean: 0.4, std: 0.3, outDir: mkdtempSync(join(tmpdir(), 'cdcp-search-')), quiet: true });
    assert.is(logs.length, 30);
    assert.ok(logs.every((l) => Number.isFinite(l.loss)));
    teacher.releaseCaches(); // the frozen teacher runs without gradients, so its weights were pre-packed (a bounded cache, not a leak)
    assert.ok(liveTensorCount() - before <= 0 && getBackend().stats().bytesInUse <= heap, 'no tensors left behind by training steps');
    const macs = s.macs();
    if (process.env.CDCP_VERBOSE) console.log({ macs, full: s.cdcp.fullMacs(), target: s.cdcp.finalTargetMacs(), widths: s.widths(), loss: logs.map((l) => l.loss) });
    const T = s.cdcp.finalTargetMacs();
    assert.ok(macs <= 1.1 * T && macs >= 0.7 * T, `MACs ${macs} of ${s.cdcp.fullMacs()}, target ${T}`);
    const compact = s.extract(), final = s.cdcp.finalMasks();
    assert.is(countMacs(compact.cfg).total, s.cdcp.macs(final));
    assert.ok(s.cdcp.macs(final) <= T);
    noGrad(() => scope(() => { const x = images(2); close(new CaitModel(compact).forward(x).toArray(), s.forwardWith(x, final).toArray(), 1e-5, 0, 'extracted vs searched:'); }));
    compact.dispose(); s.dispose(); vit.dispose(); teacher.dispose();
  });

  test('compress(): search -> extract -> fine-tune -> report dense vs compressed, saved model loads', () => {
    const dense = model(small, 7), out = mkdtempSync(join(tmpdir(), 'cdcp-compress-'));
    const stage = { epochs: 4, batchSize: 4, lr: 1e-3, minLr: 1e-4, weightDecay: 0.05, warmupEpochs: 0, smoothing: 0.1, clip: 1, seed: 2, cropPad: 0, flip: false };
    const { model: compact, report } = compress(dense, { train: synthetic(24, 13), test: synthetic(20, 14) }, {
      merge: 'h@1', cdcp: { allocation: 'uniform', keepRatio: 0.5 }, distill: { alpha: 0.5, tau: 2 },
      search: stage, finetune: { ...stage, epochs: 2 }, outDir: out, latencyBatch: 4, latencyRuns: 3, quiet: true,
    });
    assert.equal(report.widths, [{ qk: 3, v: 3, mlp: 15 }, { qk: 3, v: 3, mlp: 15 }, { qk: 3, v: 3, mlp: 15 }]);
    assert.ok(report.compressed.macs < report.dense.macs && report.compressed.params < report.dense.params);
    assert.is(report.compressed.macs, countMacs(compact.cfg).total);
    assert.ok(report.macsRatio > 1.5, `MACs ratio ${report.macsRatio}`);
    for (const r of [report.dense, report.compressed]) assert.ok(r.accuracy >= 0 && r.accuracy <= 1 && r.latencyMs > 0);
    assert.is(report.searchLog.length, 4);
    assert.is(report.finetuneLog.length, 2);
    const { model: back } = loadModel(report.file);
    assert.equal(back.cfg.widths, report.widths);
    assert.is(back.cfg.merge, 'h@1');
    noGrad(() => scope(() => { const x = images(2); close(new CaitModel(back).forward(x).toArray(), new CaitModel(compact).forward(x).toArray(), 0, 0, 'saved:'); }));
    for (const m of [dense, compact, back]) m.dispose();
  });
  test.run();
}
