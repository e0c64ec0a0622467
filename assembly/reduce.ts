// Reductions. Spec: src/backend/reference/reduce.ts (float64 accumulation).
//
// Shapes: x is [rows, cols] row-major contiguous (or n floats for sum_sq);
// row_sum writes y[rows], col_sum writes y[cols]. y must not alias x.
// No alignment needed.
//
//   row_sum(x, y, rows, cols)   y[r] = sum_c x[r, c]
//   col_sum(x, y, rows, cols)   y[c] = sum_r x[r, c]      (bias gradients)
//   sum_sq(x, n) -> f64         sum x^2                   (gradient-norm clipping)
//
// Accuracy: all three accumulate in float64 (f32x4 loads widened to two
// f64x2), like the reference: col_sum runs over B*N = thousands of rows for a
// bias gradient and sum_sq over every parameter, where f32 sums would lose
// digits. The only rounding left is the final f64 -> f32 store (and the
// order of the f64 additions), so results match the reference to ~1 ulp.
// They are memory-bound; the widening costs little.

// @ts-ignore: decorator
@inline function lo64(v: v128): v128 { return f64x2.promote_low_f32x4(v); }
// @ts-ignore: decorator
@inline function hi64(v: v128): v128 { return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)); }
/** Two f64x2 rounded to one f32x4 (lanes a0 a1 b0 b1). */
// @ts-ignore: decorator
@inline function narrow(a: v128, b: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}
// @ts-ignore: decorator
@inline function hsum64(v: v128): f64 { return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1); }

export function row_sum(x: usize, y: usize, rows: i32, cols: i32): void {
  const bytes = <usize>cols << 2, c4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const X = x + <usize>r * bytes;
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    let c = 0;
    for (; c < c4; c += 4) {
      const v = v128.load(X + (<usize>c << 2));
      s0 = f64x2.add(s0, lo64(v));
      s1 = f64x2.add(s1, hi64(v));
    }
    let s = hsum64(f64x2.add(s0, s1));
    for (; c < cols; c++) s += <f64>load<f32>(X + (<usize>c << 2));
    store<f32>(y + (<usize>r << 2), <f32>s);
  }
}

export function col_sum(x: usize, y: usize, rows: i32, cols: i32): void {
  const stride = <usize>cols << 2;
  // 16 columns (one 64-byte line) at a time: eight f64x2 accumulators walked
  // down all rows, so each line of x is fetched once; the prefetcher follows
  // the constant stride. Then 4 columns at a time, then single columns.
  const c16 = cols & ~15, c4 = cols & ~3;
  let c = 0;
  for (; c < c16; c += 16) {
    let p = x + (<usize>c << 2);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    let s4 = f64x2.splat(0), s5 = f64x2.splat(0), s6 = f64x2.splat(0), s7 = f64x2.splat(0);
    for (let r = 0; r < rows; r++) {
      const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
      s0 = f64x2.add(s0, lo64(v0)); s1 = f64x2.add(s1, hi64(v0));
      s2 = f64x2.add(s2, lo64(v1)); s3 = f64x2.add(s3, hi64(v1));
      s4 = f64x2.add(s4, lo64(v2)); s5 = f64x2.add(s5, hi64(v2));
      s6 = f64x2.add(s6, lo64(v3)); s7 = f64x2.add(s7, hi64(v3));
      p += stride;
    }
    const o = y + (<usize>c << 2);
    v128.store(o, narrow(s0, s1));
    v128.store(o, narrow(s2, s3), 16);
    v128.store(o, narrow(s4, s5), 32);
    v128.store(o, narrow(s6, s7), 48);
  }
  for (; c < c4; c += 4) {
    let p = x + (<usize>c << 2);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    for (let r = 0; r < rows; r++) {
      const v = v128.load(p);
      s0 = f64x2.add(s0, lo64(v)); s1 = f64x2.add(s1, hi64(v));
      p += stride;
    }
    v128.store(y + (<usize>c << 2), narrow(s0, s1));
  }
  for (; c < cols; c++) {
    let p = x + (<usize>c << 2);
    let s: f64 = 0;
    for (let r = 0; r < rows; r++) { s += <f64>load<f32>(p); p += stride; }
    store<f32>(y + (<usize>c << 2), <f32>s);
  }
}

export function sum_sq(x: usize, n: i32): f64 {
  // squares of f32 values are exact in f64
  const n4 = n & ~3;
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  let i = 0;
  for (; i < n4; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const a = lo64(v), b = hi64(v);
    s0 = f64x2.add(s0, f64x2.mul(a, a));
    s1 = f64x2.add(s1, f64x2.mul(b, b));
  }
  let s = hsum64(f64x2.add(s0, s1));
  for (; i < n; i++) { const v = <f64>load<f32>(x + (<usize>i << 2)); s += v * v; }
  return s;
}
