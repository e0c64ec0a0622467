// CDCP, consistent dynamic channel pruning (docs/cait-method.md, "CDCP"):
// learnable channel masks, the masked attention and MLP branches a wrapper
// runs instead of the ViT's own (./masked.ts), and the MAC budget. The two
// mask kinds, hard top-k and ViT-Slim gates, are two MaskStrategy objects
// behind one interface (below). The ViT is never edited; src/cait/search.ts
// plugs this into the ATME wrapper, src/cait/extract.ts turns frozen masks
// into a new, smaller ViT.
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
// and W_v rows (and their biases) and W2's columns (scale stays the dense
// D^-0.5, as in the doc).
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
// gradient from the loss that step, only the budget's push down (below); it
// can still come back where k does not follow the scores' signs ('uniform'
// allocation, or a mask at minKeep) when a kept score sinks below it.
// `denseEvery` chooses per training step: 1 (default) always exact.
// Gates (*option*, ViT-Slim) need no estimator: u = g is the parameter.
//
// k per mask (allocation). 'learned' (default): a mask keeps its positive
// scores (at least minKeep), i.e. the top-k with k its own current keep
// ratio, and the budget below moves k; blocks and branches end at different
// widths. 'uniform': k = round(r(t) * width) for every mask, r(t) the ramped
// keep ratio; only which channels is learned, the MACs follow r(t) exactly
// (given a MAC target, keepRatio becomes the ratio that meets it).
// The keep ratio r ramps linearly from 1 to keepRatio over rampFraction of
// the search; the budget's target ramps linearly in MACs, from the unpruned
// count to the final one.
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
import { record } from '../autograd.js';
import type { Block, BlockWidths } from '../nn/layers.js';
import type { VisionTransformer } from '../nn/vit.js';
import { blockMacs, countMacs } from './macs.js';
import type { MergeStep } from './atme.js';
import { channelMask, range, topk, type BlockMasks, type ChannelMask, type MaskedCompute } from './masked.js';

export {
  channelMask, topk, widthsOf, maskedAttnResidual, maskedMlpResidual,
  type ChannelMask, type BlockMasks, type MaskedCompute,
} from './masked.js';

// ---------------------------------------------------------------- options

