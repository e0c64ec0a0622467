// int8 GEMM for inference: y = dequant(Q(x) * Wq^T) + bias (optionally GELU),
// int32 accumulation. Spec (and argument lists): src/backend/reference/qgemm.ts.
//
// Numbers (src/quant/ chooses them):
//   weights  per output channel, symmetric: W[j,k] ~ sw[j] * w[j,k], w in
//            [-127, 127] (the kernels take the full int8 range, -128 included);
//   inputs   per row (token), asymmetric, L + 1 levels: x[i,k] ~ sx[i] * (u[i,k] - zx[i]),
//            u in [0, L], with the range widened to hold 0 (as onnxruntime's
//            DynamicQuantizeLinear does with 8 bits) so zx is in [0, L];
//            L = 127 (7 bits) or 63 (6 bits; qgemm's QGEMM_A6 then sums pairs of
//            dots in i16, below), the `levels` argument of quantize_rows and
//            softmax_quantize_rows.
//   y[i,j] = (sx[i] * sw[j]) * (sum_k w[j,k] u[i,k] - zx[i] * colsum_j) + bias[j]
//   where colsum_j = sum_k w[j,k] is computed once, by pack_qb.
// Why the inputs are the unsigned 7-bit operand: i32x4.relaxed_dot_i8x16_i7x16_add_s
// is deterministic only when its second operand has the high bit clear (an
// engine may read those bytes as signed or unsigned; x64 V8 uses pmaddubsw,
// which takes them unsigned and saturates pairs in i16). With b in [0, 127]
// and a in [-128, 127] a pair sum is in [-32512, 32258]: no saturation, so the
// relaxed build computes exactly what the plain one does (test/kernels/qgemm.test.ts
// holds both bit for bit to the reference at -128/127 and 0/127).
// Why 6 bits where the caller allows it (src/quant/int8.ts chooses the layers):
// the composed dot below spends two multiplies (pmaddubsw, pmaddwd) per 16
// multiply-adds. With u <= 63, four products are within |4 * 63 * 128| =
// 32256 < 2^15, so two groups' i16 pair sums add exactly in i16 and one
// pmaddwd widens both: three multiplies per 32 (tilePaired, flags & QGEMM_A6).
// On this AMD EPYC under Node 20 that took 0.90x (196x64x196), 0.85x
// (196x192x768) and 0.82x (196x768x192) the time of the 4x8 tile on the same
// bytes (a same-build A/B, flags 4 against 0; bench/gemm.ts's 6-bit column
// agrees: 0.85x and 0.82x), the same bits. The fused dot (one
// instruction per 16) gains nothing from it and ignores the flag.
// An asymmetric 7-bit range has 128 levels over [min(x,0), max(x,0)]; a
// symmetric 7-bit one (absmax, u - 64) would have 127 levels over [-|x|, |x|],
// twice the step for one-sided rows (after GELU) and no better elsewhere.
//
// Layouts (Kp = K rounded up to a multiple of 4; byte pointers, no alignment needed):
//   activations (quantize_rows' output) in strips of 4 rows, 4 k per group:
//       qa[(i>>2)*Kp*4 + (k>>2)*16 + (i&3)*4 + (k&3)] = u[i,k]; pad k and pad
//       rows (up to a multiple of 4) are 0. rowp[2i] = sx[i], rowp[2i+1] = zx[i] (f32).
//   weights (pack_qb's output) in panels of 8 output channels:
//       wp[(j>>3)*Kp*8 + (k>>2)*32 + (j&7)*4 + (k&3)] = w[j,k] (0 past K and N),
//       then ceil(N/8)*8 int32 column sums (0 past N). Size: qPackedBytes (kernels.ts).
//   So one 16-byte load holds 4 channels x 4 k and a 4-byte splat of a row's
//   group pairs with it: relaxed_dot gives 4 channels' partial sums at once
//   (16 multiply-adds per instruction against 4 for a float FMA).
// The plain SIMD build widens both to i16 (load8x8_s, extend of the splat)
// and uses i32x4.dot_i16x8_s: each accumulator then holds 2 channels x 2
// half-sums, added pairwise in the store; 4x8 would need 16 accumulators, so
// that build runs the tile as two 4x4 halves.
//
// The store: (f32(acc - zx*colsum) * f32(sx*sw)) + bias, in that order and
// rounding, also in the reference; then GELU in one pass over C after the
// GEMM (gelu.ts geluRationalRows: an erf rational within 1.2e-6 max(1, |x|)
// of the exact GELU the reference applies, see there; the float GEMM keeps the exact
// geluv, over each tile). One pass with its constants built once, rather
// than over each 4x8 tile as stored (where V8 rebuilt its 16 constants at
// every tile): in the CAIT forward's profile (bench/profile.ts --int8) fc1
// took 1.30x fc2's time per multiply-add, 1.21x now with the degree-4
// rational (single-GEMM timings in the commit messages).
// No K blocking: a panel is Kp*8 bytes (6 KiB at K = 768) and stays in L1
// while all strips pass under it; int32 cannot overflow below K = 133,000.
// Why the composed dot's tile is 4x8 with the ones in a register (Node 20,
// V8 11.3, this AMD EPYC; bench/qgemm-ab.ts at 197x192x576, time against
// this build, bits equal; variants not kept): its loop holds 15 xmm
// registers (8 accumulators, 2 weight vectors, the row groups, a splat, the
// pair products, the ones), x64 V8 allocates 15, and TurboFan hoists the
// loop's loads, so one more live vector spills an accumulator through the
// stack at every step. 2x16 (two shuffles per 8 dots, not four) spilled:
// 1.27-1.29x; 2x16 with the ones as extadd_pairwise's memory operand (no
// register, but an address load per dot) did not: 1.08x; 4x8 with that
// operand 1.03x; 4x8 with four splat loads for the shuffles spilled:
// 1.15x; one dot in eight widened without pmaddwd (lanes biased by 2^15,
// two sums, shr_u; V8 rebuilt the bias at every step: four more vector
// operations for one multiply fewer): 1.05-1.07x.
import { geluRationalRows } from './gelu';
import { expRow } from './softmax';
import { kc } from './math';

/**
 * Quantize rows of x (M x K floats, row stride ldx) into qa/rowp (layout above),
 * with L = levels (1..127; 127: 7 bits, 63: 6 bits). Per row: lo = min(x, 0),
 * hi = max(x, 0), s = (hi - lo) / L (1 for a zero row), inv = L / (hi - lo),
 * z = nearest(-lo * inv), u = clamp(nearest(x * inv) + z, 0, L).
 */
