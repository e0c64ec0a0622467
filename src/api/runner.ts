// What runs when a saved model is run "as saved": the ViT itself, or a
// CaitModel around it when a merge schedule applies, with the ATME switches
// saved beside it; a segmentation model (config task 'segment') always gets
// its segmentation head. The same rule as the CLI's withMerging
// (src/cli/common.ts), without flags or usage errors, so the library and the
// CLI run a file identically (test/api.test.ts compares them).
import type { VisionTransformer } from '../nn/vit.js';
import type { Trainable } from '../train/trainer.js';
import { CaitModel, atmeOptionsFromMetadata } from '../cait/wrap.js';
import { SIMILARITIES, formatSchedule, toSteps, type AtmeOptions, type Similarity } from '../cait/atme.js';
import { isSegmentation, segModel, SEG_UNMERGES, type SegUnmerge } from '../seg/model.js';

export interface RunnerOptions {
  /** Merge schedule instead of the saved one, e.g. "h@1" (0-based blocks); 'none' (or '') turns merging off. */
  merge?: string;
  /** ATME partner choice instead of the saved one. */
  similarity?: Similarity;
  /** Proportional attention instead of the saved switch. */
  propAttn?: boolean;
  /** Segmentation models with merging: how tokens return to the full grid (default: the config's, else 'residual'). */
  unmerge?: SegUnmerge;
}

export interface Runner {
  runner: Trainable;
  /** The schedule that runs ('' = none). */
  merge: string;
  /** The ATME switches in force (null without merging). */
  atme: AtmeOptions | null;
}

/** The runner for `vit` as saved (metadata from its file), with `o` overriding. */
export function runnerFor(vit: VisionTransformer, metadata: Record<string, string>, o: RunnerOptions = {}): Runner {
  if (o.similarity !== undefined && !SIMILARITIES.includes(o.similarity)) {
    throw new Error(`similarity must be one of ${SIMILARITIES.join(', ')}, got '${o.similarity}'`);
  }
  if (o.unmerge !== undefined) {
    if (!isSegmentation(vit.cfg)) throw new Error('unmerge applies to segmentation models');
    if (!SEG_UNMERGES.includes(o.unmerge)) throw new Error(`unmerge must be ${SEG_UNMERGES.join(' or ')}, got '${o.unmerge}'`);
  }
  const steps = toSteps(o.merge ?? vit.cfg.merge ?? '', vit.cfg);
  // without a schedule these switches would do nothing (the CLI's withMerging refuses them too)
  const idle = (['similarity', 'propAttn', 'unmerge'] as const).filter((k) => o[k] !== undefined);
  if (!steps.length && idle.length) throw new Error(`${idle.join(' and ')} need${idle.length === 1 ? 's' : ''} a merge schedule (the merge option, or a model saved with one): without merging ${idle.includes('unmerge') ? 'no token returns to the grid' : 'no tokens are matched'}`);
  if (o.unmerge !== undefined) vit.cfg.segUnmerge = o.unmerge;
  const seg = isSegmentation(vit.cfg);
  if (!steps.length && !vit.cfg.merge) return { runner: seg ? segModel(vit) : vit, merge: '', atme: null };
  const atme: Partial<AtmeOptions> = { ...atmeOptionsFromMetadata(metadata) };
  if (o.similarity !== undefined) atme.similarity = o.similarity;
  if (o.propAttn !== undefined) atme.propAttn = o.propAttn;
  const m = seg ? segModel(vit, { ...atme, merge: steps }) : new CaitModel(vit, { ...atme, merge: steps });
  return { runner: m, merge: formatSchedule(m.schedule), atme: steps.length ? { ...m.options } : null };
}
