// One AdamW step (decoupled weight decay, Loshchilov & Hutter), in the order of
// torch.optim.AdamW: decay first, then the Adam update.
// Spec: src/backend/reference/adamw.ts.
//
// Shapes: p, g, m, v are n floats (parameter, gradient, first and second
// moment), updated in place; none may alias another. No alignment needed.
//
//   adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2)
//     p -= lr wd p
//     m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//     p -= lr (m / bc1) / (sqrt(v / bc2) + eps)        bc1 = 1 - b1^t, bc2 = 1 - b2^t
//
// The per-step scalars (1 - lr wd, lr / bc1, 1 / bc2) are formed once in f32;
// per element the arithmetic is f32 with a true divide and square root, so p
// agrees with the float64 reference to a few ulp.
import { fma4 } from './simd';

export function adamw(p: usize, g: usize, m: usize, v: usize, n: i32,
  lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32): void {
  const decay: f32 = 1 - lr * wd, c1: f32 = 1 - b1, c2: f32 = 1 - b2;
  const step: f32 = lr / bc1, ibc2: f32 = 1 / bc2;
  const vdecay = f32x4.splat(decay), vb1 = f32x4.splat(b1), vb2 = f32x4.splat(b2);
  const vc1 = f32x4.splat(c1), vc2 = f32x4.splat(c2), vstep = f32x4.splat(step);
  const vibc2 = f32x4.splat(ibc2), veps = f32x4.splat(eps);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    const mi = fma4(vb1, v128.load(m + o), f32x4.mul(vc1, gi));
    const vi = fma4(vb2, v128.load(v + o), f32x4.mul(vc2, f32x4.mul(gi, gi)));
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(vi, vibc2)), veps);
    const pi = f32x4.sub(f32x4.mul(v128.load(p + o), vdecay), f32x4.div(f32x4.mul(vstep, mi), den));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    v128.store(p + o, pi);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const mi = b1 * load<f32>(m + o) + c1 * gi;
    const vi = b2 * load<f32>(v + o) + c2 * gi * gi;
    const pi = load<f32>(p + o) * decay - step * mi / (Mathf.sqrt(vi * ibc2) + eps);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, pi);
  }
}