export function quantize_rows(x: usize, ldx: i32, M: i32, K: i32, qa: usize, rowp: usize, levels: i32): void {
  if (M <= 0) return;
  const L = <f32>levels;
  const Kp = (K + 3) & ~3, strip = <usize>Kp << 2, row = <usize>ldx << 2;
  // rows past M (the last strip's) repeat row M-1 with inv = 0, then are zeroed
  for (let i = 0; i < M; i += 4) {
    const s0 = x + <usize>i * row, s1 = i + 1 < M ? s0 + row : s0, s2 = i + 2 < M ? s1 + row : s1, s3 = i + 3 < M ? s2 + row : s2;
    const rp = rowp + (<usize>i << 3);
    const i0 = rowRange(s0, K, rp, L), i1 = i + 1 < M ? rowRange(s1, K, rp + 8, L) : 0;
    const i2 = i + 2 < M ? rowRange(s2, K, rp + 16, L) : 0, i3 = i + 3 < M ? rowRange(s3, K, rp + 24, L) : 0;
    const dst = qa + <usize>(i >> 2) * strip;
    quantizeStrip(s0, s1, s2, s3, K, dst, i0, i1, i2, i3, zOffset(rp, 0), zOffset(rp, i + 1 < M ? 8 : -1),
      zOffset(rp, i + 2 < M ? 16 : -1), zOffset(rp, i + 3 < M ? 24 : -1), levels);
    if (i + 4 > M) zeroRows(dst, Kp, M - i);
  }
}

/**
 * A row's min/max pass and parameters (rowParams, stored at rp): K floats
 * at src; returns inv.
 */
// pmin/pmax (one minps/maxps each) rather than min/max (NaN- and
// signed-zero-exact, about seven instructions each under V8): finite inputs
// give the same bytes and parameters (a -0/+0 choice changes neither);
// a NaN input gives unspecified bytes.
// @ts-ignore: decorator
@inline function rowRange(src: usize, K: i32, rp: usize, L: f32): f32 {
  const K4 = K & ~3;
  // two pairs of accumulators: one pair is a chain of dependent pmin/pmax
  // (the same lo and hi in any order: no NaN here, and -0/+0 change no byte)
  let vlo = f32x4.splat(0), vhi = f32x4.splat(0), vlo1 = vlo, vhi1 = vhi;
  let k = 0;
  for (; k + 8 <= K4; k += 8) {
    const v = v128.load(src + (<usize>k << 2)), w = v128.load(src + (<usize>k << 2), 16);
    vlo = f32x4.pmin(vlo, v); vhi = f32x4.pmax(vhi, v);
    vlo1 = f32x4.pmin(vlo1, w); vhi1 = f32x4.pmax(vhi1, w);
  }
  if (k < K4) { const v = v128.load(src + (<usize>k << 2)); vlo = f32x4.pmin(vlo, v); vhi = f32x4.pmax(vhi, v); }
  vlo = f32x4.pmin(vlo, vlo1); vhi = f32x4.pmax(vhi, vhi1);
  let lo = min(min(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)), min(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)));
  let hi = max(max(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)), max(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)));
  for (let k = K4; k < K; k++) { const v = load<f32>(src + (<usize>k << 2)); lo = min(lo, v); hi = max(hi, v); }
  return rowParams(lo, hi, rp, L);
}

/** QMAGIC_BITS - z of the row whose [s, z] are at rp + off (z = 0: off < 0). */
// @ts-ignore: decorator
@inline function zOffset(rp: usize, off: i32): i32 {
  return QMAGIC_BITS - (off < 0 ? 0 : <i32>load<f32>(rp + <usize>off, 4));
}

/** Zero the rows from `live` on (< 4) of the strip at dst (Kp bytes per row). */
// @ts-ignore: decorator
@inline function zeroRows(dst: usize, Kp: i32, live: i32): void {
  for (let r = live; r < 4; r++) for (let g = 0; g < Kp; g += 4) store<u32>(dst + (<usize>g << 2) + (<usize>r << 2), 0);
}

/**
 * Softmax over each of `rows` rows of `cols` floats at x, straight into
 * quantize_rows' layout for P V (src/quant/attention.ts): e = exp(x - max x)
 * and sum e as softmax_fwd computes them (e is left in x: x is scratch), then,
 * with L = levels (1..127), u = clamp(nearest(e * L), 0, L), s = (1 / sum) / L,
 * z = 0, so that s * u is softmax within half a step (max e is exactly 1: u =
 * L there). The same bytes as softmax_fwd then quantize_rows up to the
 * rounding of the row's scale (a step of max P / L either way); no float P is written.
 */
export function softmax_quantize_rows(x: usize, rows: i32, cols: i32, qa: usize, rowp: usize, levels: i32): void {
  if (rows <= 0 || cols <= 0) return;
  const L = <f32>levels;
  const Kp = (cols + 3) & ~3, strip = <usize>Kp << 2, row = <usize>cols << 2;
  for (let i = 0; i < rows; i += 4) {
    const live = min(rows - i, 4);
    for (let r = 0; r < live; r++) {
      const X = x + <usize>(i + r) * row, sum = expRow(X, X, cols), rp = rowp + (<usize>(i + r) << 3);
      store<f32>(rp, (<f32>1 / sum) / L);
      store<f32>(rp, 0, 4);
    }
    const s0 = x + <usize>i * row, s1 = live > 1 ? s0 + row : s0, s2 = live > 2 ? s1 + row : s1, s3 = live > 3 ? s2 + row : s2;
    const dst = qa + <usize>(i >> 2) * strip;
    // QMAGIC_BITS read from QK, not a literal: as a constant its splat would
    // be rebuilt inside quantizeStrip's loop (see assembly/math.ts)
    const om = load<i32>(QK);
    quantizeStrip(s0, s1, s2, s3, cols, dst, L, live > 1 ? L : 0, live > 2 ? L : 0, live > 3 ? L : 0, om, om, om, om, levels);
    if (live < 4) zeroRows(dst, Kp, live);
  }
}

// nearest(t) + z without f32x4.nearest and a conversion: for |t| < 2^22,
// t + QMAGIC (1.5 * 2^23) rounds to an integer half to even, as nearest does,
// and leaves it in the low mantissa bits, so bits(t + QMAGIC) - (QMAGIC_BITS - z)
// is nearest(t) + z as an int32 (exp4 in math.ts uses the same trick).
const QMAGIC: f32 = 12582912;
const QMAGIC_BITS: i32 = 0x4B400000;
// quantizeStrip's and qsym's constants, loaded before their loops (see
// assembly/math.ts why): QMAGIC; -127 and 127 (f32 bits)
const QK: usize = memory.data<u32>([QMAGIC_BITS, 0xC2FE0000, 0x42FE0000]);

