// CDCP, consistent dynamic channel pruning (../shared/docs/cait-method.md, "CDCP"):
// learnable channel masks, the masked attention and MLP branches a wrapper
// runs instead of the ViT's own, and the MAC budget. The ViT is never edited;
// src/cait/search.ts plugs this into the ATME wrapper, src/cait/extract.ts
// turns frozen masks into a new, smaller ViT.
//
// Masks. Per block three: m_qk over the per-head q/k width D_qk, m_v over D_v,
// m_mlp over the MLP hidden width M. Head-level consistency: a mask is one
// vector shared by every head, so all heads keep the same channel indices.
// Attention-level consistency: Q and K share m_qk (their dot product pairs
// channels); V has m_v, which also selects the output projection's input
// columns. *option* sharedQkv: one mask for Q, K and V.
//
// What a mask with kept set I and multipliers u_c (1 for top-k masks, the gate
// for gates) computes, per head:
//   S = scale * sum_{c in I_qk} u_c q_c k_c^T     (u on q only: one factor per q.k pair)
//   o = P [u_c v_c]_{c in I_v},   y = o W_proj[:, I_v]^T + b_proj
//   MLP: y = [u_j gelu(x W1[j]^T + b1[j])]_{j in I_mlp} W2[:, I_mlp]^T + b2
// which is exactly the compact block extract.ts builds, u folded into the W_q
// rows and W2 columns (scale stays the dense D^-0.5, as in the doc).
//
// Two formulations of the same outputs (MaskedCompute):
//   'gather'  slice the kept rows of W_qkv (and bias), of fc1 (and bias) and
//             the kept columns of W_proj and fc2 (gatherRows/gatherCols,
//             assembly/gather.ts), run the dense GEMMs on the compact
//             matrices, scatter-add weight gradients back: the compact model's cost.
//   'dense'   the full-width block with u (0 where pruned) as a multiplier on
//             the q columns, the v columns and the MLP hidden units: the dense cost.
//
// Straight-through estimator (top-k masks). The forward uses the hard mask
// m = topk(s) in {0, 1}; the backward sets dL/ds_c := dL/dm_c, the derivative
// of the loss with respect to the multiplier m_c at the current hard mask:
//   m_qk:  sum_{b,h,i} q_ic dL/d(m_c q_ic) = scale sum_{b,h,i,j} dS_ij q_ic k_jc
//   m_v:   sum_{b,n,h} v_nc dL/d(m_c v_nc)
//   m_mlp: sum_{b,n}  a_nj dL/d(m_j a_nj)               (a = the GELU output)
// (sums over batch, tokens and heads; maskColumns computes them as column sums
// of x * dy). A kept channel gets this in both formulations. A PRUNED channel
// needs its own activation and the gradient reaching it, which only 'dense'
// computes (the channel runs and is then multiplied by 0): there it gets its
// true gradient and can revive by it. This is why the mask multiplies q and
// not k as well: with m_c on both, d(m_c^2)/dm_c = 0 at m_c = 0 would cut it.
// In 'gather' a pruned channel is never computed and its score gets no
// gradient that step (it can still come back when kept scores sink below
// it). `denseEvery` chooses per training step: 1 (default) always exact.
// Gates (*option*, ViT-Slim) need no estimator: u = g is the parameter.
//
// k per mask (allocation). 'learned' (default): a mask keeps its positive
// scores (at least minKeep), i.e. the top-k with k its own current keep
// ratio, and the budget below moves k; blocks and branches end at different
// widths. 'uniform': k = round(r(t) * width) for every mask, r(t) the ramped
// keep ratio; only which channels is learned, the MACs follow r(t) exactly.
// The keep ratio r ramps linearly from 1 to keepRatio over rampFraction of
// the search; the MAC target is the MACs at uniform ratio r(t).
//
// Budget: analytic MACs (src/cait/macs.ts, the ATME schedule's token counts),
// linear in the per-block counts D_qk, D_v, M, so dMACs/dcount is a constant
// per mask. The count of a top-k mask is sum_c m_c; its straight-through
// derivative is dcount/ds_c = 1 (the same identity estimator as above), so
// the budget pushes every score of a mask down by its channels' marginal MAC
// cost and the least useful channels fall out first. Gates use the soft count
// sum_c min(1, |g_c|). Loss: lambda * max(0, MACs/target - 1)^2, the target
// ramping from the unpruned MACs to the final one over the search.
import { Tensor, keep as untrack } from '../tensor.js';
import { isGradEnabled, noGrad, record } from '../autograd.js';
import * as ops from '../ops/index.js';
import { gatherCols, gatherRows, indexTensor } from '../ops/gather.js';
import type { Block, BlockWidths } from '../nn/layers.js';
import type { VisionTransformer } from '../nn/vit.js';
import { blockMacs, countMacs } from './macs.js';
import type { MergeStep } from './atme.js';

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
 * cols[j] of sum over rows of x * dy: the straight-through dL/dm (see top).
 */
