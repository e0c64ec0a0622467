// Vectorised transcendental helpers shared by softmax.ts and gelu.ts, plus
// partial-vector load/store for loop tails.
//
// No tables, no globals: everything is an inlined polynomial on f32x4, so the
// module keeps no static data (it is meant to run in several threads over one
// shared memory) and scalar tails can reuse the same code on a partly filled
// vector, giving bit-identical results whatever the alignment or length.
//
// Accuracy figures below were measured by compiling these functions alone and
// comparing with float64 references over dense grids (see the comments at each
// function for the grid); "simd" is the plain build, "relaxed" the build where
// fma4 may fuse.
import { fma4 } from './simd';

// ---- partial vectors ------------------------------------------------------

/** Lanes [0, k) from p (k in 1..3), the other lanes set to `fill`. Reads only k floats. */
// @ts-ignore: decorator
@inline export function loadN(p: usize, k: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (k > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (k > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Stores lanes [0, k) of v at p (k in 1..3). Writes only k floats. */
// @ts-ignore: decorator
@inline export function storeN(p: usize, v: v128, k: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (k > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (k > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Max of the four lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const s = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

// ---- exp ------------------------------------------------------------------

/**
 * e^x on four lanes, after Cephes expf (S. Moshier): x = k ln2 + r with
 * k = nearest(x / ln2), |r| <= ln2/2, ln2 split in two (C1 has 9 significant
 * bits, so k*C1 is exact); e^r = 1 + r + r^2 P(r), P of degree 5 (Cephes
 * coefficients); then 2^k is applied by adding k to the exponent field.
 *
 * Range: inputs below -87.33654 (= ln 2^-126, where e^x would be subnormal)
 * return 0 (absolute error < 1.2e-38); inputs above 88 are clamped to 88
 * (e^88 = 1.65e38; no caller here needs more: softmax feeds x - max <= 0 and
 * GELU feeds -x^2/2 and log erfc <= 0). NaN propagates.
 *
 * Measured max relative error vs Math.exp (float64), 1e6 points evenly spaced
 * on [-87.3, 88] plus 1e6 on [-1, 1]: 8.1e-8 (simd build), 8.5e-8 (relaxed),
 * i.e. under 1 ulp (test/kernels/ops.test.ts re-measures this and asserts
 * <= 1e-7).
 */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  const lo = f32x4.splat(-87.33654);
  // pmin/pmax are single instructions (minps/maxps); f32x4.min/max need a
  // NaN/-0 fix-up sequence on x64. pmax(NaN, lo) = NaN, so NaN still propagates.
  const xc = f32x4.pmin(f32x4.pmax(x, lo), f32x4.splat(88.0));
  // k = nearest(x / ln2) by the 1.5 * 2^23 trick: adding it rounds to an
  // integer (|k| <= 127 here) and leaves k in the low mantissa bits, which is
  // cheaper than f32x4.nearest + i32x4.trunc_sat (a long sequence on x64)
  const magic = f32x4.splat(12582912.0);
  const t = fma4(xc, f32x4.splat(1.44269504088896341), magic);
  const k = f32x4.sub(t, magic);
  let r = fma4(k, f32x4.splat(-0.693359375), xc);
  r = fma4(k, f32x4.splat(2.12194440e-4), r);
  let p = f32x4.splat(1.9875691500e-4);
  p = fma4(p, r, f32x4.splat(1.3981999507e-3));
  p = fma4(p, r, f32x4.splat(8.3334519073e-3));
  p = fma4(p, r, f32x4.splat(4.1665795894e-2));
  p = fma4(p, r, f32x4.splat(1.6666665459e-1));
  p = fma4(p, r, f32x4.splat(5.0000001201e-1));
  const e = f32x4.add(fma4(p, f32x4.mul(r, r), r), f32x4.splat(1));
  // 2^k: add k (= bits(t) - bits(magic)) to the exponent field of e
  const scaled = i32x4.add(e, i32x4.shl(i32x4.sub(t, magic), 23));
  // x < lo (including -inf) -> 0; NaN compares false and stays NaN
  return v128.andnot(scaled, f32x4.lt(x, lo));
}

// ---- normal CDF (for exact GELU) ------------------------------------------

/**
 * Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the standard normal CDF, on four lanes.
 * Two pieces, both in x directly (no x / sqrt 2 rounding):
 *
 *   |x| <  1:     Phi = 0.5 + x R(x^2),  R of degree 5 (R(x^2) ~ erf(x/sqrt2) / 2x)
 *   |x| >= 1:     E = erfc(|x| / sqrt 2) = exp(Q(|x|)),  Q of degree 8 (~ log erfc)
 *                 Phi = 0.5 E for x < 0,  1 - 0.5 E for x > 0
 *   |x| >= 5.66:  E = 0 (0.5 E < 7.6e-9 there)
 *
 * The shape (odd polynomial near 0, exp of a polynomial for the tail) follows
 * N. Juffa's erff; the coefficients are our own fit against the float64
 * reference erf of src/backend/reference/gelu.ts: Lawson's iteratively
 * reweighted least squares (a minimax approximation) on 2001 Chebyshev points
 * in float64, rounding coefficients to f32 one at a time from the constant
 * term up and refitting the rest. Fit error with the f32 coefficients: R 2.8e-8
 * relative, exp(Q) 4.6e-8 relative (1.4e-8 absolute).
 *
 * The left tail is 0.5 erfc computed directly, not 1 + erf rounded, so Phi
 * and GELU keep their relative accuracy for negative x.
 *
 * Measured (f32 evaluation in WebAssembly vs the float64 reference erf, 2e6
 * points evenly spaced on [-8, 8]; re-measured and asserted by
 * test/kernels/ops.test.ts):
 *   max |Phi error| 6.8e-8 (simd build), 5.9e-8 (relaxed), ~1 ulp of Phi near
 *     x = 1; as an erf, erf(z) = 2 Phi(z sqrt 2) - 1, that is a max absolute
 *     error of 1.36e-7 (simd), 1.18e-7 (relaxed), f32 rounding included
 *     (Abramowitz-Stegun 7.1.26 is 1.5e-7 before any rounding);
 *   max relative error of Phi on [-5.5, -1]: 2.3e-6 (simd), 2.2e-6 (relaxed).
 */
// @ts-ignore: decorator
@inline export function phi4(x: v128): v128 {
  const a = f32x4.abs(x);
  // |x| < 1: Phi = 0.5 + x R(x^2)
  const s = f32x4.mul(x, x);
  let p = f32x4.splat(-1.3004437278141268e-05);
  p = fma4(p, s, f32x4.splat(0.0001270000502699986));
  p = fma4(p, s, f32x4.splat(-0.0011983122676610947));
  p = fma4(p, s, f32x4.splat(0.009977679699659348));
  p = fma4(p, s, f32x4.splat(-0.06649091839790344));
  p = fma4(p, s, f32x4.splat(0.3989422917366028));
  const near = fma4(x, p, f32x4.splat(0.5));
  // |x| >= 1: 0.5 erfc(|x|/sqrt2) = 0.5 exp(Q(|x|)), |x| clamped to 5.66 and zeroed beyond
  const ac = f32x4.pmin(a, f32x4.splat(5.66));
  let q = f32x4.splat(9.27620220636527e-08);
  q = fma4(q, ac, f32x4.splat(-3.8044925076974323e-06));
  q = fma4(q, ac, f32x4.splat(7.144344272091985e-05));
  q = fma4(q, ac, f32x4.splat(-0.0008206764468923211));
  q = fma4(q, ac, f32x4.splat(0.006523240823298693));
  q = fma4(q, ac, f32x4.splat(-0.038718681782484055));
  q = fma4(q, ac, f32x4.splat(-0.31620752811431885));
  q = fma4(q, ac, f32x4.splat(-0.7989584803581238));
  q = fma4(q, ac, f32x4.splat(0.00023997330572456121));
  let hc = f32x4.mul(f32x4.splat(0.5), exp4(q));
  hc = v128.andnot(hc, f32x4.ge(a, f32x4.splat(5.66)));
  // x < 0: Phi = 0.5 erfc; x > 0: Phi = 1 - 0.5 erfc (no cancellation in the left tail)
  const far = v128.bitselect(hc, f32x4.sub(f32x4.splat(1), hc), f32x4.lt(x, f32x4.splat(0)));
  return v128.bitselect(near, far, f32x4.lt(a, f32x4.splat(1.0)));
}
