// Finite-difference checks of every differentiable op's backward, on the
// default WASM backend and on the reference backend.
import { suite } from 'uvu';
import * as ops from '../src/ops/index.js';
import { Tensor, setBackend, scope } from '../src/tensor.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { gradcheck } from './gradcheck.js';
import { randn } from './util.js';

for (const [bname, make] of [['wasm', () => loadWasmSync('auto')], ['reference', () => new ReferenceBackend()]] as const) {
  const test = suite(`op gradients (${bname})`);
  test.before(() => setBackend(make()));

  test('linear: x, W, b (odd sizes)', () => gradcheck('linear', ([x, w, b]) => ops.linear(x, w, b), [[3, 5, 7], [9, 7], [9]]));
  test('linear with a conv-shaped weight [E, C, P, P]', () => gradcheck('linear-conv', ([x, w, b]) => ops.linear(x, w, b), [[2, 3, 12], [5, 3, 2, 2], [5]]));
  test('layerNorm: x, gamma, beta', () => gradcheck('layerNorm', ([x, g, b]) => ops.layerNorm(x, g, b, 1e-6), [[4, 19], [19], [19]], { eps: 5e-3 }));
  test('gelu', () => gradcheck('gelu', ([x]) => ops.gelu(x), [[37]], { inputs: [randn(37, 3, 3)] }));
  test('add: same shape and broadcast', () => {
    gradcheck('add', ([a, b]) => ops.add(a, b), [[3, 5], [3, 5]]);
    gradcheck('add-bcast', ([a, b]) => ops.add(a, b), [[2, 3, 5], [3, 5]]);
  });
  test('mul: same shape and broadcast', () => {
    gradcheck('mul', ([a, b]) => ops.mul(a, b), [[3, 5], [3, 5]]);
    gradcheck('mul-bcast', ([a, b]) => ops.mul(a, b), [[4, 6], [6]]);
  });
  test('scale and reshape', () => {
    gradcheck('scale', ([x]) => ops.scale(x, -1.7), [[11]]);
    gradcheck('reshape', ([x]) => ops.reshape(x, [6, 2]), [[3, 4]]);
  });
  test('prependToken, selectToken, meanTokens', () => {
    gradcheck('prependToken', ([x, t]) => ops.prependToken(x, t), [[2, 3, 4], [1, 1, 4]]);
    gradcheck('selectToken', ([x]) => ops.selectToken(x, 1), [[2, 3, 4]]);
    gradcheck('meanTokens', ([x]) => ops.meanTokens(x, 1), [[2, 5, 3]]);
  });
  test('patchify', () => gradcheck('patchify', ([x]) => ops.patchify(x, 2), [[2, 3, 4, 6]]));
  test('attention: dense, 2 heads, odd N', () => {
    gradcheck('attention', ([qkv]) => ops.attention(qkv, { heads: 2, scale: 0.5 }), [[2, 5, 3 * 2 * 3]], { eps: 5e-3 });
  });
  test('attention: pruned widths (Dqk != Dv) with a key bias', () => {
    const bias = scope(() => Tensor.from(randn(2 * 5, 5), [2, 5]));
    gradcheck('attention-pruned', ([qkv]) => ops.attention(qkv, { heads: 3, scale: 0.4, headDimQK: 2, headDimV: 3, keyBias: bias }), [[2, 5, 3 * (2 * 2 + 3)]], { eps: 5e-3 });
    bias.dispose();
  });
  test('crossEntropy with label smoothing', () => {
    gradcheck('crossEntropy', ([z]) => ops.crossEntropy(z, [2, 0, 4], 0.1), [[3, 5]], { inputs: [randn(15, 4, 3)] });
  });
  test('distillKL', () => {
    const t = randn(15, 8, 2);
    gradcheck('distillKL', ([z]) => ops.distillKL(z, t, 2), [[3, 5]]);
  });
  test('weightedSum', () => gradcheck('weightedSum', ([a, b]) => ops.weightedSum([[ops.crossEntropy(a, [1, 0]), 0.3], [ops.crossEntropy(b, [2, 2]), 2]]), [[2, 3], [2, 3]]));
  test.run();
}