/**
 * quantize_rows' last pass over a strip of 4 rows (K floats at s0..s3, row r
 * with inv_r and o_r = QMAGIC_BITS - z_r): u = clamp(nearest(x * inv) + z, 0,
 * L), the 4 rows' groups of 4 narrowed into one 16-byte
 * store each, which is the strip's layout; also softmax_quantize_rows'.
 */
// @ts-ignore: decorator
@inline function quantizeStrip(s0: usize, s1: usize, s2: usize, s3: usize, K: i32, dst: usize,
  i0: f32, i1: f32, i2: f32, i3: f32, o0: i32, o1: i32, o2: i32, o3: i32, L: i32): void {
  const K4 = K & ~3, vl = i8x16.splat(<i8>L);
  const vm = kc(QK, 0);
  const vi0 = f32x4.splat(i0), vi1 = f32x4.splat(i1), vi2 = f32x4.splat(i2), vi3 = f32x4.splat(i3);
  const vo0 = i32x4.splat(o0), vo1 = i32x4.splat(o1), vo2 = i32x4.splat(o2), vo3 = i32x4.splat(o3);
  for (let k = 0; k < K4; k += 4) {
    const o = <usize>k << 2;
    const n0 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(s0 + o), vi0), vm), vo0);
    const n1 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(s1 + o), vi1), vm), vo1);
    const n2 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(s2 + o), vi2), vm), vo2);
    const n3 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(s3 + o), vi3), vm), vo3);
    // n in about [-1, L + 1]: exact in i16, then [0, 255] by the unsigned narrowing, then <= L
    v128.store(dst + o, i8x16.min_u(i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(n0, n1), i16x8.narrow_i32x4_s(n2, n3)), vl));
  }
  if (K4 < K) {
    const d = dst + (<usize>K4 << 2);
    store<u32>(d, tailWord(s0, K4, K, i0, o0, L));
    store<u32>(d, tailWord(s1, K4, K, i1, o1, L), 4);
    store<u32>(d, tailWord(s2, K4, K, i2, o2, L), 8);
    store<u32>(d, tailWord(s3, K4, K, i3, o3, L), 12);
  }
}

/** The last K - K4 (< 4) values of a row as quantizeStrip's bytes in one word (u <= L). */
// @ts-ignore: decorator
@inline function tailWord(src: usize, K4: i32, K: i32, inv: f32, o: i32, L: i32): u32 {
  let w: u32 = 0;
  for (let k = K4; k < K; k++) {
    const q = min(max(reinterpret<i32>(load<f32>(src + (<usize>k << 2)) * inv + QMAGIC) - o, 0), L);
    w |= (<u32>q) << ((k & 3) << 3);
  }
  return w;
}

/**
 * A row's parameters from lo = min(x, 0) and hi = max(x, 0) for L levels:
 * s = (hi - lo) / L (1 for a zero row) and z = nearest(-lo * inv), stored at
 * rp as [s, z]; returns inv = L / (hi - lo) (0 for a zero row).
 */
// @ts-ignore: decorator
@inline function rowParams(lo: f32, hi: f32, rp: usize, L: f32): f32 {
  const range = hi - lo;
  let s: f32 = 1, inv: f32 = 0, z: f32 = 0;
  if (range > 0) {
    s = range / L;
    inv = L / range;
    z = min(max(nearest(-lo * inv), 0), L);
  }
  store<f32>(rp, s);
  store<f32>(rp, z, 4);
  return inv;
}

/**
 * The prefix rows (class, distillation tokens) of B sequences of T rows, in two
 * 7-bit parts for about 14 bits: the int8 model's logits are read from these
 * rows alone, while the other tokens' rounding reaches them only averaged by
 * attention (src/quant/int8.ts has the measurement). Row e = b*P + t (t < P)
 * is x's row b*T + t. Writes 2E rows (E = B*P) of K floats at tmp, then
 * quantize_rows' layout of them at qa/rowp: row e is the row itself (the
 * quantization quantize_rows gives it), row E + e its residual
 * x - s*(u - z) under that quantization. qgemm over the 2E rows without bias,
 * then add_prefix_rows, gives y's prefix rows.
 * Scalar: E rows (one or two per image) are a few hundred-th of the work.
 */
export function quantize_prefix_rows(x: usize, ldx: i32, B: i32, T: i32, P: i32, K: i32, tmp: usize, qa: usize, rowp: usize): void {
  const E = B * P;
  if (E <= 0 || K <= 0) return;
  for (let e = 0; e < E; e++) {
    const src = x + (<usize>((e / P) * T + e % P) * <usize>ldx << 2);
    const row = tmp + (<usize>e * <usize>K << 2), res = tmp + (<usize>(E + e) * <usize>K << 2);
    let lo: f32 = 0, hi: f32 = 0;
    for (let k = 0; k < K; k++) {
      const v = load<f32>(src + (<usize>k << 2));
      lo = min(lo, v); hi = max(hi, v);
      store<f32>(row + (<usize>k << 2), v);
    }
    const rp = rowp + (<usize>e << 3), inv = rowParams(lo, hi, rp, 127), s = load<f32>(rp), z = load<f32>(rp, 4);
    for (let k = 0; k < K; k++) {
      const v = load<f32>(src + (<usize>k << 2)), u = min(max(nearest(v * inv) + z, 0), 127);
      store<f32>(res + (<usize>k << 2), v - s * (u - z));
    }
  }
  quantize_rows(tmp, K, 2 * E, K, qa, rowp, 127);
}

/**
 * y's prefix rows (as quantize_prefix_rows numbers them) from qgemm's output
 * z (2E rows of N, no bias): y[b*T + t, j] = (z[e, j] + z[E + e, j]) + bias[j]
 * (bias 0: none), then GELU (flags & 1; qgemm's rational GELU).
 */
export function add_prefix_rows(z: usize, N: i32, B: i32, T: i32, P: i32, bias: usize, y: usize, ldy: i32, flags: i32): void {
  const E = B * P;
  if (E <= 0 || N <= 0) return;
  const N4 = N & ~3;
  for (let e = 0; e < E; e++) {
    const dst = y + (<usize>((e / P) * T + e % P) * <usize>ldy << 2);
    const a = z + (<usize>e * <usize>N << 2), b = z + (<usize>(E + e) * <usize>N << 2);
    for (let j = 0; j < N4; j += 4) {
      const o = <usize>j << 2;
      let v = f32x4.add(v128.load(a + o), v128.load(b + o));
      if (bias) v = f32x4.add(v, v128.load(bias + o));
      v128.store(dst + o, v);
    }
    for (let j = N4; j < N; j++) {
      const o = <usize>j << 2;
      let v = load<f32>(a + o) + load<f32>(b + o);
      if (bias) v += load<f32>(bias + o);
      store<f32>(dst + o, v);
    }
    if (flags & 1) geluRationalRows(dst, ldy, 1, N);
  }
}

