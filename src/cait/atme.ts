// ATME, CAIT's asymmetric token merging (docs/cait-method.md, "ATME"),
// as pure functions in the manner of facebookresearch/ToMe's merge.py: a
// schedule says where to merge, `plan` chooses partners, `merge` and `unmerge`
// apply a plan. Nothing here knows about the ViT; src/cait/wrap.ts applies it
// to one by wrapping.
//
// Shapes: x [B, N, C] with N = prefix + h*w (class token, and a distillation
// token if any, first; patch tokens row-major on an h x w grid). A step halves
// one axis: 'h' pairs columns (h x w -> h x ceil(w/2)), 'v' pairs rows
// (ceil(h/2) x w). Even lines are destinations and keep their place, odd lines
// are sources and join the more similar adjacent destination (one candidate at
// a border, fixed pairing: always the previous one). sizes [B, N] counts the
// original tokens each token stands for (1 for the prefix, always).
//
// Kernels: atme_* in assembly/atme.ts; src/backend/reference/atme.ts is the spec.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import type { Backend } from '../backend/backend.js';
import { call } from '../backend/kernels.js';

// The schedule grammar lives with the model config (src/nn/schedule.ts: the
// config validator parses it too, and nn sits below cait); re-exported here.
import { parseSchedule, formatSchedule, scheduleMisfit, stepGrid, type Axis, type MergeStep, type Grid } from '../nn/schedule.js';
import type { VitConfig } from '../nn/presets.js';
export { parseSchedule, formatSchedule, stepGrid, type Axis, type MergeStep, type Grid };
/** Partner choice: cosine of head-averaged keys (the method), of the token features, or fixed 1x2 pooling. */
export type Similarity = 'keys' | 'features' | 'fixed';
export const SIMILARITIES: readonly Similarity[] = ['keys', 'features', 'fixed'];

/** The method's switches (each an *option* of the doc). */
export interface AtmeOptions {
  similarity: Similarity;
  /** Proportional attention: log(size) added to the attention logits of every key. */
  propAttn: boolean;
}
export const ATME_DEFAULTS: Readonly<AtmeOptions> = { similarity: 'keys', propAttn: true };

// ---------------------------------------------------------------- schedules

/**
 * Schedule as steps: a string (a saved config's) is parsed, steps (parsed
 * once at the edge, e.g. by the CLI) are only checked, not formatted and
 * parsed again. With the model's config, throws if a block is past its depth
 * or a step has nothing left to merge on its patch grid (the config
 * validator's rule, ../nn/schedule.ts scheduleMisfit: such a step was run
 * as a silent no-op and still reported).
 */
export function toSteps(schedule: string | readonly MergeStep[] | undefined, cfg?: Pick<VitConfig, 'depth' | 'imgSize' | 'patchSize'>): MergeStep[] {
  const steps = typeof schedule === 'string' || schedule === undefined ? parseSchedule(schedule ?? '') : checkSteps(schedule);
  if (cfg === undefined) return steps;
  const { depth } = cfg, side = cfg.imgSize / cfg.patchSize;
  for (const st of steps)
    if (st.block >= depth) throw new Error(`merge schedule: block ${st.block} does not exist (the model has ${depth} blocks, 0..${depth - 1})`);
  const misfit = scheduleMisfit(steps, side);
  if (misfit) throw new Error(`merge schedule '${formatSchedule(steps)}': ${misfit} has nothing left to merge (the model's patch grid is ${side}x${side})`);
  return steps;
}

/** Steps given as objects: each an axis h or v at a block index, sorted by block, one per block (parseSchedule's rules). */
function checkSteps(steps: readonly MergeStep[]): MergeStep[] {
  const out = steps.map((st) => {
    if (!st || (st.axis !== 'h' && st.axis !== 'v') || !Number.isInteger(st.block) || st.block < 0)
      throw new Error(`merge schedule: step ${JSON.stringify(st)} is not {axis: 'h' | 'v', block: a 0-based block index}`);
    return { axis: st.axis, block: st.block };
  }).sort((a, b) => a.block - b.block);
  for (let i = 1; i < out.length; i++)
    if (out[i].block === out[i - 1].block) throw new Error(`merge schedule '${formatSchedule(out)}': two steps in block ${out[i].block} (one per block)`);
  return out;
}

