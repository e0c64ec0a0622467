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
 * GELU for the int8 GEMM (qgemm.ts, one pass after it; its output is quantized to 7 bits
 * by the next Linear): x (1 + erf(z)) / 2, z = x / sqrt 2 clamped to [-4, 4],
 * erf(z) = z P(z^2) / Q(z^2) with P and Q of degree 5 (Q(0) = 1). Our own
 * fit: linearised least squares (Sanathanan-Koerner) with Lawson reweighting
 * on Chebyshev points of [0, 4] in float64, coefficients rounded to f32.
 * |erf error| 2.2e-8 in float64, 4.1e-7 with f32 coefficients and f32 Horner
 * (200001 points of [0, 4]); the clamp adds 1 - erf(4) = 1.5e-8. So GELU is
 * within about 0.2 |x| 1e-6 of exact for |x| < 5.66 and 8e-9 |x| beyond,
 * plus f32 rounding (test/kernels/qgemm.test.ts sweeps [-12, 12] against the
 * float64 reference and asserts 2e-6). Unlike geluv, the left tail keeps an
 * absolute, not a relative, accuracy: fine for values about to be quantized
 * with a step of 1/127 of their row's range. About 17 operations and one
 * division per vector against geluv's ~47: the int8 fc1 (197x192x768, one
 * thread) takes 0.82x the time it took with geluv.
 * Its constants are scaled by `one` (a lane-wise 1.0; lo = -4, hi = 4) that
 * the caller builds from a run-time value: V8 then keeps them in registers
 * (or spills them once) instead of rebuilding each (about three instructions)
 * at every use inside a loop.
 */
// The coefficients: P (z P(z^2)) and Q (Q(0) = 1), highest degree first.
const P5: f32 = 1.974554379557958e-6, P4: f32 = 2.8796467813663185e-4, P3: f32 = 4.002102650702e-3;
const P2: f32 = 5.3462810814380646e-2, P1: f32 = 0.19621878862380981, P0: f32 = 1.128378987312317;
const Q5: f32 = 3.747389200725593e-5, Q4: f32 = 1.2159019242972136e-3, Q3: f32 = 1.5441454015672207e-2;
const Q2: f32 = 0.116463303565979, Q1: f32 = 0.5072255730628967;

// @ts-ignore: decorator
@inline function geluRationalv(x: v128, one: v128, lo: v128, hi: v128): v128 {
  const z = f32x4.pmin(f32x4.pmax(f32x4.mul(x, f32x4.mul(f32x4.splat(0.7071067811865476), one)), lo), hi);
  const s = f32x4.mul(z, z);
  let p = f32x4.mul(f32x4.splat(P5), one);
  p = fma4(p, s, f32x4.mul(f32x4.splat(P4), one));
  p = fma4(p, s, f32x4.mul(f32x4.splat(P3), one));
  p = fma4(p, s, f32x4.mul(f32x4.splat(P2), one));
  p = fma4(p, s, f32x4.mul(f32x4.splat(P1), one));
  p = fma4(p, s, f32x4.mul(f32x4.splat(P0), one));
  let q = f32x4.mul(f32x4.splat(Q5), one);
  q = fma4(q, s, f32x4.mul(f32x4.splat(Q4), one));
  q = fma4(q, s, f32x4.mul(f32x4.splat(Q3), one));
  q = fma4(q, s, f32x4.mul(f32x4.splat(Q2), one));
  q = fma4(q, s, f32x4.mul(f32x4.splat(Q1), one));
  q = fma4(q, s, one);
  const e = f32x4.div(f32x4.mul(z, p), q);
  const half = f32x4.mul(f32x4.splat(0.5), one);
  return f32x4.mul(x, fma4(e, half, half));
}

/**
 * geluRationalv in place over rows x cols floats at p (row stride ld floats),
 * `one` = 1 given by the caller at run time (see above): the int8
 * fc1's GELU as one pass over its output after the GEMM.
 */
export function geluRationalRows(p: usize, ld: i32, rows: i32, cols: i32, one: f32): void {
  const vo = f32x4.splat(one), lo = f32x4.splat(-4 * one), hi = f32x4.splat(4 * one);
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
