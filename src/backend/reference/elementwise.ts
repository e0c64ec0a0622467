// Elementwise ops. `m` broadcasts a trailing vector: b is read at i % m, so
// m = n is the same-shape case, m = C adds a bias row, m = N*C a position
// embedding to every image of a batch. Outputs may alias inputs.
//   add(a, b, y, n, m)      y[i] = a[i] + b[i % m]
//   mul(a, b, y, n, m)      y[i] = a[i] * b[i % m]
//   scale(x, y, n, s)       y[i] = s * x[i]
//   axpy(x, y, n, alpha)    y[i] += alpha * x[i]
//   fill(y, n, v)           y[i] = v
//   copy2d(src, sld, dst, dld, rows, cols)   dst[r*dld + c] = src[r*sld + c]
import type { Heap } from './heap.js';

export function add(h: Heap, a: number, b: number, y: number, n: number, m: number): void {
  const f = h.f32, A = a >> 2, B = b >> 2, Y = y >> 2;
  for (let i = 0; i < n; i++) f[Y + i] = f[A + i] + f[B + (i % m)];
}
export function mul(h: Heap, a: number, b: number, y: number, n: number, m: number): void {
  const f = h.f32, A = a >> 2, B = b >> 2, Y = y >> 2;
  for (let i = 0; i < n; i++) f[Y + i] = f[A + i] * f[B + (i % m)];
}
export function scale(h: Heap, x: number, y: number, n: number, s: number): void {
  const f = h.f32;
  for (let i = 0; i < n; i++) f[(y >> 2) + i] = Math.fround(s) * f[(x >> 2) + i];
}
export function axpy(h: Heap, x: number, y: number, n: number, alpha: number): void {
  const f = h.f32;
  for (let i = 0; i < n; i++) f[(y >> 2) + i] += Math.fround(alpha) * f[(x >> 2) + i];
}
export function fill(h: Heap, y: number, n: number, v: number): void {
  h.f32.fill(v, y >> 2, (y >> 2) + n);
}
export function copy2d(h: Heap, src: number, sld: number, dst: number, dld: number, rows: number, cols: number): void {
  const f = h.f32;
  for (let r = 0; r < rows; r++) f.copyWithin((dst >> 2) + r * dld, (src >> 2) + r * sld, (src >> 2) + r * sld + cols);
}
