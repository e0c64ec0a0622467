// Finite-difference gradient check for any differentiable op:
// L = sum(w * f(inputs)) with fixed random w, so dL/dy = w seeds the tape;
// each checked input element is nudged by +-eps (central differences, float64
// sums of float32 outputs). Reports the worst element on failure.
import * as assert from 'uvu/assert';
import { Tensor, scope } from '../src/tensor.js';
import { backward, noGrad, zeroGrad } from '../src/autograd.js';
import { randn } from './util.js';

export interface GradcheckOpts { eps?: number; atol?: number; rtol?: number; samples?: number; seed?: number; inputs?: Float32Array[]; skip?: number[] }

export function gradcheck(name: string, f: (xs: Tensor[]) => Tensor, shapes: number[][], o: GradcheckOpts = {}): void {
  const eps = o.eps ?? 1e-2, atol = o.atol ?? 2e-3, rtol = o.rtol ?? 2e-2, samples = o.samples ?? 12;
  const data = shapes.map((s, i) => o.inputs?.[i] ?? randn(s.reduce((a, b) => a * b, 1), (o.seed ?? 7) + 31 * i));
  const xs = shapes.map((s, i) => { const t = Tensor.from(data[i], s); t.requiresGrad = !(o.skip ?? []).includes(i); return t; });
  let w: Float32Array = new Float32Array(0);
  scope(() => {
    const y = f(xs);
    w = randn(y.size, 99);
    backward(y, Tensor.from(w, y.shape));
  });
  const lossAt = (): number => noGrad(() => scope(() => {
    const y = f(xs).toArray();
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  }));
  xs.forEach((x, i) => {
    if (!x.requiresGrad) return;
    assert.ok(x.grad, `${name}: no gradient reached input ${i}`);
    const ana = x.grad!.toArray();
    let maxAna = 0;
    for (const v of ana) maxAna = Math.max(maxAna, Math.abs(v));
    const n = x.size, step = Math.max(1, Math.floor(n / samples));
    for (let j = 0; j < n; j += step) {
      const orig = data[i][j];
      data[i][j] = orig + eps; x.write(data[i]); const lp = lossAt();
      data[i][j] = orig - eps; x.write(data[i]); const lm = lossAt();
      data[i][j] = orig; x.write(data[i]);
      const num = (lp - lm) / (2 * eps);
      const err = Math.abs(num - ana[j]);
      assert.ok(err <= atol + rtol * maxAna,
        `${name}: d/dx${i}[${j}] analytic ${ana[j].toExponential(4)} vs numeric ${num.toExponential(4)} (|diff| ${err.toExponential(2)}, max |grad| ${maxAna.toExponential(2)})`);
    }
  });
  zeroGrad(xs);
  for (const x of xs) x.dispose();
}
