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
import { exp4, phi4, poly4, kc, EXP_K, PHI_K, loadN, storeN } from './math';

// geluv and dgeluv take phi4's constants (PHI_K, then EXP_K), and dgeluv also
// BWD_K's, as parameters: each kernel loads them once, before its loops (see
// assembly/math.ts why).
const BWD_K: usize = memory.data<f32>([-0.5, 0.3989422804014327]); // -1/2; 1 / sqrt(2 pi)

// @ts-ignore: decorator
@inline function geluv(x: v128, r5: v128, r4: v128, r3: v128, r2: v128, r1: v128, r0: v128, half: v128, cut: v128,
  q8: v128, q7: v128, q6: v128, q5: v128, q4: v128, q3: v128, q2: v128, q1: v128, q0: v128, one: v128,
  lo: v128, hi: v128, magic: v128, log2e: v128, c1: v128, c2: v128, p5: v128, p4: v128, p3: v128, p2: v128, p1: v128, p0: v128): v128 {
  return f32x4.mul(x, phi4(x, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one,
    lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0));
}

// @ts-ignore: decorator
@inline function dgeluv(x: v128, dy: v128, mhalf: v128, invSqrt2pi: v128, r5: v128, r4: v128, r3: v128, r2: v128, r1: v128, r0: v128, half: v128, cut: v128,
  q8: v128, q7: v128, q6: v128, q5: v128, q4: v128, q3: v128, q2: v128, q1: v128, q0: v128, one: v128,
  lo: v128, hi: v128, magic: v128, log2e: v128, c1: v128, c2: v128, p5: v128, p4: v128, p3: v128, p2: v128, p1: v128, p0: v128): v128 {
  // Phi(x) + x phi(x); phi from exp4(-x^2/2) (exp4 returns 0 below -87.3,
  // i.e. |x| > 13.2, where phi is below 1e-38 anyway)
  const pdf = f32x4.mul(exp4(f32x4.mul(f32x4.mul(x, x), mhalf), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one), invSqrt2pi);
  return f32x4.mul(dy, f32x4.add(phi4(x, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one,
    lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0), f32x4.mul(x, pdf)));
}

// The loops run four vectors per iteration, four copies sharing one set of
// constants (1.7x faster than one vector per iteration, measured when the
// constants were v128.const).

