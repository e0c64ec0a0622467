// Knowledge distillation from a frozen teacher (the dense model) for CAIT's
// search and fine-tuning stages (docs/cait-method.md, "Pipeline").
// The trainer's loss is label-smoothed cross-entropy with weight 1; this adds
//   alpha * tau^2 KL(softmax(t/tau) || softmax(s/tau))        (soft, Hinton et al.)
// or, *option* hard, alpha * CE(s, argmax t)                 (DeiT's hard distillation)
// The teacher runs without gradients, in evaluation mode, on the same batch.
import { Tensor, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { crossEntropy, distillKL } from '../ops/index.js';
import type { Trainable } from '../train/trainer.js';

export interface DistillOptions {
  /** Weight of the distillation term (the ground-truth cross-entropy keeps weight 1). */
  alpha: number;
  /** Softmax temperature of the soft term. */
  tau: number;
  /** *option*: hard labels from the teacher (argmax) with cross-entropy instead of the soft KL. */
  hard: boolean;
}

export const DISTILL_DEFAULTS: Readonly<DistillOptions> = { alpha: 1, tau: 2, hard: false };

export interface Teacher { forward(x: Tensor, train?: boolean): Tensor }

export class Distiller {
  readonly options: Readonly<DistillOptions>;
  constructor(readonly teacher: Teacher, o: Partial<DistillOptions> = {}) {
    this.options = { ...DISTILL_DEFAULTS, ...o };
    if (!(this.options.tau > 0)) throw new Error(`distillation tau ${this.options.tau}: expected > 0`);
  }

  /** The teacher's logits for a batch (host copy; no tape, no tensors left behind). */
  teacherLogits(x: Tensor): Float32Array {
    return noGrad(() => scope(() => this.teacher.forward(x, false).toArray()));
  }

  /** The weighted term(s) for the trainer's extraLoss: [] when alpha is 0. */
  terms(logits: Tensor, x: Tensor): Array<[Tensor, number]> {
    const { alpha, tau, hard } = this.options;
    if (alpha === 0) return [];
    const t = this.teacherLogits(x);
    if (t.length !== logits.size) throw new Error(`distillation: teacher gives ${t.length} logits, student ${logits.size}`);
    if (!hard) return [[distillKL(logits, t, tau), alpha]];
    const [B, K] = logits.shape, labels = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (t[b * K + k] > t[b * K + best]) best = k;
      labels[b] = best;
    }
    return [[crossEntropy(logits, labels), alpha]];
  }
}

/**
 * A Trainable that is `student` plus distillation: same parameters, forward
 * and hooks, with the teacher's term appended to its extra loss terms.
 */
export function withDistillation(student: Trainable, d: Distiller): Trainable {
  return {
    get cfg() { return student.cfg; },
    namedParameters: () => student.namedParameters(),
    forward: (x, train) => student.forward(x, train),
    extraLoss: (logits, x, step, total) => [...(student.extraLoss?.(logits, x, step, total) ?? []), ...d.terms(logits, x)],
    afterStep: student.afterStep ? (step, total) => student.afterStep!(step, total) : undefined,
    saveExtras: student.saveExtras ? () => student.saveExtras!() : undefined,
  };
}