// ---------------------------------------------------------------- partner choice

/**
 * Where a token's similarity vector lives: v(b, n) = sum over `heads` of
 * x[b, n, offset + h*dim .. offset + h*dim + dim). The head sum has the cosine
 * of the head mean.
 */
export interface SimilaritySource { x: Tensor; offset: number; heads: number; dim: number }

/** Keys inside the qkv activations [B, N, H*(2 Dqk + Dv)] (timm layout [q | k | v], each [H][D]). */
export function keysOf(qkv: Tensor, heads: number, dqk: number): SimilaritySource {
  return { x: qkv, offset: heads * dqk, heads, dim: dqk };
}

/** The token features x [B, N, C] themselves. */
export function featuresOf(x: Tensor): SimilaritySource {
  return { x, offset: 0, heads: 1, dim: x.shape[2] };
}

/** The sources of a step along `axis` of `grid`: floor(len/2) odd lines. */
export function sourceCount(grid: Grid, axis: Axis): number {
  const [h, w] = grid;
  return axis === 'h' ? h * (w >> 1) : (h >> 1) * w;
}

/**
 * Cosine of every source to its previous and next destination along `axis`:
 * [B, S, 2], -Infinity where there is no next (a source on the far border).
 * Sources are numbered row-major over their grid positions. No gradient.
 */
export function similarity(src: SimilaritySource, axis: Axis, grid: Grid, prefix: number): Tensor {
  const { x, offset, heads, dim } = src, [B, N, ld] = x.shape, be = x.backend;
  if (N !== prefix + grid[0] * grid[1]) throw new Error(`similarity: ${N} tokens, expected ${prefix} + ${grid[0]}x${grid[1]}`);
  if (offset + heads * dim > ld) throw new Error(`similarity: ${heads} heads x ${dim} at offset ${offset} exceed the width ${ld}`);
  const sim = new Tensor([B, sourceCount(grid, axis), 2], be);
  call(be, 'atme_similarity', { x: x.ptr + offset * 4, ld, heads, dim, B, prefix, gh: grid[0], gw: grid[1], axis: axis === 'h' ? 0 : 1, sim: sim.ptr });
  return sim;
}

/**
 * One step's partner choice for each image of a batch. `map` holds int32
 * values (read with backend.readI32, or `readMap`): map[b, t] is patch token
 * t's destination index in `newGrid`. A Tensor only so that scope() frees it
 * with the activations that merge's backward needs it beside.
 * A plain object, not a class: scope() keeps tensors it finds in plain objects.
 * (Not src/plan.ts's InferencePlan, a recorded forward.)
 */
export interface MergePlan {
  axis: Axis;
  grid: Grid;
  newGrid: Grid;
  prefix: number;
  batch: number;
  map: Tensor;
}

/** `backend` places the map (default: the similarity source's, else the default backend). */
export interface PlanSpec { axis: Axis; grid: Grid; batch: number; prefix: number; backend?: Backend }

/**
 * Partner choice by cosine similarity of `by` (keys or features), or fixed
 * pairing (source 2i+1 into destination 2i) when `by` is null. The choice is
 * an argmax: no gradient flows through it.
 */
export function plan(spec: PlanSpec, by: SimilaritySource | null): MergePlan {
  const { axis, grid, batch, prefix } = spec;
  if (!(grid[0] >= 1 && grid[1] >= 1)) throw new Error(`plan: empty grid ${grid[0]}x${grid[1]}`);
  const be = by ? by.x.backend : spec.backend;
  const map = new Tensor([batch, grid[0] * grid[1]], be);
  const sim = by ? similarity(by, axis, grid, prefix) : null;
  if (sim && sim.shape[0] !== batch) { sim.dispose(); map.dispose(); throw new Error(`plan: batch ${batch} but the similarity source has ${by!.x.shape[0]} images`); }
  call(map.backend, 'atme_plan', { sim: sim ? sim.ptr : 0, B: batch, gh: grid[0], gw: grid[1], axis: axis === 'h' ? 0 : 1, map: map.ptr });
  sim?.dispose();
  return { axis, grid: [grid[0], grid[1]], newGrid: stepGrid(grid, axis), prefix, batch, map };
}

