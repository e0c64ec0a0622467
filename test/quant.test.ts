// int8 inference (src/quant/): DeiT-Tiny with random weights within 2% of
// float (relative to the largest logit), with the prefix rows in two 7-bit parts; stacked with ATME and CDCP (the
// Fashion-MNIST atme, cdcp and cait models: merged, compact, both) close to
// float, planned = eager bit for bit, the file round trip bit for bit
// (I8 + F32 scales, scheme in __metadata__), bad files refused with the
// tensor named, and the float path (autograd, or after dispose) unchanged.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, scope, setBackend, getBackend } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { createModel, loadModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import type { VisionTransformer } from '../src/nn/vit.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { CaitModel, atmeOptionsFromMetadata } from '../src/cait/wrap.js';
import { InferencePlan } from '../src/plan.js';
import { quantizeModel, quantizedFileBytes, loadQuantizedBytes, quantizeWeight, dequantizeWeight, weightResidual, SCALE_SUFFIX, RESIDUAL_SUFFIX, RESIDUAL_SCALE_SUFFIX, QLinear, prefixTokens } from '../src/quant/index.js';
import { erf } from '../src/backend/reference/gelu.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { load } from '../src/api/node.js';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMixedSafetensors } from '../src/quant/format.js';
import { maxResidualScale } from '../src/quant/int8.js';
import { attentionInt8 } from '../src/quant/attention.js';
import { attention } from '../src/ops/attention.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { cait } from './cait.js';
import { modelFromBytes } from '../src/nn/load-bytes.js';
import { randn } from './util.js';

const Q = suite('int8 models');
/** The checkout's root (models/, web/public/samples/), with a trailing slash. */
const root = new URL('../', import.meta.url).pathname;
const prev = getBackend();
const be = loadWasmSync('auto');
Q.before(() => setBackend(be));
Q.after(() => setBackend(prev));

type Fwd = { forward(x: Tensor): Tensor };
const run = (m: Fwd, x: Float32Array, shape: number[]): Float32Array => noGrad(() => scope(() => m.forward(Tensor.from(x, shape)).toArray()));
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function relDiff(got: Float32Array, want: Float32Array): number {
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d / maxAbs(want);
}

Q('quantizeWeight: per-channel symmetric, extremes at +-127, zero rows', () => {
  const W = Float32Array.from([0.5, -1, 0.25, 0, 0, 0, 2, 1, -2]);
  const { q, scale } = quantizeWeight(W, 3);
  assert.equal([...q], [64, -127, 32, 0, 0, 0, 127, 64, -127]);
  assert.equal([...scale], [Math.fround(1 / 127), 0, Math.fround(2 / 127)]);
});

// Issue 17: within 2%. Measured here (batch 2, uniform inputs): seed 0 0.71%,
// seed 1 1.50% with the prefix rows (class token; the head's input) in two
// 7-bit parts, their weights in two int8 parts (prefixWeights) and the
// default's 6-bit rows elsewhere; 1.97% and 3.07% with one weight part, the
// int8 weights alone (float activations) 1.73% and 2.76%: on the class
// token's path the weights' rounding reaches the logits unaveraged. Every row
// in 7 bits and one part: 3.33% on seed 0. Seeds 0-5: 0.71 to 1.50% (mean
// 1.03%) against 1.82 to 3.07% (mean 2.33%) with one weight part
// (bench/results/int8-logits.json).
Q('DeiT-Tiny, random weights, batch 2, seeds 0 and 1: int8 logits within 2% of float (of the largest logit), 6-bit rows or not; the prefix weights\' second part helps; every row in 7 bits: 4%', () => {
  const cfg = getPreset('deit_tiny_patch16_224'), shape = [2, 3, 224, 224], x = randn(2 * 3 * 224 * 224, 5);
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  for (const seed of [0, 1]) {
    const vit = createModel(cfg, seed), float = run(vit, x, shape), r: Record<string, number> = {};
    vit.dispose();
    const variants = [['default', {}], ['onePart', { prefixWeights: false }], ['seven', { sixBit: false }], ['flat', { prefixRows: false, sixBit: false }]] as const;
    for (const [key, o] of seed === 0 ? variants : variants.slice(0, 2)) {
      const v = createModel(cfg, seed), qm = quantizeModel(v, o);
      try {
        assert.is(qm.layers.size, 4 * cfg.depth + 2, 'qkv, proj, fc1, fc2 per block + patch embedding + head');
        assert.is([...qm.weights.values()].filter((w) => w.residual).length, key === 'default' || key === 'seven' ? 4 * cfg.depth + 1 : 0, 'second weight parts: the blocks\' Linears and the head');
        r[key] = relDiff(run(v, x, shape), float);
      } finally { qm.dispose(); v.dispose(); }
    }
    console.log(`  DeiT-Tiny seed ${seed} int8 vs float: ${pct(r.default)} (default: prefix rows and their weights in two parts, 6-bit rows), ${pct(r.onePart)} (one weight part)` +
      (seed === 0 ? `, ${pct(r.seven)} (the rest 7-bit), ${pct(r.flat)} (all rows 7 bits, one part)` : ''));
    assert.ok(r.default <= 0.02, `seed ${seed}, default: max |int8 - float| / max |float| = ${pct(r.default)} > 2%`);
    assert.ok(r.default < 0.6 * r.onePart, `seed ${seed}: the second weight part helps: ${pct(r.default)} against ${pct(r.onePart)}`);
    if (seed !== 0) continue;
    assert.ok(r.seven <= 0.02, `sixBit false: ${pct(r.seven)} > 2%`);
    assert.ok(r.flat <= 0.04, `all rows in 7 bits: ${pct(r.flat)} > 4%`);
    assert.ok(r.onePart > 0 && r.onePart < 0.7 * r.flat, `the two-part rows help: ${pct(r.onePart)} against ${pct(r.flat)}`);
  }
});

