// Row softmax over the last axis. Spec: src/backend/reference/softmax.ts.
//
// Shapes: x, y, dy, dx are [rows, cols], row-major and contiguous (row r starts
// at element r*cols). Any rows >= 0, cols >= 1; pointers need no alignment.
// Aliasing: y == x (in-place forward) and dx == dy (in-place backward) are
// allowed: every pass reads element j before it writes element j and no pass
// reads an element another pass has already overwritten at a different index.
//
//   softmax_fwd(x, y, rows, cols)        y = exp(x - max x) / sum exp(x - max x)
//   softmax_bwd(y, dy, dx, rows, cols)   dx = y * (dy - sum(dy * y))
//
// Accuracy: exp4 (assembly/math.ts) is within 8.5e-8 relative; sums are f32
// over 16 (forward) / 8 (backward) lanes of partial sums, and the final scale
// is a multiply by 1/sum, so every y, small ones included, is within a few
// ulp of itself from the float64 reference, plus the f32 rounding of x - max
// (a relative 2^-24 |x - max|, so ~1e-6 for a probability of 1e-10):
// test/kernels/ops.test.ts asserts 5e-7 + 2^-24 |x - max| per element.
import { fma4 } from './simd';
import { exp4, kc, EXP_K, hsum, hmax, loadN, storeN } from './math';

/**
 * Passes 1 and 2 of softmax_fwd on one row of `cols` floats: e = exp(x - max x)
 * stored at Y (Y == X allowed), and returns sum e (softmax_fwd, and
 * softmax_quantize_rows in qgemm.ts, which quantizes e instead of scaling it).
 */
// @ts-ignore: decorator
@inline export function expRow(X: usize, Y: usize, cols: i32): f32 {
  const c4 = cols & ~3, tail = cols & 3;
  // exp4's constants, once per row (see assembly/math.ts why loaded)
  const lo = kc(EXP_K, 0), hi = kc(EXP_K, 1), magic = kc(EXP_K, 2), log2e = kc(EXP_K, 3), c1 = kc(EXP_K, 4), c2 = kc(EXP_K, 5);
  const p5 = kc(EXP_K, 6), p4 = kc(EXP_K, 7), p3 = kc(EXP_K, 8), p2 = kc(EXP_K, 9), p1 = kc(EXP_K, 10), p0 = kc(EXP_K, 11), one = kc(EXP_K, 12);
  // 1. max (starts at -inf, so a row of all -inf gives NaN like the reference).
  // pmax (one maxps) rather than f32x4.max (NaN- and signed-zero-exact,
  // eight instructions under V8, as many as the exp pass): pmax skips a NaN,
  // but that NaN then reaches the sum through exp(x - m), so its row is NaN
  // as in the reference; pmax may leave m = -0 where max gives +0, and x - m
  // is then the same for every x. Four accumulators hide maxps' latency.
  const c16 = cols & ~15;
  let vm = f32x4.splat(-Infinity), vm1 = vm, vm2 = vm, vm3 = vm;
  let j = 0;
  for (; j < c16; j += 16) {
    const o = X + (<usize>j << 2);
    vm = f32x4.pmax(vm, v128.load(o)); vm1 = f32x4.pmax(vm1, v128.load(o, 16));
    vm2 = f32x4.pmax(vm2, v128.load(o, 32)); vm3 = f32x4.pmax(vm3, v128.load(o, 48));
  }
  vm = f32x4.pmax(f32x4.pmax(vm, vm1), f32x4.pmax(vm2, vm3));
  for (; j < c4; j += 4) vm = f32x4.pmax(vm, v128.load(X + (<usize>j << 2)));
  let m = hmax(vm);
  for (; j < cols; j++) m = max(m, load<f32>(X + (<usize>j << 2)));
  const vmx = f32x4.splat(m);
  // 2. e = exp(x - m), stored into y, and summed; four vectors per
  // iteration so the unrolled copies share exp4's constants in registers
  // where there are enough (~1.5x faster than one at a time, measured when
  // they were v128.const)
  let vs = f32x4.splat(0), vs1 = f32x4.splat(0), vs2 = f32x4.splat(0), vs3 = f32x4.splat(0);
  for (j = 0; j < c16; j += 16) {
    const o = <usize>j << 2;
    const e0 = exp4(f32x4.sub(v128.load(X + o), vmx), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one);
    const e1 = exp4(f32x4.sub(v128.load(X + o, 16), vmx), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one);
    const e2 = exp4(f32x4.sub(v128.load(X + o, 32), vmx), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one);
    const e3 = exp4(f32x4.sub(v128.load(X + o, 48), vmx), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one);
    v128.store(Y + o, e0); v128.store(Y + o, e1, 16); v128.store(Y + o, e2, 32); v128.store(Y + o, e3, 48);
    vs = f32x4.add(vs, e0); vs1 = f32x4.add(vs1, e1); vs2 = f32x4.add(vs2, e2); vs3 = f32x4.add(vs3, e3);
  }
  vs = f32x4.add(f32x4.add(vs, vs1), f32x4.add(vs2, vs3));
  for (; j < c4; j += 4) {
    const e = exp4(f32x4.sub(v128.load(X + (<usize>j << 2)), vmx), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one);
    v128.store(Y + (<usize>j << 2), e);
    vs = f32x4.add(vs, e);
  }
  if (tail) {
    // unused lanes are -inf, so their exp is 0 and they add nothing
    const e = exp4(f32x4.sub(loadN(X + (<usize>c4 << 2), tail, -Infinity), vmx), lo, hi, magic, log2e, c1, c2, p5, p4, p3, p2, p1, p0, one);
    storeN(Y + (<usize>c4 << 2), e, tail);
    vs = f32x4.add(vs, e);
  }
  return hsum(vs);
}

