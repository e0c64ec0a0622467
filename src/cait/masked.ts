// CDCP's masked compute (docs/cait-method.md, "CDCP"; the formulas
// and the straight-through estimator are at the top of ./cdcp.ts): a channel
// mask as the branches use it, the straight-through column multiplier, and
// the masked attention and MLP residuals in their two formulations, 'gather'
// (the compact model's cost) and 'dense' (exact straight-through). Which
// channels a mask keeps is ./cdcp.ts's business (its top-k and gate
// strategies); these functions run whatever masks they are given.
import { Tensor } from '../tensor.js';
import { call } from '../backend/kernels.js';
import { isGradEnabled, noGrad, record } from '../autograd.js';
import * as ops from '../ops/index.js';
import { gatherCols, gatherRows, indexTensor } from '../ops/gather.js';
import type { Block, BlockWidths } from '../nn/layers.js';

// ---------------------------------------------------------------- masks

/** One channel mask, as the masked branches use it. */
export interface ChannelMask {
  /** The width it selects from (the block's D_qk, D_v or M). */
  width: number;
  /** Kept channel indices, ascending. */
  keep: Int32Array;
  /** Multiplier per channel over the whole width: 0 where pruned; 1 (top-k) or the gate (gates) where kept. */
  value: Float32Array;
  /** The parameter the straight-through gradient reaches (null: none, e.g. frozen or evaluation). */
  score: Tensor | null;
}

/** A block's masks; with sharedQkv, `qk` and `v` are the same object. */
export interface BlockMasks { qk: ChannelMask; v: ChannelMask; mlp: ChannelMask }

export type MaskedCompute = 'gather' | 'dense';

/** A mask keeping `keep` with multipliers `values` (paired with keep; default 1). */
export function channelMask(width: number, keep: ArrayLike<number>, score: Tensor | null = null, values?: ArrayLike<number>): ChannelMask {
  if (values && values.length !== keep.length) throw new RangeError(`channel mask: ${values.length} values for ${keep.length} channels`);
  const value = new Float32Array(width), seen = new Uint8Array(width);
  for (let i = 0; i < keep.length; i++) {
    const c = keep[i];
    if (!(Number.isInteger(c) && c >= 0 && c < width)) throw new RangeError(`channel mask: index ${c} out of [0, ${width})`);
    if (seen[c]++) throw new RangeError(`channel mask: index ${c} twice`);
    value[c] = values ? values[i] : 1;
  }
  return { width, keep: Int32Array.from(keep).sort(), value, score };
}

