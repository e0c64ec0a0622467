// How far int8 logits sit from float on random-weight DeiT-Tiny, seed by seed
// (the issue's 2% target; test/quant.test.ts checks seed 0 only): batch 2 of
// the test's inputs, max |int8 - float| / max |float| over the logits, for
// quantizeModel's default and its options (the prefix rows' weights in one
// int8 part, prefixWeights: false, and that part's second half for some
// layers only; the 6-bit rows in 7 bits; float attention; every row in 7
// bits, one part), how SIX_BIT_LAYERS was chosen
// (6bit-only:X: only X's rows in 6 bits; 6bit:default+X: the default's and
// X's), and the floor any activation scheme stands on: the int8 weights
// alone (dequantized into the float model, float activations), with
// quantizeWeight's absmax scales and with per-channel scales searched for
// the least squared weight error (an experiment here, not the library's).
// Where that floor comes from: the int8 weights of one kind of layer alone
// (weights-only:fc1 ...), and all of them but with the class token's row of
// every block Linear computed from the float weights (weights-only:class-token-float;
// a simulation: the file holds no such weights).
// Not a timing: no pinning needed.
// Usage: node --import tsx bench/int8-logits.ts [--seeds 6] [--out bench/results/int8-logits.json]   (npm run bench:int8-logits)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend, Tensor, scope, keep } from '../src/tensor.js';
import * as ops from '../src/ops/index.js';
import { noGrad } from '../src/autograd.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { quantizeModel, quantizeWeight, dequantizeWeight, isLinear, namedModules, roundInt8, SIX_BIT_LAYERS, type QuantizeOptions, type Int8Weight } from '../src/quant/int8.js';
import type { Module } from '../src/nn/module.js';
import { environment } from '../src/util/timing.js';
import { scriptArgs } from './args.js';
import { randn } from '../test/util.js';

const cli = scriptArgs(process.argv.slice(2), { seeds: 'number', out: 'string' },
  `node --import tsx bench/int8-logits.ts [--seeds 6] [--out bench/results/int8-logits.json]   (npm run bench:int8-logits)
  Writes --out (by default over the committed bench/results/int8-logits.json).`);
const S = cli.int('seeds', 6, 1);
const out = resolve((cli.flags.out as string | undefined) ?? fileURLToPath(new URL('./results/int8-logits.json', import.meta.url)));
const be = loadWasmSync('auto');
setBackend(be);
const cfg = getPreset('deit_tiny_patch16_224'), shape = [2, 3, 224, 224], x = randn(2 * 3 * 224 * 224, 5);
// the choice of SIX_BIT_LAYERS: each kind of row alone in 6 bits (the rest 7), and the default plus qkv or the patch embedding
const ROWS: Record<string, RegExp> = { fc1: /\.mlp\.fc1$/, fc2: /\.mlp\.fc2$/, proj: /\.attn\.proj$/, q: /\.attn\.q$/, p: /\.attn\.p$/, qkv: /\.attn\.qkv$/ };
const VARIANTS: Record<string, QuantizeOptions> = {
  default: {}, 'prefix-weights-off': { prefixWeights: false },
  'prefix-weights:head': { prefixWeights: (n: string) => n.startsWith('head') }, 'prefix-weights:mlp': { prefixWeights: (n: string) => n.includes('.mlp.') },
  'prefix-weights:head+mlp': { prefixWeights: (n: string) => n.startsWith('head') || n.includes('.mlp.') },
  'rows-7bit': { sixBit: false }, 'attention-float': { attention: false }, 'prefix-7bit': { prefixRows: false, sixBit: false },
  ...Object.fromEntries(Object.entries(ROWS).map(([k, re]) => [`6bit-only:${k}`, { sixBitLayers: (n: string) => re.test(n) }])),
  '6bit:default-qkv': { sixBitLayers: (n: string) => SIX_BIT_LAYERS.test(n) && !ROWS.qkv.test(n) },
  '6bit:default+patch_embed': { sixBitLayers: (n: string) => SIX_BIT_LAYERS.test(n) || n === 'patch_embed.proj' },
};

/**
 * Per channel, the scale s = a max|W_j| / 127 (a = 1, 0.995, ..., 0.5) with the
 * least sum of (W - s roundInt8(W, s))^2; quantizeWeight's a = 1 is a candidate.
 */
function quantizeWeightMse(W: Float32Array, out: number): Int8Weight {
  const inp = W.length / out, q = new Int8Array(W.length), scale = new Float32Array(out);
  for (let j = 0; j < out; j++) {
    const row = W.subarray(j * inp, (j + 1) * inp);
    let m = 0;
    for (const v of row) m = Math.max(m, Math.abs(v));
    if (m === 0) continue;
    let best = Infinity;
    for (let i = 0; i <= 100; i++) {
      const s = Math.fround(((1 - i * 0.005) * m) / 127);
      let e = 0;
      for (const v of row) { const d = v - roundInt8(v, s) * s; e += d * d; }
      if (e < best) { best = e; scale[j] = s; }
    }
    for (let k = 0; k < inp; k++) q[j * inp + k] = roundInt8(row[k], scale[j]);
  }
  return { q, scale };
}
/** The float model with each Linear's weight replaced by its dequantized int8 weight. */
function weightsOnly(model: Module, quantize: (W: Float32Array, out: number) => Int8Weight): void {
  for (const [, m] of namedModules(model)) {
    if (!isLinear(m)) continue;
    const { q, scale } = quantize(m.weight.toArray(), m.weight.shape[0]);
    m.weight.write(dequantizeWeight(q, scale));
  }
}
/**
 * The float model with the int8 weights (quantizeWeight) of the Linears whose
 * names match `which`; classFloat: block Linears compute the class token's
 * row (token 0) from their float weights, the other rows from the int8 ones.
 */
