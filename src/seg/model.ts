// The segmentation model (issue #7; ../shared/docs/cait-method.md,
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
import { numPrefixTokens, type VitConfig } from '../nn/presets.js';
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

export type SegUnmerge = NonNullable<VitConfig['segUnmerge']>;
export const SEG_UNMERGES: readonly SegUnmerge[] = ['residual', 'copy'];

/** Per-token linear classifier on the unmerged grid, upsampled bilinearly to the input's pixels. */
export class SegHead implements TokenHead {
  private interp = new Map<Backend, { ay: Tensor; ax: Tensor }>();
  readonly keepsMergeResidual: boolean;

  constructor(readonly unmergeMode: SegUnmerge = 'residual') {
    if (!SEG_UNMERGES.includes(unmergeMode)) throw new Error(`segmentation unmerge '${unmergeMode}': expected ${SEG_UNMERGES.join(' or ')}`);
    this.keepsMergeResidual = unmergeMode === 'residual';
  }

  forward(out: TokensOut, vit: VisionTransformer): Tensor {
    let z: Tensor;
    if (!out.plans.length) z = vit.head.forward(out.tokens);
    else if (out.residuals && out.stream) {
      // each position: its own stream before each merge plus its group's later updates
      let full = unmerge(out.stream, out.plans);
      out.residuals.forEach((r, k) => { full = ops.add(full, k ? unmerge(r, out.plans.slice(0, k)) : r); });
      z = vit.head.forward(vit.norm.forward(full));
    } else z = unmerge(vit.head.forward(out.tokens), out.plans);
    const { ay, ax } = this.matrices(vit, z.backend);
    return upsampleTokens(z, vit.grid, ay, ax, vit.numPrefixTokens);
  }

  /** The per-axis interpolation matrices for this grid and image size, made once per backend (constants, never freed by scopes). */
  private matrices(vit: VisionTransformer, be: Backend): { ay: Tensor; ax: Tensor } {
    let m = this.interp.get(be);
    const [h, w] = vit.grid, S = vit.cfg.imgSize;
    if (!m || m.ay.shape[1] !== h || m.ax.shape[1] !== w || m.ay.shape[0] !== S) {
      if (m) { m.ay.dispose(); m.ax.dispose(); }
      m = { ay: keep(Tensor.from(bilinearWeights(h, S), [S, h], be)), ax: keep(Tensor.from(bilinearWeights(w, S), [S, w], be)) };
      this.interp.set(be, m);
    }
    return m;
  }

  dispose(): void {
    for (const m of this.interp.values()) { m.ay.dispose(); m.ax.dispose(); }
    this.interp.clear();
  }
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
 * the per-token classifier (on the merged tokens with segUnmerge 'copy', on
 * the full grid with 'residual', where it runs after the unmerge) and the two
 * upsampling GEMMs (unmerge and the residual adds are not counted).
 */
export function segMacs(cfg: VitConfig, schedule?: string): SegMacs {
  const r = countMacs(cfg, schedule), last = r.blocks[r.blocks.length - 1];
  const backbone = r.total - r.head, C = cfg.embedDim, K = cfg.numClasses, S = cfg.imgSize;
  const h = cfg.imgSize / cfg.patchSize, w = h, full = numPrefixTokens(cfg) + h * w;
  // the classifier runs on the merged tokens before a copy unmerge, on the full grid after a residual one (SegHead)
  const head = (last && (cfg.segUnmerge ?? 'residual') === 'copy' ? last.mlpTokens : full) * C * K;
  const upsample = h * S * w * K + S * h * S * K;
  return { total: backbone + head + upsample, backbone, head, upsample };
}

/** MACs of one image for either task (classification: countMacs). */
export function modelMacs(cfg: VitConfig, schedule?: string): number {
  return isSegmentation(cfg) ? segMacs(cfg, schedule).total : countMacs(cfg, schedule).total;
}