// The 6-bit rows (quantizeModel's sixBit, default true): quantize_rows with 63
// levels and qgemm's QGEMM_A6 for exactly qkv, fc1, fc2 and attention proj and
// attention's q and P (SIX_BIT_LAYERS names all six); 127 levels and no QGEMM_A6
// elsewhere (the patch embedding, the prefix rows' two parts), and
// everywhere with sixBit: false; sixBitLayers picks others (the bench's ablation).
Q('quantizeModel sixBit: 6-bit rows and QGEMM_A6 for qkv, fc1, fc2, attention proj, q and P only; 7 bits everywhere with sixBit: false; sixBitLayers picks', () => {
  const cfg = { ...getPreset('deit_tiny_patch16_224'), depth: 2 }, H = cfg.numHeads;
  const shape = [1, 3, 224, 224], x = randn(3 * 224 * 224, 4), K = cfg.embedDim, N = cfg.embedDim * cfg.mlpRatio;
  for (const sixBit of [undefined, false, 'qkv'] as const) {
    const o = sixBit === undefined ? {} : sixBit === 'qkv' ? { sixBitLayers: (n: string) => n.endsWith('.qkv') } : { sixBit };
    const v = createModel(cfg, 1), qm = quantizeModel(v, o);
    const calls: Array<{ k: string; a: number[] }> = [], orig = be.run;
    be.run = (k, ...a) => { if (k === 'qgemm' || k === 'quantize_rows' || k === 'softmax_quantize_rows') calls.push({ k, a }); return orig.call(be, k, ...a); };
    try { run(v, x, shape); } finally { be.run = orig; qm.dispose(); v.dispose(); }
    const six = (c: { k: string; a: number[] }) => (c.k === 'qgemm' ? (c.a[10] & 4) !== 0 : c.a[c.k === 'quantize_rows' ? 6 : 5] === 63);
    // qgemm (M N K ...): fc1 K -> N, fc2 N -> K, proj K -> K with 197 rows; attention's q k^T (K = head dim) and p v (K = 197)
    const q6 = calls.filter((c) => c.k === 'qgemm' && six(c)).map((c) => `${c.a[1]}x${c.a[2]}`);
    const r6 = calls.filter((c) => c.k !== 'qgemm' && six(c)).length;
    if (sixBit === false) {
      assert.equal(q6, [], 'sixBit false: no QGEMM_A6');
      assert.is(r6, 0, 'sixBit false: every row 127 levels');
      continue;
    }
    if (sixBit === 'qkv') {
      assert.equal(q6, Array.from({ length: cfg.depth }, () => `${3 * K}x${K}`), 'sixBitLayers: QGEMM_A6 on qkv alone');
      assert.is(r6, cfg.depth, 'sixBitLayers: 63 levels for qkv\'s rows alone');
      continue;
    }
    const perBlock = [`${3 * K}x${K}`, `${K}x${K}`, ...Array.from({ length: H }, () => [`197x${K / H}`, `${K / H}x197`]).flat(), `${N}x${K}`, `${K}x${N}`].sort();
    assert.equal([...q6].sort(), [...perBlock, ...perBlock].sort(), 'QGEMM_A6 on qkv, fc1, fc2, proj and attention\'s two products, per block');
    // rows: qkv, fc1, fc2, proj inputs + q and P per head, per block
    assert.is(r6, cfg.depth * (4 + 2 * H), '63 levels: qkv, fc1, fc2, proj, q and P');
    // the patch embedding's rows (196 of 3 x 16 x 16) in 7 bits, and the prefix rows' two parts (quantize_prefix_rows, in 7 bits inside)
    assert.ok(calls.some((c) => c.k === 'quantize_rows' && c.a[2] === 196 && c.a[3] === 768 && c.a[6] === 127), 'the patch embedding\'s rows in 7 bits');
  }
});

// Attention's GEMMs in int8 (src/quant/attention.ts) against ops.attention in
// float, on CDCP-like widths (Dqk != Dv, neither a multiple of 4 or 8), odd
// token counts, two images and ATME's key bias; the reference backend and the
// WASM build within a byte of each other (exp4 against exp at a rounding
// midpoint of P's quantization), so closer to each other than to float.
// (3%: q in 7 bits, k in 8 and P in 7 bits of its row's largest value; these
// random operands give up to 2.3%, sharper attention than a ViT's)
Q('attentionInt8: within 3% of float attention (of the largest output) with key bias, Dqk != Dv, odd sizes; reference and WASM agree', () => {
  const refBe = new ReferenceBackend(1 << 22);
  for (const [B, N, H, Dqk, Dv] of [[1, 5, 1, 3, 5], [2, 13, 3, 7, 9], [2, 37, 2, 16, 24], [1, 50, 3, 64, 64]]) {
    const W = H * (2 * Dqk + Dv), x = randn(B * N * W, N + Dqk, 1.5), kb = randn(B * N, 7, 0.5);
    const outs = [be, refBe].map((b) => noGrad(() => scope(() => {
      const qkv = Tensor.from(x, [B, N, W], b), keyBias = Tensor.from(kb, [B, N], b);
      const o = { heads: H, scale: 1 / Math.sqrt(Dqk), keyBias, headDimQK: Dqk, headDimV: Dv };
      return { q: attentionInt8(qkv, o).toArray(), f: attention(qkv, o).toArray() };
    })));
    const tag = `B ${B} N ${N} H ${H} Dqk ${Dqk} Dv ${Dv}`;
    for (const [i, o] of outs.entries()) {
      assert.is(o.q.length, B * N * H * Dv);
      const d = relDiff(o.q, o.f);
      assert.ok(d <= 0.03, `${i ? 'reference' : 'wasm'} ${tag}: int8 attention vs float ${d.toFixed(4)}`);
    }
    const dBoth = relDiff(outs[0].q, outs[1].q), dFloat = relDiff(outs[0].q, outs[0].f);
    assert.ok(dBoth <= 0.5 * dFloat + 1e-6, `${tag}: wasm vs reference int8 ${dBoth.toExponential(2)}, vs float ${dFloat.toExponential(2)}`);
  }
});

Q('quantizeModel attention switch: int8 attention kernels by default, float batched GEMMs with attention: false; float after dispose', () => {
  const cfg = { ...getPreset('deit_tiny_patch16_224'), depth: 2 };
  const shape = [1, 3, 224, 224], x = randn(3 * 224 * 224, 4);
  const kernels = (m: Fwd) => {
    const seen = new Set<string>(), orig = be.run;
    be.run = (k, ...a) => { seen.add(k); return orig.call(be, k, ...a); };
    try { run(m, x, shape); } finally { be.run = orig; }
    return seen;
  };
  for (const attention of [undefined, true, false]) {
    const v = createModel(cfg, 1), qm = quantizeModel(v, attention === undefined ? {} : { attention });
    const k = kernels(v), on = attention !== false;
    assert.is(k.has('softmax_quantize_rows'), on, `attention ${attention}: softmax_quantize_rows`);
    assert.is(k.has('quantize_pack_qb'), on, `attention ${attention}: quantize_pack_qb`);
    assert.is(k.has('softmax_fwd'), !on, `attention ${attention}: softmax_fwd`);
    assert.is(k.has('gemm'), !on, `attention ${attention}: float gemm`);
    qm.dispose();
    const after = kernels(v);
    assert.ok(after.has('softmax_fwd') && !after.has('qgemm'), 'float again after dispose');
    v.dispose();
  }
});

