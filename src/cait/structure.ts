// Choosing a compressed structure without data (`cait compress --structure-only`):
// an ATME schedule plus CDCP widths whose analytic MACs meet a target, so the
// speed of the structure can be measured before any training.
//
// Analytic policy (pickStructure): take the most aggressive schedule
// (candidateSchedules) whose MACs stay at or above the target, then prune
// channels for the rest, in one of two styles:
//   uniform: the same keep ratio r for q/k, v and MLP in every block;
//   mlp:     the MLP hidden width only (heads keep all their channels).
// Widths are rounded to multiples of 4 (q/k, v) and 8 (MLP) to match the
// GEMM's f32x4 columns and 8-wide panels.
//
// Equal MACs are not equal time: GELU (about a quarter of fc1's time) and the
// softmax are not in the MAC count, blocks after a second merge step run
// 50-row GEMMs that are a few percent less efficient, and a 60-wide head
// leaves the attention GEMMs a partial panel. So structureCandidates lists a
// few structures that meet the target, and `cait compress --structure-only`
// times them and keeps the fastest (src/cait/compress.ts searchStructure).
import type { VitConfig } from '../nn/presets.js';
import type { BlockWidths } from '../nn/layers.js';
import { blockWidths } from '../nn/presets.js';
import { countMacs } from './macs.js';
import { formatSchedule, toSteps } from './atme.js';
import { channelMask, type BlockMasks } from './cdcp.js';
import type { VisionTransformer } from '../nn/vit.js';

/**
 * Every one- and two-step schedule (h@i, and h@i,v@j with i < j < depth), from
 * mild to aggressive by MACs. Merging cuts tokens from every later op
 * (attention quadratically, and the softmax, GELU, norms and residuals that
 * pruning leaves alone), so per MAC it saves more time than pruning: the
 * policy below takes as much of the target as merging can give.
 */
export function candidateSchedules(cfg: VitConfig): string[] {
  const all = [''];
  for (let i = 1; i < cfg.depth; i++) {
    all.push(`h@${i}`);
    for (let j = i + 1; j < cfg.depth; j++) all.push(`h@${i},v@${j}`);
  }
  const macs = new Map(all.map((s) => [s, countMacs(cfg, s).total]));
  return all.sort((a, b) => macs.get(b)! - macs.get(a)!).map((s) => formatSchedule(toSteps(s, cfg)));
}

const roundTo = (v: number, m: number, max: number) => Math.min(max, Math.max(m, Math.round(v / m) * m));

export function uniformWidths(cfg: VitConfig, r: number): BlockWidths[] {
  return Array.from({ length: cfg.depth }, (_, i) => {
    const w = blockWidths(cfg, i);
    return { qk: roundTo(r * w.qk, 4, w.qk), v: roundTo(r * w.v, 4, w.v), mlp: roundTo(r * w.mlp, 8, w.mlp) };
  });
}

/** MLP hidden widths scaled by r (rounded to 8); attention widths untouched. */
export function mlpWidths(cfg: VitConfig, r: number): BlockWidths[] {
  return Array.from({ length: cfg.depth }, (_, i) => {
    const w = blockWidths(cfg, i);
    return { ...w, mlp: roundTo(r * w.mlp, 8, w.mlp) };
  });
}

export type PruneStyle = 'uniform' | 'mlp';
export const PRUNE_STYLES: readonly PruneStyle[] = ['uniform', 'mlp'];

/** `keep` is the ratio the style applied (all channels for uniform, the MLP's for mlp) before the MLPs take back the rounding slack. */
export interface Structure { merge: string; prune: PruneStyle; widths: BlockWidths[]; macs: number; denseMacs: number; ratio: number; keep: number }

/** The schedule `merge` with `prune`-style widths, pruned as little as reaches denseMacs / ratio. */
export function fitStructure(cfg: VitConfig, ratio: number, merge: string, prune: PruneStyle = 'uniform'): Structure {
  if (!(ratio >= 1)) throw new Error(`MAC reduction ratio must be >= 1, got ${ratio}`);
  if (!PRUNE_STYLES.includes(prune)) throw new Error(`pruning style must be ${PRUNE_STYLES.join(' or ')}, got '${prune}'`);
  const denseMacs = countMacs(cfg, '').total, target = denseMacs / ratio;
  const schedule = formatSchedule(toSteps(merge, cfg));
  const widthsAt = (r: number) => (prune === 'mlp' ? mlpWidths(cfg, r) : uniformWidths(cfg, r));
  const macsAt = (r: number) => countMacs({ ...cfg, widths: widthsAt(r) }, schedule).total;
  let keep = 1;
  if (macsAt(1) > target) {
    let lo = 0, hi = 1; // largest r with macs <= target
    for (let it = 0; it < 40; it++) { const mid = (lo + hi) / 2; if (macsAt(mid) <= target) lo = mid; else hi = mid; }
    keep = lo;
  }
  let widths = widthsAt(keep);
  // Rounding head widths to 4 can overshoot the target by several percent
  // (DeiT-Small: 60 of 64 channels); give the slack back to the MLPs, 8
  // channels per block at a time, so every candidate lands near the target.
  for (;;) {
    const wider = widths.map((w, i) => ({ ...w, mlp: Math.min(blockWidths(cfg, i).mlp, w.mlp + 8) }));
    if (wider.every((w, i) => w.mlp === widths[i].mlp) || countMacs({ ...cfg, widths: wider }, schedule).total > target) break;
    widths = wider;
  }
  const macs = countMacs({ ...cfg, widths }, schedule).total;
  if (macs > target * (1 + 1e-9)) throw new Error(`${cfg.name}: '${schedule || 'no merging'}' with ${prune} pruning cannot reach ${ratio}x fewer MACs`);
  return { merge: schedule, prune, widths, macs, denseMacs, ratio: denseMacs / macs, keep };
}

