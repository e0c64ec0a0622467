// Choosing a compressed structure without data (`cait compress --structure-only`):
// an ATME schedule plus uniform CDCP widths whose analytic MACs meet a target,
// so the speed of the structure can be measured before any training.
//
// Policy: take the most aggressive schedule (candidateSchedules) whose MACs
// stay at or above the target, then prune channels uniformly (the same keep ratio r
// for q/k, v and MLP in every block) for the rest. Widths are rounded to
// multiples of 4 (q/k, v) and 8 (MLP) to match the GEMM's f32x4 columns and
// 8-wide panels, so compact GEMMs need no scalar tails.
import type { VitConfig } from '../nn/presets.js';
import type { BlockWidths } from '../nn/layers.js';
import { blockWidths } from '../nn/presets.js';
import { countMacs } from './macs.js';
import { formatSchedule, toSteps } from './atme.js';

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
  return all.sort((a, b) => macs.get(b)! - macs.get(a)!).map((s) => formatSchedule(toSteps(s, cfg.depth)));
}

const roundTo = (v: number, m: number, max: number) => Math.min(max, Math.max(m, Math.round(v / m) * m));

export function uniformWidths(cfg: VitConfig, r: number): BlockWidths[] {
  return Array.from({ length: cfg.depth }, (_, i) => {
    const w = blockWidths(cfg, i);
    return { qk: roundTo(r * w.qk, 4, w.qk), v: roundTo(r * w.v, 4, w.v), mlp: roundTo(r * w.mlp, 8, w.mlp) };
  });
}

export interface Structure { merge: string; widths: BlockWidths[]; macs: number; denseMacs: number; ratio: number; keep: number }

/**
 * A structure with at most denseMacs / ratio MACs. `merge` fixes the schedule
 * (otherwise one is chosen as above).
 */
export function pickStructure(cfg: VitConfig, ratio: number, merge?: string): Structure {
  if (!(ratio >= 1)) throw new Error(`MAC reduction ratio must be >= 1, got ${ratio}`);
  const denseMacs = countMacs(cfg, '').total, target = denseMacs / ratio;
  let schedule = merge !== undefined ? formatSchedule(toSteps(merge, cfg.depth)) : '';
  if (merge === undefined) for (const s of candidateSchedules(cfg)) if (countMacs(cfg, s).total >= target) schedule = s;
  const macsAt = (r: number) => countMacs({ ...cfg, widths: uniformWidths(cfg, r) }, schedule).total;
  let keep = 1;
  if (macsAt(1) > target) {
    let lo = 0, hi = 1; // largest r with macs <= target
    for (let it = 0; it < 40; it++) { const mid = (lo + hi) / 2; if (macsAt(mid) <= target) lo = mid; else hi = mid; }
    keep = lo;
  }
  const widths = uniformWidths(cfg, keep), macs = macsAt(keep);
  return { merge: schedule, widths, macs, denseMacs, ratio: denseMacs / macs, keep };
}