// What int8 attention costs on a trained model (src/quant/attention.ts): the
// Fashion-MNIST dense model's logits for random inputs (batch 4, seeds 3-5),
// int8 against float, with attention int8 and float, every row in 7 bits.
// Measured: 0.91, 2.24, 0.69% against 0.65, 0.58, 0.86%; with one weight part
// for the prefix rows (before prefixWeights) 1.20, 1.59, 0.98% against 1.15,
// 0.78, 0.63% (1.88, 1.99, 0.80% before v was centred). The default's 6-bit
// rows (SIX_BIT_LAYERS), attention int8: 1.81, 2.19, 2.02% (one weight part
// 1.05, 1.90, 1.60%). On this trained model the activations' rounding
// dominates (bench/results/int8-fidelity.json: the second weight part leaves
// the test images' error where it was).
Q('Fashion-MNIST dense, random inputs: int8 logits within 2.5% of float with int8 attention, 1.5% with float attention (7-bit rows); 6-bit rows: 3%', () => {
  const r: Record<string, number[]> = { true: [], false: [], six: [] };
  for (const seed of [3, 4, 5]) {
    for (const [key, o] of [['true', { sixBit: false }], ['false', { attention: false, sixBit: false }], ['six', {}]] as const) {
      const { vit, model } = loadCait(new URL('../models/fmnist-dense.safetensors', import.meta.url).pathname);
      const shape = [4, 1, vit.cfg.imgSize, vit.cfg.imgSize], x = randn(4 * vit.cfg.imgSize ** 2, seed);
      const float = run(model, x, shape), qm = quantizeModel(vit, o);
      try { r[key].push(relDiff(run(model, x, shape), float)); } finally { qm.dispose(); vit.dispose(); }
    }
  }
  const pct = (v: number[]) => v.map((d) => (100 * d).toFixed(2)).join(', ');
  console.log(`  fmnist dense int8 vs float, random inputs: ${pct(r.true)}% (int8 attention), ${pct(r.false)}% (float attention), ${pct(r.six)}% (default: 6-bit rows, int8 attention)`);
  assert.ok(r.true.every((d) => d <= 0.025), `int8 attention: ${pct(r.true)}%`);
  assert.ok(r.false.every((d) => d <= 0.015), `float attention: ${pct(r.false)}%`);
  assert.ok(r.six.every((d) => d <= 0.03), `6-bit rows: ${pct(r.six)}%`);
});

Q('cait predict --int8-attention on|off: the switch reaches the int8 model (other probabilities, the same class)', async () => {
  const args = ['predict', '--model', `${root}models/fmnist-cait-int8.safetensors`, '--image', `${root}web/public/samples/06-shirt.png`, '--top', '2', '--json'];
  const on = await cait(...args), off = await cait(...args, '--int8-attention', 'off'), dflt = await cait(...args, '--int8-attention', 'on');
  for (const r of [on, off, dflt]) assert.is(r.code, 0, r.stderr);
  assert.equal(dflt.json, on.json, 'on is the default');
  assert.is(off.json.top[0].label, on.json.top[0].label);
  assert.is.not(off.json.top[0].prob, on.json.top[0].prob, 'float attention gives other probabilities');
  const six = await cait(...args, '--int8-six-bit', 'off');
  assert.is(six.code, 0, six.stderr);
  assert.is(six.json.top[0].label, on.json.top[0].label);
  assert.is.not(six.json.top[0].prob, on.json.top[0].prob, '7-bit rows give other probabilities');
});

// --quantize int8 on a float --model: the int8 file's output (cait quantize
// wrote models/fmnist-cait-int8.safetensors from models/fmnist-cait.safetensors)
Q('cait predict/bench --quantize int8: a float model runs as its int8 file; a bad value exits 2', async () => {
  const img = `${root}web/public/samples/06-shirt.png`, top = ['--image', img, '--top', '3', '--json'];
  const q = await cait('predict', '--model', `${root}models/fmnist-cait.safetensors`, '--quantize', 'int8', ...top);
  const file = await cait('predict', '--model', `${root}models/fmnist-cait-int8.safetensors`, ...top);
  const float = await cait('predict', '--model', `${root}models/fmnist-cait.safetensors`, ...top);
  for (const r of [q, file, float]) assert.is(r.code, 0, r.stderr);
  assert.equal(q.json.top, file.json.top, 'the int8 file\'s probabilities');
  assert.is.not(q.json.top[0].prob, float.json.top[0].prob, 'not the float ones');
  const b = await cait('bench', '--preset', 'vit_fmnist', '--quantize', 'int8', '--runs', '2', '--warmup', '0', '--json');
  assert.is(b.code, 0, b.stderr);
  assert.is(b.json.quant, 'int8-dynamic', 'a preset\'s random weights quantized');
  const bad = await cait('predict', '--model', `${root}models/fmnist-cait.safetensors`, '--quantize', 'int4', ...top);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--quantize must be one of int8, got 'int4'/);
});

// Segmentation models quantize too (every token's row feeds the per-patch
// head: no prefix rows there). Measured on the ten samples with the default
// (6-bit rows): the int8 and float per-pixel classes agree on 98.44%
// (seg-cait) and 98.20% (seg-dense) of the pixels (98.72% and 99.03% with
// every row in 7 bits); mean IoU on the 2000 test scenes in
// bench/results/int8-accuracy.json.
Q("segmentation models in int8 (quantize: 'int8'): the float model's class on at least 98% of the samples' pixels", async () => {
  const dir = `${root}web/public/samples/`;
  for (const f of ['seg-cait', 'seg-dense']) {
    const q = await load(`${root}models/${f}.safetensors`, { quantize: 'int8' }), fl = await load(`${root}models/${f}.safetensors`);
    try {
      assert.is(q.info.task, 'segment');
      assert.ok(q.info.int8, `${f}: run by the int8 kernels`);
      const K = fl.info.config.numClasses;
      let agree = 0, n = 0;
      for (const s of readdirSync(dir).filter((s) => s.endsWith('.png'))) {
        const x = q.preprocess(dir + s), a = await q.forward(x), b = await fl.forward(x), P = a.length / K;
        assert.ok(a.some((v, i) => v !== b[i]), `${f} ${s}: int8 logits differ from float`);
        for (let p = 0; p < P; p++) {
          let ia = 0, ib = 0;
          for (let k = 1; k < K; k++) { if (a[k * P + p] > a[ia * P + p]) ia = k; if (b[k * P + p] > b[ib * P + p]) ib = k; }
          agree += +(ia === ib); n++;
        }
      }
      console.log(`  ${f} int8: the float class on ${(100 * agree / n).toFixed(2)}% of ${n} pixels`);
      assert.ok(agree / n >= 0.98, `${f}: int8 and float per-pixel classes agree on ${(100 * agree / n).toFixed(2)}% of ${n} pixels`);
    } finally { q.dispose(); fl.dispose(); }
  }
  setBackend(be);   // (load() leaves its own backend the default)
});

