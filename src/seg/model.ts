// The segmentation model (issue #7; docs/cait-method.md,
// "Segmentation transfer"): the ViT backbone, its final tokens back on the
// full h x w grid (ATME `unmerge`), a per-token linear classifier, bilinear
// upsampling to pixels. It is a CaitModel (src/cait/wrap.ts) with SegHead as
// its token head, so merging and CDCP (CdcpModel, the compact model) apply to
// it exactly as to the classifier, by wrapping.
//
//   tokens [B, 1 + h'w', C] --head--> [B, 1 + h'w', K] --unmerge--> [B, 1 + hw, K]
//          --bilinear (class token dropped)--> pixel logits [B * S * S, K]
//
// The classifier is the ViT's own `head` Linear(C, K) (K = numClasses, pixel
// classes with background), so a segmentation model file is an ordinary ViT
// file whose config says task 'segment'. Classifying before unmerging is the
// same as after (the head is per token and unmerge copies tokens) and costs
// K/C as much for the copy. Per-pixel cross-entropy is then the trainer's
// crossEntropy over these rows.
import { Tensor, keep } from '../tensor.js';
import * as ops from '../ops/index.js';
import type { Backend } from '../backend/backend.js';
import type { VisionTransformer } from '../nn/vit.js';
import { SEG_UNMERGES, numPrefixTokens, type SegUnmerge, type VitConfig } from '../nn/presets.js';
import { CaitModel, type CaitOptions, type TokenHead, type TokensOut } from '../cait/wrap.js';
import { unmerge } from '../cait/atme.js';
import { countMacs } from '../cait/macs.js';
import { bilinearWeights, upsampleTokens } from './upsample.js';

export const isSegmentation = (cfg: Pick<VitConfig, 'task'>): boolean => cfg.task === 'segment';

/** Checks a config can be a segmentation model (square grid, background class and at least one other). */
export function checkSegConfig(cfg: VitConfig): void {
  if (cfg.segHead !== undefined && cfg.segHead !== 'linear') throw new Error(`model '${cfg.name}': segmentation head '${cfg.segHead}' is not known (expected linear)`);
  if (cfg.numClasses < 2) throw new Error(`model '${cfg.name}': a segmentation model needs >= 2 pixel classes (background + items), has ${cfg.numClasses}`);
}

export { SEG_UNMERGES, type SegUnmerge };

/**
 * Per-token linear classifier on the unmerged grid, upsampled bilinearly to
 * the input's pixels; with 'bilinear', on the merged tokens of the reduced
 * grid, whose logits are upsampled bilinearly to the patch grid and on to the
 * pixels (one composed pair of matrices: bilinear maps are linear).
 */
export class SegHead implements TokenHead {
  private interp = new Map<Backend, { ay: Tensor; ax: Tensor; grid: readonly [number, number] }>();
  readonly keepsMergeResidual: boolean;

  constructor(readonly unmergeMode: SegUnmerge = 'residual') {
    if (!SEG_UNMERGES.includes(unmergeMode)) throw new Error(`segmentation unmerge '${unmergeMode}': expected ${SEG_UNMERGES.join(' or ')}`);
    this.keepsMergeResidual = unmergeMode === 'residual';
  }

  forward(out: TokensOut, vit: VisionTransformer): Tensor {
    let z: Tensor;
    if (out.plans.length && this.unmergeMode === 'bilinear') {
      const grid = out.plans[out.plans.length - 1].newGrid, r = vit.head.forward(out.tokens);
      const { ay, ax } = this.matrices(vit, r.backend, grid);
      return upsampleTokens(r, grid, ay, ax, vit.numPrefixTokens);
    }
    if (!out.plans.length) z = vit.head.forward(out.tokens);
    else if (out.residuals && out.stream) {
      // each position: its own stream before each merge plus its group's later updates
      let full = unmerge(out.stream, out.plans);
      out.residuals.forEach((r, k) => { full = ops.add(full, k ? unmerge(r, out.plans.slice(0, k)) : r); });
      z = vit.head.forward(vit.norm.forward(full));
    } else z = unmerge(vit.head.forward(out.tokens), out.plans);
    const { ay, ax } = this.matrices(vit, z.backend, vit.grid);
    return upsampleTokens(z, vit.grid, ay, ax, vit.numPrefixTokens);
  }