export interface CdcpOptions {
  /** Final target keep ratio r: the MAC target is the MACs with every mask at round(r * width) channels. */
  keepRatio: number;
  /** Absolute final MAC target, overriding keepRatio's ('uniform' allocation: the keep ratio that meets it, Cdcp.ratioFor). */
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

type Kind = 'qk' | 'v' | 'mlp';

/** A block's three masks from its scores; one mask object for qk and v when they share a score (sharedQkv). */
function perBlock(s: BlockScores, mk: (t: Tensor, k: Kind) => ChannelMask): BlockMasks {
  const qk = mk(s.qk, 'qk');
  return { qk, v: s.v === s.qk ? qk : mk(s.v, 'v'), mlp: mk(s.mlp, 'mlp') };
}

/** What differs between CDCP's two mask kinds (CdcpOptions.masks); a Cdcp holds one. */
export interface MaskStrategy {
  readonly kind: CdcpOptions['masks'];
  /** A mask's initial parameter values, from its channels' weight importance. */
  initial(imp: Float64Array, o: CdcpOptions): Float32Array;
  /** The masks of this step (train: gradients reach the parameters), at target keep ratio r. */
  masks(cd: Cdcp, train: boolean, r: number): BlockMasks[];
  /** The masks extraction freezes, within the final MAC target. */
  finalMasks(cd: Cdcp): BlockMasks[];
  /** The formulation a training step runs. */
  trainCompute(cd: Cdcp): MaskedCompute;
  /** A mask's channel count as the budget sees it, and its derivative by parameter j. */
  count(c: ChannelMask): number;
  countGrad(c: ChannelMask, j: number): number;
  /** Whether the budget term can change anything under these options. */
  budgeted(o: CdcpOptions): boolean;
  /** A sparsity term of its own (gates' L1), or null. */
  sparsity(cd: Cdcp): Tensor | null;
}

/**
 * Hard top-k masks, straight-through (see top): k per mask from the
 * allocation, the channels of the k largest scores kept with multiplier 1.
 */
export const TOPK: MaskStrategy = {
  kind: 'topk',
  initial(imp, o) {
    // 'weights': scores spread evenly over (0, 2 scoreInit) in the order of importance (mean scoreInit)
    const rank = new Float64Array(imp.length);
    Array.from(imp.keys()).sort((a, b) => imp[a] - imp[b] || a - b).forEach((c, r) => { rank[c] = r; });
    return Float32Array.from(rank, (r) => o.scoreInit * (o.init === 'weights' ? (2 * r + 1) / imp.length : 1));
  },
  masks(cd, train, r) {
    const o = cd.options;
    return cd.scores.map((s) => perBlock(s, (t) => {
      const v = t.toArray();
      const want = o.allocation === 'uniform' ? Math.round(r * v.length) : v.reduce((n, x) => n + (x > 0 ? 1 : 0), 0);
      return channelMask(v.length, topk(v, Math.min(v.length, Math.max(o.minKeep, want))), train ? t : null);
    }));
  },
  /**
   * Uniform: every mask at keepRatio. Learned: the current masks, then (if
   * still over, e.g. after a short search) the lowest-scoring kept channel of
   * any mask dropped, one at a time, until the MACs fit, which is where
   * further search would go next.
   */
  finalMasks(cd) {
    const o = cd.options, T = cd.finalTargetMacs();
    if (o.allocation === 'uniform') return TOPK.masks(cd, false, o.keepRatio);
    const masks = TOPK.masks(cd, false, cd.keepRatioNow());
    const kinds: Kind[] = o.sharedQkv ? ['qk', 'mlp'] : ['qk', 'v', 'mlp'];
    const vals = cd.scores.map((s) => ({ qk: s.qk.toArray(), v: s.v.toArray(), mlp: s.mlp.toArray() }));
    while (cd.macs(masks) > T) {
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
  },
  trainCompute(cd) {
    const n = cd.options.denseEvery;
    return n > 0 && cd.step % n === 0 ? 'dense' : 'gather';
  },
  count: (c) => c.keep.length,
  countGrad: () => 1,   // straight-through: d count / d s_j = 1
  budgeted: (o) => o.allocation !== 'uniform',
  sparsity: () => null,
};

/**
 * ViT-Slim's continuous gates: in training every channel runs times its gate
 * (soft, exact gradients, 'dense'); otherwise the gates are cut at one global
 * threshold that meets the MAC target; an L1 term pushes gates to 0.
 */
export const GATES: MaskStrategy & { finalMasksAt(cd: Cdcp, target: number): BlockMasks[] } = {
  kind: 'gates',
  initial: (imp, o) => new Float32Array(imp.length).fill(o.gateInit),
  masks(cd, train) {
    if (train) return cd.scores.map((s) => perBlock(s, (t) => { const g = t.toArray(); return channelMask(g.length, range(g.length), t, g); }));
    return GATES.finalMasksAt(cd, cd.targetMacs());
  },
  finalMasks: (cd) => GATES.finalMasksAt(cd, cd.finalTargetMacs()),
  /**
   * The cut: rank every gate of every mask by |g|, keep each mask's minKeep
   * largest, then add channels in rank order while the MACs stay within
   * `target`; the first that does not fit sets the one global threshold.
   */
  finalMasksAt(cd: Cdcp, target: number): BlockMasks[] {
    const o = cd.options, mac = cd.macModel, gates = cd.scores.map((s) => ({ qk: s.qk.toArray(), v: s.v.toArray(), mlp: s.mlp.toArray() }));
    const kinds: Kind[] = o.sharedQkv ? ['qk', 'mlp'] : ['qk', 'v', 'mlp'];
    const kept = gates.map(() => ({ qk: new Set<number>(), v: new Set<number>(), mlp: new Set<number>() }));
    const cost = (i: number, k: Kind) => (o.sharedQkv && k === 'qk' ? mac.qk[i] + mac.v[i] : mac[k][i]);
    let macs = mac.base;
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
  },
  trainCompute: () => 'dense',
  // soft gates are the training masks (they carry their parameter): sum min(1, |g|); cut gates count their kept channels
  count: (c) => (c.score ? c.value.reduce((s, g) => s + Math.min(1, Math.abs(g)), 0) : c.keep.length),
  countGrad: (c, j) => (Math.abs(c.value[j]) < 1 ? Math.sign(c.value[j]) : 0),
  budgeted: () => true,
  sparsity(cd) {
    const l1 = cd.options.l1;
    if (l1 <= 0) return null;
    const ps = cd.namedParameters().map(([, t]) => t);
    let s = 0;
    const grads = ps.map((t) => { const g = t.toArray(); for (const x of g) s += Math.abs(x); return g.map((x) => l1 * Math.sign(x)); });
    return scalarLoss(l1 * s, ps, grads);
  },
};

const STRATEGIES: Record<CdcpOptions['masks'], MaskStrategy> = { topk: TOPK, gates: GATES };

/**
 * Scores (parameters), the current masks, the ramped target and the budget
 * of one ViT under one ATME schedule; what depends on the mask kind is its
 * strategy's.
 */
export class Cdcp {
  readonly options: Readonly<CdcpOptions>;
  readonly strategy: MaskStrategy;
  readonly scores: BlockScores[];
  readonly widths: BlockWidths[];
  /** The linear MAC model (the strategies' cut and the budget read it). */
  readonly macModel: Readonly<MacModel>;
  /** Training progress, set by the wrapper's hooks (optimizer steps done, of total). */
  step = 0;
  total = 0;

  constructor(readonly vit: VisionTransformer, o: Partial<CdcpOptions> = {}, readonly schedule: string | readonly MergeStep[] = '') {
    const opt = { ...CDCP_DEFAULTS, ...o };
    if (!(opt.keepRatio > 0 && opt.keepRatio <= 1)) throw new Error(`CDCP keepRatio ${opt.keepRatio}: expected (0, 1]`);
    if (!Object.hasOwn(STRATEGIES, opt.masks)) throw new Error(`CDCP masks '${opt.masks}': expected topk or gates`);
    if (opt.allocation !== 'learned' && opt.allocation !== 'uniform') throw new Error(`CDCP allocation '${opt.allocation}': expected learned or uniform`);
    if (opt.targetMacs !== undefined && !(opt.targetMacs > 0)) throw new Error(`CDCP targetMacs ${opt.targetMacs}: expected a positive number of MACs`);
    this.options = opt;
    this.strategy = STRATEGIES[opt.masks];
    this.widths = vit.blocks.map((b) => ({ qk: b.attn.dqk, v: b.attn.dv, mlp: b.mlp.fc1.outFeatures }));
    if (opt.sharedQkv) for (const [i, w] of this.widths.entries()) if (w.qk !== w.v) throw new Error(`CDCP sharedQkv: block ${i} has D_qk ${w.qk} != D_v ${w.v}`);
    const param = (name: string, imp: Float64Array) => {
      const t = untrack(Tensor.from(this.strategy.initial(imp, opt), [imp.length], vit.cls_token.backend));
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
    this.macModel = {
      base: rep.patchEmbed + rep.head + rep.blocks.reduce((s, _, i) => s + bm(i, zero), 0),
      qk: rep.blocks.map((_, i) => bm(i, { ...zero, qk: 1 }) - bm(i, zero)),
      v: rep.blocks.map((_, i) => bm(i, { ...zero, v: 1 }) - bm(i, zero)),
      mlp: rep.blocks.map((_, i) => bm(i, { ...zero, mlp: 1 }) - bm(i, zero)),
    };
    // uniform allocation with a MAC target: the keep ratio whose uniform widths meet it (the
    // widths follow r(t) alone there, so a target that set no ratio was ignored: every target
    // ended at keepRatio's default 0.5, 3.31x fewer MACs for 1.2x and for 3x alike)
    if (opt.allocation === 'uniform' && opt.targetMacs !== undefined) this.options = { ...opt, keepRatio: this.ratioFor(opt.targetMacs) };
  }

  /**
   * The largest keep ratio r whose uniform widths (round(r * width), at least
   * minKeep) have at most `target` MACs, by bisection (the MACs grow with r);
   * the smallest ratio there is where even minKeep channels exceed it.
   */
  ratioFor(target: number): number {
    if (this.macsOf(this.uniformWidths(1)) <= target) return 1;
    let lo = 0, hi = 1;
    for (let it = 0; it < 40; it++) {
      const mid = (lo + hi) / 2;
      if (this.macsOf(this.uniformWidths(mid)) <= target) lo = mid; else hi = mid;
    }
    return Math.max(lo, 1e-6);
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
    const mac = this.macModel;
    let s = mac.base;
    widths.forEach((w, i) => { s += mac.qk[i] * w.qk + mac.v[i] * w.v + mac.mlp[i] * w.mlp; });
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
  masks(train = false, r = this.keepRatioNow()): BlockMasks[] { return this.strategy.masks(this, train, r); }

  /**
   * The masks to freeze at extraction, within the final target whatever the
   * search reached: uniform at keepRatio; gates cut at the final target;
   * learned: the current masks, trimmed lowest score first until they fit.
   */
  finalMasks(): BlockMasks[] { return this.strategy.finalMasks(this); }

  /** Which formulation a step runs: 'gather' in evaluation; in training the strategy's (top-k: 'dense' every denseEvery-th step; gates: 'dense'). */
  computeFor(train: boolean): MaskedCompute { return train ? this.strategy.trainCompute(this) : 'gather'; }

  /** MACs of the model under `masks` (soft gates count sum min(1, |g|)). */
  macs(masks: readonly BlockMasks[]): number {
    const n = (c: ChannelMask) => this.strategy.count(c);
    return this.macsOf(masks.map((m) => ({ qk: n(m.qk), v: n(m.v), mlp: n(m.mlp) })));
  }

  /**
   * lambda * max(0, MACs/target - 1)^2 for these masks, differentiable in the
   * scores through the strategy's counts (see top); null where it does not
   * apply (uniform allocation, lambda 0, or no scores in the masks).
   */
  budgetLoss(masks: readonly BlockMasks[]): Tensor | null {
    const o = this.options, mac = this.macModel, st = this.strategy;
    if (o.lambda <= 0 || !st.budgeted(o)) return null;
    const T = this.targetMacs(), over = Math.max(0, this.macs(masks) / T - 1);
    const inputs: Tensor[] = [], grads: Float32Array[] = [];
    const dScale = (2 * o.lambda * over) / T;
    masks.forEach((m, i) => {
      const parts: Array<[ChannelMask, number]> = m.qk === m.v
        ? [[m.qk, mac.qk[i] + mac.v[i]], [m.mlp, mac.mlp[i]]]
        : [[m.qk, mac.qk[i]], [m.v, mac.v[i]], [m.mlp, mac.mlp[i]]];
      for (const [c, coef] of parts) {
        if (!c.score) continue;
        const g = new Float32Array(c.width);
        for (let j = 0; j < c.width; j++) g[j] = dScale * coef * st.countGrad(c, j);
        inputs.push(c.score);
        grads.push(g);
      }
    });
    if (!inputs.length) return null;
    return scalarLoss(o.lambda * over * over, inputs, grads);
  }

  /** Gates: l1 * sum |g| (ViT-Slim's sparsity term); null for top-k masks or l1 0. */
  l1Loss(): Tensor | null { return this.strategy.sparsity(this); }
}