export function gelu_fwd(x: usize, y: usize, n: i32): void {
  const r5 = kc(PHI_K, 0), r4 = kc(PHI_K, 1), r3 = kc(PHI_K, 2), r2 = kc(PHI_K, 3), r1 = kc(PHI_K, 4), r0 = kc(PHI_K, 5), half = kc(PHI_K, 6), cut = kc(PHI_K, 7);
  const q8 = kc(PHI_K, 8), q7 = kc(PHI_K, 9), q6 = kc(PHI_K, 10), q5 = kc(PHI_K, 11), q4 = kc(PHI_K, 12), q3 = kc(PHI_K, 13), q2 = kc(PHI_K, 14), q1 = kc(PHI_K, 15), q0 = kc(PHI_K, 16), one = kc(PHI_K, 17);
  const lo = kc(EXP_K, 0), hi = kc(EXP_K, 1), magic = kc(EXP_K, 2), log2e = kc(EXP_K, 3), c1 = kc(EXP_K, 4), c2 = kc(EXP_K, 5);
  const p5 = kc(EXP_K, 6), p4 = kc(EXP_K, 7), p3 = kc(EXP_K, 8), p2 = kc(EXP_K, 9), p1 = kc(EXP_K, 10), p0 = kc(EXP_K, 11);
  const n16 = n & ~15, n4 = n & ~3, tail = n & 3;
  let i = 0;
  for (; i < n16; i += 16) {
    const o = <usize>i << 2;
    const a = geluv(v128.load(x + o), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    const b = geluv(v128.load(x + o, 16), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    const c = geluv(v128.load(x + o, 32), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    const d = geluv(v128.load(x + o, 48), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    v128.store(y + o, a); v128.store(y + o, b, 16); v128.store(y + o, c, 32); v128.store(y + o, d, 48);
  }
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, geluv(v128.load(x + o), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0));
  }
  // the tail runs the same vector code on a partly filled vector, so results
  // do not depend on an element's position
  if (tail) {
    const o = <usize>n4 << 2;
    storeN(y + o, geluv(loadN(x + o, tail, 0), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0), tail);
  }
}

export function gelu_bwd(x: usize, dy: usize, dx: usize, n: i32): void {
  const r5 = kc(PHI_K, 0), r4 = kc(PHI_K, 1), r3 = kc(PHI_K, 2), r2 = kc(PHI_K, 3), r1 = kc(PHI_K, 4), r0 = kc(PHI_K, 5), half = kc(PHI_K, 6), cut = kc(PHI_K, 7);
  const q8 = kc(PHI_K, 8), q7 = kc(PHI_K, 9), q6 = kc(PHI_K, 10), q5 = kc(PHI_K, 11), q4 = kc(PHI_K, 12), q3 = kc(PHI_K, 13), q2 = kc(PHI_K, 14), q1 = kc(PHI_K, 15), q0 = kc(PHI_K, 16), one = kc(PHI_K, 17);
  const lo = kc(EXP_K, 0), hi = kc(EXP_K, 1), magic = kc(EXP_K, 2), log2e = kc(EXP_K, 3), c1 = kc(EXP_K, 4), c2 = kc(EXP_K, 5);
  const p5 = kc(EXP_K, 6), p4 = kc(EXP_K, 7), p3 = kc(EXP_K, 8), p2 = kc(EXP_K, 9), p1 = kc(EXP_K, 10), p0 = kc(EXP_K, 11);
  const mh = kc(BWD_K, 0), is = kc(BWD_K, 1);
  const n16 = n & ~15, n4 = n & ~3, tail = n & 3;
  let i = 0;
  for (; i < n16; i += 16) {
    const o = <usize>i << 2;
    const a = dgeluv(v128.load(x + o), v128.load(dy + o), mh, is, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    const b = dgeluv(v128.load(x + o, 16), v128.load(dy + o, 16), mh, is, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    const c = dgeluv(v128.load(x + o, 32), v128.load(dy + o, 32), mh, is, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    const d = dgeluv(v128.load(x + o, 48), v128.load(dy + o, 48), mh, is, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
    v128.store(dx + o, a); v128.store(dx + o, b, 16); v128.store(dx + o, c, 32); v128.store(dx + o, d, 48);
  }
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, dgeluv(v128.load(x + o), v128.load(dy + o), mh, is, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0));
  }
  if (tail) {
    const o = <usize>n4 << 2;
    storeN(dx + o, dgeluv(loadN(x + o, tail, 0), loadN(dy + o, tail, 0), mh, is, r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0), tail);
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
 * Its constants (RAT_K) are loaded by geluRationalRows before its loops (see
 * assembly/math.ts why).
 */
const RAT_K: usize = memory.data<f32>([
  -4.914039664072334e-7, -8.258380148618016e-6, 0.0036718950141221285, 0.022754453122615814, 0.3989476263523102, // P
  -1.5194713341770694e-5, 0.0009840873535722494, 0.0214119553565979, 0.22376738488674164, 1, // Q
  0.5, -5.656854152679443, 5.656854152679443, // one half; -4 sqrt 2, 4 sqrt 2 in f32
]);

// @ts-ignore: decorator
@inline function geluRationalv(x: v128, P4: v128, P3: v128, P2: v128, P1: v128, P0: v128,
  Q4: v128, Q3: v128, Q2: v128, Q1: v128, Q0: v128, half: v128, lo: v128, hi: v128): v128 {
  const t = f32x4.pmin(f32x4.pmax(x, lo), hi);
  const u = f32x4.mul(t, t);
  const h = f32x4.div(f32x4.mul(t, poly4(u, P4, P3, P2, P1, P0)), poly4(u, Q4, Q3, Q2, Q1, Q0));
  return f32x4.mul(x, f32x4.add(h, half));
}

/**
 * geluRationalv in place over rows x cols floats at p (row stride ld floats):
 * the int8 fc1's GELU as one pass over its output after the GEMM.
 */
export function geluRationalRows(p: usize, ld: i32, rows: i32, cols: i32): void {
  const P4 = kc(RAT_K, 0), P3 = kc(RAT_K, 1), P2 = kc(RAT_K, 2), P1 = kc(RAT_K, 3), P0 = kc(RAT_K, 4);
  const Q4 = kc(RAT_K, 5), Q3 = kc(RAT_K, 6), Q2 = kc(RAT_K, 7), Q1 = kc(RAT_K, 8), Q0 = kc(RAT_K, 9);
  const half = kc(RAT_K, 10), lo = kc(RAT_K, 11), hi = kc(RAT_K, 12);
  const rs = <usize>ld << 2, c16 = cols & ~15;
  for (let i = 0; i < rows; i++) {
    const r = p + rs * <usize>i;
    let j = 0;
    for (; j < c16; j += 16) {
      const o = r + (<usize>j << 2);
      const a = geluRationalv(v128.load(o), P4, P3, P2, P1, P0, Q4, Q3, Q2, Q1, Q0, half, lo, hi);
      const b = geluRationalv(v128.load(o, 16), P4, P3, P2, P1, P0, Q4, Q3, Q2, Q1, Q0, half, lo, hi);
      const c = geluRationalv(v128.load(o, 32), P4, P3, P2, P1, P0, Q4, Q3, Q2, Q1, Q0, half, lo, hi);
      const d = geluRationalv(v128.load(o, 48), P4, P3, P2, P1, P0, Q4, Q3, Q2, Q1, Q0, half, lo, hi);
      v128.store(o, a); v128.store(o, b, 16); v128.store(o, c, 32); v128.store(o, d, 48);
    }
    for (; j + 4 <= cols; j += 4) {
      v128.store(r + (<usize>j << 2), geluRationalv(v128.load(r + (<usize>j << 2)), P4, P3, P2, P1, P0, Q4, Q3, Q2, Q1, Q0, half, lo, hi));
    }
    if (j < cols) {
      storeN(r + (<usize>j << 2), geluRationalv(loadN(r + (<usize>j << 2), cols - j, 0), P4, P3, P2, P1, P0, Q4, Q3, Q2, Q1, Q0, half, lo, hi), cols - j);
    }
  }
}

/**
 * Exact GELU (geluv) in place over the float GEMM's stored tile (gemm.ts):
 * rows x cols floats at p, row stride ld floats. Called after a tile's store
 * when the GELU flag is set, rather than applying GELU inside the store: V8
 * rematerialises each of geluv's ~40 constants at every inlined copy, and
 * with eight copies next to a 4x8 tile's live accumulators the int8 fc1 of
 * the time (197x192x768, one thread) ran at 28 GMAC/s against 50 without
 * GELU; four vectors here share one set of constants (33 GMAC/s), loaded
 * once per tile (see assembly/math.ts why). Same values
 * as the function in the store: each stored f32, lane by lane (the tails run
 * the same vector code).
 */
export function geluTile(p: usize, ld: i32, rows: i32, cols: i32): void {
  const rs = <usize>ld << 2;
  if (rows == 4 && cols == 8) {
    const r5 = kc(PHI_K, 0), r4 = kc(PHI_K, 1), r3 = kc(PHI_K, 2), r2 = kc(PHI_K, 3), r1 = kc(PHI_K, 4), r0 = kc(PHI_K, 5), half = kc(PHI_K, 6), cut = kc(PHI_K, 7);
    const q8 = kc(PHI_K, 8), q7 = kc(PHI_K, 9), q6 = kc(PHI_K, 10), q5 = kc(PHI_K, 11), q4 = kc(PHI_K, 12), q3 = kc(PHI_K, 13), q2 = kc(PHI_K, 14), q1 = kc(PHI_K, 15), q0 = kc(PHI_K, 16), one = kc(PHI_K, 17);
    const lo = kc(EXP_K, 0), hi = kc(EXP_K, 1), magic = kc(EXP_K, 2), log2e = kc(EXP_K, 3), c1 = kc(EXP_K, 4), c2 = kc(EXP_K, 5);
    const p5 = kc(EXP_K, 6), p4 = kc(EXP_K, 7), p3 = kc(EXP_K, 8), p2 = kc(EXP_K, 9), p1 = kc(EXP_K, 10), p0 = kc(EXP_K, 11);
    // two rows of 8 (four vectors) per step, one set of constants
    for (let i = 0; i < 4; i += 2) {
      const u = p + rs * <usize>i, w = u + rs;
      const a = geluv(v128.load(u), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
      const b = geluv(v128.load(u, 16), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
      const c = geluv(v128.load(w), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
      const d = geluv(v128.load(w, 16), r5, r4, r3, r2, r1, r0, half, cut, q8, q7, q6, q5, q4, q3, q2, q1, q0, one, lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0);
      v128.store(u, a); v128.store(u, b, 16); v128.store(w, c); v128.store(w, d, 16);
    }
    return;
  }
  for (let i = 0; i < rows; i++) { const r = p + rs * <usize>i; gelu_fwd(r, r, cols); }
}