// The prefix weights of a segmentation model: its blocks' Linears have the
// class token's rows, its head runs on every token (no prefix rows), so the
// head gets no second weight part (it stored one, never read: K x C bytes);
// a file that holds one still loads and gives the same logits.
Q('segmentation models: second weight parts for the blocks only, not the per-token head; a file with a head part still loads, same logits', async () => {
  const { model: vit } = loadModel(`${root}models/seg-dense.safetensors`);
  const qm = quantizeModel(vit);
  try {
    assert.not.ok(qm.weights.get('head')!.residual, 'no second part for the per-token head');
    assert.ok(qm.weights.get('blocks.0.mlp.fc1')!.residual, 'the blocks keep theirs');
    const bytes = quantizedFileBytes(vit, qm), { tensors, metadata } = readSafetensors(bytes);
    assert.not.ok(tensors.has(`head${RESIDUAL_SUFFIX}`));
    assert.not.ok((JSON.parse(metadata.quant).prefix_weights as string[]).includes('head'));
    // the file as the previous writer made it: the head's second part too
    const withHead = new Map<string, { dtype: 'F32' | 'I8'; shape: number[]; data: Float32Array | Int8Array }>();
    for (const [n, t] of tensors) withHead.set(n, t.dtype === 'I8' ? { dtype: 'I8', shape: t.shape, data: Int8Array.from(t.data) } : { dtype: 'F32', shape: t.shape, data: t.data });
    const hw = vit.namedParameters().find(([n]) => n === 'head.weight')![1], K = hw.shape[0], C = hw.shape[1];
    withHead.set(`head${RESIDUAL_SUFFIX}`, { dtype: 'I8', shape: [K, C], data: Int8Array.from({ length: K * C }, (_, i) => (i % 7) - 3) });
    withHead.set(`head${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [K], data: Float32Array.from(qm.weights.get('head')!.scale, (s) => s / 300) });
    const q = JSON.parse(metadata.quant); q.prefix_weights.push('head');
    const old = writeMixedSafetensors(withHead as never, { ...metadata, quant: JSON.stringify(q) });
    const a = await load(bytes), b = await load(old), x = a.preprocess(`${root}web/public/samples/07-sneaker.png`);
    try {
      const ya = await a.forward(x), yb = await b.forward(x);
      assert.ok(ya.every((v, i) => Object.is(v, yb[i])), 'the head\'s second part is never read');
    } finally { a.dispose(); b.dispose(); }
  } finally { qm.dispose(); vit.dispose(); setBackend(be); }
});

// cait bench times an int8 file on its int8 kernels (it timed the dequantized
// weights in float), and says so in its JSON, the baseline's too.
Q('cait bench: an int8 file runs its int8 kernels (quant in the JSON), a float baseline does not; --int8-attention checked', async () => {
  const r = await cait('bench', '--model', `${root}models/fmnist-cait-int8.safetensors`, '--baseline', `${root}models/fmnist-cait.safetensors`, '--runs', '2', '--warmup', '0', '--json');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.json.quant, 'int8-dynamic');
  assert.is(r.json.int8_dot, loadWasmSync('auto').int8Dot, 'the dot this engine\'s int8 GEMM runs');
  assert.is(r.json.baseline.quant, null);
  const bad = await cait('bench', '--model', `${root}models/fmnist-cait-int8.safetensors`, '--int8-attention', 'maybe');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--int8-attention must be on or off, got 'maybe'/);
});

// An int8 file given to a command that rewrites its weights: compress (and
// train) work on the dequantized weights in float and say so on stderr.
Q('cait compress of an int8 file: a note on stderr; a float output, or int8 again with --quantize int8; --prefix-weights off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-q8c-'));
  try {
    for (const q of [false, true]) {
      const out = join(dir, `c${q ? '-int8' : ''}.safetensors`);
      const r = await cait('compress', '--model', `${root}models/fmnist-cait-int8.safetensors`, '--structure-only', '--target-macs', '1.2', ...(q ? ['--quantize', 'int8'] : []), '--out', out, '--json');
      assert.is(r.code, 0, r.stderr);
      assert.match(r.stderr, q ? /is an int8 file \(int8-dynamic\): compress works on its dequantized weights in float; its output is quantized again/
        : /is an int8 file \(int8-dynamic\): compress works on its dequantized weights in float; the model it saves is float \(add --quantize int8\)/);
      const { metadata } = loadModel(out);
      assert.is(metadata.quant !== undefined, q, `output quant metadata: ${metadata.quant}`);
      if (q) assert.ok(JSON.parse(metadata.quant).prefix_weights.length > 0, 'the prefix weights by default');
    }
    // --prefix-weights off: one weight part (as cait quantize --prefix-weights off); without --quantize a usage error
    const off = join(dir, 'c-off.safetensors');
    const r = await cait('compress', '--model', `${root}models/fmnist-cait.safetensors`, '--structure-only', '--target-macs', '1.2', '--quantize', 'int8', '--prefix-weights', 'off', '--out', off, '--json');
    assert.is(r.code, 0, r.stderr);
    const lo = loadModel(off);
    try { assert.is(JSON.parse(lo.metadata.quant).prefix_weights, undefined); } finally { lo.model.dispose(); }
    const bad = await cait('compress', '--model', `${root}models/fmnist-cait.safetensors`, '--structure-only', '--target-macs', '1.2', '--prefix-weights', 'off', '--out', join(dir, 'bad.safetensors'));
    assert.is(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--prefix-weights applies to the int8 file: give --quantize int8/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

// A user's own checkpoint, quantized as they would: `cait quantize` on the
// Hugging Face and timm folders of ../shared/fixtures, then load() of the int8
// file, against PyTorch's logits for the fixture's input. Measured (the test
// prints them): 0.48% (hf-vit), 0.67% (hf-deit-distilled), 1.63%
// (timm-deit-distilled) of the largest logit with the defaults (1.10, 1.42
// and 3.38% before the prefix weights; 1.30, 1.41 and 3.47% before that, with
// every row in 7 bits): random-weight models, as sensitive as the random
// DeiT-Tiny above.
Q('cait quantize on Hugging Face and timm folders: int8 files within 5% of PyTorch\'s logits; config and labels kept', async () => {
  const fix = new URL('../../shared/fixtures/', import.meta.url).pathname, dir = mkdtempSync(join(tmpdir(), 'cait-q-'));
  const suiteBackend = getBackend();   // load() makes its backend the default: this suite's tensors live on be
  try {
    const errs: string[] = [];
    for (const d of ['hf-vit', 'hf-deit-distilled', 'timm-deit-distilled']) {
      const out = join(dir, `${d}.safetensors`);
      const r = await cait('quantize', '--model', join(fix, d), '--out', out, '--json');
      assert.is(r.code, 0, r.stderr);
      assert.is(r.json.scheme, 'int8-dynamic');
      const x = readSafetensorsFile(join(fix, d, 'input.safetensors')).tensors.get('pixel_values')!;
      const want = readSafetensorsFile(join(fix, d, 'expected.safetensors')).tensors.get('logits')!.data as Float32Array;
      const [q, f] = [await load(out), await load(join(fix, d))];
      try {
        assert.is(q.info.quant, 'int8-dynamic');
        assert.equal(q.info.labels, f.info.labels, `${d}: labels`);
        assert.equal(q.info.config, f.info.config, `${d}: config (preprocessing included)`);
        const z = await q.forward(x.data as Float32Array, x.shape[0]), e = relDiff(z, want);
        errs.push(`${d} ${(100 * e).toFixed(2)}%`);
        assert.ok(e <= 0.05, `${d}: int8 logits ${(100 * e).toFixed(2)}% (of the largest) from PyTorch's`);
      } finally { q.dispose(); f.dispose(); }
    }
    console.log(`  cait quantize of the fixture folders, int8 vs PyTorch: ${errs.join(', ')}`);
  } finally { setBackend(suiteBackend); rmSync(dir, { recursive: true, force: true }); }
});

