// Reference int8 GEMM: the executable spec of assembly/qgemm.ts (layouts and
// numbers are described there). Integer parts are exact; the float steps are
// rounded to f32 one by one in the kernel's order, so a SIMD build matches
// this bit for bit except through GELU: exact here (the float64 erf), an erf
// rational in the kernel (assembly/gelu.ts geluRationalv, within 1.2e-6 max(1, |x|)).
//
//   quantize_rows(x, ldx, M, K, qa, rowp, levels)   per-row asymmetric, u in [0, levels] (127: 7 bits, 63: 6)
//   pack_qb(K, N, w, ldw, dst)                  int8 weights -> panels + column sums
//   qgemm(M, N, K, qa, rowp, wp, wscale, bias, c, ldc, flags)   flags & 1: GELU (& 2, & 4: WASM loop choices, the same result)
//   quantize_prefix_rows(x, ldx, B, T, P, K, tmp, qa, rowp)       prefix rows in two 7-bit parts
//   add_prefix_rows(z, N, B, T, P, bias, y, ldy, flags)           their two parts' sum into y
//   quantize_pack_qb(K, N, w, ldk, ldn, alpha, dst, wscale, mid)  float weights -> per-channel int8 panels (mid: centred)
//   softmax_quantize_rows(x, rows, cols, qa, rowp, levels)        softmax rows into quantize_rows' layout
import type { Heap } from './heap.js';
import { erf } from './gelu.js';

const f32 = Math.fround;

/** Round half to even (wasm's nearest). */
function nearest(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const bytes = (h: Heap): Int8Array => new Int8Array(h.f32.buffer);

/** A row's scale s, 1/s and zero point for L levels from lo = min(x, 0), hi = max(x, 0) (a zero row: 1, 0, 0). */
function rowParams(lo: number, hi: number, L: number): { s: number; inv: number; z: number } {
  const range = f32(hi - lo);
  if (!(range > 0)) return { s: 1, inv: 0, z: 0 };
  const inv = f32(L / range);
  return { s: f32(range / L), inv, z: Math.min(Math.max(nearest(f32(-lo * inv)), 0), L) };
}

export function quantize_rows(h: Heap, x: number, ldx: number, M: number, K: number, qa: number, rowp: number, levels: number): void {
  if (M <= 0) return;
  const f = h.f32, b = bytes(h), Kp = (K + 3) & ~3, Mp = (M + 3) & ~3;
  for (let i = 0; i < Mp; i++) {
    const row = (k: number) => qa + (i >> 2) * Kp * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3);
    if (i >= M) { for (let k = 0; k < Kp; k++) b[row(k)] = 0; continue; }
    const X = (x >> 2) + i * ldx;
    let lo = 0, hi = 0;
    for (let k = 0; k < K; k++) { lo = Math.min(lo, f[X + k]); hi = Math.max(hi, f[X + k]); }
    const { s, inv, z } = rowParams(lo, hi, levels);
    f[(rowp >> 2) + 2 * i] = s;
    f[(rowp >> 2) + 2 * i + 1] = z;
    for (let k = 0; k < Kp; k++) {
      b[row(k)] = k < K ? Math.min(Math.max(nearest(f32(f[X + k] * inv)) + z, 0), levels) : 0;
    }
  }
}

export function pack_qb(h: Heap, K: number, N: number, w: number, ldw: number, dst: number): void {
  if (K <= 0 || N <= 0) return;
  const b = bytes(h), i32 = h.i32, Kp = (K + 3) & ~3, N8 = (N + 7) & ~7, sums = dst + N8 * Kp;
  for (let j = 0; j < N8; j++) {
    let sum = 0;
    for (let k = 0; k < Kp; k++) {
      const v = j < N && k < K ? b[w + j * ldw + k] : 0;
      sum += v;
      b[dst + (j >> 3) * Kp * 8 + (k >> 2) * 32 + (j & 7) * 4 + (k & 3)] = v;
    }
    i32[(sums >> 2) + j] = sum;
  }
}

export function qgemm(h: Heap, M: number, N: number, K: number, qa: number, rowp: number, wp: number, wscale: number,
  bias: number, c: number, ldc: number, flags: number): void {
  if (M <= 0 || N <= 0) return;
  const f = h.f32, i32 = h.i32, b = bytes(h), u = new Uint8Array(h.f32.buffer);
  const Kp = (K + 3) & ~3, N8 = (N + 7) & ~7, sums = (wp + N8 * Kp) >> 2;
  for (let i = 0; i < M; i++) {
    const sx = f[(rowp >> 2) + 2 * i], zx = f[(rowp >> 2) + 2 * i + 1];
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++)
        acc += b[wp + (j >> 3) * Kp * 8 + (k >> 2) * 32 + (j & 7) * 4 + (k & 3)] * u[qa + (i >> 2) * Kp * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3)];
      let r = f32(f32(acc - zx * i32[sums + j]) * f32(sx * f[(wscale >> 2) + j]));
      if (bias) r = f32(r + f[(bias >> 2) + j]);
      if (flags & 1) r = 0.5 * r * (1 + erf(r / Math.SQRT2));
      f[(c >> 2) + i * ldc + j] = r;
    }
  }
}

