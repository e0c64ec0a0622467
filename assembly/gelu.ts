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
import { fma4 } from './simd';

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
 * GELU for the int8 GEMM (qgemm.ts, one pass after it; its output is quantized
 * to 7 bits by the next Linear, the prefix rows' to about 14): with t = x
 * clamped to [-4 sqrt 2, 4 sqrt 2] and u = t^2, GELU(x) = x (1/2 + t P(u) /
 * Q(u)), P and Q of degree 4 (Q(0) = 1), i.e. erf(z) = 2 t P / Q at z = t /
 * sqrt 2. Our own fit: erf(z) = z p(z^2) / q(z^2) on Chebyshev points of
 * [0, 4], linearised least squares (Sanathanan-Koerner) with Lawson
 * reweighting in float64, then P_k = p_k / (2^(k+1) sqrt 2), Q_k = q_k / 2^k
 * (the 1/sqrt 2 and the 1/2 folded in), rounded to f32. Measured in f32 on
 * 240001 points of [-12, 12]: max |GELU error| 6.0e-6 for |x| < 5.66, and
 * within 1.13e-6 max(1, |x|) everywhere (beyond the clamp, x times the fit's
 * error at z = 4); test/kernels/qgemm.test.ts asserts 1.2e-6 max(1, |x|).
 * Degree 4 against the earlier 5 (4e-7 of erf): 11 multiplies and FMAs per
 * vector against 15, on the two pipes that run them, for an error of about
 * 1% of a 14-bit step of a row spanning 10 (0.01% of a 7-bit one). Unlike geluv, the left tail
 * keeps an absolute, not a relative, accuracy.
 * Its constants are scaled by `one` (a lane-wise 1.0; lo = -4 sqrt 2, hi =
 * 4 sqrt 2) that the caller builds from a run-time value: V8 then keeps them
 * in registers (or spills them once) instead of rebuilding each (about
 * three instructions) at every use inside a loop.
 */
const P4: f32 = -4.914039664072334e-7, P3: f32 = -8.258380148618016e-6, P2: f32 = 0.0036718950141221285;
const P1: f32 = 0.022754453122615814, P0: f32 = 0.3989476263523102;
const Q4: f32 = -1.5194713341770694e-5, Q3: f32 = 0.0009840873535722494, Q2: f32 = 0.0214119553565979;
const Q1: f32 = 0.22376738488674164;
/** 4 sqrt 2 in f32 */
const GELU_CLAMP: f32 = 5.656854152679443;

// @ts-ignore: decorator
@inline function geluRationalv(x: v128, one: v128, lo: v128, hi: v128): v128 {
  const t = f32x4.pmin(f32x4.pmax(x, lo), hi);
  const u = f32x4.mul(t, t);
  let p = f32x4.mul(f32x4.splat(P4), one);
  p = fma4(p, u, f32x4.mul(f32x4.splat(P3), one));
  p = fma4(p, u, f32x4.mul(f32x4.splat(P2), one));
  p = fma4(p, u, f32x4.mul(f32x4.splat(P1), one));
  p = fma4(p, u, f32x4.mul(f32x4.splat(P0), one));
  let q = f32x4.mul(f32x4.splat(Q4), one);
  q = fma4(q, u, f32x4.mul(f32x4.splat(Q3), one));
  q = fma4(q, u, f32x4.mul(f32x4.splat(Q2), one));
  q = fma4(q, u, f32x4.mul(f32x4.splat(Q1), one));
  q = fma4(q, u, one);
  const h = f32x4.div(f32x4.mul(t, p), q);
  return f32x4.mul(x, f32x4.add(h, f32x4.mul(f32x4.splat(0.5), one)));
}

/**
 * geluRationalv in place over rows x cols floats at p (row stride ld floats),
 * `one` = 1 given by the caller at run time (see above): the int8
 * fc1's GELU as one pass over its output after the GEMM.
 */
export function geluRationalRows(p: usize, ld: i32, rows: i32, cols: i32, one: f32): void {
  const vo = f32x4.splat(one), lo = f32x4.splat(-GELU_CLAMP * one), hi = f32x4.splat(GELU_CLAMP * one);
  const rs = <usize>ld << 2, c16 = cols & ~15;
  for (let i = 0; i < rows; i++) {
    const r = p + rs * <usize>i;
    let j = 0;
    for (; j < c16; j += 16) {
      const o = r + (<usize>j << 2);
      const a = geluRationalv(v128.load(o), vo, lo, hi), b = geluRationalv(v128.load(o, 16), vo, lo, hi);
      const c = geluRationalv(v128.load(o, 32), vo, lo, hi), d = geluRationalv(v128.load(o, 48), vo, lo, hi);
      v128.store(o, a); v128.store(o, b, 16); v128.store(o, c, 32); v128.store(o, d, 48);
    }
    for (; j + 4 <= cols; j += 4) v128.store(r + (<usize>j << 2), geluRationalv(v128.load(r + (<usize>j << 2)), vo, lo, hi));
    if (j < cols) storeN(r + (<usize>j << 2), geluRationalv(loadN(r + (<usize>j << 2), cols - j, 0), vo, lo, hi), cols - j);
  }
}

/**
 * Exact GELU (geluv) in place over the float GEMM's stored tile (gemm.ts):
 * rows x cols floats at p, row stride ld floats. Called after a tile's store
 * when the GELU flag is set, rather than applying GELU inside the store: V8
 * rematerialises each of geluv's ~40 constants at every inlined copy, and
 * with eight copies next to a 4x8 tile's live accumulators the int8 fc1 of
 * the time (197x192x768, one thread) ran at 28 GMAC/s against 50 without
 * GELU; four vectors here share one set of constants (33 GMAC/s). Same values
 * as the function in the store: each stored f32, lane by lane (the tails run
 * the same vector code).
 */
export function geluTile(p: usize, ld: i32, rows: i32, cols: i32): void {
  const rs = <usize>ld << 2;
  if (rows == 4 && cols == 8) { gelu2x8(p, p + rs); gelu2x8(p + rs * 2, p + rs * 3); return; }
  for (let i = 0; i < rows; i++) { const r = p + rs * <usize>i; gelu_fwd(r, r, cols); }
}

// Two rows of 8 (four vectors) with one set of constants.
// @ts-ignore: decorator
@inline function gelu2x8(p: usize, q: usize): void {
  const a = geluv(v128.load(p)), b = geluv(v128.load(p, 16));
  const c = geluv(v128.load(q)), d = geluv(v128.load(q, 16));
  v128.store(p, a); v128.store(p, b, 16); v128.store(q, c); v128.store(q, d, 16);
}
