// Channel gather/scatter: CDCP's masked compute slices the kept rows or
// columns of a weight by an int32 index list, runs the dense GEMM on the
// compact matrix, and scatter-adds the compact gradient back.
//   gather_rows(x, ldx, idx, k, cols, y)    y[r*cols + j]  = x[idx[r]*ldx + j]     r < k, j < cols
//   scatter_rows(y, idx, k, cols, x, ldx)   x[idx[r]*ldx + j] += y[r*cols + j]     (adjoint of gather_rows)
//   gather_cols(x, ldx, rows, idx, k, y)    y[r*k + j]     = x[r*ldx + idx[j]]     r < rows, j < k
//   scatter_cols(y, rows, idx, k, x, ldx)   x[r*ldx + idx[j]] += y[r*k + j]        (adjoint of gather_cols)
// idx points to k int32 values. The scatters accumulate (a repeated index adds
// up, in order r, then j), so a backward pass scatters into zeros or straight
// into an existing gradient. Pure copies and one f32 add per element: exact.
import type { Heap } from './heap.js';

export function gather_rows(h: Heap, x: number, ldx: number, idx: number, k: number, cols: number, y: number): void {
  const f = h.f32, I = idx >> 2;
  for (let r = 0; r < k; r++) {
    const src = (x >> 2) + h.i32[I + r] * ldx;
    for (let j = 0; j < cols; j++) f[(y >> 2) + r * cols + j] = f[src + j];
  }
}
export function scatter_rows(h: Heap, y: number, idx: number, k: number, cols: number, x: number, ldx: number): void {
  const f = h.f32, I = idx >> 2;
  for (let r = 0; r < k; r++) {
    const dst = (x >> 2) + h.i32[I + r] * ldx;
    for (let j = 0; j < cols; j++) f[dst + j] += f[(y >> 2) + r * cols + j];
  }
}
export function gather_cols(h: Heap, x: number, ldx: number, rows: number, idx: number, k: number, y: number): void {
  const f = h.f32, I = idx >> 2;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < k; j++) f[(y >> 2) + r * k + j] = f[(x >> 2) + r * ldx + h.i32[I + j]];
}
export function scatter_cols(h: Heap, y: number, rows: number, idx: number, k: number, x: number, ldx: number): void {
  const f = h.f32, I = idx >> 2;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < k; j++) f[(x >> 2) + r * ldx + h.i32[I + j]] += f[(y >> 2) + r * k + j];
}