/** A plan from explicit maps (one Int32Array [B * h*w]); each destination must map to itself. */
export function planFromMap(spec: PlanSpec, map: Int32Array): MergePlan {
  const { axis, grid, batch, prefix } = spec, T = grid[0] * grid[1], newGrid = stepGrid(grid, axis), T2 = newGrid[0] * newGrid[1];
  if (map.length !== batch * T) throw new Error(`planFromMap: ${map.length} entries, expected ${batch} x ${T}`);
  for (let i = 0; i < map.length; i++) if (!(map[i] >= 0 && map[i] < T2)) throw new Error(`planFromMap: map[${i}] = ${map[i]} outside [0, ${T2})`);
  const t = new Tensor([batch, T], spec.backend);
  t.backend.write(t.ptr, map);
  return { axis, grid: [grid[0], grid[1]], newGrid, prefix, batch, map: t };
}

export function readMap(p: MergePlan): Int32Array { return p.map.backend.readI32(p.map.ptr, p.map.size); }

// ---------------------------------------------------------------- merge / unmerge

/** Every token stands for itself: sizes [B, N] of ones. */
export function initialSizes(batch: number, tokens: number, backend?: Backend): Tensor {
  return Tensor.full([batch, tokens], 1, backend);
}

function checkTokens(what: string, x: Tensor, p: MergePlan, grid: Grid): void {
  const [B, N] = x.shape;
  if (x.shape.length !== 3 || B !== p.batch || N !== p.prefix + grid[0] * grid[1])
    throw new Error(`${what}: x [${x.shape}] does not hold ${p.batch} x (${p.prefix} + ${grid[0]}x${grid[1]}) tokens`);
}

/**
 * Size-weighted merge: each destination becomes (s_dst x_dst + sum s_src x_src)
 * / (s_dst + sum s_src) and its size that sum; the prefix rows pass through.
 * x [B, prefix + h*w, C], sizes [B, prefix + h*w] -> [B, prefix + h'*w', C] and
 * its sizes. The gradient reaches x (destinations and sources alike, weighted
 * s_t / s_new); sizes take none (they are counts).
 */
export function merge(x: Tensor, sizes: Tensor, p: MergePlan): { x: Tensor; sizes: Tensor } {
  checkTokens('merge', x, p, p.grid);
  const [B, N, C] = x.shape, be = x.backend, T = N - p.prefix, T2 = p.newGrid[0] * p.newGrid[1];
  if (sizes.size !== B * N) throw new Error(`merge: sizes [${sizes.shape}] for x [${x.shape}]`);
  const y = new Tensor([B, p.prefix + T2, C], be), ys = new Tensor([B, p.prefix + T2], be);
  call(be, 'atme_merge_fwd', { x: x.ptr, sizes: sizes.ptr, map: p.map.ptr, B, prefix: p.prefix, T, T2, C, y: y.ptr, ysizes: ys.ptr });
  record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    call(be, 'atme_merge_bwd', { dy: dy.ptr, sizes: sizes.ptr, ysizes: ys.ptr, map: p.map.ptr, B, prefix: p.prefix, T, T2, C, dx: dx.ptr });
    return [dx];
  });
  return { x: y, sizes: ys };
}

/**
 * Proportional attention's key bias: log(size) per token, [B, N] (0 for the
 * prefix, whose size is 1). Backend.logf forms it without a read-back
 * (WebGPU cannot read synchronously; a planned forward, src/plan.ts, must not
 * read at all).
 */