// The file runs as the accuracy cait quantize reports was measured: --merge,
// --merge none and the ATME switches are saved with it (they were dropped:
// the JSON said merge '' for a run measured with h@1, and the file ran dense)
Q('cait quantize --merge / --merge none / --similarity: the int8 file keeps the schedule and switches the run used', async () => {
  const models = new URL('../models/', import.meta.url).pathname, dir = mkdtempSync(join(tmpdir(), 'cait-qm-'));
  const suiteBackend = getBackend();
  try {
    const saved = loadModel(join(models, 'fmnist-cait.safetensors'));
    const savedSim = atmeOptionsFromMetadata(saved.metadata).similarity;
    saved.model.dispose();
    const runs: Array<[string, string[], string, string | undefined]> = [
      ['fmnist-dense', ['--merge', 'h@1', '--similarity', 'features'], 'h@1', 'features'],
      ['fmnist-cait', ['--merge', 'none'], '', undefined],
      ['fmnist-cait', [], 'h@1', savedSim],
    ];
    for (const [src, flags, merge, similarity] of runs) {
      const out = join(dir, `${src}-${merge || 'none'}.safetensors`);
      const r = await cait('quantize', '--model', join(models, `${src}.safetensors`), ...flags, '--out', out, '--json');
      assert.is(r.code, 0, r.stderr);
      assert.is(r.json.merge, merge, `${src} ${flags.join(' ')}: JSON merge`);
      const { model, metadata } = loadModel(out);
      try {
        assert.is(model.cfg.merge ?? '', merge, `${src} ${flags.join(' ')}: the file's schedule`);
        assert.is(atmeOptionsFromMetadata(metadata).similarity, similarity, `${src} ${flags.join(' ')}: the file's ATME switches`);
      } finally { model.dispose(); }
      const q = await load(out);
      try { assert.is(q.info.merge, merge); } finally { q.dispose(); }
    }
  } finally { setBackend(suiteBackend); rmSync(dir, { recursive: true, force: true }); }
});

// cait quantize --prefix-weights on|off (quantizeModel's prefixWeights): the
// second weight parts in the file or not; both files load and run int8, and
// their logits differ only through the prefix rows; a bad value is a usage error.
Q('cait quantize --prefix-weights off: no second weight parts, a smaller file, the same int8 weights; a bad value exits 2', async () => {
  const models = new URL('../models/', import.meta.url).pathname, dir = mkdtempSync(join(tmpdir(), 'cait-pw-'));
  const suiteBackend = getBackend();
  try {
    const files: Record<string, { bytes: number; json: Record<string, unknown> }> = {};
    for (const pw of ['on', 'off']) {
      const out = join(dir, `${pw}.safetensors`);
      const r = await cait('quantize', '--model', join(models, 'fmnist-dense.safetensors'), '--prefix-weights', pw, '--out', out, '--json');
      assert.is(r.code, 0, r.stderr);
      files[pw] = { bytes: statSync(out).size, json: r.json };
    }
    assert.is(files.on.json.prefix_weights, 25, 'on: the 24 block Linears and the head');
    assert.is(files.off.json.prefix_weights, 0);
    assert.ok(files.off.bytes < 0.6 * files.on.bytes, `off ${files.off.bytes} bytes, on ${files.on.bytes}`);
    const on = readSafetensors(readFileSync(join(dir, 'on.safetensors'))), off = readSafetensors(readFileSync(join(dir, 'off.safetensors')));
    assert.equal([...off.tensors.get('blocks.0.mlp.fc1.weight')!.data], [...on.tensors.get('blocks.0.mlp.fc1.weight')!.data], 'the same first part');
    assert.not.ok([...off.tensors.keys()].some((n) => n.endsWith(RESIDUAL_SUFFIX)), 'off: no weight_residual');
    assert.is(JSON.parse(off.metadata.quant).prefix_weights, undefined);
    const a = await load(join(dir, 'on.safetensors')), b = await load(join(dir, 'off.safetensors'));
    try {
      const img = `${root}web/public/samples/06-shirt.png`, ya = await a.forward(a.preprocess(img)), yb = await b.forward(b.preprocess(img));
      assert.ok(ya.some((v, i) => v !== yb[i]), 'the prefix rows differ');
      assert.is(a.info.quant, b.info.quant);
    } finally { a.dispose(); b.dispose(); }
    const bad = await cait('quantize', '--model', join(models, 'fmnist-dense.safetensors'), '--prefix-weights', 'maybe', '--out', join(dir, 'bad.safetensors'));
    assert.is(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--prefix-weights/);
    assert.not.ok(existsSync(join(dir, 'bad.safetensors')));
  } finally { setBackend(suiteBackend); rmSync(dir, { recursive: true, force: true }); }
});

// Distilled DeiT has two prefix tokens (class, distillation), each read by a head.
Q('distilled DeiT-Tiny (two prefix tokens): two-part rows closer to float; planned = eager', () => {
  const cfg = { ...getPreset('deit_tiny_distilled_patch16_224'), depth: 4 };
  const shape = [3, 3, 224, 224], x = randn(3 * 3 * 224 * 224, 8), r: number[] = [];
  const vit = createModel(cfg, 3), float = run(vit, x, shape);
  vit.dispose();
  for (const prefixRows of [true, false]) {
    const v = createModel(cfg, 3), qm = quantizeModel(v, { prefixRows });
    try {
      const int8 = run(v, x, shape);
      r.push(relDiff(int8, float));
      const plan = InferencePlan.capture(be, x, shape, (t) => v.forward(t));
      try { assert.equal([...plan.run(x)], [...int8], 'planned forward'); } finally { plan.dispose(); }
    } finally { qm.dispose(); v.dispose(); }
  }
  assert.ok(r[0] < 0.7 * r[1], `two-part rows ${r[0].toFixed(4)} against all 7 bits ${r[1].toFixed(4)}`);
});

