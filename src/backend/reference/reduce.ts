// Reductions (float64 accumulation in the reference).
//   row_sum(x, y, rows, cols)   y[r] = sum_c x[r, c]
//   col_sum(x, y, rows, cols)   y[c] = sum_r x[r, c]      (bias gradients)
//   sum_sq(x, n) -> sum x^2                                 (gradient-norm clipping)
import type { Heap } from './heap.js';

export function row_sum(h: Heap, x: number, y: number, rows: number, cols: number): void {
  const f = h.f32;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += f[(x >> 2) + r * cols + c];
    f[(y >> 2) + r] = s;
  }
}
export function col_sum(h: Heap, x: number, y: number, rows: number, cols: number): void {
  const f = h.f32, s = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) s[c] += f[(x >> 2) + r * cols + c];
  for (let c = 0; c < cols; c++) f[(y >> 2) + c] = s[c];
}
export function sum_sq(h: Heap, x: number, n: number): number {
  const f = h.f32;
  let s = 0;
  for (let i = 0; i < n; i++) s += f[(x >> 2) + i] ** 2;
  return s;
}
