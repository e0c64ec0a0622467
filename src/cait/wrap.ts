// CaitModel: a VisionTransformer run with CAIT's token merging (ATME), by
// wrapping it; the ViT itself is not changed and its parameters are shared.
//
// Per block i: x = attnStep(i, x, keyBias, onQkv); if the schedule merges in
// block i, plan from this block's keys (or features), merge x and the token
// sizes, and from now on pass log(sizes) as the key bias (proportional
// attention); then x = mlpStep(i, x). An empty schedule runs exactly the ViT's
// own ops in its order, so its logits are bitwise the ViT's.
//
// Extension point: attnStep, mlpStep and similaritySource are the only places
// a block is touched, so CDCP (masked or compact attention and MLP) subclasses
// this class and overrides them, keeping merging as it is. What runs on the
// final tokens is the ViT's own head on the class token, or a `TokenHead`
// given in the options (segmentation, src/seg/model.ts: every patch token,
// unmerged back to the full grid), which CDCP's subclass inherits.
import type { Tensor } from '../tensor.js';
import { inferenceScope } from '../autograd.js';
import * as ops from '../ops/index.js';
import type { VisionTransformer } from '../nn/vit.js';
import type { VitConfig } from '../nn/presets.js';
import type { Trainable } from '../train/trainer.js';
import {
  ATME_DEFAULTS, SIMILARITIES, featuresOf, formatSchedule, initialSizes, keyBias, keysOf, merge, plan, toSteps, unmerge,
  type AtmeOptions, type Grid, type MergeStep, type MergePlan, type SimilaritySource,
} from './atme.js';

export interface CaitOptions extends Partial<AtmeOptions> {
  /** Schedule, e.g. "h@3,v@6" (0-based blocks); default: the model config's `merge`. */
  merge?: string | readonly MergeStep[];
  /** What forward runs on the final tokens instead of the ViT's class-token head. */
  head?: TokenHead;
}

/**
 * What the blocks leave: final (normed) tokens, the plans in the order they
 * ran, sizes and grid. For a head that asks for them (keepsMergeResidual):
 * `stream`, the final tokens before the norm, and per merge step k
 * `residuals[k]` = the tokens entering merge k minus their merged copy
 * unmerged again ([B, prefix + h_k*w_k, C] on the grid before merge k): what
 * each position loses by being merged.
 */
export interface TokensOut { tokens: Tensor; plans: MergePlan[]; sizes: Tensor | null; grid: Grid; stream?: Tensor; residuals?: Tensor[] }

/** A head on all final tokens (dense prediction); it may use the ViT's parameters (no parameters of its own). */
export interface TokenHead {
  forward(out: TokensOut, vit: VisionTransformer): Tensor;
  /** Whether forwardTokens should record TokensOut.stream and .residuals for it. */
  readonly keepsMergeResidual?: boolean;
}

/** Metadata key under which a saved model keeps its ATME switches. */
export const ATME_METADATA_KEY = 'atme';

export class CaitModel implements Trainable {
  readonly cfg: VitConfig;
  readonly schedule: readonly MergeStep[];
  readonly options: Readonly<AtmeOptions>;
  readonly head: TokenHead | null;

  constructor(readonly vit: VisionTransformer, o: CaitOptions = {}) {
    this.head = o.head ?? null;
    this.schedule = toSteps(o.merge ?? vit.cfg.merge, vit.cfg);
    const similarity = o.similarity ?? ATME_DEFAULTS.similarity;
    if (!SIMILARITIES.includes(similarity)) throw new Error(`ATME similarity '${similarity}': expected one of ${SIMILARITIES.join(', ')}`);
    this.options = { similarity, propAttn: o.propAttn ?? ATME_DEFAULTS.propAttn };
    const cfg: VitConfig = { ...vit.cfg, merge: formatSchedule(this.schedule) };
    if (!cfg.merge) delete cfg.merge;
    this.cfg = cfg;
  }

  namedParameters(): Array<[string, Tensor]> { return this.vit.namedParameters(); }
  parameters(): Tensor[] { return this.vit.parameters(); }
  numParams(): number { return this.vit.numParams(); }

  forward(x: Tensor, _train = false): Tensor {
    const out = this.forwardTokens(x);
    return this.head ? this.head.forward(out, this.vit) : this.vit.forwardHead(out.tokens);
  }