/**
 * A structure with at most denseMacs / ratio MACs. `merge` fixes the schedule
 * (otherwise the most aggressive one that does not pass the target).
 */
export function pickStructure(cfg: VitConfig, ratio: number, merge?: string, prune: PruneStyle = 'uniform'): Structure {
  if (!(ratio >= 1)) throw new Error(`MAC reduction ratio must be >= 1, got ${ratio}`);
  const target = countMacs(cfg, '').total / ratio;
  let schedule = merge ?? '';
  if (merge === undefined) for (const s of candidateSchedules(cfg)) if (countMacs(cfg, s).total >= target) schedule = s;
  return fitStructure(cfg, ratio, schedule, prune);
}

/**
 * Structures worth timing for a target (each with at most denseMacs / ratio
 * MACs), from these schedules:
 *   the three most aggressive that do not pass the target, pruned in each style;
 *   the most aggressive single step h@i that does not pass it, in each style;
 *   any that passes it by at most `over` (1%) on its own, unpruned.
 * With `merge` given: that schedule, in each style.
 */
export function structureCandidates(cfg: VitConfig, ratio: number, merge?: string, over = 0.01): Structure[] {
  const target = countMacs(cfg, '').total / ratio;
  const scheds = merge !== undefined ? [merge] : candidateSchedules(cfg);
  const macs = (s: string) => countMacs(cfg, s).total;
  const under = scheds.filter((s) => macs(s) >= target), picked = new Set(under.slice(-3));
  const single = under.filter((s) => !s.includes(',')).pop();
  if (single !== undefined) picked.add(single);
  const out: Structure[] = [];
  for (const s of picked) for (const p of PRUNE_STYLES) out.push(fitStructure(cfg, ratio, s, p));
  if (merge === undefined) for (const s of scheds) if (macs(s) < target && macs(s) >= target / (1 + over)) out.push(fitStructure(cfg, ratio, s, 'uniform'));
  // the same widths twice (keep 1, or rounding) is one candidate
  const key = (s: Structure) => `${s.merge}|${JSON.stringify(s.widths)}`;
  return out.filter((s, i) => out.findIndex((t) => key(t) === key(s)) === i);
}

/**
 * CDCP masks for given widths chosen from a trained model's weights, with no
 * data (`cait compress --structure-only --model FILE`): each channel's
 * importance is the product of the L2 norms of the weights that write it and
 * the weights that read it, summed over heads for attention channels (a head
 * dimension is kept or pruned in every head alike):
 *   q/k channel c: sum_h |W_q[h, c]| * |W_k[h, c]|  (its share of every q.k)
 *   v channel c:   sum_h |W_v[h, c]| * |W_proj[:, h, c]|
 *   MLP channel j: |W_fc1[j, :]| * |W_fc2[:, j]|
 * The top `width` channels are kept (multiplier 1), the rest pruned; the
 * compact model (extractCompact) then runs the original weights on them.
 */
export function importanceMasks(vit: VisionTransformer, widths: readonly BlockWidths[]): BlockMasks[] {
  if (widths.length !== vit.blocks.length) throw new Error(`importanceMasks: ${widths.length} widths for ${vit.blocks.length} blocks`);
  const rowNorms = (w: Float32Array, rows: number, cols: number) => Float64Array.from({ length: rows }, (_, r) => {
    let s = 0; for (let c = 0; c < cols; c++) s += w[r * cols + c] ** 2; return Math.sqrt(s);
  });
  const colNorms = (w: Float32Array, rows: number, cols: number) => {
    const s = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) s[c] += w[r * cols + c] ** 2;
    return s.map(Math.sqrt);
  };
  const top = (score: Float64Array, k: number): number[] => {
    if (!(Number.isInteger(k) && k >= 1 && k <= score.length)) throw new Error(`importanceMasks: width ${k} outside 1..${score.length}`);
    return Array.from(score.keys()).sort((a, b) => score[b] - score[a] || a - b).slice(0, k).sort((a, b) => a - b);
  };
  return vit.blocks.map((b, i) => {
    const a = b.attn, H = a.numHeads, Dq = a.dqk, Dv = a.dv, C = a.dim, w = widths[i];
    const qkv = rowNorms(a.qkv.weight.toArray(), H * (2 * Dq + Dv), C);
    const proj = colNorms(a.proj.weight.toArray(), C, H * Dv);
    const sqk = new Float64Array(Dq), sv = new Float64Array(Dv);
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < Dq; c++) sqk[c] += qkv[h * Dq + c] * qkv[H * Dq + h * Dq + c];
      for (let c = 0; c < Dv; c++) sv[c] += qkv[2 * H * Dq + h * Dv + c] * proj[h * Dv + c];
    }
    const M = b.mlp.fc1.outFeatures;
    const f1 = rowNorms(b.mlp.fc1.weight.toArray(), M, C), f2 = colNorms(b.mlp.fc2.weight.toArray(), C, M);
    const smlp = f1.map((v, j) => v * f2[j]);
    return { qk: channelMask(Dq, top(sqk, w.qk)), v: channelMask(Dv, top(sv, w.v)), mlp: channelMask(M, top(smlp, w.mlp)) };
  });
}