// One Linear, row by row: the prefix rows match the product of the float row
// with the dequantized weights to about 14 bits, the others to 7.
Q('QLinear: prefix rows near-exact against the dequantized weights, other rows 7-bit', () => {
  const K = 61, N = 19, B = 2, T = 5, W = randn(N * K, 4), bias = randn(N, 6), x = randn(B * T * K, 9);
  const { q, scale } = quantizeWeight(W, N), Wd = dequantizeWeight(q, scale);
  const b = Tensor.from(bias, [N], be), xt = Tensor.from(x, [B, T, K], be);
  const lin = new QLinear(q, scale, N, K, b, be, prefixTokens(1));
  try {
    for (const gelu of [false, true]) {
      const y = lin.forward(xt, gelu), got = y.toArray();
      y.dispose();
      for (let i = 0; i < B * T; i++) {
        let worst = 0, size = 0;
        for (let j = 0; j < N; j++) {
          let v = bias[j];
          for (let k = 0; k < K; k++) v += x[i * K + k] * Wd[j * K + k];
          if (gelu) v = 0.5 * v * (1 + erf(v / Math.SQRT2));
          worst = Math.max(worst, Math.abs(got[i * N + j] - v)); size = Math.max(size, Math.abs(v));
        }
        const bound = i % T === 0 ? 2e-4 : 5e-2;
        assert.ok(worst <= bound * size, `row ${i} (gelu ${gelu}): max error ${worst} of ${size}, bound ${bound}`);
        if (i % T !== 0) assert.ok(worst > 2e-4 * size, `row ${i}: a 7-bit row has a 7-bit error (${worst} of ${size})`);
      }
    }
    // sequences of prefix rows only (no main GEMM): every row in two parts
    const x1 = Tensor.from(x.subarray(0, 3 * K), [3, 1, K], be), y1 = lin.forward(x1), got1 = y1.toArray();
    x1.dispose(); y1.dispose();
    for (let i = 0; i < 3; i++) {
      let worst = 0, size = 0;
      for (let j = 0; j < N; j++) {
        let v = bias[j];
        for (let k = 0; k < K; k++) v += x[i * K + k] * Wd[j * K + k];
        worst = Math.max(worst, Math.abs(got1[i * N + j] - v)); size = Math.max(size, Math.abs(v));
      }
      assert.ok(worst <= 2e-4 * size, `[3, 1, K] row ${i}: max error ${worst} of ${size}`);
    }
  } finally { lin.dispose(); b.dispose(); xt.dispose(); }
});

// The loader's bound on a second part's scale (maxResidualScale, s / 254 to an
// ulp) holds for what weightResidual gives at every magnitude, subnormal
// rows (where f32 keeps few bits) included, so no file cait quantize writes is refused.
Q('weightResidual: second scales within maxResidualScale at every magnitude, subnormal rows included; such a file loads', () => {
  let seed = 7;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (const mag of [1e-45, 1e-44, 1e-42, 1e-40, 1e-38, 1e-20, 1e-3, 1, 1e20, 2e36]) for (let t = 0; t < 300; t++) {
    const out = 3, inp = 1 + Math.floor(rnd() * 40), W = Float32Array.from({ length: out * inp }, () => (rnd() * 2 - 1) * mag * (1 + 10 * rnd()));
    const first = quantizeWeight(W, out), second = weightResidual(W, first);
    for (let j = 0; j < out; j++) assert.ok(second.scale[j] >= 0 && second.scale[j] <= maxResidualScale(first.scale[j]), `magnitude ${mag}: second scale ${second.scale[j]} above ${maxResidualScale(first.scale[j])} (int8 scale ${first.scale[j]})`);
  }
  // a model whose head rows are subnormal round-trips through its file
  const vit = createModel(getPreset('vit_fmnist'), 5), hw = vit.namedParameters().find(([n]) => n === 'head.weight')![1];
  hw.write(Float32Array.from(hw.toArray(), (v, i) => (i < 3 * 64 ? v * 1e-39 : v)));
  const qm = quantizeModel(vit);
  try {
    const { quant } = loadQuantizedBytes(quantizedFileBytes(vit, qm), {}, 'sub.safetensors');
    assert.ok(quant?.weights.get('head')?.residual, 'the head keeps its second part');
    quant?.dispose();
  } finally { qm.dispose(); vit.dispose(); }
});

// The prefix rows' second weight part (weightResidual, prefixWeights): those
// rows match the float weights' product to about 14 bits (the dequantized
// weights alone sit 2^-8 of a step away); the other rows do not use it.
Q('QLinear with a second weight part: prefix rows near-exact against the float weights, other rows bit for bit as without it', () => {
  const K = 61, N = 19, B = 2, T = 5, W = randn(N * K, 4), bias = randn(N, 6), x = randn(B * T * K, 9);
  const first = quantizeWeight(W, N), second = weightResidual(W, first), Wd = dequantizeWeight(first.q, first.scale);
  for (let j = 0; j < N; j++) {
    assert.ok(second.scale[j] > 0 && second.scale[j] <= first.scale[j] / 250, `channel ${j}: second scale ${second.scale[j]} against ${first.scale[j]}`);
    for (let k = 0; k < K; k++) {
      const i = j * K + k, e = Math.abs(W[i] - Wd[i] - second.q[i] * second.scale[j]);
      assert.ok(e <= 0.5 * second.scale[j] * (1 + 1e-5), `W[${j}, ${k}]: two parts ${e} from the float weight, half a step ${0.5 * second.scale[j]}`);
    }
  }
  const b = Tensor.from(bias, [N], be), xt = Tensor.from(x, [B, T, K], be);
  const one = new QLinear(first.q, first.scale, N, K, b, be, prefixTokens(1)), two = new QLinear(first.q, first.scale, N, K, b, be, prefixTokens(1), 127, second);
  try {
    const y1 = one.forward(xt), y2 = two.forward(xt), a = y1.toArray(), c = y2.toArray();
    y1.dispose(); y2.dispose();
    for (let i = 0; i < B * T; i++) {
      let worst = 0, worstDq = 0, size = 0;
      for (let j = 0; j < N; j++) {
        let v = bias[j], vd = bias[j];
        for (let k = 0; k < K; k++) { v += x[i * K + k] * W[j * K + k]; vd += x[i * K + k] * Wd[j * K + k]; }
        worst = Math.max(worst, Math.abs(c[i * N + j] - v)); worstDq = Math.max(worstDq, Math.abs(a[i * N + j] - v)); size = Math.max(size, Math.abs(v));
      }
      if (i % T === 0) {
        assert.ok(worst <= 2e-4 * size, `prefix row ${i}: max error ${worst} of ${size} against the float weights`);
        assert.ok(worst < 0.25 * worstDq, `prefix row ${i}: ${worst} with the second part against ${worstDq} without`);
      } else assert.equal([...c.subarray(i * N, (i + 1) * N)], [...a.subarray(i * N, (i + 1) * N)], `row ${i}: the second part is for the prefix rows only`);
    }
  } finally { one.dispose(); two.dispose(); b.dispose(); xt.dispose(); }
});

function loadCait(file: string): { vit: VisionTransformer; model: Fwd; wrap: (v: VisionTransformer) => Fwd } {
  const { model: vit, metadata } = loadModel(file);
  const atme = atmeOptionsFromMetadata(metadata);
  const wrap = (v: VisionTransformer): Fwd => (v.cfg.merge ? new CaitModel(v, { ...atme, merge: v.cfg.merge }) : v);
  return { vit, model: wrap(vit), wrap };
}

