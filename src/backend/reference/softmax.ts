// Row softmax over the last axis, max-subtracted for range safety.
//   softmax_fwd(x, y, rows, cols)        y = softmax(x) row-wise (x == y allowed)
//   softmax_bwd(y, dy, dx, rows, cols)   dx = y * (dy - sum(dy * y))  (dx == dy allowed)
import type { Heap } from './heap.js';

export function softmax_fwd(h: Heap, x: number, y: number, rows: number, cols: number): void {
  const f = h.f32;
  for (let r = 0; r < rows; r++) {
    const X = (x >> 2) + r * cols, Y = (y >> 2) + r * cols;
    let m = -Infinity;
    for (let j = 0; j < cols; j++) m = Math.max(m, f[X + j]);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(f[X + j] - m);
    for (let j = 0; j < cols; j++) f[Y + j] = Math.exp(f[X + j] - m) / s;
  }
}

export function softmax_bwd(h: Heap, y: number, dy: number, dx: number, rows: number, cols: number): void {
  const f = h.f32;
  for (let r = 0; r < rows; r++) {
    const Y = (y >> 2) + r * cols, DY = (dy >> 2) + r * cols, DX = (dx >> 2) + r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += f[DY + j] * f[Y + j];
    for (let j = 0; j < cols; j++) f[DX + j] = f[Y + j] * (f[DY + j] - s);
  }
}