export function softmax_fwd(x: usize, y: usize, rows: i32, cols: i32): void {
  const bytes = <usize>cols << 2;
  const c4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const X = x + <usize>r * bytes, Y = y + <usize>r * bytes;
    const sum = expRow(X, Y, cols);
    // 3. scale by 1/sum
    const inv = f32x4.splat(<f32>1 / sum);
    let j = 0;
    for (; j < c4; j += 4) {
      const p = Y + (<usize>j << 2);
      v128.store(p, f32x4.mul(v128.load(p), inv));
    }
    for (; j < cols; j++) {
      const p = Y + (<usize>j << 2);
      store<f32>(p, load<f32>(p) * f32x4.extract_lane(inv, 0));
    }
  }
}

export function softmax_bwd(y: usize, dy: usize, dx: usize, rows: i32, cols: i32): void {
  const bytes = <usize>cols << 2;
  const c8 = cols & ~7, c4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * bytes;
    const Y = y + o, DY = dy + o, DX = dx + o;
    // s = sum dy * y, two accumulators to hide the add latency
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
    let j = 0;
    for (; j < c8; j += 8) {
      const p = <usize>j << 2;
      s0 = fma4(v128.load(DY + p), v128.load(Y + p), s0);
      s1 = fma4(v128.load(DY + p, 16), v128.load(Y + p, 16), s1);
    }
    for (; j < c4; j += 4) {
      const p = <usize>j << 2;
      s0 = fma4(v128.load(DY + p), v128.load(Y + p), s0);
    }
    let s = hsum(f32x4.add(s0, s1));
    for (; j < cols; j++) s += load<f32>(DY + (<usize>j << 2)) * load<f32>(Y + (<usize>j << 2));
    // dx = y * (dy - s)
    const vs = f32x4.splat(s);
    for (j = 0; j < c4; j += 4) {
      const p = <usize>j << 2;
      v128.store(DX + p, f32x4.mul(v128.load(Y + p), f32x4.sub(v128.load(DY + p), vs)));
    }
    for (; j < cols; j++) {
      const p = <usize>j << 2;
      store<f32>(DX + p, load<f32>(Y + p) * (load<f32>(DY + p) - s));
    }
  }
}