  /** Embedding, blocks with merging, final norm: [B, C_in, S, S] -> tokens [B, prefix + h*w (merged), C]. */
  forwardTokens(x: Tensor): TokensOut {
    const vit = this.vit, B = x.shape[0], prefix = vit.numPrefixTokens;
    let h = vit.embed(x), grid: Grid = vit.grid, sizes: Tensor | null = null, bias: Tensor | null = null;
    const plans: MergePlan[] = [], residuals: Tensor[] = [], keepResidual = !!this.head?.keepsMergeResidual;
    let k = 0;
    for (let i = 0; i < vit.blocks.length; i++) {
      const step = this.schedule[k]?.block === i ? this.schedule[k++] : null;
      // one block: what it makes and does not pass on is freed at its end (inference; inferenceScope)
      ({ h, sizes, bias, grid } = inferenceScope(() => {
        let qkv: Tensor | null = null;
        const onQkv = step && this.options.similarity === 'keys' ? (t: Tensor) => { qkv = t; } : undefined;
        let y = this.attnStep(i, h, bias, onQkv), s = sizes, b = bias, g = grid;
        if (step) {
          const p = plan({ axis: step.axis, grid: g, batch: B, prefix, backend: y.backend }, this.similaritySource(i, y, qkv));
          const pre = y;
          ({ x: y, sizes: s } = merge(y, s ?? initialSizes(B, y.shape[1], y.backend), p));
          if (keepResidual) residuals.push(ops.add(pre, ops.scale(unmerge(y, [p]), -1)));
          plans.push(p);
          g = p.newGrid;
          if (this.options.propAttn) b = keyBias(s);
        }
        return { h: this.mlpStep(i, y), sizes: s, bias: b, grid: g, plans: plans.slice(-1), residuals: residuals.slice(-1) };
      }));
    }
    const out: TokensOut = { tokens: vit.norm.forward(h), plans, sizes, grid };
    return keepResidual ? { ...out, stream: h, residuals } : out;
  }

  /** Block i's attention residual x + attn(norm1(x)); `onQkv` must see the qkv activations when keys decide partners. */
  attnStep(i: number, x: Tensor, keyBias: Tensor | null, onQkv?: (qkv: Tensor) => void): Tensor {
    return this.vit.blocks[i].attnResidual(x, keyBias, onQkv);
  }

  /** Block i's MLP residual x + mlp(norm2(x)). */
  mlpStep(i: number, x: Tensor): Tensor {
    return this.vit.blocks[i].mlpResidual(x);
  }

  /** What partner choice in block i compares: keys of this block's attention (head dims from the block), features, or nothing (fixed pairing). */
  similaritySource(i: number, x: Tensor, qkv: Tensor | null): SimilaritySource | null {
    switch (this.options.similarity) {
      case 'fixed': return null;
      case 'features': return featuresOf(x);
      case 'keys': {
        if (!qkv) throw new Error(`block ${i}: attnStep did not pass the qkv activations to onQkv, which keys similarity needs`);
        const a = this.vit.blocks[i].attn;
        return keysOf(qkv, a.numHeads, a.dqk);
      }
    }
  }

  /** Saved beside the parameters: the switches (the schedule itself is cfg.merge). */
  saveExtras(): { tensors: Record<string, { shape: number[]; data: Float32Array }>; metadata: Record<string, string> } {
    return { tensors: {}, metadata: this.schedule.length ? { [ATME_METADATA_KEY]: JSON.stringify(this.options) } : {} };
  }
}

/** Switches saved by saveExtras, if any (bad JSON is an error naming the key). */
export function atmeOptionsFromMetadata(metadata: Record<string, string>): Partial<AtmeOptions> {
  const s = metadata[ATME_METADATA_KEY];
  if (!s) return {};
  try {
    const o = JSON.parse(s) as Partial<AtmeOptions>;
    return { ...(o.similarity !== undefined ? { similarity: o.similarity } : {}), ...(o.propAttn !== undefined ? { propAttn: !!o.propAttn } : {}) };
  } catch (e) {
    throw new Error(`__metadata__.${ATME_METADATA_KEY} is not valid JSON: ${(e as Error).message}`);
  }
}
