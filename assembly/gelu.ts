// Exact GELU, x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), as torch's default
// (approximate='none'), not the tanh approximation.
// Spec: src/backend/reference/gelu.ts.
//
// Shapes: x, y, dy, dx are n floats, any n >= 0, no alignment needed.
// Aliasing: y == x, dx == dy and dx == x are allowed (element i is read
// before it is written, and nothing else is read).
//
//   gelu_fwd(x, y, n)        y = x Phi(x)
//   gelu_bwd(x, dy, dx, n)   dx = dy (Phi(x) + x phi(x)),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
//
// Phi is phi4 of assembly/math.ts: our own fit (shape after Juffa's erff: a
// polynomial for |x| < 1, exp of a polynomial beyond), no tables. Measured
// against the float64 reference erf (src/backend/reference/gelu.ts) on 2e6
// points evenly spaced in [-8, 8]:
//   max |Phi error| 6.8e-8 (simd build), 5.9e-8 (relaxed); as an erf,
//     erf(z) = 2 Phi(z sqrt 2) - 1, max |erf error| 1.36e-7 / 1.18e-7;
//   relative error of Phi on [-5.5, -1] below 2.3e-6: Phi there is 0.5 erfc
//     computed directly (no 1 + erf cancellation).
// End to end (test/kernels/ops.test.ts, 240001 points on [-12, 12]): max
// |gelu error| 3.8e-7 (at x = 4.89, under one ulp of y = 4.89, 4.8e-7), max
// |gelu' error| 1.4e-7 (simd) / 1.2e-7 (relaxed).
// Tails: for |x| >= 5.66, Phi is exactly 0 or 1 (the true 0.5 erfc there is
// below 7.6e-9). Any f32 input is safe: exp4 clamps; gelu(-inf) is NaN
// (-inf * 0), as in the reference.
import { exp4, phi4, loadN, storeN } from './math';

/** 1 / sqrt(2 pi) */
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// @ts-ignore: decorator
@inline export function geluv(x: v128): v128 {
  return f32x4.mul(x, phi4(x));
}

// @ts-ignore: decorator
@inline function dgeluv(x: v128, dy: v128): v128 {
  // Phi(x) + x phi(x); phi from exp4(-x^2/2) (exp4 returns 0 below -87.3,
  // i.e. |x| > 13.2, where phi is below 1e-38 anyway)
  const pdf = f32x4.mul(exp4(f32x4.mul(f32x4.mul(x, x), f32x4.splat(-0.5))), f32x4.splat(INV_SQRT_2PI));
  return f32x4.mul(dy, f32x4.add(phi4(x), f32x4.mul(x, pdf)));
}

// The loops run four vectors per iteration: V8 re-materialises every v128
// constant inside the loop body (there are ~40 here), and unrolling lets the
// four copies share them; measured 1.7x faster than one vector per iteration.

export function gelu_fwd(x: usize, y: usize, n: i32): void {
  const n16 = n & ~15, n4 = n & ~3, tail = n & 3;
  let i = 0;
  for (; i < n16; i += 16) {
    const o = <usize>i << 2;
    const a = geluv(v128.load(x + o)), b = geluv(v128.load(x + o, 16));
    const c = geluv(v128.load(x + o, 32)), d = geluv(v128.load(x + o, 48));
    v128.store(y + o, a); v128.store(y + o, b, 16); v128.store(y + o, c, 32); v128.store(y + o, d, 48);
  }
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, geluv(v128.load(x + o)));
  }
  // the tail runs the same vector code on a partly filled vector, so results
  // do not depend on an element's position
  if (tail) {
    const o = <usize>n4 << 2;
    storeN(y + o, geluv(loadN(x + o, tail, 0)), tail);
  }
}

export function gelu_bwd(x: usize, dy: usize, dx: usize, n: i32): void {
  const n16 = n & ~15, n4 = n & ~3, tail = n & 3;
  let i = 0;
  for (; i < n16; i += 16) {
    const o = <usize>i << 2;
    const a = dgeluv(v128.load(x + o), v128.load(dy + o));
    const b = dgeluv(v128.load(x + o, 16), v128.load(dy + o, 16));
    const c = dgeluv(v128.load(x + o, 32), v128.load(dy + o, 32));
    const d = dgeluv(v128.load(x + o, 48), v128.load(dy + o, 48));
    v128.store(dx + o, a); v128.store(dx + o, b, 16); v128.store(dx + o, c, 32); v128.store(dx + o, d, 48);
  }
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, dgeluv(v128.load(x + o), v128.load(dy + o)));
  }
  if (tail) {
    const o = <usize>n4 << 2;
    storeN(dx + o, dgeluv(loadN(x + o, tail, 0), loadN(dy + o, tail, 0)), tail);
  }
}

/**
 * GELU in place over a GEMM's stored tile: rows x cols floats at p, row
 * stride ld floats (gemm.ts and qgemm.ts call it after a tile's store when the
 * GELU flag is set). A pass after the store rather than geluv inside it: V8
 * rematerialises each of geluv's ~40 constants at every inlined copy, and with
 * eight copies next to a 4x8 tile's live accumulators the int8 fc1
 * (197x192x768, one thread) ran at 28 GMAC/s against 50 without GELU; four
 * vectors here share one set of constants (33 GMAC/s). Same values as geluv
 * in the store: GELU of each stored f32, lane by lane (gelu_fwd's tail too).
 */
export function geluTile(p: usize, ld: i32, rows: i32, cols: i32): void {
  const rs = <usize>ld << 2;
  if (rows == 4 && cols == 8) { gelu2x8(p, p + rs); gelu2x8(p + rs * 2, p + rs * 3); return; }
  for (let i = 0; i < rows; i++) gelu_fwd(p + rs * <usize>i, p + rs * <usize>i, cols);
}

// @ts-ignore: decorator
@inline function gelu2x8(p: usize, q: usize): void {
  const a = geluv(v128.load(p)), b = geluv(v128.load(p, 16)), c = geluv(v128.load(q)), d = geluv(v128.load(q, 16));
  v128.store(p, a); v128.store(p, b, 16); v128.store(q, c); v128.store(q, d, 16);
}