/**
 * Pack int8 weights w (N x K, row j at w + j*ldw bytes) into qgemm's panels
 * and column sums (layout above).
 */
export function pack_qb(K: i32, N: i32, w: usize, ldw: i32, dst: usize): void {
  if (K <= 0 || N <= 0) return;
  const Kp = (K + 3) & ~3, N8 = (N + 7) & ~7;
  const sums = dst + <usize>N8 * <usize>Kp;
  for (let j = 0; j < N8; j++) {
    const panel = dst + <usize>(j >> 3) * (<usize>Kp << 3) + (<usize>(j & 7) << 2);
    let sum = 0;
    for (let k = 0; k < Kp; k++) {
      let v: i32 = 0;
      if (j < N && k < K) v = load<i8>(w + <usize>j * <usize>ldw + <usize>k);
      sum += v;
      store<i8>(panel + (<usize>(k >> 2) << 5) + <usize>(k & 3), <i8>v);
    }
    store<i32>(sums + (<usize>j << 2), sum);
  }
}

/**
 * Quantize float weights and pack them as pack_qb does, for a GEMM whose
 * weight is itself an activation (attention's k and v, src/quant/attention.ts):
 * w[j,k] (channel j < N, k < K) is the float at w + 4*(j*ldn + k*ldk).
 * Per channel, with lo = min_k w[j,k] and hi = max_k w[j,k]:
 *   mid == 0: symmetric, c = 0, m = max(hi, -lo) (= max |w|);
 *   mid != 0: centred, c = hi/2 + lo/2, m = hi/2 - lo/2, mid[j] = c;
 * then inv = 127 / m, q = clamp(nearest((w - c) * inv), -127, 127),
 * wscale[j] = (m / 127) * alpha (q = 0, wscale = 0 where m = 0), f32 at each
 * step. Centring is for v: P's rows sum to 1, so P V = P (V - 1 c^T) + c,
 * and c goes to qgemm as the bias: a channel whose values sit on an offset
 * keeps its variation, which symmetric steps of offset/127 erase (the
 * Fashion-MNIST CAIT model's shirt sample: 12.0% of the largest logit from
 * float before, 2.4% centred; src/quant/attention.ts). Vector paths for rows (ldk == 1: k, a
 * channel per token, its K head-dim floats contiguous) and for columns (ldn ==
 * 1: v, K tokens of N channels, 8 channels at a time, 4x4 byte transposes);
 * any other stride, and the column path's last N % 8 channels, run the same
 * operations one value at a time.
 */
export function quantize_pack_qb(K: i32, N: i32, w: usize, ldk: i32, ldn: i32, alpha: f32, dst: usize, wscale: usize, mid: usize): void {
  if (K <= 0 || N <= 0) return;
  const Kp = (K + 3) & ~3, N8 = (N + 7) & ~7;
  const sums = dst + <usize>N8 * <usize>Kp;
  let j = 0;
  if (ldn == 1) {
    for (; j + 8 <= N; j += 8) packCols8(K, Kp, w + (<usize>j << 2), ldk, alpha, dst + <usize>(j >> 3) * (<usize>Kp << 3), sums + (<usize>j << 2), wscale + (<usize>j << 2), mid ? mid + (<usize>j << 2) : 0);
  }
  for (; j < N8; j++) {
    const col = dst + <usize>(j >> 3) * (<usize>Kp << 3) + (<usize>(j & 7) << 2);
    if (j >= N) {
      for (let g = 0; g < Kp; g += 4) store<u32>(col + (<usize>g << 3), 0);
      store<i32>(sums + (<usize>j << 2), 0);
      continue;
    }
    const src = w + (<usize>j * <usize>ldn << 2), mj = mid ? mid + (<usize>j << 2) : 0;
    if (ldk == 1) packRow(K, src, alpha, col, sums + (<usize>j << 2), wscale + (<usize>j << 2), mj);
    else packScalar(K, Kp, src, ldk, alpha, col, sums + (<usize>j << 2), wscale + (<usize>j << 2), mj);
  }
}

/** A channel's inverse step (0 for a zero channel), its scale stored at ws: the quantize_pack_qb step. */
// @ts-ignore: decorator
@inline function chanParams(m: f32, alpha: f32, ws: usize): f32 {
  let s: f32 = 0, inv: f32 = 0;
  if (m > 0) { s = m / 127; inv = <f32>127 / m; }
  store<f32>(ws, s * alpha);
  return inv;
}

/** A channel's centre c (0 unless mid != 0, where it is stored) and half-range m from its lo, hi: the quantize_pack_qb rule. */
// @ts-ignore: decorator
@inline function chanCentre(lo: f32, hi: f32, mid: usize): f32 {
  if (!mid) return 0;
  const c = hi * 0.5 + lo * 0.5;
  store<f32>(mid, c);
  return c;
}
// @ts-ignore: decorator
@inline function chanHalfRange(lo: f32, hi: f32, mid: usize): f32 {
  return mid ? hi * 0.5 - lo * 0.5 : max(hi, -lo);
}

/** One channel, K contiguous floats at src, into its panel column col (groups 32 bytes apart). */
function packRow(K: i32, src: usize, alpha: f32, col: usize, sum: usize, ws: usize, mid: usize): void {
  const K4 = K & ~3;
  let vlo = f32x4.splat(load<f32>(src)), vhi = vlo;
  for (let k = 0; k < K4; k += 4) { const v = v128.load(src + (<usize>k << 2)); vlo = f32x4.pmin(vlo, v); vhi = f32x4.pmax(vhi, v); }
  let lo = min(min(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)), min(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)));
  let hi = max(max(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)), max(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)));
  for (let k = K4; k < K; k++) { const v = load<f32>(src + (<usize>k << 2)); lo = min(lo, v); hi = max(hi, v); }
  const c = chanCentre(lo, hi, mid), inv = chanParams(chanHalfRange(lo, hi, mid), alpha, ws), vinv = f32x4.splat(inv), vc = f32x4.splat(c);
  let vs = i32x4.splat(0), d = col;
  const qlo = kc(QK, 1), qhi = kc(QK, 2);
  for (let k = 0; k < K4; k += 4) {
    const q = qsym(f32x4.sub(v128.load(src + (<usize>k << 2)), vc), vinv, qlo, qhi);
    vs = i32x4.add(vs, q);
    store<u32>(d, i32x4.extract_lane(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q, q), i16x8.narrow_i32x4_s(q, q)), 0));
    d += 32;
  }
  let s = i32x4.extract_lane(vs, 0) + i32x4.extract_lane(vs, 1) + i32x4.extract_lane(vs, 2) + i32x4.extract_lane(vs, 3);
  if (K4 < K) {
    let word: u32 = 0;
    for (let k = K4; k < K; k++) {
      const q = qsym1(load<f32>(src + (<usize>k << 2)) - c, inv);
      s += q;
      word |= (<u32>(q & 0xff)) << ((k & 3) << 3);
    }
    store<u32>(d, word);
  }
  store<i32>(sum, s);
}

