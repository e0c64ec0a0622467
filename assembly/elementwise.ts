// Elementwise ops. Spec: src/backend/reference/elementwise.ts.
//
// Shapes: a, x, y are n floats; b is m floats broadcast as a trailing vector,
// read at i % m (m = n: same shape; m = C: a bias row added to every row of
// [rows, C]; m = N*C: a position embedding added to every image). m >= 1 and in
// practice divides n (a partial last chunk is handled too). copy2d copies a
// rows x cols block between row strides sld and dld (elements).
// Aliasing: y may equal a or x (in-place), and y may equal b when m = n;
// copy2d rows may overlap (memmove per row, as the reference's copyWithin).
// No alignment needed anywhere.
//
//   add(a, b, y, n, m)      y[i] = a[i] + b[i % m]
//   mul(a, b, y, n, m)      y[i] = a[i] * b[i % m]
//   scale(x, y, n, s)       y[i] = s x[i]
//   axpy(x, y, n, alpha)    y[i] += alpha x[i]
//   fill(y, n, v)           y[i] = v
//   copy2d(src, sld, dst, dld, rows, cols)   dst[r*dld + c] = src[r*sld + c]
//
// All exact to one f32 rounding per operation, like the reference (axpy: two
// roundings in the simd build, one where the relaxed build fuses).
import { fma4 } from './simd';

// y[0..len) = a[0..len) op b[0..len): the shared inner loop of add and mul.
// `op` 0 = add, 1 = mul; a compile-time constant after inlining.
// @ts-ignore: decorator
@inline function binary(op: i32, a: usize, b: usize, y: usize, len: i32): void {
  const l4 = len & ~3;
  let i = 0;
  for (; i < l4; i += 4) {
    const o = <usize>i << 2;
    const va = v128.load(a + o), vb = v128.load(b + o);
    v128.store(y + o, op == 0 ? f32x4.add(va, vb) : f32x4.mul(va, vb));
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    const sa = load<f32>(a + o), sb = load<f32>(b + o);
    store<f32>(y + o, op == 0 ? sa + sb : sa * sb);
  }
}

// y[0..len) = a[0..len) op s, s a scalar broadcast (the m = 1 case).
// @ts-ignore: decorator
@inline function binaryScalar(op: i32, a: usize, s: f32, y: usize, len: i32): void {
  const l4 = len & ~3, vs = f32x4.splat(s);
  let i = 0;
  for (; i < l4; i += 4) {
    const o = <usize>i << 2;
    const va = v128.load(a + o);
    v128.store(y + o, op == 0 ? f32x4.add(va, vs) : f32x4.mul(va, vs));
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    const sa = load<f32>(a + o);
    store<f32>(y + o, op == 0 ? sa + s : sa * s);
  }
}

// Broadcast walk: b is re-read from its start for every chunk of m elements,
// so the inner loop is a same-shape vector loop (no i % m per element).
// @ts-ignore: decorator
@inline function broadcast(op: i32, a: usize, b: usize, y: usize, n: i32, m: i32): void {
  if (m == 1) { binaryScalar(op, a, load<f32>(b), y, n); return; }
  if (m >= n) { binary(op, a, b, y, n); return; }
  for (let i = 0; i < n; i += m) {
    const len = min(m, n - i);
    const o = <usize>i << 2;
    binary(op, a + o, b, y + o, len);
  }
  // (for 1 < m < 4 every chunk is scalar tail; no model here has such shapes)
}

export function add(a: usize, b: usize, y: usize, n: i32, m: i32): void {
  broadcast(0, a, b, y, n, m);
}

export function mul(a: usize, b: usize, y: usize, n: i32, m: i32): void {
  broadcast(1, a, b, y, n, m);
}

export function scale(x: usize, y: usize, n: i32, s: f32): void {
  binaryScalar(1, x, s, y, n);
}

export function axpy(x: usize, y: usize, n: i32, alpha: f32): void {
  const n8 = n & ~7, n4 = n & ~3, va = f32x4.splat(alpha);
  let i = 0;
  for (; i < n8; i += 8) {
    const o = <usize>i << 2;
    const y0 = fma4(va, v128.load(x + o), v128.load(y + o));
    const y1 = fma4(va, v128.load(x + o, 16), v128.load(y + o, 16));
    v128.store(y + o, y0);
    v128.store(y + o, y1, 16);
  }
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, fma4(va, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

export function fill(y: usize, n: i32, v: f32): void {
  const n4 = n & ~3, vv = f32x4.splat(v);
  let i = 0;
  for (; i < n4; i += 4) v128.store(y + (<usize>i << 2), vv);
  for (; i < n; i++) store<f32>(y + (<usize>i << 2), v);
}

export function copy2d(src: usize, sld: i32, dst: usize, dld: i32, rows: i32, cols: i32): void {
  if (cols <= 0) return;
  const bytes = <usize>cols << 2;
  // contiguous, non-overlapping source and destination: one block move (with
  // overlap, row-by-row order is observable and the reference's is kept)
  const total = bytes * <usize>max(rows, 0);
  if (sld == cols && dld == cols && (dst + total <= src || src + total <= dst)) {
    memory.copy(dst, src, total);
    return;
  }
  for (let r = 0; r < rows; r++) {
    memory.copy(dst + (<usize>r * <usize>dld << 2), src + (<usize>r * <usize>sld << 2), bytes);
  }
}
