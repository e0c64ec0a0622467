// Analytic multiply-accumulate count of a ViT under an ATME schedule and CDCP
// widths (docs/cait-method.md, "CDCP", Budget): per block
//   N C H (2 D_qk + D_v)      qkv projection
//   + N^2 H (D_qk + D_v)      q k^T and attn v
//   + N H D_v C               output projection
//   + 2 N C M                 MLP (fc1 and fc2)
// with attention at the block's incoming N and, in a block that merges, the
// MLP at the merged N. N counts the prefix tokens (class token, and a
// distilled DeiT's distillation token: numPrefixTokens), which are never
// merged. Plus the patch embedding (h*w patches x C_in P^2 x C) and the head
// (C x classes on the class token; a distilled DeiT adds head_dist on the
// distillation token). Biases, norms, softmax, GELU and the mean of the two
// heads are not counted (they are O(N C), as is the merge itself).
// DeiT-Tiny: 1.254 G dense, 0.789 G with h@3, 0.652 G with h@3,v@6 (the
// doc's 1.25 / 0.79 / 0.65 G).
import { blockWidths, numPrefixTokens, type VitConfig } from '../nn/presets.js';
import type { BlockWidths } from '../nn/layers.js';
import { stepGrid, toSteps, type Grid, type MergeStep } from './atme.js';

export interface BlockMacs {
  /** Tokens entering the block (attention) and leaving it (MLP; fewer where the block merges). */
  attnTokens: number;
  mlpTokens: number;
  /** Grid of patch tokens entering and leaving the block. */
  gridIn: Grid;
  gridOut: Grid;
  qkv: number;
  attn: number;
  proj: number;
  mlp: number;
  total: number;
}

export interface MacReport {
  total: number;
  patchEmbed: number;
  /** The class head, plus head_dist for a distilled model with two heads. */
  head: number;
  blocks: BlockMacs[];
  /** Tokens entering each block (what its attention sees). */
  tokens: number[];
}

/** One block's MACs: the doc's formula with per-head widths qk, v and MLP hidden mlp. */
export function blockMacs(nAttn: number, nMlp: number, C: number, H: number, w: BlockWidths): Omit<BlockMacs, 'attnTokens' | 'mlpTokens' | 'gridIn' | 'gridOut'> {
  const qkv = nAttn * C * H * (2 * w.qk + w.v);
  const attn = nAttn * nAttn * H * (w.qk + w.v);
  const proj = nAttn * H * w.v * C;
  const mlp = 2 * nMlp * C * w.mlp;
  return { qkv, attn, proj, mlp, total: qkv + attn + proj + mlp };
}

/** Classification heads: 2 for a distilled model with head_dist, else 1. */
const classHeads = (cfg: VitConfig): number => (cfg.distilled && cfg.distillHead !== false ? 2 : 1);

/**
 * The dense model a MAC ratio is against: the architecture at full width
 * (a CDCP-compact model's widths dropped); count it with schedule ''.
 */
export function denseArchitecture(cfg: VitConfig): VitConfig {
  const { widths: _, ...full } = cfg;
  return full;
}

/**
 * MACs of one image through the whole model. `schedule` defaults to the
 * config's own (cfg.merge); widths come from cfg.widths (dense if absent).
 */
export function countMacs(cfg: VitConfig, schedule?: string | readonly MergeStep[]): MacReport {
  const steps = toSteps(schedule ?? cfg.merge, cfg), prefix = numPrefixTokens(cfg);
  const side = cfg.imgSize / cfg.patchSize, C = cfg.embedDim, H = cfg.numHeads;
  let grid: Grid = [side, side];
  const patchEmbed = side * side * cfg.inChans * cfg.patchSize * cfg.patchSize * C;
  const head = C * cfg.numClasses * classHeads(cfg);
  const blocks: BlockMacs[] = [];
  for (let i = 0; i < cfg.depth; i++) {
    const gridIn = grid;
    for (const st of steps) if (st.block === i) grid = stepGrid(grid, st.axis);
    const attnTokens = prefix + gridIn[0] * gridIn[1], mlpTokens = prefix + grid[0] * grid[1];
    blocks.push({ attnTokens, mlpTokens, gridIn, gridOut: grid, ...blockMacs(attnTokens, mlpTokens, C, H, blockWidths(cfg, i)) });
  }
  const total = patchEmbed + head + blocks.reduce((s, b) => s + b.total, 0);
  return { total, patchEmbed, head, blocks, tokens: blocks.map((b) => b.attnTokens) };
}

/** Parameter count from the config alone (equals the model's numParams()). */
export function countParams(cfg: VitConfig): number {
  const side = cfg.imgSize / cfg.patchSize, C = cfg.embedDim, H = cfg.numHeads, P2 = cfg.patchSize * cfg.patchSize;
  const prefix = numPrefixTokens(cfg);
  let n = C * cfg.inChans * P2 + C;            // patch_embed.proj
  n += prefix * C + (prefix + side * side) * C; // cls_token (and dist_token), pos_embed
  for (let i = 0; i < cfg.depth; i++) {
    const w = blockWidths(cfg, i), qkvOut = H * (2 * w.qk + w.v);
    n += 4 * C;                                          // norm1, norm2
    n += qkvOut * C + (cfg.qkvBias ? qkvOut : 0);        // attn.qkv
    n += H * w.v * C + C;                                // attn.proj
    n += w.mlp * C + w.mlp + C * w.mlp + C;              // mlp.fc1, mlp.fc2
  }
  n += 2 * C + (C * cfg.numClasses + cfg.numClasses) * classHeads(cfg); // norm, head (and head_dist)
  return n;
}
