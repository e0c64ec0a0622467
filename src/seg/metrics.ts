// Segmentation metrics over a confusion matrix of pixels (rows: true class,
// columns: predicted class), accumulated in float64 so millions of pixels
// count exactly:
//   IoU_c = TP_c / (TP_c + FP_c + FN_c) = M[c][c] / (row_c + col_c - M[c][c])
//   mean IoU = mean of IoU_c over the classes with a non-empty union (a class
//   neither present nor predicted anywhere is left out, as in mmseg's nanmean)
//   pixel accuracy = trace / total
// Evaluation runs the model on test scenes without gradients and takes the
// argmax of every pixel's logits (ties: the lower class id).
import { Tensor, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import type { Trainable } from '../train/trainer.js';
import { subset } from '../train/trainer.js';
import type { SceneSet } from '../data/scenes.js';
import { Progress } from '../util/progress.js';

export interface SegScores {
  /** Mean IoU over classes with a non-empty union, in [0, 1]. */
  miou: number;
  /** IoU per class id (null: the class is neither in the truth nor predicted). */
  perClassIou: Array<number | null>;
  pixelAccuracy: number;
  /** Images evaluated. */
  n: number;
}

/** Argmax of each of the rows of K logits (first maximum wins). */
export function argmaxRows(logits: ArrayLike<number>, K: number): Int32Array {
  const rows = logits.length / K, out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0, bv = logits[i * K];
    for (let k = 1; k < K; k++) { const v = logits[i * K + k]; if (v > bv) { bv = v; best = k; } }
    out[i] = best;
  }
  return out;
}

/** A K x K pixel confusion matrix and the scores read off it. */
export class SegMeter {
  readonly confusion: Float64Array;
  images = 0;
  constructor(readonly K: number) { this.confusion = new Float64Array(K * K); }

  /** Count predicted vs true class ids, pixel by pixel. */
  add(pred: ArrayLike<number>, truth: ArrayLike<number>, images = 0): void {
    const K = this.K;
    if (pred.length !== truth.length) throw new Error(`SegMeter: ${pred.length} predictions for ${truth.length} labels`);
    for (let i = 0; i < pred.length; i++) {
      const t = truth[i], p = pred[i];
      if (!(t >= 0 && t < K && p >= 0 && p < K)) throw new Error(`SegMeter: class id out of range [0, ${K}) at pixel ${i}: truth ${t}, predicted ${p}`);
      this.confusion[t * K + p]++;
    }
    this.images += images;
  }

  /** Argmax the logits (one row of K per pixel) and count them. */
  addLogits(logits: ArrayLike<number>, truth: ArrayLike<number>, images = 0): void { this.add(argmaxRows(logits, this.K), truth, images); }

  scores(): SegScores {
    const K = this.K, M = this.confusion, per: Array<number | null> = [];
    let trace = 0, total = 0, sum = 0, counted = 0;
    for (let c = 0; c < K; c++) {
      let row = 0, col = 0;
      for (let j = 0; j < K; j++) { row += M[c * K + j]; col += M[j * K + c]; }
      const tp = M[c * K + c], union = row + col - tp;
      trace += tp; total += row;
      if (union > 0) { per.push(tp / union); sum += tp / union; counted++; } else per.push(null);
    }
    return { miou: counted ? sum / counted : 0, perClassIou: per, pixelAccuracy: total ? trace / total : 0, n: this.images };
  }
}

export interface SegEvalOptions { mean: number; std: number; batchSize?: number; limit?: number; quiet?: boolean }

/** Scores of `model` (pixel logits [B*S*S, K]) on `scenes`, the first `limit` spread evenly as the trainer picks them. */
export function evaluateSegmentation(model: Pick<Trainable, 'forward' | 'cfg'>, scenes: SceneSet, o: SegEvalOptions): SegScores {
  const n = Math.min(o.limit ?? scenes.n, scenes.n), B = o.batchSize ?? 50, S = model.cfg.imgSize;
  const meter = new SegMeter(model.cfg.numClasses), pick = subset(scenes.n, n), bar = new Progress('eval', n, 'img', o.quiet);
  for (let s = 0; s < n; s += B) {
    const idx = pick.subarray(s, Math.min(n, s + B)), m = idx.length;
    const batch = scenes.makeBatch(idx, { pad: S, mean: o.mean, std: o.std });
    const logits = noGrad(() => scope(() => model.forward(Tensor.from(batch.x.subarray(0, m * S * S), [m, 1, S, S]), false).toArray()));
    meter.addLogits(logits, batch.y.subarray(0, m * S * S), m);
    bar.update(s + m);
  }
  return meter.scores();
}
