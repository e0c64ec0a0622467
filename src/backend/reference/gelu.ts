// Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), as torch's default
// (approximate='none').
//   gelu_fwd(x, y, n)        y = gelu(x)
//   gelu_bwd(x, dy, dx, n)   dx = dy * (Phi(x) + x * phi(x))
// The reference erf is accurate to about 1e-15 in float64: a Taylor series
// below |x| = 3, Lentz-free backward continued fraction for erfc above.
import type { Heap } from './heap.js';

export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf x = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax, sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= -ax * ax / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * 2 / Math.sqrt(Math.PI);
  }
  // erfc x = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  let cf = ax;
  for (let k = 60; k >= 1; k--) cf = ax + (k / 2) / cf;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / cf;
  return Math.sign(x) * (1 - erfc);
}

export function gelu_fwd(h: Heap, x: number, y: number, n: number): void {
  const f = h.f32;
  for (let i = 0; i < n; i++) { const v = f[(x >> 2) + i]; f[(y >> 2) + i] = 0.5 * v * (1 + erf(v / Math.SQRT2)); }
}

export function gelu_bwd(h: Heap, x: number, dy: number, dx: number, n: number): void {
  const f = h.f32;
  for (let i = 0; i < n; i++) {
    const v = f[(x >> 2) + i];
    const cdf = 0.5 * (1 + erf(v / Math.SQRT2)), pdf = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
    f[(dx >> 2) + i] = f[(dy >> 2) + i] * (cdf + v * pdf);
  }
}