const floatCopies: Tensor[] = [];
function weightsOnlyWhere(model: Module, which: RegExp, classFloat = false): void {
  for (const [name, m] of namedModules(model)) {
    if (!isLinear(m) || !which.test(name)) continue;
    const W = m.weight.toArray(), { q, scale } = quantizeWeight(W, m.weight.shape[0]);
    m.weight.write(dequantizeWeight(q, scale));
    if (!classFloat || !name.startsWith('blocks.')) continue;
    const Wf = keep(Tensor.from(W, m.weight.shape)), lin = m;
    floatCopies.push(Wf);
    lin.forward = (t: Tensor) => {
      const y = ops.linear(t, lin.weight, lin.bias);
      if (t.shape.length !== 3) return y;
      const [B, T, N] = y.shape, v = y.toArray(), row = ops.linear(ops.selectToken(t, 0), Wf, lin.bias).toArray();
      for (let b = 0; b < B; b++) v.set(row.subarray(b * N, (b + 1) * N), b * T * N);
      return Tensor.from(v, y.shape);
    };
  }
}
const GROUPS: Record<string, RegExp> = { patch_embed: /^patch_embed\./, qkv: /\.qkv$/, proj: /\.attn\.proj$/, fc1: /\.fc1$/, fc2: /\.fc2$/, head: /^head$/ };
const FLOORS: Record<string, (m: Module) => void> = {
  'weights-only': (m) => weightsOnly(m, quantizeWeight),
  'weights-only-mse': (m) => weightsOnly(m, quantizeWeightMse),
  ...Object.fromEntries(Object.entries(GROUPS).map(([g, re]) => [`weights-only:${g}`, (m: Module) => weightsOnlyWhere(m, re)])),
  'weights-only:class-token-float': (m) => weightsOnlyWhere(m, /./, true),
};
const run = (m: { forward(t: Tensor): Tensor }) => noGrad(() => scope(() => m.forward(Tensor.from(x, shape)).toArray()));
const rows: Array<Record<string, unknown>> = [];
for (let seed = 0; seed < S; seed++) {
  const f = createModel(cfg, seed), float = run(f);
  f.dispose();
  let big = 0;
  for (const v of float) big = Math.max(big, Math.abs(v));
  const row: Record<string, unknown> = { seed };
  for (const [name, o] of Object.entries(VARIANTS)) {
    const v = createModel(cfg, seed), qm = quantizeModel(v, o), y = run(v);
    let d = 0;
    for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i] - float[i]));
    row[name] = +(d / big).toFixed(5);
    qm.dispose(); v.dispose();
  }
  for (const [name, apply] of Object.entries(FLOORS)) {
    const v = createModel(cfg, seed);
    apply(v);
    const y = run(v);
    let d = 0;
    for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i] - float[i]));
    row[name] = +(d / big).toFixed(5);
    v.dispose();
    for (const t of floatCopies.splice(0)) t.dispose();
  }
  rows.push(row);
  console.log(Object.entries(row).map(([k, v]) => `${k} ${k === 'seed' ? v : (100 * (v as number)).toFixed(2) + '%'}`).join('  '));
}
const mean = (k: string) => +(rows.reduce((s, r) => s + (r[k] as number), 0) / rows.length).toFixed(5);
const means = Object.fromEntries([...Object.keys(VARIANTS), ...Object.keys(FLOORS)].map((k) => [k, mean(k)]));
console.log('mean', Object.entries(means).map(([k, v]) => `${k} ${(100 * v).toFixed(2)}%`).join('  '));
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({
  what: 'bench/int8-logits.ts: random-weight DeiT-Tiny (createModel(cfg, seed)), batch 2 (randn seed 5, as test/quant.test.ts), max |int8 - float| / max |float| over the logits',
  env: { ...environment(), backend: be.name }, variants: {
    ...Object.fromEntries(Object.entries(VARIANTS).map(([k, o]) => [k, o.sixBitLayers ? `quantizeModel's defaults, the rows in 6 bits: ${k.startsWith('6bit-only:') ? `${k.slice(10)} alone` : k.endsWith('-qkv') ? "SIX_BIT_LAYERS' but qkv" : `SIX_BIT_LAYERS' and ${k.slice(13)}`}`
      : typeof o.prefixWeights === 'function' ? `quantizeModel's defaults, the second weight part only for the ${k.slice(15)} layers` : o])),
    'weights-only': 'int8 weights (quantizeWeight) dequantized into the float model', 'weights-only-mse': 'the same with least-squares per-channel scales (this file)',
    ...Object.fromEntries(Object.keys(GROUPS).map((g) => [`weights-only:${g}`, `only the ${g} Linears' weights in int8`])),
    'weights-only:class-token-float': "every Linear's weights in int8, but the block Linears compute the class token's row from the float weights (a simulation)",
  }, seeds: rows, mean: means,
}, null, 2) + '\n');
console.log(`wrote ${out}`);
