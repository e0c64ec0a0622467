// Vectorised transcendental helpers shared by softmax.ts and gelu.ts, plus
// partial-vector load/store for loop tails.
//
// Everything is an inlined polynomial on f32x4, so scalar tails can reuse the
// same code on a partly filled vector, giving bit-identical results whatever
// the alignment or length.
//
// The kernels' constants are read-only tables in static memory (EXP_K and
// PHI_K here, gelu.ts's BWD_K and RAT_K, qgemm.ts's QK), which a kernel loads
// once, before its loops, into locals it passes to the inlined helpers
// (exp4, phi4, ...). Why: V8 13.6 (Node 24) rebuilds a v128 constant inside
// the loop at every use once registers run out (a 64-bit immediate moved in,
// then two vector instructions), where V8 11.3 and 12.4 (Node 20, 22) keep it
// in a register or a stack slot; a value loaded from memory cannot be
// rebuilt, so every engine keeps it and at worst reloads it from the stack
// (one load, no vector work). Measured on this AMD EPYC, the same calls on
// the same data in one process, bits equal, against the build with v128
// constants (bench/kernels-ab.ts, bench/results/kernels-ab-tables-node24.json,
// -node22, -node20; 100 rounds each): under Node 24 gelu_fwd takes 0.55x the
// time (0.68x in an earlier run), gelu_bwd 0.76x, softmax_fwd 0.64x,
// softmax_quantize_rows 0.62x, quantize_rows 0.84x, quantize_pack_qb 0.91x
// (k) and 0.95x (v), the float GEMM with GELU 0.92x, the int8 GEMM with its
// GELU 0.97x; under Node 20 and 22 0.93x to 1.02x. Reading the table at
// each use inside the loop instead was as fast under Node 24 but made
// gelu_fwd 1.06x (Node 20) and 1.11x (Node 22) slower (scratch A/B, not
// kept). The polynomial kernels' A/B in a
// scratch page (one run, not kept): Chromium 150 0.68x-0.98x (relaxed build),
// Firefox ESR 140 0.93x-1.05x (plain SIMD build). The tables sit in the
// heap's reserved first 1024 bytes (asconfig memoryBase 64;
// src/backend/memory.ts HEAP_BASE, checked when a build is loaded by
// src/backend/wasm.ts), are written at instantiation with the same bytes by
// every instance (workers over one shared memory included), and no kernel
// writes there given its documented pointers (gemm's packing buffer is the
// backend's `scratch`, not 0).
//
// Accuracy figures below were measured by compiling these functions alone and
// comparing with float64 references over dense grids (see the comments at each
// function for the grid); "simd" is the plain build, "relaxed" the build where
// fma4 may fuse.
import { fma4 } from './simd';

/** Lane-wise splat of table t's entry i (one load; see the header why tables). */
// @ts-ignore: decorator
@inline export function kc(t: usize, i: i32): v128 {
  return v128.load32_splat(t + (<usize>i << 2));
}

/** c4 x^4 + c3 x^3 + c2 x^2 + c1 x + c0 by Horner's rule, one fma4 per step (the order every polynomial here is evaluated in). */
// @ts-ignore: decorator
@inline export function poly4(x: v128, c4: v128, c3: v128, c2: v128, c1: v128, c0: v128): v128 {
  return fma4(fma4(fma4(fma4(c4, x, c3), x, c2), x, c1), x, c0);
}

/** Degree 5 by Horner's rule (poly4). */
// @ts-ignore: decorator
@inline export function poly5(x: v128, c5: v128, c4: v128, c3: v128, c2: v128, c1: v128, c0: v128): v128 {
  return poly4(x, fma4(c5, x, c4), c3, c2, c1, c0);
}

/** End of this module's static data (the tables); src/backend/wasm.ts checks it against the heap's base. Not a kernel. */
export function static_data_end(): usize {
  return __heap_base;
}

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

