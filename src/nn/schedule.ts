// ATME's merge schedule as data: the grammar ("h@3,v@6") and the grid a step
// leaves. It sits with the model config because the config carries a
// schedule (VitConfig.merge) that the validator (./validate.ts) checks; the
// merging itself is src/cait/atme.ts, which re-exports these.

export type Axis = 'h' | 'v';
/** One merge step: halve `axis` inside blocks[block], after its attention residual and before its MLP. */
export interface MergeStep { axis: Axis; block: number }
/** Patch grid [rows, cols]. */
export type Grid = readonly [number, number];

/**
 * "h@3,v@6" -> [{axis: 'h', block: 3}, {axis: 'v', block: 6}]. Blocks are
 * 0-based (the doc's DeiT MAC figures count so); steps come back sorted by
 * block. "" and "none" are the empty schedule. One step per block: a second
 * step in the same block would need keys for tokens that no longer exist.
 */
export function parseSchedule(s: string): MergeStep[] {
  const text = s.trim();
  if (text === '' || text === 'none') return [];
  const steps = text.split(',').map((part) => {
    const m = /^\s*([hv])\s*@\s*(\d+)\s*$/.exec(part);
    if (!m) throw new Error(`merge schedule: '${part.trim()}' is not AXIS@BLOCK (AXIS h or v, BLOCK a 0-based block index), in '${s}'`);
    return { axis: m[1] as Axis, block: Number(m[2]) };
  });
  steps.sort((a, b) => a.block - b.block);
  for (let i = 1; i < steps.length; i++)
    if (steps[i].block === steps[i - 1].block) throw new Error(`merge schedule '${s}': two steps in block ${steps[i].block} (one per block)`);
  return steps;
}

export function formatSchedule(steps: readonly MergeStep[]): string {
  return steps.map((st) => `${st.axis}@${st.block}`).join(',');
}

/**
 * The first step of `steps` that has nothing to merge on a side x side patch
 * grid (the axis it halves is already 1 token long: the step would be a
 * silent no-op), described for an error; null when every step fits.
 */
export function scheduleMisfit(steps: readonly MergeStep[], side: number): string | null {
  let g: Grid = [side, side];
  for (const st of steps) {
    if ((st.axis === 'h' ? g[1] : g[0]) < 2) return `step ${st.axis}@${st.block} on a grid ${g[0]}x${g[1]}`;
    g = stepGrid(g, st.axis);
  }
  return null;
}

/** The grid after one step. */
export function stepGrid(grid: Grid, axis: Axis): [number, number] {
  const [h, w] = grid;
  return axis === 'h' ? [h, (w + 1) >> 1] : [(h + 1) >> 1, w];
}
