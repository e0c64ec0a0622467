// AdamW step with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW:
//   p -= lr * wd * p
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)        bc1 = 1 - b1^t, bc2 = 1 - b2^t
// adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2)
import type { Heap } from './heap.js';

export function adamw(h: Heap, p: number, g: number, m: number, v: number, n: number,
  lr: number, b1: number, b2: number, eps: number, wd: number, bc1: number, bc2: number): void {
  const f = h.f32, P = p >> 2, G = g >> 2, Mo = m >> 2, V = v >> 2;
  for (let i = 0; i < n; i++) {
    const gi = f[G + i];
    let pi = f[P + i] * (1 - lr * wd);
    const mi = b1 * f[Mo + i] + (1 - b1) * gi;
    const vi = b2 * f[V + i] + (1 - b2) * gi * gi;
    pi -= lr * (mi / bc1) / (Math.sqrt(vi / bc2) + eps);
    f[Mo + i] = mi; f[V + i] = vi; f[P + i] = pi;
  }
}
