// CDCP extraction (docs/cait-method.md, "CDCP", Extraction): freeze
// the masks and slice the weights into a NEW VisionTransformer whose config
// carries per-block `widths` (and the merge schedule), so it saves and loads
// like any model. The source model is not touched.
//
// Per block, with kept sets I_qk, I_v, I_mlp and multipliers u (1 for top-k;
// the gates for gates, folded in so the compact block computes what the masked
// one did, see src/cait/cdcp.ts):
//   qkv rows  q: h*D + I_qk (times u_qk),  k: H*D + h*D + I_qk,  v: 2*H*D + h*D_v + I_v (times u_v)   for every head h
//   qkv bias  the same rows (and factors)
//   proj      input columns h*D_v + I_v
//   fc1       rows and bias I_mlp;   fc2 input columns I_mlp (times u_mlp)
// Everything else is copied. The slices are the same gather kernels the
// masked forward runs, so the compact model reproduces it.
import { Tensor, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { gatherCols, gatherRows } from '../ops/gather.js';
import { VisionTransformer } from '../nn/vit.js';
import type { VitConfig } from '../nn/presets.js';
import { ZERO_INIT } from '../nn/module.js';
import { widthsOf, type BlockMasks, type ChannelMask } from './cdcp.js';


/** Row (or column) factors u over `idx`, where idx picks channels of mask m through `ch`; null if all 1. */
function factors(m: ChannelMask, ch: Int32Array): Float32Array | null {
  const f = Float32Array.from(ch, (c) => m.value[c]);
  return f.every((x) => x === 1) ? null : f;
}

export function extractCompact(vit: VisionTransformer, masks: readonly BlockMasks[], merge = vit.cfg.merge ?? ''): VisionTransformer {
  if (masks.length !== vit.blocks.length) throw new Error(`extract: ${masks.length} block masks for ${vit.blocks.length} blocks`);
  const cfg: VitConfig = { ...structuredClone(vit.cfg), widths: widthsOf(masks) };
  if (merge) cfg.merge = merge; else delete cfg.merge;
  const out = new VisionTransformer(cfg, ZERO_INIT);
  const src = new Map(vit.namedParameters());
  const sliced = new Map<string, Float32Array>();
  noGrad(() => scope(() => {
    vit.blocks.forEach((b, i) => {
      const m = masks[i], a = b.attn, H = a.numHeads, Dq = a.dqk, Dv = a.dv;
      const heads = (off: number, stride: number, keep: Int32Array) => {
        const cols: number[] = [], ch: number[] = [];
        for (let h = 0; h < H; h++) for (const c of keep) { cols.push(off + h * stride + c); ch.push(c); }
        return { cols: Int32Array.from(cols), ch: Int32Array.from(ch) };
      };
      const q = heads(0, Dq, m.qk.keep), k = heads(H * Dq, Dq, m.qk.keep), v = heads(2 * H * Dq, Dv, m.v.keep);
      const rows = new Int32Array([...q.cols, ...k.cols, ...v.cols]);
      // per-row factor: u_qk on q rows, 1 on k rows, u_v on v rows
      const fq = factors(m.qk, q.ch), fv = factors(m.v, v.ch);
      const rowScale = fq || fv ? new Float32Array([...(fq ?? q.ch.map(() => 1)), ...k.ch.map(() => 1), ...(fv ?? v.ch.map(() => 1))]) : null;
      const scaleRows = (t: Tensor, s: Float32Array | null) => {
        const d = t.toArray();
        if (s) { const w = d.length / s.length; for (let r = 0; r < s.length; r++) for (let j = 0; j < w; j++) d[r * w + j] *= s[r]; }
        return d;
      };
      const p = `blocks.${i}.`;
      sliced.set(`${p}attn.qkv.weight`, scaleRows(gatherRows(a.qkv.weight, rows), rowScale));
      if (a.qkv.bias) sliced.set(`${p}attn.qkv.bias`, scaleRows(gatherRows(a.qkv.bias, rows), rowScale));
      sliced.set(`${p}attn.proj.weight`, gatherCols(a.proj.weight, heads(0, Dv, m.v.keep).cols).toArray());
      const keep = m.mlp.keep, fm = factors(m.mlp, keep);
      sliced.set(`${p}mlp.fc1.weight`, gatherRows(b.mlp.fc1.weight, keep).toArray());
      if (b.mlp.fc1.bias) sliced.set(`${p}mlp.fc1.bias`, gatherRows(b.mlp.fc1.bias, keep).toArray());
      const w2 = gatherCols(b.mlp.fc2.weight, keep).toArray();
      if (fm) for (let r = 0; r < w2.length / keep.length; r++) for (let j = 0; j < keep.length; j++) w2[r * keep.length + j] *= fm[j];
      sliced.set(`${p}mlp.fc2.weight`, w2);
    });
  }));
  for (const [n, t] of out.namedParameters()) {
    const d = sliced.get(n) ?? src.get(n)?.toArray();
    if (!d) throw new Error(`extract: no source for parameter '${n}'`);
    if (d.length !== t.size) throw new Error(`extract: '${n}' has ${d.length} values for shape [${t.shape}]`);
    t.write(d);
  }
  return out;
}