/** One channel, K floats ldk apart, value by value (the same operations as the vector paths). */
function packScalar(K: i32, Kp: i32, src: usize, ldk: i32, alpha: f32, col: usize, sum: usize, ws: usize, mid: usize): void {
  let lo = load<f32>(src), hi = lo;
  for (let k = 1; k < K; k++) { const v = load<f32>(src + (<usize>k * <usize>ldk << 2)); lo = min(lo, v); hi = max(hi, v); }
  const c = chanCentre(lo, hi, mid), inv = chanParams(chanHalfRange(lo, hi, mid), alpha, ws);
  let s = 0;
  for (let g = 0; g < Kp; g += 4) {
    let word: u32 = 0;
    for (let k = g; k < g + 4 && k < K; k++) {
      const q = qsym1(load<f32>(src + (<usize>k * <usize>ldk << 2)) - c, inv);
      s += q;
      word |= (<u32>(q & 0xff)) << ((k & 3) << 3);
    }
    store<u32>(col + (<usize>g << 3), word);
  }
  store<i32>(sum, s);
}

/**
 * 8 channels contiguous at src, K tokens ldk floats apart, into one panel:
 * per 4 tokens, each 4-channel half's 4x4 int8 block is transposed by one
 * byte shuffle into the panel's [channel][k] order.
 */
function packCols8(K: i32, Kp: i32, src: usize, ldk: i32, alpha: f32, panel: usize, sums: usize, ws: usize, mid: usize): void {
  const row = <usize>ldk << 2;
  let lo0 = v128.load(src), hi0 = lo0, lo1 = v128.load(src, 16), hi1 = lo1;
  let p = src + row;
  for (let k = 1; k < K; k++) {
    const a = v128.load(p), b = v128.load(p, 16);
    lo0 = f32x4.pmin(lo0, a); hi0 = f32x4.pmax(hi0, a);
    lo1 = f32x4.pmin(lo1, b); hi1 = f32x4.pmax(hi1, b);
    p += row;
  }
  const c0 = chanCentre4(lo0, hi0, mid), c1 = chanCentre4(lo1, hi1, mid ? mid + 16 : 0);
  const inv0 = chanParams4(chanHalfRange4(lo0, hi0, mid), alpha, ws), inv1 = chanParams4(chanHalfRange4(lo1, hi1, mid), alpha, ws + 16);
  let s0 = i32x4.splat(0), s1 = i32x4.splat(0), d = panel;
  const lo = kc(QK, 1), hi = kc(QK, 2);
  p = src;
  for (let k = 0; k < Kp; k += 4) {
    // tokens past K (the last group's) give 0 bytes and add 0 to the sums
    const qa0 = qtok(p, c0, inv0, true, lo, hi), qa1 = qtok(p + row, c0, inv0, k + 1 < K, lo, hi);
    const qa2 = qtok(p + row * 2, c0, inv0, k + 2 < K, lo, hi), qa3 = qtok(p + row * 3, c0, inv0, k + 3 < K, lo, hi);
    const qb0 = qtok(p + 16, c1, inv1, true, lo, hi), qb1 = qtok(p + row + 16, c1, inv1, k + 1 < K, lo, hi);
    const qb2 = qtok(p + row * 2 + 16, c1, inv1, k + 2 < K, lo, hi), qb3 = qtok(p + row * 3 + 16, c1, inv1, k + 3 < K, lo, hi);
    s0 = i32x4.add(i32x4.add(s0, i32x4.add(qa0, qa1)), i32x4.add(qa2, qa3));
    s1 = i32x4.add(i32x4.add(s1, i32x4.add(qb0, qb1)), i32x4.add(qb2, qb3));
    v128.store(d, transpose4x4(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(qa0, qa1), i16x8.narrow_i32x4_s(qa2, qa3))));
    v128.store(d, transpose4x4(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(qb0, qb1), i16x8.narrow_i32x4_s(qb2, qb3))), 16);
    d += 32;
    p += row * 4;
  }
  v128.store(sums, s0);
  v128.store(sums, s1, 16);
}

/** One token's 4 channels at p, quantized about c (qsym); zeros where !live. */
// @ts-ignore: decorator
@inline function qtok(p: usize, c: v128, inv: v128, live: bool, lo: v128, hi: v128): v128 {
  return live ? qsym(f32x4.sub(v128.load(p), c), inv, lo, hi) : i32x4.splat(0);
}

/** chanCentre and chanHalfRange for 4 channels at once (per lane: the same f32 operations). */
// @ts-ignore: decorator
@inline function chanCentre4(lo: v128, hi: v128, mid: usize): v128 {
  if (!mid) return f32x4.splat(0);
  const h = f32x4.splat(0.5), c = f32x4.add(f32x4.mul(hi, h), f32x4.mul(lo, h));
  v128.store(mid, c);
  return c;
}
// @ts-ignore: decorator
@inline function chanHalfRange4(lo: v128, hi: v128, mid: usize): v128 {
  const h = f32x4.splat(0.5);
  return mid ? f32x4.sub(f32x4.mul(hi, h), f32x4.mul(lo, h)) : f32x4.pmax(hi, f32x4.neg(lo));
}

/** chanParams for 4 channels at once (per lane: the same f32 operations). */
// @ts-ignore: decorator
@inline function chanParams4(m: v128, alpha: f32, ws: usize): v128 {
  const pos = f32x4.gt(m, f32x4.splat(0));
  const s = v128.and(f32x4.div(m, f32x4.splat(127)), pos);
  v128.store(ws, f32x4.mul(s, f32x4.splat(alpha)));
  return v128.and(f32x4.div(f32x4.splat(127), m), pos);
}

/** [k0 c0..3, k1 c0..3, k2 .., k3 ..] bytes -> [c0 k0..3, c1 k0..3, c2 .., c3 ..]. */
// @ts-ignore: decorator
@inline function transpose4x4(b: v128): v128 {
  return i8x16.shuffle(b, b, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

/** clamp(nearest(v * inv), lo = -127, hi = 127) as int32 lanes (the quantize_pack_qb step; lo, hi from QK). */
// @ts-ignore: decorator
@inline function qsym(v: v128, vinv: v128, lo: v128, hi: v128): v128 {
  const q = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.mul(v, vinv)), lo), hi);
  return ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(q) : i32x4.trunc_sat_f32x4_s(q);
}
// @ts-ignore: decorator
@inline function qsym1(v: f32, inv: f32): i32 {
  return <i32>min(max(nearest(v * inv), <f32>-127), <f32>127);
}