export function keyBias(sizes: Tensor): Tensor {
  const bias = new Tensor(sizes.shape, sizes.backend);
  sizes.backend.logf(sizes.ptr, bias.ptr, sizes.size);
  return bias;
}

/**
 * Maps of consecutive plans composed: [B * h0*w0], the index in the last
 * plan's grid of the token each original patch token was merged into.
 */
export function composeMaps(plans: readonly MergePlan[]): Int32Array {
  if (plans.length === 0) throw new Error('composeMaps: no plans');
  const B = plans[0].batch, T0 = plans[0].grid[0] * plans[0].grid[1];
  for (let i = 1; i < plans.length; i++) {
    const a = plans[i - 1], b = plans[i];
    if (b.batch !== B || b.prefix !== a.prefix || b.grid[0] !== a.newGrid[0] || b.grid[1] !== a.newGrid[1])
      throw new Error(`composeMaps: plan ${i} (${b.batch} x ${b.grid.join('x')}) does not follow plan ${i - 1} (${a.batch} x ${a.newGrid.join('x')})`);
  }
  const maps = plans.map(readMap), out = new Int32Array(B * T0);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T0; t++) {
      let d = t;
      for (let k = 0; k < plans.length; k++) d = maps[k][b * plans[k].grid[0] * plans[k].grid[1] + d];
      out[b * T0 + t] = d;
    }
  }
  return out;
}

/**
 * Back to the full grid: x [B, prefix + h_k*w_k, C] after `plans` (in the order
 * they ran) -> [B, prefix + h0*w0, C], each position holding the token it was
 * merged into; the prefix rows pass through. The gradient of a merged token is
 * the sum over the positions it stands for. No plans: a copy of x.
 * The plans' own maps are applied one by one, last plan first (a copy each),
 * rather than composed on the host (composeMaps): nothing is read back, so a
 * planned forward (src/plan.ts) can capture it. The result is the same copy;
 * the gradient sums the same terms grouped step by step.
 */
export function unmerge(x: Tensor, plans: readonly MergePlan[]): Tensor {
  const be = x.backend;
  if (plans.length === 0) {
    const y = new Tensor(x.shape, be);
    call(be, 'copy2d', { src: x.ptr, sld: x.size, dst: y.ptr, dld: x.size, rows: 1, cols: x.size });
    return record(y, [x], (dy) => {
      const dx = new Tensor(x.shape, be);
      call(be, 'copy2d', { src: dy.ptr, sld: dy.size, dst: dx.ptr, dld: dy.size, rows: 1, cols: dy.size });
      return [dx];
    });
  }
  for (let i = 1; i < plans.length; i++) {
    const a = plans[i - 1], b = plans[i];
    if (b.batch !== a.batch || b.prefix !== a.prefix || b.grid[0] !== a.newGrid[0] || b.grid[1] !== a.newGrid[1])
      throw new Error(`unmerge: plan ${i} (${b.batch} x ${b.grid.join('x')}) does not follow plan ${i - 1} (${a.batch} x ${a.newGrid.join('x')})`);
  }
  const last = plans[plans.length - 1];
  checkTokens('unmerge', x, last, last.newGrid);
  let y = x;
  for (let i = plans.length - 1; i >= 0; i--) y = unmergeStep(y, plans[i]);
  return y;
}

/** One plan undone: [B, prefix + h'w', C] -> [B, prefix + hw, C] by the plan's map. */
function unmergeStep(x: Tensor, p: MergePlan): Tensor {
  const [B, , C] = x.shape, be = x.backend, prefix = p.prefix;
  const T = p.grid[0] * p.grid[1], T2 = p.newGrid[0] * p.newGrid[1];
  const y = new Tensor([B, prefix + T, C], be);
  call(be, 'atme_unmerge_fwd', { x: x.ptr, map: p.map.ptr, B, prefix, T, T2, C, y: y.ptr });
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    call(be, 'atme_unmerge_bwd', { dy: dy.ptr, map: p.map.ptr, B, prefix, T, T2, C, dx: dx.ptr });
    return [dx];
  });
}