function maskColumns(x: Tensor, mult: Float32Array | null, targets: ScoreTarget[]): Tensor {
  const W = x.shape[x.shape.length - 1], R = x.size / W, be = x.backend;
  const live = targets.filter((t) => t.score.requiresGrad && isGradEnabled());
  if (!mult && !live.length) return x;
  const y = new Tensor(x.shape, be);
  const m = mult ? Tensor.from(mult, [W], be) : null;
  if (m) be.run('mul', x.ptr, m.ptr, y.ptr, x.size, W);
  else be.run('copy2d', x.ptr, x.size, y.ptr, x.size, 1, x.size);
  const scores = [...new Set(live.map((t) => t.score))];
  return record(y, [x, ...scores], (dy) => {
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      if (m) { dx = new Tensor(x.shape, be); be.run('mul', dy.ptr, m.ptr, dx.ptr, x.size, W); } else dx = dy;
    }
    if (!scores.length) return [dx];
    const t = new Tensor(x.shape, be), cs = new Tensor([W], be);
    be.run('mul', x.ptr, dy.ptr, t.ptr, x.size, x.size);
    be.run('col_sum', t.ptr, cs.ptr, R, W);
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

const range = (n: number, off = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => off + i);

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
  be.run('gather_cols', x.ptr, W, x.size / W, it.ptr, cols.length, y.ptr);
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

// ---------------------------------------------------------------- options

export interface CdcpOptions {
  /** Final target keep ratio r: the MAC target is the MACs with every mask at round(r * width) channels. */
  keepRatio: number;
  /** Absolute final MAC target, overriding keepRatio's. */
  targetMacs?: number;
  /** *option* 'topk': hard top-k masks, straight-through; 'gates': ViT-Slim continuous gates, L1 penalty, one global threshold. */
  masks: 'topk' | 'gates';
  /** *option*: one mask for Q, K and V (parameter `cdcp.blocks.i.qkv`). */
  sharedQkv: boolean;
  /**
   * Top-k's k per mask. 'learned': k = the mask's own number of positive
   * scores (its current keep ratio), steered by the budget loss, so blocks
   * and branches get different widths. 'uniform': k = round(r(t) * width) for
   * every mask with the ramped keep ratio r(t); the widths are then fixed by
   * the schedule and the budget term is left out (it could not change them).
   */
  allocation: 'learned' | 'uniform';
  /** Training steps run the 'dense' (exact straight-through) formulation every n-th step, 'gather' otherwise; 0 = never. */
  denseEvery: number;
  /** Budget loss weight lambda. */
  lambda: number;
  /** Gates: L1 weight on sum |g|. */
  l1: number;
  /** Initial top-k score scale (positive: all kept; under the trainer's AdamW a score moves about lr per step). */
  scoreInit: number;
  /**
   * Top-k scores start spread evenly over (0, 2 scoreInit) in the order of a
   * weight importance ('weights', see weightImportance), or all at scoreInit
   * ('constant'). AdamW moves every score of a mask by about lr per step under
   * the budget's common push, so the spread decides which channels leave
   * first, and an even one lets them leave one by one over about
   * 2 scoreInit / lr steps instead of all on the same step.
   */
  init: 'weights' | 'constant';
  /** Initial gate. */
  gateInit: number;
  /** Channels every mask keeps at least. */
  minKeep: number;
  /** Fraction of the search steps over which the target ramps from 1 to its final value. */
  rampFraction: number;
}

export const CDCP_DEFAULTS: Readonly<CdcpOptions> = {
  keepRatio: 0.5, masks: 'topk', sharedQkv: false, allocation: 'learned', denseEvery: 1,
  lambda: 2, l1: 1e-4, scoreInit: 0.05, init: 'weights', gateInit: 1, minKeep: 1, rampFraction: 0.75,
};

/** Metadata key of the switches in a saved search model. */
export const CDCP_METADATA_KEY = 'cdcp';

export interface BlockScores { qk: Tensor; v: Tensor; mlp: Tensor }

// ---------------------------------------------------------------- scalar losses on the host

function scalarLoss(value: number, inputs: Tensor[], grads: Float32Array[]): Tensor {
  const be = inputs[0].backend, out = Tensor.from([value], [1], be);
  return record(out, inputs, (g) => {
    const s = g.item();
    return grads.map((d, i) => Tensor.from(d.map((v) => v * s), inputs[i].shape, be));
  });
}

// ---------------------------------------------------------------- the CDCP state

/**
 * A data-free channel importance from the weights a channel connects, summed
 * over heads: qk c: |W_q row| |W_k row|; v c: |W_v row| |W_proj column|;
 * MLP j: |fc1 row j| |fc2 column j| (row/column L2 norms). With sharedQkv the
 * qk and v terms add up.
 */
export function weightImportance(b: Block, sharedQkv = false): { qk: Float64Array; v: Float64Array; mlp: Float64Array } {
  const a = b.attn, H = a.numHeads, Dq = a.dqk, Dv = a.dv, C = a.dim;
  const Wqkv = a.qkv.weight.toArray(), Wp = a.proj.weight.toArray(), P = H * Dv;
  const rowNorm = (w: Float32Array, r: number, n: number) => { let s = 0; for (let j = 0; j < n; j++) s += w[r * n + j] ** 2; return Math.sqrt(s); };
  const colNorm = (w: Float32Array, c: number, rows: number, ld: number) => { let s = 0; for (let r = 0; r < rows; r++) s += w[r * ld + c] ** 2; return Math.sqrt(s); };
  const qk = new Float64Array(Dq), v = new Float64Array(Dv);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < Dq; c++) qk[c] += rowNorm(Wqkv, h * Dq + c, C) * rowNorm(Wqkv, H * Dq + h * Dq + c, C);
    for (let c = 0; c < Dv; c++) v[c] += rowNorm(Wqkv, 2 * H * Dq + h * Dv + c, C) * colNorm(Wp, h * Dv + c, C, P);
  }
  const W1 = b.mlp.fc1.weight.toArray(), W2 = b.mlp.fc2.weight.toArray(), M = b.mlp.fc1.outFeatures;
  const mlp = Float64Array.from({ length: M }, (_, j) => rowNorm(W1, j, C) * colNorm(W2, j, C, M));
  if (sharedQkv) for (let c = 0; c < Dq; c++) qk[c] += v[c];
  return { qk, v, mlp };
}

