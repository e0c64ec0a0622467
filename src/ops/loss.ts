// Losses. Logits are few (B x classes), so these run on the host in float64
// and hand one gradient tensor back to the tape.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

function logSoftmaxRow(z: Float32Array, off: number, K: number, out: Float64Array): void {
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, z[off + k]);
  let s = 0;
  for (let k = 0; k < K; k++) s += Math.exp(z[off + k] - m);
  const lse = m + Math.log(s);
  for (let k = 0; k < K; k++) out[k] = z[off + k] - lse;
}

/**
 * Mean softmax cross-entropy with label smoothing eps (torch's
 * label_smoothing: target = (1 - eps) onehot + eps / K). Returns a [1] tensor.
 */
export function crossEntropy(logits: Tensor, labels: ArrayLike<number>, smoothing = 0): Tensor {
  const [B, K] = logits.shape, be = logits.backend;
  if (labels.length !== B) throw new Error(`crossEntropy: ${labels.length} labels for ${B} rows`);
  const z = logits.toArray(), lp = new Float64Array(K), grad = new Float32Array(B * K);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    logSoftmaxRow(z, b * K, K, lp);
    const y = labels[b];
    if (!(y >= 0 && y < K && Number.isInteger(y))) throw new Error(`crossEntropy: label ${y} out of range [0, ${K})`);
    for (let k = 0; k < K; k++) {
      const q = (k === y ? 1 - smoothing : 0) + smoothing / K;
      loss -= q * lp[k];
      grad[b * K + k] = (Math.exp(lp[k]) - q) / B;
    }
  }
  const out = Tensor.from([loss / B], [1], be);
  return record(out, [logits], (g) => {
    const d = Tensor.from(grad, logits.shape, be);
    call(be, 'scale', { x: d.ptr, y: d.ptr, n: d.size, s: g.item() });
    return [d];
  });
}

/**
 * Knowledge distillation (Hinton et al.): tau^2 * KL(softmax(t/tau) || softmax(s/tau)),
 * mean over the batch. The teacher's logits are constants.
 */
export function distillKL(student: Tensor, teacher: Float32Array, tau: number): Tensor {
  const [B, K] = student.shape, be = student.backend;
  const s = student.toArray(), ls = new Float64Array(K), lt = new Float64Array(K), grad = new Float32Array(B * K);
  const ss = new Float32Array(K), tt = new Float32Array(K);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < K; k++) { ss[k] = s[b * K + k] / tau; tt[k] = teacher[b * K + k] / tau; }
    logSoftmaxRow(ss, 0, K, ls);
    logSoftmaxRow(tt, 0, K, lt);
    for (let k = 0; k < K; k++) {
      const pt = Math.exp(lt[k]);
      loss += pt * (lt[k] - ls[k]);
      grad[b * K + k] = (tau * (Math.exp(ls[k]) - pt)) / B;
    }
  }
  const out = Tensor.from([(tau * tau * loss) / B], [1], be);
  return record(out, [student], (g) => {
    const d = Tensor.from(grad, student.shape, be);
    call(be, 'scale', { x: d.ptr, y: d.ptr, n: d.size, s: g.item() });
    return [d];
  });
}

/** Weighted sum of scalar losses: sum_i w_i L_i. */
export function weightedSum(terms: Array<[Tensor, number]>): Tensor {
  const be = terms[0][0].backend;
  const out = Tensor.from([terms.reduce((s, [t, w]) => s + w * t.item(), 0)], [1], be);
  return record(out, terms.map(([t]) => t), (g) => {
    const gv = g.item();
    return terms.map(([, w]) => Tensor.from([gv * w], [1], be));
  });
}
