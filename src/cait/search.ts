// CAIT's search stage as a Trainable: the ATME wrapper (src/cait/wrap.ts) with
// every block's attention and MLP replaced by CDCP's masked branches
// (src/cait/masked.ts) under the masks of src/cait/cdcp.ts. Merging is untouched; the ViT is shared, not edited.
//
// Per forward the masks are recomputed from the scores (dynamic), and the
// step's formulation is chosen ('dense' on exact straight-through steps,
// 'gather' otherwise and in evaluation). The trainer sees the ViT's
// parameters plus the scores (`cdcp.blocks.i.qk|v|mlp`, or `.qkv` with one
// shared mask), and gets the budget (and, for gates, the L1 term) and the
// distillation term, if a teacher is attached, from extraLoss.
import type { Tensor } from '../tensor.js';
import type { VisionTransformer } from '../nn/vit.js';
import { CaitModel, type CaitOptions } from './wrap.js';
import { keysOf, type SimilaritySource } from './atme.js';
import { Cdcp, CDCP_METADATA_KEY, type CdcpOptions } from './cdcp.js';
import { maskedAttnResidual, maskedMlpResidual, widthsOf, type BlockMasks, type MaskedCompute } from './masked.js';
import type { Distiller } from './distill.js';
import { extractCompact } from './extract.js';

export interface CdcpModelOptions extends CaitOptions {
  cdcp?: Partial<CdcpOptions>;
  /** Distillation from a frozen teacher, added to the extra loss terms. */
  distill?: Distiller;
}

export class CdcpModel extends CaitModel {
  readonly cdcp: Cdcp;
  readonly distiller: Distiller | null;
  /** The masks and formulation of the forward in progress (set by forward). */
  current: BlockMasks[];
  compute: MaskedCompute = 'gather';

  constructor(vit: VisionTransformer, o: CdcpModelOptions = {}) {
    super(vit, o);
    this.cdcp = new Cdcp(vit, o.cdcp, this.schedule);
    this.distiller = o.distill ?? null;
    this.current = this.cdcp.masks(false);
  }

  override namedParameters(): Array<[string, Tensor]> { return [...super.namedParameters(), ...this.cdcp.namedParameters()]; }

  /** Logits under the current masks; `train` lets gradients reach the scores (and gates stay soft). */
  override forward(x: Tensor, train = false): Tensor {
    this.current = this.cdcp.masks(train);
    this.compute = this.cdcp.computeFor(train);
    return super.forward(x, train);
  }

  /** Run with fixed masks (tests, and what extraction freezes): no score gradients unless the masks carry scores. */
  forwardWith(x: Tensor, masks: BlockMasks[], compute: MaskedCompute = 'gather'): Tensor {
    this.current = masks;
    this.compute = compute;
    return super.forward(x, false);
  }

  override attnStep(i: number, x: Tensor, keyBias: Tensor | null, onQkv?: (qkv: Tensor) => void): Tensor {
    return maskedAttnResidual(this.vit.blocks[i], this.current[i], x, keyBias, onQkv, this.compute);
  }

  override mlpStep(i: number, x: Tensor): Tensor {
    return maskedMlpResidual(this.vit.blocks[i], this.current[i], x, this.compute);
  }

  /** The masked branch hands onQkv the compact layout, so keys have the kept width. */
  override similaritySource(i: number, x: Tensor, qkv: Tensor | null): SimilaritySource | null {
    if (this.options.similarity !== 'keys') return super.similaritySource(i, x, qkv);
    if (!qkv) throw new Error(`block ${i}: the masked attention did not pass its qkv activations`);
    return keysOf(qkv, this.vit.blocks[i].attn.numHeads, this.current[i].qk.keep.length);
  }

  extraLoss(logits: Tensor, x: Tensor, step: number, totalSteps: number): Array<[Tensor, number]> {
    this.cdcp.setProgress(step, totalSteps);
    const terms: Array<[Tensor, number]> = [];
    const budget = this.cdcp.budgetLoss(this.current);
    if (budget) terms.push([budget, 1]);
    const l1 = this.cdcp.l1Loss();
    if (l1) terms.push([l1, 1]);
    if (this.distiller) terms.push(...this.distiller.terms(logits, x));
    return terms;
  }

  afterStep(step: number, totalSteps: number): void { this.cdcp.setProgress(step, totalSteps); }

  /** MACs of the masked model now (evaluation masks, this schedule). */
  macs(): number { return this.cdcp.macs(this.cdcp.masks(false)); }

  /** Per-block widths the evaluation masks keep now. */
  widths() { return widthsOf(this.cdcp.masks(false)); }

  /** Freeze the final masks (Cdcp.finalMasks: within the final target) and build the compact ViT (same merge schedule). */
  extract(): VisionTransformer { return extractCompact(this.vit, this.cdcp.finalMasks(), this.cfg.merge ?? ''); }

  override saveExtras(): { tensors: Record<string, { shape: number[]; data: Float32Array }>; metadata: Record<string, string> } {
    // the scores are among namedParameters, so saved with them
    const base = super.saveExtras();
    base.metadata[CDCP_METADATA_KEY] = JSON.stringify(this.cdcp.options);
    return base;
  }

  dispose(): void { this.cdcp.dispose(); }
}