/** MACs as constant + sum over masks of coef * count (they are linear in the counts). */
interface MacModel { base: number; qk: number[]; v: number[]; mlp: number[] }

/**
 * Scores (parameters), the current masks, the ramped target and the budget
 * of one ViT under one ATME schedule.
 */
export class Cdcp {
  readonly options: Readonly<CdcpOptions>;
  readonly scores: BlockScores[];
  readonly widths: BlockWidths[];
  private readonly mac: MacModel;
  /** Training progress, set by the wrapper's hooks (optimizer steps done, of total). */
  step = 0;
  total = 0;

  constructor(readonly vit: VisionTransformer, o: Partial<CdcpOptions> = {}, readonly schedule: string | readonly MergeStep[] = '') {
    const opt = { ...CDCP_DEFAULTS, ...o };
    if (!(opt.keepRatio > 0 && opt.keepRatio <= 1)) throw new Error(`CDCP keepRatio ${opt.keepRatio}: expected (0, 1]`);
    if (opt.masks !== 'topk' && opt.masks !== 'gates') throw new Error(`CDCP masks '${opt.masks}': expected topk or gates`);
    if (opt.allocation !== 'learned' && opt.allocation !== 'uniform') throw new Error(`CDCP allocation '${opt.allocation}': expected learned or uniform`);
    this.options = opt;
    this.widths = vit.blocks.map((b) => ({ qk: b.attn.dqk, v: b.attn.dv, mlp: b.mlp.fc1.outFeatures }));
    if (opt.sharedQkv) for (const [i, w] of this.widths.entries()) if (w.qk !== w.v) throw new Error(`CDCP sharedQkv: block ${i} has D_qk ${w.qk} != D_v ${w.v}`);
    const param = (name: string, imp: Float64Array) => {
      // 'weights': scores spread evenly over (0, 2 scoreInit) in the order of importance (mean scoreInit)
      const rank = new Float64Array(imp.length);
      Array.from(imp.keys()).sort((a, b) => imp[a] - imp[b] || a - b).forEach((c, r) => { rank[c] = r; });
      const v = opt.masks === 'gates' ? new Float32Array(imp.length).fill(opt.gateInit)
        : Float32Array.from(rank, (r) => opt.scoreInit * (opt.init === 'weights' ? (2 * r + 1) / imp.length : 1));
      const t = untrack(Tensor.from(v, [v.length], vit.cls_token.backend));
      t.requiresGrad = true;
      t.name = name;
      return t;
    };
    this.scores = vit.blocks.map((b, i) => {
      const imp = weightImportance(b, opt.sharedQkv);
      const qk = param(`cdcp.blocks.${i}.${opt.sharedQkv ? 'qkv' : 'qk'}`, imp.qk);
      return { qk, v: opt.sharedQkv ? qk : param(`cdcp.blocks.${i}.v`, imp.v), mlp: param(`cdcp.blocks.${i}.mlp`, imp.mlp) };
    });
    // linear MAC model from macs.ts (one formula everywhere): base at zero widths, slopes per unit width
    const rep = countMacs(vit.cfg, schedule), C = vit.cfg.embedDim, H = vit.cfg.numHeads;
    const bm = (i: number, w: BlockWidths) => blockMacs(rep.blocks[i].attnTokens, rep.blocks[i].mlpTokens, C, H, w).total;
    const zero = { qk: 0, v: 0, mlp: 0 };
    this.mac = {
      base: rep.patchEmbed + rep.head + rep.blocks.reduce((s, _, i) => s + bm(i, zero), 0),
      qk: rep.blocks.map((_, i) => bm(i, { ...zero, qk: 1 }) - bm(i, zero)),
      v: rep.blocks.map((_, i) => bm(i, { ...zero, v: 1 }) - bm(i, zero)),
      mlp: rep.blocks.map((_, i) => bm(i, { ...zero, mlp: 1 }) - bm(i, zero)),
    };
  }