  /**
   * The per-axis interpolation matrices from `grid` to the image's pixels, made
   * once per backend (constants, never freed by scopes): bilinearWeights(h, S),
   * or for a reduced grid the product bilinearWeights(h, S) x bilinearWeights(gh, h)
   * (through the patch grid, as the method says), and the same per column.
   */
  private matrices(vit: VisionTransformer, be: Backend, grid: readonly [number, number]): { ay: Tensor; ax: Tensor } {
    let m = this.interp.get(be);
    const [h, w] = vit.grid, S = vit.cfg.imgSize, [gh, gw] = grid;
    if (!m || m.grid[0] !== gh || m.grid[1] !== gw || m.ay.shape[0] !== S) {
      if (m) { m.ay.dispose(); m.ax.dispose(); }
      m = { ay: keep(Tensor.from(throughGrid(gh, h, S), [S, gh], be)), ax: keep(Tensor.from(throughGrid(gw, w, S), [S, gw], be)), grid: [gh, gw] };
      this.interp.set(be, m);
    }
    return m;
  }

  dispose(): void {
    for (const m of this.interp.values()) { m.ay.dispose(); m.ax.dispose(); }
    this.interp.clear();
  }
}

/** Bilinear weights [S, g] from g cells to S pixels through n patches (g = n: the direct map), composed in double precision. */
function throughGrid(g: number, n: number, S: number): Float32Array {
  if (g === n) return bilinearWeights(n, S);
  const a = bilinearWeights(n, S), b = bilinearWeights(g, n), out = new Float32Array(S * g);
  for (let i = 0; i < S; i++) for (let j = 0; j < g; j++) {
    let v = 0;
    for (let k = 0; k < n; k++) v += a[i * n + k] * b[k * g + j];
    out[i * g + j] = v;
  }
  return out;
}

/** A segmentation model around `vit`: CaitModel with SegHead (merge schedule and switches as CaitModel takes them). */
export function segModel(vit: VisionTransformer, o: Omit<CaitOptions, 'head'> = {}): CaitModel {
  checkSegConfig(vit.cfg);
  return new CaitModel(vit, { ...o, head: new SegHead(vit.cfg.segUnmerge ?? 'residual') });
}

export interface SegMacs { total: number; backbone: number; head: number; upsample: number }

/**
 * MACs of one image: the backbone as countMacs counts it (patch embedding and
 * blocks, under the schedule and widths) without its class-token head, plus
 * the per-token classifier (on the full grid with segUnmerge 'residual', where
 * it runs after the unmerge; on the merged tokens with 'copy' and 'bilinear')
 * and the two upsampling GEMMs (from the reduced grid with 'bilinear'; unmerge
 * and the residual adds are not counted).
 */
export function segMacs(cfg: VitConfig, schedule?: string): SegMacs {
  const r = countMacs(cfg, schedule), last = r.blocks[r.blocks.length - 1];
  const backbone = r.total - r.head, C = cfg.embedDim, K = cfg.numClasses, S = cfg.imgSize;
  const h = cfg.imgSize / cfg.patchSize, w = h, full = numPrefixTokens(cfg) + h * w, mode = cfg.segUnmerge ?? 'residual';
  // the classifier runs on the full grid after a residual unmerge, on the merged tokens before a
  // copy unmerge or the bilinear upsampling of the reduced grid, which starts from that grid (SegHead)
  const head = (last && mode !== 'residual' ? last.mlpTokens : full) * C * K;
  const [uh, uw] = last && mode === 'bilinear' ? last.gridOut : [h, w];
  const upsample = uh * S * uw * K + S * uh * S * K;
  return { total: backbone + head + upsample, backbone, head, upsample };
}

/** MACs of one image for either task (classification: countMacs). */
export function modelMacs(cfg: VitConfig, schedule?: string): number {
  return isSegmentation(cfg) ? segMacs(cfg, schedule).total : countMacs(cfg, schedule).total;
}