/**
 * c[i*ldc + j] = act((f32(acc[i,j] - zx[i]*colsum[j]) * f32(sx[i]*sw[j])) + bias[j])
 * for i < M, j < N; acc = sum_k w[j,k] u[i,k]. flags & 1: GELU; flags & 2:
 * the composed dot even where the fused one runs (dotFused; the same bits,
 * for A/B timing); flags & 4 (QGEMM_A6): the caller promises u <= 63 (6-bit
 * rows), so the composed dot may sum pairs of groups in i16 (tilePaired; the
 * same bits; with a larger u the result is unspecified). bias 0: none.
 */
export function qgemm(M: i32, N: i32, K: i32, qa: usize, rowp: usize, wp: usize, wscale: usize,
  bias: usize, c: usize, ldc: i32, flags: i32): void {
  if (M <= 0 || N <= 0) return;
  const act = (flags & 1) != 0;
  const Kp = (K + 3) & ~3, N8 = (N + 7) & ~7;
  const kq = Kp >> 2;
  const stripBytes = <usize>Kp << 2, panelBytes = <usize>Kp << 3;
  const sums = wp + <usize>N8 * <usize>Kp;
  // i16 ones for pmaddwd, built from an argument so that no engine sees a
  // constant: V8 would reload a constant from memory at every use (two
  // loads per dot, and the load ports are this loop's bottleneck)
  const ones = i16x8.splat(<i16>(1 + (flags >>> 31)));
  const fused = (flags & 2) == 0 && dotFused(flags), paired = (flags & 4) != 0;
  let bp = wp;
  for (let j = 0; j < N; j += 8) {
    const nr = min(8, N - j);
    let ap = qa, rp = rowp;
    let cp = c + (<usize>j << 2);
    const sp = sums + (<usize>j << 2), wsp = wscale + (<usize>j << 2);
    const biasp = bias != 0 ? bias + (<usize>j << 2) : 0;
    for (let i = 0; i < M; i += 4) {
      const mr = min(4, M - i);
      if (ASC_FEATURE_RELAXED_SIMD) {
        if (fused) {
          if (mr <= 2) tileFused2(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp);
          else tileFused(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp);
        } else if (mr <= 2) tileRelaxed2(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, ones);
        else if (paired) tilePaired(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, ones);
        else tileRelaxed(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, ones);
      } else {
        tilePlain(ap, bp, kq, cp, ldc, mr, min(4, nr), rp, sp, wsp, biasp);
        if (nr > 4) tilePlain(ap, bp + 16, kq, cp + 16, ldc, mr, nr - 4, rp, sp + 16, wsp + 16, biasp != 0 ? biasp + 16 : 0);
      }
      ap += stripBytes;
      rp += 32;
      cp += <usize>ldc << 4;
    }
    bp += panelBytes;
  }
  if (act) geluRationalRows(c, ldc, M, N);
}

/**
 * Relaxed build, composed dot, 6-bit rows (qgemm's flags & 4): the 4x8 tile
 * with two groups (8 k) per step, each accumulator taking one pmaddwd for
 * the i16 sum of two pair-dots (dot6): 24 multiplies per 256 multiply-adds
 * against 32. Its own function with one loop: inside tileRelaxedRows, next to
 * the one-group loop, its per-tile cost was three times the 4x8 tile's (V8
 * moving spilled accumulators between the loops; 0.93x the time at K = 192
 * against 0.85x now). Two of its 8 accumulators spill (15 xmm registers);
 * an odd group count ends with one composed step.
 */
function tilePaired(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize, ones: v128): void {
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0);
  let c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  let c20 = i32x4.splat(0), c21 = i32x4.splat(0);
  let c30 = i32x4.splat(0), c31 = i32x4.splat(0);
  const end = ap + (<usize>(kq >> 1) << 5);
  while (ap < end) {
    const b0 = v128.load(bp, 0), b1 = v128.load(bp, 16), e0 = v128.load(bp, 32), e1 = v128.load(bp, 48);
    const a = v128.load(ap), g = v128.load(ap, 16);
    let x = i32x4.shuffle(a, a, 0, 0, 0, 0), y = i32x4.shuffle(g, g, 0, 0, 0, 0);
    c00 = dot6(b0, x, e0, y, ones, c00); c01 = dot6(b1, x, e1, y, ones, c01);
    x = i32x4.shuffle(a, a, 1, 1, 1, 1); y = i32x4.shuffle(g, g, 1, 1, 1, 1);
    c10 = dot6(b0, x, e0, y, ones, c10); c11 = dot6(b1, x, e1, y, ones, c11);
    x = i32x4.shuffle(a, a, 2, 2, 2, 2); y = i32x4.shuffle(g, g, 2, 2, 2, 2);
    c20 = dot6(b0, x, e0, y, ones, c20); c21 = dot6(b1, x, e1, y, ones, c21);
    x = i32x4.shuffle(a, a, 3, 3, 3, 3); y = i32x4.shuffle(g, g, 3, 3, 3, 3);
    c30 = dot6(b0, x, e0, y, ones, c30); c31 = dot6(b1, x, e1, y, ones, c31);
    ap += 32; bp += 64;
  }
  if (kq & 1) {
    const b0 = v128.load(bp, 0), b1 = v128.load(bp, 16), a = v128.load(ap);
    let x = i32x4.shuffle(a, a, 0, 0, 0, 0);
    c00 = dot7(b0, x, ones, c00, false); c01 = dot7(b1, x, ones, c01, false);
    x = i32x4.shuffle(a, a, 1, 1, 1, 1);
    c10 = dot7(b0, x, ones, c10, false); c11 = dot7(b1, x, ones, c11, false);
    x = i32x4.shuffle(a, a, 2, 2, 2, 2);
    c20 = dot7(b0, x, ones, c20, false); c21 = dot7(b1, x, ones, c21, false);
    x = i32x4.shuffle(a, a, 3, 3, 3, 3);
    c30 = dot7(b0, x, ones, c30, false); c31 = dot7(b1, x, ones, c31, false);
  }
  const rs = <usize>ldc << 2;
  storeRow(cp, c00, c01, nr, rp, sp, wsp, biasp);
  if (mr > 1) storeRow(cp + rs, c10, c11, nr, rp + 8, sp, wsp, biasp);
  if (mr > 2) storeRow(cp + rs * 2, c20, c21, nr, rp + 16, sp, wsp, biasp);
  if (mr > 3) storeRow(cp + rs * 3, c30, c31, nr, rp + 24, sp, wsp, biasp);
}

