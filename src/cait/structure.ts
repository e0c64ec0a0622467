// Choosing a compressed structure without data (`cait compress --structure-only`):
// an ATME schedule plus uniform CDCP widths whose analytic MACs meet a target,
// so the speed of the structure can be measured before any training.
//
// Policy: take the most aggressive schedule from a short list whose MACs stay
// at or above the target (merging removes tokens from every later op, the
// cheapest cut per MAC), then prune channels uniformly (the same keep ratio r
// for q/k, v and MLP in every block) for the rest. Widths are rounded to
// multiples of 4 (q/k, v) and 8 (MLP) to match the GEMM's f32x4 columns and
// 8-wide panels, so compact GEMMs need no scalar tails.
import type { VitConfig } from '../nn/presets.js';
import type { BlockWidths } from '../nn/layers.js';
import { blockWidths } from '../nn/presets.js';
import { countMacs } from './macs.js';
import { formatSchedule, toSteps } from './atme.js';

/** Schedules from mild to aggressive for a model of this depth (DeiT: h@6, h@3, h@3,v@9, h@3,v@6). */
export function candidateSchedules(depth: number): string[] {
  const q = Math.max(1, Math.round(depth / 4)), h = Math.round(depth / 2), t = Math.round((3 * depth) / 4);
  return ['', `h@${h}`, `h@${q}`, `h@${q},v@${t}`, `h@${q},v@${h}`].map((s) => formatSchedule(toSteps(s, depth)));
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
  if (merge === undefined) for (const s of candidateSchedules(cfg.depth)) if (countMacs(cfg, s).total >= target) schedule = s;
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