/** Indices of the k largest values (ties: the lower index), ascending. */
export function topk(s: ArrayLike<number>, k: number): Int32Array {
  const order = Array.from({ length: s.length }, (_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
  return Int32Array.from(order.slice(0, k)).sort();
}

/** Per-block widths a set of masks leaves (what VitConfig.widths of the compact model holds). */
export function widthsOf(masks: readonly BlockMasks[]): BlockWidths[] {
  return masks.map((m) => ({ qk: m.qk.keep.length, v: m.v.keep.length, mlp: m.mlp.keep.length }));
}

// ---------------------------------------------------------------- straight-through multiplier

interface ScoreTarget { score: Tensor; cols: Int32Array; ch: Int32Array }

/**
 * y = x * mult over the last axis (x [..., W], mult W values or null = ones).
 * Backward: dx = dy * mult, and for every target, score.grad[ch[j]] += column
 * cols[j] of sum over rows of x * dy: the straight-through dL/dm (./cdcp.ts header).
 */
function maskColumns(x: Tensor, mult: Float32Array | null, targets: ScoreTarget[]): Tensor {
  const W = x.shape[x.shape.length - 1], R = x.size / W, be = x.backend;
  const live = targets.filter((t) => t.score.requiresGrad && isGradEnabled());
  if (!mult && !live.length) return x;
  const y = new Tensor(x.shape, be);
  const m = mult ? Tensor.from(mult, [W], be) : null;
  if (m) call(be, 'mul', { a: x.ptr, b: m.ptr, y: y.ptr, n: x.size, m: W });
  else call(be, 'copy2d', { src: x.ptr, sld: x.size, dst: y.ptr, dld: x.size, rows: 1, cols: x.size });
  const scores = [...new Set(live.map((t) => t.score))];
  return record(y, [x, ...scores], (dy) => {
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      if (m) { dx = new Tensor(x.shape, be); call(be, 'mul', { a: dy.ptr, b: m.ptr, y: dx.ptr, n: x.size, m: W }); } else dx = dy;
    }
    if (!scores.length) return [dx];
    const t = new Tensor(x.shape, be), cs = new Tensor([W], be);
    call(be, 'mul', { a: x.ptr, b: dy.ptr, y: t.ptr, n: x.size, m: x.size });
    call(be, 'col_sum', { x: t.ptr, y: cs.ptr, rows: R, cols: W });
    const col = cs.toArray();
    t.dispose(); cs.dispose();
    const grads = scores.map((s) => {
      const g = new Float64Array(s.size);
      for (const tg of live) if (tg.score === s) for (let j = 0; j < tg.cols.length; j++) g[tg.ch[j]] += col[tg.cols[j]];
      return Tensor.from(Float32Array.from(g), s.shape, be);
    });
    return [dx, ...grads];
  });
}

/** Columns {off + h*stride + keep[t]} for every head h, in [h][t] order; and their channels keep[t]. */
function headColumns(H: number, off: number, stride: number, keep: Int32Array): { cols: Int32Array; ch: Int32Array } {
  const k = keep.length, cols = new Int32Array(H * k), ch = new Int32Array(H * k);
  for (let h = 0; h < H; h++) for (let t = 0; t < k; t++) { cols[h * k + t] = off + h * stride + keep[t]; ch[h * k + t] = keep[t]; }
  return { cols, ch };
}

export const range = (n: number, off = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => off + i);

/** A multiplier over `width` columns: 1, except mult[cols[j]] = value[ch[j]]; null if all ones. */
function multiplier(width: number, parts: Array<{ cols: Int32Array; ch: Int32Array; value: Float32Array }>): Float32Array | null {
  const mult = new Float32Array(width).fill(1);
  let ones = true;
  for (const p of parts) for (let j = 0; j < p.cols.length; j++) { const u = p.value[p.ch[j]]; mult[p.cols[j]] = u; if (u !== 1) ones = false; }
  return ones ? null : mult;
}

function targetsOf(parts: Array<{ cols: Int32Array; ch: Int32Array; mask: ChannelMask }>): ScoreTarget[] {
  return parts.filter((p) => p.mask.score).map((p) => ({ score: p.mask.score!, cols: p.cols, ch: p.ch }));
}

/** Columns `cols` of activations x [..., W] (no gradient): [..., cols.length]. */
function gatherActivations(x: Tensor, cols: Int32Array): Tensor {
  const W = x.shape[x.shape.length - 1], be = x.backend;
  const y = new Tensor([...x.shape.slice(0, -1), cols.length], be), it = indexTensor(cols, x);
  call(be, 'gather_cols', { x: x.ptr, ldx: W, rows: x.size / W, idx: it.ptr, k: cols.length, y: y.ptr });
  it.dispose();
  return y;
}

// ---------------------------------------------------------------- masked branches

function checkWidth(what: string, m: ChannelMask, w: number): void {
  if (m.width !== w) throw new Error(`CDCP: ${what} mask has width ${m.width}, the block has ${w}`);
  if (!m.keep.length) throw new Error(`CDCP: ${what} mask keeps no channel`);
}

/**
 * Block attention residual x + attn(norm1(x)) under masks m. `onQkv` sees the
 * qkv activations in the compact model's layout [q | k | v] with the kept
 * widths (keys: offset H*|I_qk|, width |I_qk|), whichever the formulation.
 */
export function maskedAttnResidual(block: Block, m: BlockMasks, x: Tensor, keyBias: Tensor | null = null,
  onQkv?: (qkv: Tensor) => void, compute: MaskedCompute = 'gather'): Tensor {
  const a = block.attn, H = a.numHeads, Dq = a.dqk, Dv = a.dv;
  checkWidth('qk', m.qk, Dq);
  checkWidth('v', m.v, Dv);
  const kq = m.qk.keep.length, kv = m.v.keep.length;
  const h = block.norm1.forward(x);
  // the kept q, k and v channels of every head inside the block's qkv rows [q H*Dq | k H*Dq | v H*Dv]
  const q = headColumns(H, 0, Dq, m.qk.keep), k = headColumns(H, H * Dq, Dq, m.qk.keep), v = headColumns(H, 2 * H * Dq, Dv, m.v.keep);
  let y: Tensor;
  if (compute === 'gather') {
    const rows = new Int32Array([...q.cols, ...k.cols, ...v.cols]);
    const w = gatherRows(a.qkv.weight, rows), b = a.qkv.bias ? gatherRows(a.qkv.bias, rows) : null;
    // compact columns: q [0, H kq), k [H kq, 2 H kq), v [2 H kq, 2 H kq + H kv)
    const cq = { cols: range(H * kq), ch: q.ch }, cv = { cols: range(H * kv, 2 * H * kq), ch: v.ch };
    const qkv = maskColumns(ops.linear(h, w, b),
      multiplier(rows.length, [{ ...cq, value: m.qk.value }, { ...cv, value: m.v.value }]),
      targetsOf([{ ...cq, mask: m.qk }, { ...cv, mask: m.v }]));
    onQkv?.(qkv);
    const o = ops.attention(qkv, { heads: H, scale: a.scale, keyBias, headDimQK: kq, headDimV: kv });
    const pc = headColumns(H, 0, Dv, m.v.keep).cols;
    y = ops.linear(o, gatherCols(a.proj.weight, pc), a.proj.bias);
  } else {
    // full-width columns of q and v, each with its channel c = column mod D
    const fq = { cols: range(H * Dq), ch: range(H * Dq).map((c) => c % Dq) };
    const fv = { cols: range(H * Dv, 2 * H * Dq), ch: range(H * Dv).map((c) => c % Dv) };
    const qkv = maskColumns(a.qkv.forward(h),
      multiplier(H * (2 * Dq + Dv), [{ ...fq, value: m.qk.value }, { ...fv, value: m.v.value }]),
      targetsOf([{ ...fq, mask: m.qk }, { ...fv, mask: m.v }]));
    // q and v already carry u; the kept k columns are the compact model's k
    if (onQkv) onQkv(noGrad(() => gatherActivations(qkv, new Int32Array([...q.cols, ...k.cols, ...v.cols]))));
    const o = ops.attention(qkv, { heads: H, scale: a.scale, keyBias, headDimQK: Dq, headDimV: Dv });
    y = a.proj.forward(o);
  }
  return ops.add(x, y);
}

/** Block MLP residual x + mlp(norm2(x)) under masks m. */
export function maskedMlpResidual(block: Block, m: BlockMasks, x: Tensor, compute: MaskedCompute = 'gather'): Tensor {
  const { fc1, fc2 } = block.mlp, M = fc1.outFeatures;
  checkWidth('mlp', m.mlp, M);
  const h = block.norm2.forward(x), keep = m.mlp.keep;
  let y: Tensor;
  if (compute === 'gather') {
    const c = { cols: range(keep.length), ch: keep };
    const hid = ops.gelu(ops.linear(h, gatherRows(fc1.weight, keep), fc1.bias ? gatherRows(fc1.bias, keep) : null));
    const a = maskColumns(hid, multiplier(keep.length, [{ ...c, value: m.mlp.value }]), targetsOf([{ ...c, mask: m.mlp }]));
    y = ops.linear(a, gatherCols(fc2.weight, keep), fc2.bias);
  } else {
    const c = { cols: range(M), ch: range(M) };
    const a = maskColumns(ops.gelu(fc1.forward(h)), multiplier(M, [{ ...c, value: m.mlp.value }]), targetsOf([{ ...c, mask: m.mlp }]));
    y = fc2.forward(a);
  }
  return ops.add(x, y);
}