/** Relaxed build: 4 rows x 8 channels, 8 i32x4 accumulators, one relaxed dot = 16 multiply-adds. */
function tileRelaxed(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize, ones: v128): void {
  tileRelaxedRows(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, ones, false, false);
}

/**
 * Relaxed build, a strip holding 1 or 2 rows (the prefix rows' two parts,
 * src/quant/int8.ts; a tail strip): the same loop on rows 0 and 1 only, half
 * the dots; same bits.
 */
function tileRelaxed2(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize, ones: v128): void {
  tileRelaxedRows(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, ones, true, false);
}

/** tileRelaxed and tileRelaxed2 with the fused dot (dotFused): one instruction per 16 multiply-adds, no ones. */
function tileFused(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize): void {
  tileRelaxedRows(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, i32x4.splat(0), false, true);
}
function tileFused2(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize): void {
  tileRelaxedRows(ap, bp, kq, cp, ldc, mr, nr, rp, sp, wsp, biasp, i32x4.splat(0), true, true);
}

// The four tiles' one body; `two` and `fused` are literals at each call, so
// each inlined copy keeps only its rows' dots and stores, and one dot form.
// @ts-ignore: decorator
@inline function tileRelaxedRows(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize, ones: v128, two: bool, fused: bool): void {
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0);
  let c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  let c20 = i32x4.splat(0), c21 = i32x4.splat(0);
  let c30 = i32x4.splat(0), c31 = i32x4.splat(0);
  let k = kq;
  while (k > 0) {
    const b0 = v128.load(bp, 0), b1 = v128.load(bp, 16);
    // one load of the 4 rows' groups, each row's group spread by a shuffle
    // (V8 folds no offset into a load-splat's address: 4 splats cost 3 more adds)
    const a = v128.load(ap);
    let x = i32x4.shuffle(a, a, 0, 0, 0, 0);
    c00 = dot7(b0, x, ones, c00, fused); c01 = dot7(b1, x, ones, c01, fused);
    x = i32x4.shuffle(a, a, 1, 1, 1, 1);
    c10 = dot7(b0, x, ones, c10, fused); c11 = dot7(b1, x, ones, c11, fused);
    if (!two) {
      x = i32x4.shuffle(a, a, 2, 2, 2, 2);
      c20 = dot7(b0, x, ones, c20, fused); c21 = dot7(b1, x, ones, c21, fused);
      x = i32x4.shuffle(a, a, 3, 3, 3, 3);
      c30 = dot7(b0, x, ones, c30, fused); c31 = dot7(b1, x, ones, c31, fused);
    }
    ap += 16; bp += 32; k--;
  }
  const rs = <usize>ldc << 2;
  if (!two && mr == 4 && nr == 8) {
    // a full tile: the 8 channels' column sums, scales and biases loaded once
    // for its 4 rows (storeRow reloads them per row; 1.04-1.10x at K = 192)
    const s0 = v128.load(sp), s1 = v128.load(sp, 16), w0 = v128.load(wsp), w1 = v128.load(wsp, 16);
    const hasBias = biasp != 0;
    const z0 = hasBias ? v128.load(biasp) : f32x4.splat(0), z1 = hasBias ? v128.load(biasp, 16) : f32x4.splat(0);
    storeRow8(cp, c00, c01, rp, s0, s1, w0, w1, hasBias, z0, z1);
    storeRow8(cp + rs, c10, c11, rp + 8, s0, s1, w0, w1, hasBias, z0, z1);
    storeRow8(cp + rs * 2, c20, c21, rp + 16, s0, s1, w0, w1, hasBias, z0, z1);
    storeRow8(cp + rs * 3, c30, c31, rp + 24, s0, s1, w0, w1, hasBias, z0, z1);
    return;
  }
  storeRow(cp, c00, c01, nr, rp, sp, wsp, biasp);
  if (mr > 1) storeRow(cp + rs, c10, c11, nr, rp + 8, sp, wsp, biasp);
  if (!two && mr > 2) storeRow(cp + rs * 2, c20, c21, nr, rp + 16, sp, wsp, biasp);
  if (!two && mr > 3) storeRow(cp + rs * 3, c30, c31, nr, rp + 24, sp, wsp, biasp);
}

/** One row of 8 channels with the per-channel vectors given (column sums s, scales w, bias z when hasBias): storeRow's nr == 8 case, and a full tile's rows with them loaded once. */
// @ts-ignore: decorator
@inline function storeRow8(p: usize, acc0: v128, acc1: v128, rp: usize, s0: v128, s1: v128, w0: v128, w1: v128,
  hasBias: bool, z0: v128, z1: v128): void {
  const sx = f32x4.splat(load<f32>(rp)), zx = i32x4.splat(<i32>load<f32>(rp, 4));
  let r0 = f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(acc0, i32x4.mul(zx, s0))), f32x4.mul(sx, w0));
  let r1 = f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(acc1, i32x4.mul(zx, s1))), f32x4.mul(sx, w1));
  if (hasBias) { r0 = f32x4.add(r0, z0); r1 = f32x4.add(r1, z1); }
  v128.store(p, r0);
  v128.store(p, r1, 16);
}

/**
 * Plain SIMD build: 4 rows x 4 channels (half a panel, panel stride 32 bytes).
 * Weights widened by load8x8_s: [ch0 k0..3, ch1 k0..3] and [ch2.., ch3..]; a
 * row's group splatted and widened: [u0..3, u0..3]; dot_i16x8_s then gives
 * [ch0 k01, ch0 k23, ch1 k01, ch1 k23], summed pairwise in the store.
 */
