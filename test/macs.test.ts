// MAC and parameter counts from the config (src/cait/macs.ts) for distilled
// DeiTs: two prefix tokens (class, distillation) in every block's N, both
// heads, dist_token and the longer pos_embed; against the built model's real
// parameter count and MAC counts worked out by hand from the method
// document's formula (docs/cait-method.md, "CDCP", Budget).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countMacs, countParams } from '../src/cait/macs.js';
import { createModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';

const realParams = (cfg: VitConfig): number => createModel(cfg, 1).namedParameters().reduce((s, [, p]) => s + p.size, 0);

test('countParams = the sum of the built model\'s parameter sizes: distilled DeiT-Tiny, with and without head_dist, and the plain one', () => {
  const tiny = getPreset('deit_tiny_distilled_patch16_224');
  // timm's deit_tiny_distilled_patch16_224 has 5,910,800 parameters
  assert.is(countParams(tiny), 5_910_800);
  assert.is(countParams(tiny), realParams(tiny));
  const noHead = { ...tiny, distillHead: false };
  assert.is(countParams(noHead), realParams(noHead));
  assert.is(countParams(tiny) - countParams(noHead), 192 * 1000 + 1000, 'head_dist');
  const plain = getPreset('deit_tiny_patch16_224');
  assert.is(countParams(plain), 5_717_416);
  assert.is(countParams(tiny) - countParams(plain), 192 + 192 + 193_000, 'dist_token, one more pos_embed row, head_dist');
  const compact = { ...getPreset('micro'), distilled: true, widths: [{ qk: 8, v: 12, mlp: 100 }, { qk: 4, v: 16, mlp: 64 }] };
  assert.is(countParams(compact), realParams(compact), 'distilled, compact widths');
});

test('countMacs, distilled DeiT-Tiny dense, by hand: N = 2 + 196 in every block, two heads', () => {
  // per block (C 192, H 3, D 64, MLP 768, N 198):
  //   qkv 198*192*3*192 = 21,897,216; attn 198^2*3*128 = 15,054,336;
  //   proj 198*3*64*192 = 7,299,072; mlp 2*198*192*768 = 58,392,576  -> 102,643,200
  // patch embedding 196*3*256*192 = 28,901,376; heads 2*192*1000 = 384,000
  const r = countMacs(getPreset('deit_tiny_distilled_patch16_224'), '');
  assert.equal(r.tokens, new Array(12).fill(198));
  assert.is(r.blocks[0].total, 102_643_200);
  assert.is(r.patchEmbed, 28_901_376);
  assert.is(r.head, 384_000);
  assert.is(r.total, 28_901_376 + 12 * 102_643_200 + 384_000);
});

test('countMacs, distilled micro with h@0: both prefix tokens stay through the merge, by hand', () => {
  // grid 4x4 -> 4x2 at block 0; C 48, H 3, D 16, MLP 192
  // block 0: attention at N 18, MLP at N 2 + 8 = 10
  //   qkv 18*48*3*48 = 124,416; attn 18^2*3*32 = 31,104; proj 18*3*16*48 = 41,472; mlp 2*10*48*192 = 184,320
  // block 1: N 10: qkv 69,120; attn 9,600; proj 23,040; mlp 184,320
  // patch embedding 16*3*64*48 = 147,456; heads 2*48*10 = 960
  const cfg = { ...getPreset('micro'), distilled: true };
  const r = countMacs(cfg, 'h@0');
  assert.equal(r.tokens, [18, 10]);
  assert.equal([r.blocks[0].attnTokens, r.blocks[0].mlpTokens, r.blocks[1].mlpTokens], [18, 10, 10]);
  assert.equal([r.blocks[0].qkv, r.blocks[0].attn, r.blocks[0].proj, r.blocks[0].mlp], [124_416, 31_104, 41_472, 184_320]);
  assert.is(r.blocks[1].total, 69_120 + 9_600 + 23_040 + 184_320);
  assert.is(r.total, 147_456 + 381_312 + 286_080 + 960);
  // without head_dist (transformers' DeiTForImageClassification) one head is counted
  assert.is(countMacs({ ...cfg, distillHead: false }, 'h@0').total, r.total - 480);
  // the plain model: one prefix token
  assert.equal(countMacs(getPreset('micro'), 'h@0').tokens, [17, 9]);
});

test.run();