for (const name of ['dense', 'atme', 'cdcp', 'cait']) {
  Q(`Fashion-MNIST ${name}: int8 near float; planned = eager bit for bit; file round trip bit for bit`, () => {
    const { vit, model, wrap } = loadCait(`models/fmnist-${name}.safetensors`);
    const cfg = vit.cfg, B = 3, shape = [B, cfg.inChans, cfg.imgSize, cfg.imgSize], x = randn(B * cfg.imgSize * cfg.imgSize, 11);
    const float = run(model, x, shape);
    const qm = quantizeModel(vit);
    let plan: InferencePlan | null = null, loaded: VisionTransformer | null = null;
    try {
      const int8 = run(model, x, shape), r = relDiff(int8, float);
      assert.ok(r <= 0.05, `${name}: max |int8 - float| / max |float| = ${r.toFixed(4)}`);
      plan = InferencePlan.capture(be, x, shape, (t) => model.forward(t));
      assert.equal([...plan.run(x)], [...int8], 'planned forward');
      // file: I8 weights + F32 scales, scheme in the metadata
      const bytes = quantizedFileBytes(vit, qm, name === 'dense' ? {} : { atme: JSON.stringify(atmeOptionsFromMetadata({ atme: '{"similarity":"keys","propAttn":true}' })) });
      const { tensors, metadata } = readSafetensors(bytes);
      assert.is(JSON.parse(metadata.quant).scheme, 'int8-dynamic');
      // the blocks' Linears and the head hold two int8 parts (prefixWeights), the patch embedding one
      assert.ok(bytes.length < 0.6 * vit.numParams() * 4, `file ${bytes.length} bytes for ${vit.numParams()} parameters`);
      assert.is(tensors.get('blocks.0.attn.qkv.weight')!.dtype, 'I8');
      assert.is(tensors.get(`blocks.0.attn.qkv${SCALE_SUFFIX}`)!.dtype, 'F32');
      assert.is(tensors.get(`blocks.0.attn.qkv${RESIDUAL_SUFFIX}`)!.dtype, 'I8');
      assert.is(tensors.get(`head${RESIDUAL_SCALE_SUFFIX}`)!.dtype, 'F32');
      assert.not.ok(tensors.has(`patch_embed.proj${RESIDUAL_SUFFIX}`), 'the patch embedding has no prefix rows');
      assert.equal(JSON.parse(metadata.quant).prefix_weights, [...qm.weights].filter(([, w]) => w.residual).map(([n]) => n));
      const l = loadQuantizedBytes(bytes, {}, 'int8.safetensors');
      loaded = l.model;
      assert.ok(l.quant && l.quant.layers.size === qm.layers.size, 'loaded model runs int8');
      assert.equal([...run(wrap(loaded), x, shape)], [...int8], 'loaded file: same logits');
      // a plain loader (no int8 forwards) gets the dequantized float weights
      const plain = modelFromBytes(bytes, {}, 'int8.safetensors').model;
      assert.equal([...plain.blocks[0].mlp.fc1.weight.toArray()], [...vit.blocks[0].mlp.fc1.weight.toArray()]);
      plain.dispose();
    } finally { plan?.dispose(); qm.dispose(); loaded?.dispose(); }
    // after dispose the float forward is back (on the dequantized weights)
    const back = run(model, x, shape);
    assert.ok(relDiff(back, float) < 0.05 && relDiff(back, float) > 0);
    vit.dispose();
  });
}

Q('disposing a quantized model frees its int8 weights; quantizing again after dispose works', () => {
  const vit = createModel(getPreset('vit_fmnist'), 2), before = be.stats().bytesInUse;
  quantizeModel(vit);
  assert.ok(be.stats().bytesInUse > before, 'int8 weights allocated');
  vit.dispose();
  assert.ok(be.stats().bytesInUse < before, `model and int8 weights freed (${be.stats().bytesInUse} >= ${before})`);
  const v2 = createModel(getPreset('vit_fmnist'), 2), q2 = quantizeModel(v2);
  q2.dispose();
  const q3 = quantizeModel(v2);
  assert.is(q3.layers.size, 26);
  v2.dispose();
});