function tilePlain(ap: usize, bp: usize, kq: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  rp: usize, sp: usize, wsp: usize, biasp: usize): void {
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0);
  let c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  let c20 = i32x4.splat(0), c21 = i32x4.splat(0);
  let c30 = i32x4.splat(0), c31 = i32x4.splat(0);
  let k = kq;
  while (k > 0) {
    const w0 = v128.load8x8_s(bp, 0), w1 = v128.load8x8_s(bp, 8);
    let x = i16x8.extend_low_i8x16_u(v128.load32_splat(ap, 0));
    c00 = i32x4.add(c00, i32x4.dot_i16x8_s(w0, x)); c01 = i32x4.add(c01, i32x4.dot_i16x8_s(w1, x));
    x = i16x8.extend_low_i8x16_u(v128.load32_splat(ap, 4));
    c10 = i32x4.add(c10, i32x4.dot_i16x8_s(w0, x)); c11 = i32x4.add(c11, i32x4.dot_i16x8_s(w1, x));
    x = i16x8.extend_low_i8x16_u(v128.load32_splat(ap, 8));
    c20 = i32x4.add(c20, i32x4.dot_i16x8_s(w0, x)); c21 = i32x4.add(c21, i32x4.dot_i16x8_s(w1, x));
    x = i16x8.extend_low_i8x16_u(v128.load32_splat(ap, 12));
    c30 = i32x4.add(c30, i32x4.dot_i16x8_s(w0, x)); c31 = i32x4.add(c31, i32x4.dot_i16x8_s(w1, x));
    ap += 16; bp += 32; k--;
  }
  const rs = <usize>ldc << 2, z = i32x4.splat(0);
  storeRow(cp, pairSum(c00, c01), z, nr, rp, sp, wsp, biasp);
  if (mr > 1) storeRow(cp + rs, pairSum(c10, c11), z, nr, rp + 8, sp, wsp, biasp);
  if (mr > 2) storeRow(cp + rs * 2, pairSum(c20, c21), z, nr, rp + 16, sp, wsp, biasp);
  if (mr > 3) storeRow(cp + rs * 3, pairSum(c30, c31), z, nr, rp + 24, sp, wsp, biasp);
}

/**
 * c + the 8-term dots of a, e (int8) and b, f (0..63): the two groups'
 * i16 pair sums added in i16 (exact: |4 * 63 * 128| < 2^15), then one
 * pmaddwd with ones. tilePaired's step.
 */
// @ts-ignore: decorator
@inline function dot6(a: v128, b: v128, e: v128, f: v128, ones: v128, c: v128): v128 {
  return i32x4.add(c, i32x4.dot_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(a, b), i16x8.relaxed_dot_i8x16_i7x16_s(e, f)), ones));
}

/**
 * c + 4-term dots of a (int8) and b (0..127): `fused`, the one instruction
 * i32x4.relaxed_dot_i8x16_i7x16_add_s (only where dotFused holds); else
 * composed as i16x8.relaxed_dot + dot_i16x8_s with ones. Both exact for b in
 * [0, 127], so the same bits.
 */
// @ts-ignore: decorator
@inline function dot7(a: v128, b: v128, ones: v128, c: v128, fused: bool): v128 {
  if (fused) return i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c);
  return i32x4.add(c, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(a, b), ones));
}

/**
 * Whether this engine's i32x4.relaxed_dot_i8x16_i7x16_add_s is one exact
 * unsigned-by-signed 4-term dot, as x64 V8 with AVX-VNNI (vpdpbusd) computes
 * it: tested on operands outside the deterministic range, 127 against 0xff,
 * where that gives 4 * 127 * 255 = 129540, x64 V8 without AVX-VNNI (pmaddubsw
 * + pmaddwd + paddd, its ones loaded from memory) 2 * 32767 (pairs saturated
 * in i16; so does Node 22's V8 12.4 on this CPU, which has no AVX-VNNI
 * lowering), and a signed reading (an arm64 sdot) -508. Only then does qgemm
 * run the fused dot:
 *   with AVX-VNNI it is one instruction per 16 multiply-adds against three
 *   (two of them multiplies): Node 24 (V8 13.6) on this project's AMD EPYC,
 *   the planned int8 DeiT-Tiny forward took 0.74x the time (CAIT and dense);
 *   without it the fused form took 1.34x (Node 24 with --no-enable-avx-vnni:
 *   the ones reloaded at every dot), and in Node 20's V8 (11.3, no AVX-VNNI
 *   lowering) its baseline compiler (Liftoff) miscomputes the 4x8 tile (one
 *   accumulator doubled; TurboFan's code is right), which this test keeps out.
 * `flags` as qgemm's (its bit 31, always 0, keeps the operands run-time
 * values: no compiler folds the engine's answer away). Per call, no state:
 * a few instructions against a GEMM's thousands.
 */
// @ts-ignore: decorator
@inline function dotFused(flags: i32): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  const hb = <i32>(flags >>> 31);
  const d = i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.splat(<i8>(127 - hb)), i8x16.splat(<i8>(hb - 1)), i32x4.splat(hb));
  return i32x4.extract_lane(d, 0) == 129540;
}

/** Not a kernel (not in the kernel table): 1 where qgemm runs the fused dot (dotFused), else 0; the backend reports it. */
export function qgemm_dot_fused(flags: i32): i32 {
  return dotFused(flags) ? 1 : 0;
}

// [a0+a1, a2+a3, b0+b1, b2+b3]
// @ts-ignore: decorator
@inline function pairSum(a: v128, b: v128): v128 {
  return i32x4.add(i8x16.shuffle(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27),
    i8x16.shuffle(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31));
}

/** Dequantize one row of up to 8 channels (acc0: channels 0..3, acc1: 4..7) and store nr of them (GELU: after the GEMM, qgemm). */
// @ts-ignore: decorator
@inline function storeRow(p: usize, acc0: v128, acc1: v128, nr: i32, rp: usize, sp: usize, wsp: usize, biasp: usize): void {
  if (nr == 8) {
    const hasBias = biasp != 0;
    storeRow8(p, acc0, acc1, rp, v128.load(sp), v128.load(sp, 16), v128.load(wsp), v128.load(wsp, 16),
      hasBias, hasBias ? v128.load(biasp) : f32x4.splat(0), hasBias ? v128.load(biasp, 16) : f32x4.splat(0));
    return;
  }
  const sx = f32x4.splat(load<f32>(rp)), zx = i32x4.splat(<i32>load<f32>(rp, 4));
  if (nr == 4) {
    let r0 = f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(acc0, i32x4.mul(zx, v128.load(sp)))), f32x4.mul(sx, v128.load(wsp)));
    if (biasp) r0 = f32x4.add(r0, v128.load(biasp));
    v128.store(p, r0);
  } else {
    // edge: element by element, the same operations (columns past nr neither read nor written)
    const s = load<f32>(rp), z = <i32>load<f32>(rp, 4);
    for (let j = 0; j < nr; j++) {
      const a = j < 4 ? laneI(acc0, j) : laneI(acc1, j - 4);
      const o = <usize>j << 2;
      let r = <f32>(a - z * load<i32>(sp + o)) * (s * load<f32>(wsp + o));
      if (biasp) r += load<f32>(biasp + o);
      store<f32>(p + o, r);
    }
  }
}

// @ts-ignore: decorator
@inline function laneI(v: v128, i: i32): i32 {
  if (i == 0) return i32x4.extract_lane(v, 0);
  if (i == 1) return i32x4.extract_lane(v, 1);
  if (i == 2) return i32x4.extract_lane(v, 2);
  return i32x4.extract_lane(v, 3);
}