  namedParameters(): Array<[string, Tensor]> {
    return this.scores.flatMap((s) => (s.v === s.qk ? [s.qk, s.mlp] : [s.qk, s.v, s.mlp]).map((t) => [t.name!, t] as [string, Tensor]));
  }

  dispose(): void { for (const [, t] of this.namedParameters()) t.dispose(); }

  setProgress(step: number, total: number): void { this.step = step; this.total = total; }

  /** Ramp position in [0, 1]: 0 at the start of the search, 1 from rampFraction of it on. */
  ramp(): number {
    const span = this.options.rampFraction * this.total;
    return span > 0 ? Math.min(1, this.step / span) : this.total > 0 ? 1 : 0;
  }

  /** The current target keep ratio r(t), from 1 to keepRatio. */
  keepRatioNow(): number { return 1 - (1 - this.options.keepRatio) * this.ramp(); }

  /** MACs of a masked model (counts may be fractional: gates' soft counts). */
  macsOf(widths: readonly BlockWidths[]): number {
    let s = this.mac.base;
    widths.forEach((w, i) => { s += this.mac.qk[i] * w.qk + this.mac.v[i] * w.v + this.mac.mlp[i] * w.mlp; });
    return s;
  }

  /** Widths with every mask at ratio r. */
  uniformWidths(r: number): BlockWidths[] {
    const k = (w: number) => Math.min(w, Math.max(this.options.minKeep, Math.round(r * w)));
    return this.widths.map((w) => (this.options.sharedQkv ? { qk: k(w.qk), v: k(w.qk), mlp: k(w.mlp) } : { qk: k(w.qk), v: k(w.v), mlp: k(w.mlp) }));
  }

  fullMacs(): number { return this.macsOf(this.widths); }
  finalTargetMacs(): number { return this.options.targetMacs ?? this.macsOf(this.uniformWidths(this.options.keepRatio)); }
  /** The budget's target now: from the unpruned MACs to the final target along the ramp. */
  targetMacs(): number { const f = this.fullMacs(); return f - (f - this.finalTargetMacs()) * this.ramp(); }