// exp4's constants, in the order of its parameters after x.
export const EXP_K: usize = memory.data<f32>([
  -87.33654, 88.0, // lo = ln 2^-126, hi
  12582912.0, 1.44269504088896341, // 1.5 * 2^23, 1 / ln 2
  -0.693359375, 2.12194440e-4, // -ln 2 in two parts, the first with 9 significant bits (k times it is exact)
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, // P, Cephes
  1.0,
]);

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
@inline export function exp4(x: v128, lo: v128, hi: v128, magic: v128, log2e: v128, c1: v128, c2: v128,
  p5: v128, p4: v128, p3: v128, p2: v128, p1: v128, p0: v128, one: v128): v128 {
  // pmin/pmax are single instructions (minps/maxps); f32x4.min/max need a
  // NaN/-0 fix-up sequence on x64. pmax(NaN, lo) = NaN, so NaN still propagates.
  const xc = f32x4.pmin(f32x4.pmax(x, lo), hi);
  // k = nearest(x / ln2) by the 1.5 * 2^23 trick: adding it rounds to an
  // integer (|k| <= 127 here) and leaves k in the low mantissa bits, which is
  // cheaper than f32x4.nearest + i32x4.trunc_sat (a long sequence on x64)
  const t = fma4(xc, log2e, magic);
  const k = f32x4.sub(t, magic);
  let r = fma4(k, c1, xc);
  r = fma4(k, c2, r);
  const p = poly5(r, p5, p4, p3, p2, p1, p0);
  const e = f32x4.add(fma4(p, f32x4.mul(r, r), r), one);
  // 2^k: add k (= bits(t) - bits(magic)) to the exponent field of e
  const scaled = i32x4.add(e, i32x4.shl(i32x4.sub(t, magic), 23));
  // x < lo (including -inf) -> 0; NaN compares false and stays NaN
  return v128.andnot(scaled, f32x4.lt(x, lo));
}

// ---- normal CDF (for exact GELU) ------------------------------------------

// phi4's own constants, in the order of its parameters after x (then exp4's, EXP_K).
export const PHI_K: usize = memory.data<f32>([
  -1.3004437278141268e-05, 0.0001270000502699986, -0.0011983122676610947, 0.009977679699659348, -0.06649091839790344,
  0.3989422917366028, // R, degree 5
  0.5, 5.66, // one half; the cut beyond which 0.5 erfc is 0
  9.27620220636527e-08, -3.8044925076974323e-06, 7.144344272091985e-05, -0.0008206764468923211, 0.006523240823298693,
  -0.038718681782484055, -0.31620752811431885, -0.7989584803581238, 0.00023997330572456121, // Q, degree 8
  1.0,
]);

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
@inline export function phi4(x: v128, r5: v128, r4: v128, r3: v128, r2: v128, r1: v128, r0: v128, half: v128, cut: v128,
  q8: v128, q7: v128, q6: v128, q5: v128, q4: v128, q3: v128, q2: v128, q1: v128, q0: v128, one: v128,
  lo: v128, hi: v128, magic: v128, log2e: v128, c1: v128, c2: v128, p5: v128, p4: v128, p3: v128, p2: v128, p1: v128, p0: v128): v128 {
  const a = f32x4.abs(x);
  // |x| < 1: Phi = 0.5 + x R(x^2)
  const s = f32x4.mul(x, x);
  const near = fma4(x, poly5(s, r5, r4, r3, r2, r1, r0), half);
  // |x| >= 1: 0.5 erfc(|x|/sqrt2) = 0.5 exp(Q(|x|)), |x| clamped to 5.66 and zeroed beyond
  const ac = f32x4.pmin(a, cut);
  const q = poly4(ac, poly4(ac, q8, q7, q6, q5, q4), q3, q2, q1, q0); // degree 8, the same Horner steps
  let hc = f32x4.mul(half, exp4(q, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one));
  hc = v128.andnot(hc, f32x4.ge(a, cut));
  // x < 0: Phi = 0.5 erfc; x > 0: Phi = 1 - 0.5 erfc (no cancellation in the left tail)
  const far = v128.bitselect(hc, f32x4.sub(one, hc), f32x4.lt(x, f32x4.splat(0)));
  return v128.bitselect(near, far, f32x4.lt(a, one));
}