export function quantize_prefix_rows(h: Heap, x: number, ldx: number, B: number, T: number, P: number, K: number, tmp: number, qa: number, rowp: number): void {
  const E = B * P, f = h.f32;
  if (E <= 0 || K <= 0) return;
  for (let e = 0; e < E; e++) {
    const X = (x >> 2) + (Math.floor(e / P) * T + (e % P)) * ldx, row = (tmp >> 2) + e * K, res = (tmp >> 2) + (E + e) * K;
    let lo = 0, hi = 0;
    for (let k = 0; k < K; k++) { lo = Math.min(lo, f[X + k]); hi = Math.max(hi, f[X + k]); }
    const { s, inv, z } = rowParams(lo, hi, 127);
    for (let k = 0; k < K; k++) {
      const v = f[X + k], u = Math.min(Math.max(nearest(f32(v * inv)) + z, 0), 127);
      f[row + k] = v;
      f[res + k] = f32(v - f32(s * (u - z)));
    }
  }
  quantize_rows(h, tmp, K, 2 * E, K, qa, rowp, 127);
}

export function add_prefix_rows(h: Heap, z: number, N: number, B: number, T: number, P: number, bias: number, y: number, ldy: number, flags: number): void {
  const E = B * P, f = h.f32;
  if (E <= 0 || N <= 0) return;
  for (let e = 0; e < E; e++) {
    const Y = (y >> 2) + (Math.floor(e / P) * T + (e % P)) * ldy;
    for (let j = 0; j < N; j++) {
      let r = f32(f[(z >> 2) + e * N + j] + f[(z >> 2) + (E + e) * N + j]);
      if (bias) r = f32(r + f[(bias >> 2) + j]);
      if (flags & 1) r = 0.5 * r * (1 + erf(r / Math.SQRT2));
      f[Y + j] = r;
    }
  }
}

export function quantize_pack_qb(h: Heap, K: number, N: number, w: number, ldk: number, ldn: number, alpha: number, dst: number, wscale: number, mid: number): void {
  if (K <= 0 || N <= 0) return;
  const f = h.f32, b = bytes(h), i32 = h.i32, Kp = (K + 3) & ~3, N8 = (N + 7) & ~7, sums = dst + N8 * Kp;
  const W = (j: number, k: number) => f[(w >> 2) + j * ldn + k * ldk];
  for (let j = 0; j < N8; j++) {
    let inv = 0, c = 0, sum = 0;
    if (j < N) {
      let lo = W(j, 0), hi = lo;
      for (let k = 1; k < K; k++) { lo = Math.min(lo, W(j, k)); hi = Math.max(hi, W(j, k)); }
      let m = Math.max(hi, -lo);
      if (mid) {
        c = f32(f32(hi * 0.5) + f32(lo * 0.5));
        m = f32(f32(hi * 0.5) - f32(lo * 0.5));
        f[(mid >> 2) + j] = c;
      }
      const s = m > 0 ? f32(m / 127) : 0;
      inv = m > 0 ? f32(127 / m) : 0;
      f[(wscale >> 2) + j] = f32(s * alpha);
    }
    for (let k = 0; k < Kp; k++) {
      const q = j < N && k < K ? Math.min(Math.max(nearest(f32(f32(W(j, k) - c) * inv)), -127), 127) : 0;
      sum += q;
      b[dst + (j >> 3) * Kp * 8 + (k >> 2) * 32 + (j & 7) * 4 + (k & 3)] = q;
    }
    i32[(sums >> 2) + j] = sum;
  }
}

// exp in float64 here, exp4 (within 8.5e-8) in the kernels: a byte may differ
// by one where e * levels lies within that of a rounding midpoint, and the row
// scale by an ulp or two (test/kernels/qgemm.test.ts allows exactly that).
export function softmax_quantize_rows(h: Heap, x: number, rows: number, cols: number, qa: number, rowp: number, levels: number): void {
  if (rows <= 0 || cols <= 0) return;
  const f = h.f32, b = bytes(h), Kp = (cols + 3) & ~3, Mp = (rows + 3) & ~3;
  for (let i = 0; i < Mp; i++) {
    const at = (k: number) => qa + (i >> 2) * Kp * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3);
    if (i >= rows) { for (let k = 0; k < Kp; k++) b[at(k)] = 0; continue; }
    const X = (x >> 2) + i * cols;
    let m = -Infinity, sum = 0;
    for (let k = 0; k < cols; k++) m = Math.max(m, f[X + k]);
    for (let k = 0; k < cols; k++) { f[X + k] = Math.exp(f32(f[X + k] - m)); sum += f[X + k]; }
    f[(rowp >> 2) + 2 * i] = f32(f32(1 / sum) / levels);
    f[(rowp >> 2) + 2 * i + 1] = 0;
    for (let k = 0; k < Kp; k++) b[at(k)] = k < cols ? Math.min(Math.max(nearest(f32(f[X + k] * levels)), 0), levels) : 0;
  }
}