  /**
   * The masks for this step, from the current scores (recomputed every call,
   * so a pruned channel comes back as soon as its score ranks again).
   * `train`: gradients reach the scores; gates are soft (all channels).
   * Otherwise gates are cut at one global threshold that meets the target.
   */
  masks(train = false, r = this.keepRatioNow()): BlockMasks[] {
    const o = this.options;
    if (o.masks === 'gates') return train ? this.softGates() : this.thresholdGates(this.targetMacs());
    return this.scores.map((s) => {
      const mk = (t: Tensor): ChannelMask => {
        const v = t.toArray();
        const want = o.allocation === 'uniform' ? Math.round(r * v.length) : v.reduce((n, x) => n + (x > 0 ? 1 : 0), 0);
        return channelMask(v.length, topk(v, Math.min(v.length, Math.max(o.minKeep, want))), train ? t : null);
      };
      const qk = mk(s.qk);
      return { qk, v: s.v === s.qk ? qk : mk(s.v), mlp: mk(s.mlp) };
    });
  }

  /**
   * The masks to freeze at extraction, within the final target whatever the
   * search reached: uniform at keepRatio; gates cut at the final target;
   * learned: the current masks, then (if still over, e.g. after a short
   * search) the lowest-scoring kept channel of any mask dropped, one at a
   * time, until the MACs fit, which is where further search would go next.
   */
  finalMasks(): BlockMasks[] {
    const o = this.options, T = this.finalTargetMacs();
    if (o.masks === 'gates') return this.thresholdGates(T);
    if (o.allocation === 'uniform') return this.masks(false, o.keepRatio);
    const masks = this.masks(false);
    type Kind = 'qk' | 'v' | 'mlp';
    const kinds: Kind[] = o.sharedQkv ? ['qk', 'mlp'] : ['qk', 'v', 'mlp'];
    const vals = this.scores.map((s) => ({ qk: s.qk.toArray(), v: s.v.toArray(), mlp: s.mlp.toArray() }));
    while (this.macs(masks) > T) {
      let best: { i: number; k: Kind; c: number; s: number } | null = null;
      masks.forEach((m, i) => {
        for (const k of kinds) {
          if (m[k].keep.length <= o.minKeep) continue;
          for (const c of m[k].keep) if (!best || vals[i][k][c] < best.s) best = { i, k, c, s: vals[i][k][c] };
        }
      });
      if (!best) break; // every mask at minKeep
      const { i, k, c } = best as { i: number; k: Kind; c: number };
      const cm = channelMask(masks[i][k].width, Array.from(masks[i][k].keep).filter((x) => x !== c));
      masks[i] = o.sharedQkv && k === 'qk' ? { ...masks[i], qk: cm, v: cm } : { ...masks[i], [k]: cm };
    }
    return masks;
  }

  private softGates(): BlockMasks[] {
    return this.scores.map((s) => {
      const mk = (t: Tensor) => { const g = t.toArray(); return channelMask(g.length, range(g.length), t, g); };
      const qk = mk(s.qk);
      return { qk, v: s.v === s.qk ? qk : mk(s.v), mlp: mk(s.mlp) };
    });
  }

  /**
   * ViT-Slim's cut: rank every gate of every mask by |g|, keep each mask's
   * minKeep largest, then add channels in rank order while the MACs stay
   * within `target`; the first that does not fit sets the one global threshold.
   */
  thresholdGates(target: number): BlockMasks[] {
    const o = this.options, gates = this.scores.map((s) => ({ qk: s.qk.toArray(), v: s.v.toArray(), mlp: s.mlp.toArray() }));
    type Kind = 'qk' | 'v' | 'mlp';
    const kinds: Kind[] = o.sharedQkv ? ['qk', 'mlp'] : ['qk', 'v', 'mlp'];
    const kept = gates.map((g) => ({ qk: new Set<number>(), v: new Set<number>(), mlp: new Set<number>() }));
    const cost = (i: number, k: Kind) => (o.sharedQkv && k === 'qk' ? this.mac.qk[i] + this.mac.v[i] : this.mac[k][i]);
    let macs = this.mac.base;
    const all: Array<{ i: number; k: Kind; c: number; a: number }> = [];
    gates.forEach((g, i) => {
      for (const k of kinds) {
        for (const c of topk(g[k].map(Math.abs), Math.min(o.minKeep, g[k].length))) { kept[i][k].add(c); macs += cost(i, k); }
        g[k].forEach((x, c) => all.push({ i, k, c, a: Math.abs(x) }));
      }
    });
    all.sort((p, q) => q.a - p.a);
    for (const e of all) {
      if (kept[e.i][e.k].has(e.c)) continue;
      if (macs + cost(e.i, e.k) > target) break;
      kept[e.i][e.k].add(e.c);
      macs += cost(e.i, e.k);
    }
    return gates.map((g, i) => {
      const mk = (k: Kind) => { const keep = [...kept[i][k]].sort((a, b) => a - b); return channelMask(g[k].length, keep, null, keep.map((c) => g[k][c])); };
      const qk = mk('qk');
      return { qk, v: o.sharedQkv ? qk : mk('v'), mlp: mk('mlp') };
    });
  }