Q('bad int8 files: I8 without scales, scales of the wrong shape, quantizing twice', () => {
  const vit = createModel(getPreset('vit_fmnist'), 1), qm = quantizeModel(vit);
  try {
    assert.throws(() => quantizeModel(vit), /already quantized/);
    const { tensors, metadata } = readSafetensors(quantizedFileBytes(vit, qm));
    const entries = new Map<string, { dtype: 'F32' | 'I8'; shape: number[]; data: Float32Array | Int8Array }>();
    for (const [n, t] of tensors) entries.set(n, t.dtype === 'I8' ? { dtype: 'I8', shape: t.shape, data: Int8Array.from(t.data) } : { dtype: 'F32', shape: t.shape, data: t.data });
    const noScale = new Map(entries); noScale.delete(`head${SCALE_SUFFIX}`);
    assert.throws(() => loadQuantizedBytes(writeMixedSafetensors(noScale as never, metadata), {}, 'x.safetensors'), /'head\.weight' is I8 but 'head\.weight_scale'/);
    const badScale = new Map(entries); badScale.set(`head${SCALE_SUFFIX}`, { dtype: 'F32', shape: [3], data: new Float32Array(3) });
    assert.throws(() => loadQuantizedBytes(writeMixedSafetensors(badScale as never, metadata), {}, 'x.safetensors'), /head\.weight_scale.*expected F32 \[10\]/);
    // each of these loaded before (a layer silently float, a channel silently zero, a LayerNorm silently int8)
    const bad = (edit: (m: typeof entries, meta: Record<string, string>) => void, re: RegExp) => {
      const m = new Map(entries), meta = { ...metadata };
      edit(m, meta);
      assert.throws(() => loadQuantizedBytes(writeMixedSafetensors(m as never, meta), {}, 'x.safetensors'), (e: Error) => re.test(e.message) && e.message.startsWith('x.safetensors: '), re.source);
    };
    bad((m) => {
      m.set('norm.weight', { dtype: 'I8', shape: [64], data: new Int8Array(64).fill(127) });
      m.set(`norm${SCALE_SUFFIX}`, { dtype: 'F32', shape: [64], data: new Float32Array(64).fill(1 / 127) });
    }, /tensor 'norm\.weight' is I8 \[64\]: only a Linear's '<layer>\.weight'.*expected F32/);
    bad((m) => { m.set('cls_token', { dtype: 'I8', shape: [1, 1, 64], data: new Int8Array(64) }); }, /tensor 'cls_token' is I8 \[1,1,64\]: only a Linear's/);
    const head = entries.get('head.weight')!, hs = entries.get(`head${SCALE_SUFFIX}`)!;
    bad((m) => { m.set(`head${SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(hs.data, (v, i) => (i === 2 ? 0 : v)) }); },
      /'head\.weight_scale'\[2\] is 0 but row 2 of 'head\.weight' holds nonzero weights: expected a scale > 0/);
    bad((m) => { m.set(`head${SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(hs.data, (v, i) => (i === 1 ? 3e38 : v)) }); },
      /'head\.weight_scale'\[1\] is 3.*: scales must be finite, >= 0 and at most/);
    // F32 where the metadata says I8 (the layer ran float), and the other way round
    bad((m) => { for (const x of [SCALE_SUFFIX, RESIDUAL_SUFFIX, RESIDUAL_SCALE_SUFFIX]) m.delete(`head${x}`); m.set('head.weight', { dtype: 'F32', shape: head.shape, data: dequantizeWeight(head.data as Int8Array, hs.data as Float32Array) }); },
      /__metadata__\.quant\.layers lists 'head': expected 'head\.weight' I8 with 'head\.weight_scale', got F32 \[10,64\]/);
    bad((_, meta) => { const q = JSON.parse(meta.quant); q.layers = q.layers.filter((l: string) => l !== 'head'); meta.quant = JSON.stringify(q); },
      /tensor 'head\.weight' is I8, but __metadata__\.quant\.layers does not list 'head'/);
    bad((_, meta) => { meta.quant = JSON.stringify({ ...JSON.parse(meta.quant), layers: 'all' }); }, /'__metadata__\.quant\.layers': expected an array of the int8 layers' names, got "all"/);
    // the prefix rows' second weight part (prefixWeights): both tensors, the weight's shape, scales within [0, the int8 scale / 254], listed
    const rs = entries.get(`head${RESIDUAL_SCALE_SUFFIX}`)!;
    bad((m) => { m.delete(`head${RESIDUAL_SCALE_SUFFIX}`); }, /'head\.weight_residual' is there but 'head\.weight_residual_scale' is missing/);
    bad((m) => { m.set(`head${RESIDUAL_SUFFIX}`, { dtype: 'I8', shape: [10, 32], data: new Int8Array(320) }); }, /'head\.weight_residual': expected I8 \[10,64\] \(the shape of 'head\.weight'\), got I8 \[10,32\]/);
    bad((m) => { m.set(`head${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(rs.data, (v, i) => (i === 4 ? 2 * (hs.data[4] as number) : v)) }); },
      /'head\.weight_residual_scale'\[4\] is .*: expected a finite scale in \[0, .*\] \('head\.weight_scale'\[4\]/);
    // a scale up to the int8 scale itself loaded before (the class token's weights moved by up to 127 r, the logits by a third, silently): the part holds half a step
    bad((m) => { m.set(`head${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(rs.data, (v, i) => (i === 4 ? (hs.data[4] as number) : v)) }); },
      /'head\.weight_residual_scale'\[4\] is .*: expected a finite scale in \[0, .*\] \('head\.weight_scale'\[4\] .* \/ 254/);
    bad((m) => { m.set(`head${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(rs.data, (v, i) => (i === 4 ? Math.fround(1.001 * (hs.data[4] as number) / 254) : v)) }); },
      /'head\.weight_residual_scale'\[4\] is .*: expected a finite scale in \[0, /);
    bad((m) => { m.set(`head${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(rs.data, (v, i) => (i === 4 ? NaN : v)) }); }, /'head\.weight_residual_scale'\[4\] is NaN/);
    bad((m) => { m.set(`head${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [10], data: Float32Array.from(rs.data, (v, i) => (i === 4 ? 0 : v)) }); }, /'head\.weight_residual_scale'\[4\] is 0 but row 4 of 'head\.weight_residual' holds nonzero values/);
    bad((m) => { m.set(`norm${RESIDUAL_SUFFIX}`, { dtype: 'I8', shape: [64], data: new Int8Array(64) }); m.set(`norm${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: [64], data: new Float32Array(64) }); },
      /'norm\.weight_residual' is the second weight part of 'norm\.weight', which is no I8 weight/);
    bad((_, meta) => { const q = JSON.parse(meta.quant); q.prefix_weights = q.prefix_weights.filter((l: string) => l !== 'head'); meta.quant = JSON.stringify(q); },
      /'head\.weight_residual' is there, but __metadata__\.quant\.prefix_weights does not list 'head'/);
    bad((m) => { m.delete(`head${RESIDUAL_SUFFIX}`); m.delete(`head${RESIDUAL_SCALE_SUFFIX}`); }, /__metadata__\.quant\.prefix_weights lists 'head': expected 'head\.weight_residual' I8/);
    bad((_, meta) => { meta.quant = JSON.stringify({ ...JSON.parse(meta.quant), prefix_weights: 'head' }); }, /'__metadata__\.quant\.prefix_weights': expected an array of the two-part layers' names, got "head"/);
    // a layer listed twice (each loaded before): the lists name each layer once
    bad((_, meta) => { const q = JSON.parse(meta.quant); q.prefix_weights.push('head'); meta.quant = JSON.stringify(q); }, /'__metadata__\.quant\.prefix_weights': expected each layer named once, got 'head' twice/);
    bad((_, meta) => { const q = JSON.parse(meta.quant); q.layers.push('blocks.0.mlp.fc1'); meta.quant = JSON.stringify(q); }, /'__metadata__\.quant\.layers': expected each layer named once, got 'blocks\.0\.mlp\.fc1' twice/);
    // a second part for a layer without prefix rows (the patch embedding): refused where the model runs
    bad((m, meta) => {
      const pe = entries.get('patch_embed.proj.weight')!, ps = entries.get(`patch_embed.proj${SCALE_SUFFIX}`)!;
      m.set(`patch_embed.proj${RESIDUAL_SUFFIX}`, { dtype: 'I8', shape: pe.shape, data: new Int8Array(pe.data.length) });
      m.set(`patch_embed.proj${RESIDUAL_SCALE_SUFFIX}`, { dtype: 'F32', shape: ps.shape, data: new Float32Array(ps.data.length) });
      const q = JSON.parse(meta.quant); q.prefix_weights.push('patch_embed.proj'); meta.quant = JSON.stringify(q);
    }, /'patch_embed\.proj\.weight_residual': expected none, got a second weight part for a layer without prefix rows/);
    // int8 weights no Linear takes (a layer named otherwise): an error, the model untouched
    const v3 = createModel(getPreset('vit_fmnist'), 3);
    assert.throws(() => quantizeModel(v3, { given: new Map([['norm', { q: new Int8Array(64), scale: new Float32Array(64) }]]) }), /int8 weights for 'norm', which is no Linear of the model/);
    quantizeModel(v3).dispose();
    // a non-finite weight (loaded with allowNonFinite) is not written as a NaN scale no loader takes
    const hw = v3.namedParameters().find(([n]) => n === 'head.weight')![1], d = hw.toArray();
    d[64 + 5] = NaN;
    hw.write(d);
    const q4 = quantizeModel(v3);
    assert.throws(() => quantizedFileBytes(v3, q4), /parameter 'head\.weight': the int8 scale of output channel 1 is NaN \(its row holds a non-finite value\): not saved/);
    q4.dispose();
    v3.dispose();
  } finally { qm.dispose(); vit.dispose(); }
});

Q.run();