  /** Which formulation a step runs: exact 'dense' on every denseEvery-th training step (and for soft gates), else 'gather'. */
  computeFor(train: boolean): MaskedCompute {
    if (!train) return 'gather';
    if (this.options.masks === 'gates') return 'dense';
    const n = this.options.denseEvery;
    return n > 0 && this.step % n === 0 ? 'dense' : 'gather';
  }

  /** MACs of the model under `masks` (soft gates count sum min(1, |g|)). */
  macs(masks: readonly BlockMasks[]): number { return this.macsOf(masks.map((m) => this.counts(m))); }

  private counts(m: BlockMasks): BlockWidths {
    // soft gates are the training masks (they carry their score); cut gates count their kept channels
    const soft = (c: ChannelMask) => (c.score && this.options.masks === 'gates'
      ? c.value.reduce((s, g) => s + Math.min(1, Math.abs(g)), 0) : c.keep.length);
    return { qk: soft(m.qk), v: soft(m.v), mlp: soft(m.mlp) };
  }

  /**
   * lambda * max(0, MACs/target - 1)^2 for these masks, differentiable in the
   * scores through the straight-through counts (see top); null where it does
   * not apply (uniform allocation, lambda 0, or no scores in the masks).
   */
  budgetLoss(masks: readonly BlockMasks[]): Tensor | null {
    const o = this.options;
    if (o.lambda <= 0 || (o.masks === 'topk' && o.allocation === 'uniform')) return null;
    const T = this.targetMacs(), over = Math.max(0, this.macs(masks) / T - 1);
    const inputs: Tensor[] = [], grads: Float32Array[] = [];
    const dScale = (2 * o.lambda * over) / T;
    masks.forEach((m, i) => {
      const parts: Array<[ChannelMask, number]> = m.qk === m.v
        ? [[m.qk, this.mac.qk[i] + this.mac.v[i]], [m.mlp, this.mac.mlp[i]]]
        : [[m.qk, this.mac.qk[i]], [m.v, this.mac.v[i]], [m.mlp, this.mac.mlp[i]]];
      for (const [c, coef] of parts) {
        if (!c.score) continue;
        const g = new Float32Array(c.width);
        const gates = o.masks === 'gates';
        for (let j = 0; j < c.width; j++) {
          // d count / d s_j: 1 (straight-through, top-k); sign(g) where |g| < 1 (soft count, gates)
          const d = gates ? (Math.abs(c.value[j]) < 1 ? Math.sign(c.value[j]) : 0) : 1;
          g[j] = dScale * coef * d;
        }
        inputs.push(c.score);
        grads.push(g);
      }
    });
    if (!inputs.length) return null;
    return scalarLoss(o.lambda * over * over, inputs, grads);
  }

  /** Gates: l1 * sum |g| (ViT-Slim's sparsity term); null for top-k masks or l1 0. */
  l1Loss(): Tensor | null {
    if (this.options.masks !== 'gates' || this.options.l1 <= 0) return null;
    const ps = this.namedParameters().map(([, t]) => t);
    let s = 0;
    const grads = ps.map((t) => { const g = t.toArray(); for (const x of g) s += Math.abs(x); return g.map((x) => this.options.l1 * Math.sign(x)); });
    return scalarLoss(this.options.l1 * s, ps, grads);
  }
}
