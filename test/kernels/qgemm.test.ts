// int8 kernels (assembly/qgemm.ts): quantize_rows, pack_qb and qgemm in both
// WASM builds against the reference, bit for bit (GELU: within the GELU
// kernel's accuracy), on odd, tail (M % 4, N % 8, K % 4), unaligned and
// strided sizes, and at the extremes of both operand ranges (weights -128 and
// 127, activations 0 and 127; 0 and 63 for 6-bit rows, QGEMM_A6, whose
// composed dot sums pairs of groups in i16), where the relaxed dot would
// differ between engines if its 7-bit operand were ever out of range.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend, Ptr } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/index.js';
import { loadWasmSync, relaxedSimdSupported, type WasmVariant } from '../../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../../src/backend/threads.js';
import { randn, close } from '../util.js';
import { QGEMM_GELU, QGEMM_COMPOSED_DOT, QGEMM_A6 } from '../../src/backend/kernels.js';

const ref = new ReferenceBackend(1 << 24);
const variants: WasmVariant[] = relaxedSimdSupported() ? ['simd', 'relaxed'] : ['simd'];
const wasm = variants.map((v) => loadWasmSync(v));
const run = (be: Backend, k: string, ...a: number[]) => be.run(k as never, ...a);

/** Heap bytes (any byte offset): allocated with room for `off` leading bytes, written through an aligned Int32Array. */
function putBytes(be: Backend, data: Int8Array | Uint8Array, off: number, ptrs: Ptr[]): Ptr {
  const n = Math.ceil((data.length + off) / 4) + 1;
  const base = be.alloc(n);
  ptrs.push(base);
  const buf = new Uint8Array(n * 4);
  buf.set(new Uint8Array(data.buffer, data.byteOffset, data.length), off);
  be.write(base, new Int32Array(buf.buffer));
  return base + off;
}
function readBytes(be: Backend, p: Ptr, n: number): Uint8Array {
  const base = p & ~3, f = be.read(base, Math.ceil((p - base + n) / 4));
  return new Uint8Array(f.buffer, f.byteOffset + (p - base), n).slice();
}
function putFloats(be: Backend, x: Float32Array, offFloats: number, ptrs: Ptr[]): Ptr {
  const p = be.alloc(x.length + offFloats + 1);
  ptrs.push(p);
  be.write(p + 4 * offFloats, x);
  return p + 4 * offFloats;
}
const kp = (K: number) => (K + 3) & ~3;
const qaBytes = (M: number, K: number) => Math.ceil(M / 4) * 4 * kp(K);
const packedBytes = (K: number, N: number) => Math.ceil(N / 8) * 8 * (kp(K) + 4);

function randI8(n: number, seed: number, lo = -128, hi = 127): Int8Array {
  const r = randn(n, seed), out = new Int8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(hi, Math.max(lo, Math.round(lo + ((r[i] + 1) / 2) * (hi - lo))));
  return out;
}

const Q = suite('int8 kernels');

Q('pack_qb: panels and column sums bit for bit (K, N tails, ldw > K, odd byte offsets)', () => {
  for (const [K, N, ldw, off] of [[1, 1, 1, 0], [3, 5, 3, 1], [4, 8, 7, 2], [7, 13, 9, 3], [33, 17, 33, 1], [192, 24, 195, 0]]) {
    const w = randI8(N * ldw, K * 31 + N);
    const outs = [ref, ...wasm].map((be) => {
      const ptrs: Ptr[] = [];
      const wp = putBytes(be, w, off, ptrs), dst = be.alloc(packedBytes(K, N) / 4 + 2);
      ptrs.push(dst);
      be.write(dst, new Int32Array(packedBytes(K, N) / 4 + 2).fill(0x5a5a5a5a));
      run(be, 'pack_qb', K, N, wp, ldw, dst);
      const out = readBytes(be, dst, packedBytes(K, N) + 8);
      for (const p of ptrs) be.free(p);
      return out;
    });
    // the column sums are exact: check a few against a direct sum
    const sums = new Int32Array(outs[0].buffer, Math.ceil(N / 8) * 8 * kp(K), Math.ceil(N / 8) * 8);
    for (let j = 0; j < N; j++) { let s = 0; for (let k = 0; k < K; k++) s += w[j * ldw + k]; assert.is(sums[j], s, `colsum ${j}`); }
    for (let j = N; j < sums.length; j++) assert.is(sums[j], 0);
    for (let v = 0; v < wasm.length; v++) assert.equal([...outs[v + 1]], [...outs[0]], `${variants[v]} K ${K} N ${N}`);
    // nothing past the packed size is written
    assert.equal([...outs[0].slice(-8)], [0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a]);
  }
});

// quantize_pack_qb's three paths: rows (ldk 1: attention's k), columns
// (ldn 1: v, 8 channels at a time, then N % 8 one by one), any other stride;
// each symmetric (mid 0) and centred (mid: each channel about its midpoint).
Q('quantize_pack_qb: panels, column sums, scales and centres bit for bit on rows, columns and strided, symmetric and centred; zero, constant and offset channels; pack_qb of its own bytes', () => {
  for (const centred of [false, true]) for (const [K, N, ldk, ldn, off] of [[1, 1, 1, 1, 0], [3, 5, 1, 4, 1], [4, 8, 1, 7, 2], [64, 197, 1, 576, 0], [7, 13, 1, 9, 3],
    [1, 8, 8, 1, 0], [5, 16, 20, 1, 1], [197, 64, 576, 1, 0], [9, 37, 41, 1, 3], [6, 3, 3, 1, 2], [33, 17, 3, 101, 1], [10, 12, 13, 1, 0]]) {
    const span = (N - 1) * ldn + (K - 1) * ldk + 1, x = randn(span, K * 7 + N, 2);
    const at = (j: number, k: number) => j * ldn + k * ldk;
    for (let k = 0; k < K; k++) x[at(N - 1, k)] = 0;   // the last channel all zero
    if (N > 2) x[at(1, K - 1)] = 1e4;                   // one huge value
    if (N > 3) for (let k = 0; k < K; k++) x[at(N - 2, k)] = 3;   // a constant channel
    if (N > 4) for (let k = 0; k < K; k++) x[at(2, k)] = 5 + 0.02 * x[at(2, k)];   // on an offset
    const alpha = 0.125, bytesN = packedBytes(K, N);
    const outs = [ref, ...wasm].map((be) => {
      const ptrs: Ptr[] = [];
      const xp = putFloats(be, x, off, ptrs), dst = be.alloc(bytesN / 4 + 2), ws = putFloats(be, new Float32Array(N + 1).fill(-7), off, ptrs);
      const mid = centred ? putFloats(be, new Float32Array(N + 1).fill(-9), off, ptrs) : 0;
      ptrs.push(dst);
      be.write(dst, new Int32Array(bytesN / 4 + 2).fill(0x5a5a5a5a));
      run(be, 'quantize_pack_qb', K, N, xp, ldk, ldn, alpha, dst, ws, mid);
      const out = { p: [...readBytes(be, dst, bytesN + 8)], s: [...be.read(ws, N + 1)], c: centred ? [...be.read(mid, N + 1)] : new Array<number>(N + 1).fill(0) };
      for (const p of ptrs) be.free(p);
      return out;
    });
    const o = outs[0], tag = `K ${K} N ${N} ldk ${ldk} ldn ${ldn}${centred ? ' centred' : ''}`;
    assert.equal(o.p.slice(-8), [0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a], `${tag}: nothing past the panels`);
    assert.is(o.s[N], -7, `${tag}: nothing past the scales`);
    assert.is(o.s[N - 1], 0, `${tag}: zero channel, scale 0`);
    if (centred) {
      assert.is(o.c[N], -9, `${tag}: nothing past the centres`);
      assert.is(o.c[N - 1], 0, `${tag}: zero channel, centre 0`);
      if (N > 3) assert.equal([o.c[N - 2], o.s[N - 2]], [3, 0], `${tag}: constant channel: centre 3, scale 0`);
      // the offset channel's step is its spread's (0.02 x randn), not 5's
      if (N > 4 && K > 1) assert.ok(o.s[2] / alpha < 0.1 / 127, `${tag}: offset channel's step ${o.s[2] / alpha}`);
    } else if (N > 4 && K > 1) assert.ok(o.s[2] / alpha > 4.5 / 127, `${tag}: symmetric: the offset sets the step`);
    // the bytes are w's, each within half a step, and pack_qb of them gives the same panels and sums
    const q = new Int8Array(N * K), pb = new Int8Array(new Uint8Array(o.p).buffer);
    for (let j = 0; j < N; j++) {
      const step = o.s[j] / alpha;
      for (let k = 0; k < K; k++) {
        q[j * K + k] = pb[(j >> 3) * kp(K) * 8 + (k >> 2) * 32 + (j & 7) * 4 + (k & 3)];
        assert.ok(Math.abs(q[j * K + k] * step + o.c[j] - x[at(j, k)]) <= 0.5001 * step + 1e-6 * Math.abs(x[at(j, k)]), `${tag}: channel ${j} k ${k}`);
      }
    }
    const ptrs: Ptr[] = [], wq = putBytes(ref, q, 0, ptrs), dst = ref.alloc(bytesN / 4);
    run(ref, 'pack_qb', K, N, wq, K, dst);
    assert.equal([...readBytes(ref, dst, bytesN)], o.p.slice(0, bytesN), `${tag}: pack_qb of the bytes`);
    ref.free(dst); for (const p of ptrs) ref.free(p);
    for (let v = 0; v < wasm.length; v++) {
      assert.equal(outs[v + 1].p, o.p, `${variants[v]} ${tag}: panels`);
      assert.equal(outs[v + 1].s, o.s, `${variants[v]} ${tag}: scales`);
      assert.equal(outs[v + 1].c, o.c, `${variants[v]} ${tag}: centres`);
    }
  }
});

// exp4 against the reference's float64 exp: a byte may be one off near a
// rounding midpoint, the row scale an ulp or two (src/backend/reference/qgemm.ts).
Q('softmax_quantize_rows: bytes within one of the reference (rarely off), scales within 2e-7; s*u within half a step of softmax; padding and bounds; 127 and 63 levels', () => {
  for (const L of [127, 63]) for (const [rows, cols, offX, offQ] of [[1, 1, 0, 0], [3, 5, 1, 1], [5, 7, 0, 2], [4, 16, 2, 3], [9, 33, 3, 0], [6, 100, 1, 1], [13, 197, 0, 0]]) {
    const x = randn(rows * cols, rows * 13 + cols, 4);
    if (rows > 1) for (let k = 0; k < cols; k++) x[cols + k] = k === cols >> 1 ? 60 : -30;   // one dominant key
    if (rows > 2) x.fill(2.5, 2 * cols, 3 * cols);                                           // uniform row
    const want = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      let m = -Infinity, s = 0;
      for (let k = 0; k < cols; k++) m = Math.max(m, x[i * cols + k]);
      for (let k = 0; k < cols; k++) s += Math.exp(x[i * cols + k] - m);
      for (let k = 0; k < cols; k++) want[i * cols + k] = Math.exp(x[i * cols + k] - m) / s;
    }
    const outs = [ref, ...wasm].map((be) => {
      const ptrs: Ptr[] = [];
      const xp = putFloats(be, x, offX, ptrs);
      const qa = putBytes(be, new Uint8Array(qaBytes(rows, cols) + 4).fill(0xee), offQ, ptrs);
      const rowp = putFloats(be, new Float32Array(2 * rows + 1).fill(-7), 0, ptrs);
      run(be, 'softmax_quantize_rows', xp, rows, cols, qa, rowp, L);
      const out = { q: [...readBytes(be, qa, qaBytes(rows, cols) + 4)], r: [...be.read(rowp, 2 * rows + 1)] };
      for (const p of ptrs) be.free(p);
      return out;
    });
    const tag = `${rows}x${cols} L ${L}`, u = (o: { q: number[] }, i: number, k: number) => o.q[(i >> 2) * kp(cols) * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3)];
    for (const [v, o] of outs.entries()) {
      const name = v === 0 ? 'reference' : variants[v - 1];
      assert.equal(o.q.slice(-4), [0xee, 0xee, 0xee, 0xee], `${name} ${tag}: nothing past the strips`);
      assert.ok(o.q.slice(0, -4).every((v) => v <= L), `${name} ${tag}: u in [0, ${L}]`);
      assert.is(o.r[2 * rows], -7, `${name} ${tag}: nothing past rowp`);
      for (let i = 0; i < rows; i++) {
        assert.is(o.r[2 * i + 1], 0, 'zero point 0');
        const s = o.r[2 * i];
        for (let k = 0; k < cols; k++) {
          const p = want[i * cols + k];
          assert.ok(Math.abs(s * u(o, i, k) - p) <= 0.5001 * s + 1e-6 * p, `${name} ${tag} row ${i} k ${k}: ${s * u(o, i, k)} for ${p}`);
        }
        for (let k = cols; k < kp(cols); k++) assert.is(u(o, i, k), 0, 'pad k');
      }
      for (let i = rows; i < Math.ceil(rows / 4) * 4; i++) for (let k = 0; k < kp(cols); k++) assert.is(u(o, i, k), 0, 'pad rows');
      if (rows > 1) assert.is(u(o, 1, cols >> 1), L, `the dominant key: ${L}`);
      if (v === 0) continue;
      let off = 0, diff = 0;
      for (let n = 0; n < o.q.length; n++) { const d = Math.abs(o.q[n] - outs[0].q[n]); diff = Math.max(diff, d); if (d) off++; }
      assert.ok(diff <= 1 && off <= Math.max(1, 0.01 * rows * cols), `${name} ${tag}: ${off} bytes off the reference, by up to ${diff}`);
      for (let i = 0; i < rows; i++) assert.ok(Math.abs(o.r[2 * i] - outs[0].r[2 * i]) <= 2e-7 * outs[0].r[2 * i], `${name} ${tag}: row ${i} scale ${o.r[2 * i]} vs ${outs[0].r[2 * i]}`);
    }
  }
});

Q('quantize_rows: bytes and row parameters bit for bit; special rows; unaligned x and qa; 127, 63 and 5 levels', () => {
  for (const L of [127, 63, 5]) for (const [M, K, ldx, offX, offQ] of [[1, 1, 1, 0, 0], [3, 3, 5, 1, 1], [5, 4, 4, 0, 2], [6, 7, 9, 3, 3], [5, 12, 12, 0, 0], [4, 29, 31, 2, 3], [9, 33, 40, 1, 0], [13, 192, 192, 0, 1]]) {
    const x = randn(M * ldx, M + K, 3);
    // row 0: all zero, row 1 (if any): all positive, row 2: all negative, row 3: one huge value
    for (let k = 0; k < K; k++) {
      x[k] = 0;
      if (M > 1) x[ldx + k] = Math.abs(x[ldx + k]) + 0.5;
      if (M > 2) x[2 * ldx + k] = -Math.abs(x[2 * ldx + k]) - 0.25;
    }
    if (M > 3) x[3 * ldx + (K >> 1)] = 1e6;
    const outs = [ref, ...wasm].map((be) => {
      const ptrs: Ptr[] = [];
      const xp = putFloats(be, x, offX, ptrs);
      const qa = putBytes(be, new Uint8Array(qaBytes(M, K) + 4).fill(0xee), offQ, ptrs);
      const rowp = putFloats(be, new Float32Array(2 * M + 1).fill(-7), 0, ptrs);
      run(be, 'quantize_rows', xp, ldx, M, K, qa, rowp, L);
      const out = { q: [...readBytes(be, qa, qaBytes(M, K) + 4)], r: be.read(rowp, 2 * M + 1) };
      for (const p of ptrs) be.free(p);
      return out;
    });
    const o = outs[0];
    assert.ok(o.q.slice(0, -4).every((v) => v <= L), `u in [0, ${L}]`);
    assert.equal(o.q.slice(-4), [0xee, 0xee, 0xee, 0xee], 'nothing written past the strips');
    assert.is(o.r[2 * M], -7, 'nothing written past rowp');
    assert.is(o.r[0], 1, 'zero row: scale 1');
    if (M > 1) assert.is(o.r[3], 0, 'positive row: zero point 0');
    if (M > 2) assert.is(o.r[5], L, `negative row: zero point ${L}`);
    // dequantized values within half a step of x
    for (let i = 0; i < M; i++) {
      const s = o.r[2 * i], z = o.r[2 * i + 1];
      for (let k = 0; k < K; k++) {
        const u = o.q[(i >> 2) * kp(K) * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3)];
        assert.ok(Math.abs(s * (u - z) - x[i * ldx + k]) <= 0.5001 * s + 1e-6 * Math.abs(x[i * ldx + k]), `row ${i} k ${k}`);
      }
    }
    for (let v = 0; v < wasm.length; v++) {
      assert.equal(outs[v + 1].q, o.q, `${variants[v]} M ${M} K ${K} L ${L}: bytes`);
      assert.equal([...outs[v + 1].r], [...o.r], `${variants[v]} M ${M} K ${K} L ${L}: row parameters`);
    }
  }
});

Q('quantize_rows: the last strip\'s padding rows are 0 whatever the last row holds (non-finite values: that row\'s bytes are unspecified)', () => {
  for (const [M, K, L] of [[1, 7, 127], [3, 16, 63], [6, 33, 127]]) for (const bad of [Infinity, -Infinity, NaN]) {
    const x = randn(M * K, M + K, 5);
    x[(M - 1) * K + (K >> 1)] = bad;
    for (const be of [ref, ...wasm]) {
      const ptrs: Ptr[] = [];
      const xp = putFloats(be, x, 1, ptrs), qa = putBytes(be, new Uint8Array(qaBytes(M, K)).fill(0xee), 2, ptrs);
      const rowp = putFloats(be, new Float32Array(2 * M), 0, ptrs);
      run(be, 'quantize_rows', xp, K, M, K, qa, rowp, L);
      const q = readBytes(be, qa, qaBytes(M, K));
      for (const p of ptrs) be.free(p);
      const last = (M - 1) >> 2;
      for (let i = M; i < 4 * (last + 1); i++) for (let k = 0; k < kp(K); k++) {
        assert.is(q[last * kp(K) * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3)], 0, `${be.name} M ${M} K ${K} last row ${bad}: pad row ${i} k ${k}`);
      }
    }
  }
});

/** a6: 6-bit rows (u in [0, 63]) and qgemm's QGEMM_A6. */
interface Case { M: number; N: number; K: number; ldc?: number; bias?: boolean; gelu?: boolean; composed?: boolean; a6?: boolean; off?: number; w?: 'rand' | 'min' | 'max' | 'alt'; u?: 'rand' | 'min' | 'max' }

/** Runs quantize-free qgemm on hand-made operands (qa bytes given), returns C with its padding. */
function qgemmOn(be: Backend, c: Case, w: Int8Array, u: Uint8Array, rowp: Float32Array, ws: Float32Array, bias: Float32Array): Float32Array {
  const { M, N, K } = c, ldc = c.ldc ?? N, off = c.off ?? 0, ptrs: Ptr[] = [];
  const wraw = putBytes(be, w, off, ptrs), wp = be.alloc(packedBytes(K, N) / 4 + 1);
  ptrs.push(wp);
  run(be, 'pack_qb', K, N, wraw, K, wp + 0);
  const qa = putBytes(be, u, off, ptrs), rp = putFloats(be, rowp, off, ptrs), wsp = putFloats(be, ws, off, ptrs);
  const bp = c.bias ? putFloats(be, bias, off, ptrs) : 0;
  const C = new Float32Array(M * ldc).fill(12345);
  const cp = putFloats(be, C, off, ptrs);
  run(be, 'qgemm', M, N, K, qa, rp, wp, wsp, bp, cp, ldc, (c.gelu ? QGEMM_GELU : 0) | (c.composed ? QGEMM_COMPOSED_DOT : 0) | (c.a6 ? QGEMM_A6 : 0));
  const out = be.read(cp, M * ldc);
  for (const p of ptrs) be.free(p);
  return out;
}

function operands(c: Case, seed: number) {
  const { M, N, K } = c;
  const w = c.w === 'min' ? new Int8Array(N * K).fill(-128) : c.w === 'max' ? new Int8Array(N * K).fill(127)
    : c.w === 'alt' ? Int8Array.from({ length: N * K }, (_, i) => (i % 2 ? 127 : -128)) : randI8(N * K, seed);
  const u = new Uint8Array(qaBytes(M, K)), L = c.a6 ? 63 : 127;
  const ur = randI8(u.length, seed + 1, 0, L);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) {
    const at = (i >> 2) * kp(K) * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3);
    u[at] = c.u === 'min' ? 0 : c.u === 'max' ? L : ur[at];
  }
  const rowp = new Float32Array(2 * M), r = randn(2 * M, seed + 2);
  for (let i = 0; i < M; i++) { rowp[2 * i] = 0.001 + Math.abs(r[2 * i]) * 0.01; rowp[2 * i + 1] = Math.min(L, Math.max(0, Math.round((L + 1) / 2 + (L / 2) * r[2 * i + 1]))); }
  const ws = randn(N, seed + 3, 0.01).map((v) => Math.abs(v) + 1e-3), bias = randn(N, seed + 4);
  return { w, u, rowp, ws, bias };
}

Q('qgemm: both builds bit for bit with the reference on tails, strides, offsets, bias (GELU within 1e-6)', () => {
  const cases: Case[] = [
    { M: 1, N: 1, K: 1 }, { M: 3, N: 5, K: 3, bias: true }, { M: 4, N: 8, K: 4 }, { M: 5, N: 9, K: 5, bias: true, off: 1 },
    { M: 7, N: 12, K: 17, ldc: 15, bias: true }, { M: 9, N: 4, K: 8, off: 3 }, { M: 6, N: 20, K: 33, bias: true, gelu: true },
    { M: 17, N: 27, K: 192, bias: true, gelu: true, off: 2 }, { M: 13, N: 64, K: 100, bias: true },
    // GELU runs over each stored tile (gelu.ts geluTile): full 4x8 tiles and edges with a row stride past N
    { M: 9, N: 19, K: 20, ldc: 23, bias: true, gelu: true, off: 1 },
    // strips of 1 or 2 rows (the relaxed build's two-row tile), full and edge panels
    { M: 2, N: 16, K: 13, bias: true }, { M: 10, N: 21, K: 64, ldc: 22, bias: true, gelu: true, off: 3 }, { M: 2, N: 8, K: 768, gelu: true },
    // 6-bit rows (tilePaired where the composed dot runs): even and odd group counts (K 8, 12, 13, 21 -> 2, 3, 4, 6 groups), one group,
    // strips of 3 and 4 rows and 1-2-row tails, edge panels, strides, offsets, bias, GELU
    { M: 4, N: 8, K: 8, a6: true }, { M: 3, N: 5, K: 12, bias: true, a6: true }, { M: 7, N: 13, K: 13, ldc: 15, bias: true, off: 1, a6: true },
    { M: 9, N: 24, K: 21, bias: true, gelu: true, off: 3, a6: true }, { M: 5, N: 9, K: 3, a6: true }, { M: 17, N: 27, K: 192, bias: true, gelu: true, off: 2, a6: true },
    { M: 13, N: 64, K: 100, bias: true, a6: true }, { M: 6, N: 19, K: 769, ldc: 20, a6: true },
  ];
  let seed = 1;
  for (const c of cases) {
    const o = operands(c, seed++ * 10);
    const want = qgemmOn(ref, c, o.w, o.u, o.rowp, o.ws, o.bias);
    for (let v = 0; v < wasm.length; v++) {
      const got = qgemmOn(wasm[v], c, o.w, o.u, o.rowp, o.ws, o.bias);
      const what = `${variants[v]} ${JSON.stringify(c)}`;
      if (c.gelu) close(got, want, 1e-6, 1e-6, what);
      else assert.equal([...got], [...want], what);
    }
  }
});

// The GELU of the int8 store is gelu.ts geluRationalv (an erf rational, not the
// float GEMM's geluv): swept over [-12, 12] through qgemm itself (u = 0 and
// zx = 0, so every output is GELU(bias[j])) against the reference's float64
// exact GELU; the bound stated in gelu.ts is 1.2e-6 max(1, |x|) (6e-6 inside
// the clamp at |x| = 5.66; beyond, x times the fit's error at the clamp).
Q('qgemm GELU: within 1.2e-6 max(1, |x|) of exact GELU on [-12, 12] in every build', () => {
  const N = 24001, K = 4, M = 1;
  const bias = Float32Array.from({ length: N }, (_, j) => -12 + (24 * j) / (N - 1));
  const w = randI8(N * K, 5), u = new Uint8Array(qaBytes(M, K)), rowp = Float32Array.from([0.01, 0]), ws = new Float32Array(N).fill(0.02);
  const c: Case = { M, N, K, bias: true, gelu: true };
  const want = qgemmOn(ref, c, w, u, rowp, ws, bias);
  for (let v = 0; v < wasm.length; v++) {
    const got = qgemmOn(wasm[v], c, w, u, rowp, ws, bias);
    let worst = 0, at = 0;
    for (let j = 0; j < N; j++) { const e = Math.abs(got[j] - want[j]) / Math.max(1, Math.abs(bias[j])); if (!(e <= worst)) { worst = e; at = j; } }
    assert.ok(worst <= 1.2e-6, `${variants[v]}: |GELU error| / max(1, |x|) ${worst.toExponential(2)} at x = ${bias[at]} (got ${got[at]}, want ${want[at]})`);
    console.log(`  qgemm GELU ${variants[v]}: max |error| / max(1, |x|) ${worst.toExponential(2)} on [-12, 12]`);
  }
});

Q('qgemm: extremes of both ranges (w -128/127 against u 0/127, and 0/63 with QGEMM_A6), long K, exact in every build', () => {
  let seed = 500;
  // K 1001 and 1000: an odd and an even count of 4-k groups (251, 250); 8 rows: two full strips
  for (const a6 of [false, true]) for (const K of [1001, 1000]) for (const w of ['min', 'max', 'alt'] as const) for (const u of ['min', 'max', 'rand'] as const) {
    const c: Case = { M: 8, N: 11, K, w, u, bias: true, a6 };
    const o = operands(c, seed++);
    const want = qgemmOn(ref, c, o.w, o.u, o.rowp, o.ws, o.bias);
    for (let v = 0; v < wasm.length; v++) assert.equal([...qgemmOn(wasm[v], c, o.w, o.u, o.rowp, o.ws, o.bias)], [...want], `${variants[v]} K ${K} w ${w} u ${u}${a6 ? ' 6-bit' : ''}`);
  }
});

// (module (func (export "d") (param i32 i32) (result i32) local.get 0 i8x16.splat
//   local.get 1 i8x16.splat i32.const 0 i32x4.splat i32x4.relaxed_dot_i8x16_i7x16_add_s
//   i32x4.extract_lane 0)): the engine's fused dot on its own, outside assembly/
const RAW_DOT = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f,
  0x03, 0x02, 0x01, 0x00, 0x07, 0x05, 0x01, 0x01, 0x64, 0x00, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0x20, 0x00, 0xfd, 0x0f, 0x20, 0x01,
  0xfd, 0x0f, 0x41, 0x00, 0xfd, 0x11, 0xfd, 0x93, 0x02, 0xfd, 0x1b, 0x00, 0x0b]);

Q('qgemm\'s dot: the fused one only where the engine computes 127 x 0xff exactly (AVX-VNNI); forcing the composed one (flags & 2) gives the same bits', () => {
  for (let v = 0; v < wasm.length; v++) {
    // WasmBackend.int8Dot reads the kernel's own answer (qgemm_dot_fused)
    const dot = wasm[v].int8Dot;
    if (variants[v] === 'simd') assert.is(dot, 'i16', 'the plain build has no relaxed dot');
    else {
      const d = (new WebAssembly.Instance(new WebAssembly.Module(RAW_DOT)).exports as { d(a: number, b: number): number }).d(127, 255);
      assert.is(dot, d === 4 * 127 * 255 ? 'fused' : 'composed', `the engine's relaxed dot of 127 and 0xff gives ${d}`);
    }
    let seed = 900;
    for (const c of [{ M: 9, N: 13, K: 33 }, { M: 2, N: 24, K: 192, bias: true }, { M: 197, N: 40, K: 64, gelu: true }, { M: 5, N: 11, K: 1001, w: 'min', u: 'max' },
      { M: 197, N: 40, K: 192, gelu: true, a6: true }, { M: 8, N: 11, K: 1001, w: 'min', u: 'max', a6: true }] as Case[]) {
      const o = operands(c, seed++);
      const auto = qgemmOn(wasm[v], c, o.w, o.u, o.rowp, o.ws, o.bias), composed = qgemmOn(wasm[v], { ...c, composed: true }, o.w, o.u, o.rowp, o.ws, o.bias);
      assert.equal([...auto], [...composed], `${variants[v]} (${dot} dot) ${c.M}x${c.N}x${c.K}${c.a6 ? ' 6-bit' : ''}`);
      // 6-bit rows: the same bits with QGEMM_A6 as without
      if (c.a6) assert.equal([...qgemmOn(wasm[v], { ...c, a6: false }, o.w, o.u, o.rowp, o.ws, o.bias)], [...auto], `${variants[v]} ${c.M}x${c.N}x${c.K}: 6-bit rows with and without QGEMM_A6`);
    }
  }
});

Q('quantize_rows + qgemm approximate the float product (the scheme, end to end; 7-bit, and 6-bit rows with QGEMM_A6)', () => {
  const M = 7, K = 67, N = 19, x = randn(M * K, 7), wf = randn(N * K, 8, 0.1);
  const ws = new Float32Array(N), w = new Int8Array(N * K);
  for (let j = 0; j < N; j++) {
    let m = 0; for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(wf[j * K + k]));
    ws[j] = m / 127;
    for (let k = 0; k < K; k++) w[j * K + k] = Math.round(wf[j * K + k] / ws[j]);
  }
  const want = new Float32Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { let s = 0; for (let k = 0; k < K; k++) s += x[i * K + k] * wf[j * K + k]; want[i * N + j] = s; }
  // (the tolerance: of the largest |product|; 6 bits double the rows' step)
  for (const be of [ref, ...wasm]) for (const [L, tol] of [[127, 0.03], [63, 0.05]]) {
    const ptrs: Ptr[] = [];
    const xp = putFloats(be, x, 0, ptrs), qa = putBytes(be, new Uint8Array(qaBytes(M, K)), 0, ptrs), rp = putFloats(be, new Float32Array(2 * M), 0, ptrs);
    const wraw = putBytes(be, w, 0, ptrs), wp = be.alloc(packedBytes(K, N) / 4); ptrs.push(wp);
    const wsp = putFloats(be, ws, 0, ptrs), cp = putFloats(be, new Float32Array(M * N), 0, ptrs);
    run(be, 'pack_qb', K, N, wraw, K, wp);
    run(be, 'quantize_rows', xp, K, M, K, qa, rp, L);
    run(be, 'qgemm', M, N, K, qa, rp, wp, wsp, 0, cp, N, L === 63 ? QGEMM_A6 : 0);
    close(be.read(cp, M * N), want, 0, tol, `${be.name} ${L} levels`);
    for (const p of ptrs) be.free(p);
  }
});

Q('threads: quantize_rows, qgemm and softmax_quantize_rows split by strips of 4 rows give the 1-thread bits', async () => {
  const pool = loadThreadedWasmSync({ threads: 2, minWork: 0, variant: wasm[wasm.length - 1].variant });
  await pool.ready();
  try {
    for (const [M, N, K, L] of [[9, 13, 33, 127], [23, 40, 67, 127], [23, 40, 68, 63]]) {
      const x = randn(M * K, M), w = randI8(N * K, N), ws = randn(N, 3, 0.01), bias = randn(N, 4);
      const outs = [wasm[wasm.length - 1], pool].map((be) => {
        const ptrs: Ptr[] = [];
        const xp = putFloats(be, x, 0, ptrs), qa = putBytes(be, new Uint8Array(qaBytes(M, K)), 0, ptrs), rp = putFloats(be, new Float32Array(2 * M), 0, ptrs);
        const wraw = putBytes(be, w, 0, ptrs), wp = be.alloc(packedBytes(K, N) / 4); ptrs.push(wp);
        const wsp = putFloats(be, ws, 0, ptrs), bp = putFloats(be, bias, 0, ptrs), cp = putFloats(be, new Float32Array(M * N), 0, ptrs);
        run(be, 'pack_qb', K, N, wraw, K, wp);
        run(be, 'quantize_rows', xp, K, M, K, qa, rp, L);
        run(be, 'qgemm', M, N, K, qa, rp, wp, wsp, bp, cp, N, QGEMM_GELU | (L === 63 ? QGEMM_A6 : 0));
        // softmax_quantize_rows over x as M rows of K (the same strips)
        const qs = putBytes(be, new Uint8Array(qaBytes(M, K)), 0, ptrs), rs = putFloats(be, new Float32Array(2 * M), 0, ptrs);
        run(be, 'softmax_quantize_rows', xp, M, K, qs, rs, L);
        const out = [...be.read(cp, M * N), ...readBytes(be, qa, qaBytes(M, K)), ...readBytes(be, qs, qaBytes(M, K)), ...be.read(rs, 2 * M)];
        for (const p of ptrs) be.free(p);
        return out;
      });
      assert.equal(outs[1], outs[0], `M ${M} N ${N} K ${K} L ${L}`);
    }
    assert.ok(pool.splitCalls > 0, 'the pool split some calls');
  } finally { await pool.close(); }
});


// The prefix rows in two 7-bit parts (src/quant/int8.ts): quantize_prefix_rows
// writes, for each sequence's first P rows, the row (as quantize_rows would
// quantize it) and its residual; the two dequantized parts add up to x within
// half a step of the residual (about 14 bits). add_prefix_rows puts the two
// parts' GEMM outputs back into those rows of y.
Q('quantize_prefix_rows: bit for bit; the row part is quantize_rows\' own; two parts within half a residual step', () => {
  for (const [B, T, P, K, ldx, offX, offQ] of [[1, 3, 1, 1, 1, 0, 0], [2, 5, 2, 7, 9, 1, 1], [3, 4, 1, 12, 12, 0, 2], [2, 7, 2, 33, 40, 3, 3], [1, 197, 1, 192, 192, 0, 0], [5, 2, 1, 29, 29, 2, 1]]) {
    const E = B * P, M = 2 * E, x = randn(B * T * ldx, K + T, 2);
    x[K >> 1] = 1e4;   // sequence 0's first row: one large value (a coarse first part)
    if (E > 1) for (let k = 0; k < K; k++) x[(P > 1 ? 1 : T) * ldx + k] = 0;   // the second prefix row: all zero
    const outs = [ref, ...wasm].map((be) => {
      const ptrs: Ptr[] = [];
      const xp = putFloats(be, x, offX, ptrs);
      const tmp = putFloats(be, new Float32Array(M * K + 1).fill(-3), 0, ptrs);
      const qa = putBytes(be, new Uint8Array(qaBytes(M, K) + 4).fill(0xee), offQ, ptrs);
      const rowp = putFloats(be, new Float32Array(2 * M + 1).fill(-7), 0, ptrs);
      run(be, 'quantize_prefix_rows', xp, ldx, B, T, P, K, tmp, qa, rowp);
      const out = { q: [...readBytes(be, qa, qaBytes(M, K) + 4)], r: be.read(rowp, 2 * M + 1), t: be.read(tmp, M * K + 1) };
      for (const p of ptrs) be.free(p);
      return out;
    });
    const o = outs[0], u = (i: number, k: number) => o.q[(i >> 2) * kp(K) * 4 + (k >> 2) * 16 + (i & 3) * 4 + (k & 3)];
    assert.equal(o.q.slice(-4), [0xee, 0xee, 0xee, 0xee], 'nothing written past the strips');
    assert.is(o.r[2 * M], -7, 'nothing written past rowp');
    assert.is(o.t[M * K], -3, 'nothing written past tmp');
    // the first part is quantize_rows on the gathered rows
    const rows = new Float32Array(E * K);
    for (let e = 0; e < E; e++) rows.set(x.subarray((Math.floor(e / P) * T + (e % P)) * ldx, (Math.floor(e / P) * T + (e % P)) * ldx + K), e * K);
    const ptrs: Ptr[] = [], rp = putFloats(ref, rows, 0, ptrs), qa1 = putBytes(ref, new Uint8Array(qaBytes(E, K)), 0, ptrs), rowp1 = putFloats(ref, new Float32Array(2 * E), 0, ptrs);
    run(ref, 'quantize_rows', rp, K, E, K, qa1, rowp1, 127);
    const q1 = readBytes(ref, qa1, qaBytes(E, K)), r1 = ref.read(rowp1, 2 * E);
    for (const p of ptrs) ref.free(p);
    for (let e = 0; e < E; e++) {
      assert.equal([o.r[2 * e], o.r[2 * e + 1]], [r1[2 * e], r1[2 * e + 1]], `row ${e}: parameters`);
      const sh = o.r[2 * e], zh = o.r[2 * e + 1], sl = o.r[2 * (E + e)], zl = o.r[2 * (E + e) + 1];
      // a zero residual (the first part exact) is a zero row: step 1, every u - z 0
      const exact = Array.from({ length: K }, (_, k) => u(E + e, k) - zl).every((d) => d === 0), step = exact ? 0 : sl;
      if (!exact) assert.ok(sl <= sh / 126, `row ${e}: residual step ${sl} against ${sh}`);
      for (let k = 0; k < K; k++) {
        assert.is(u(e, k), q1[(e >> 2) * kp(K) * 4 + (k >> 2) * 16 + (e & 3) * 4 + (k & 3)], `row ${e} k ${k}: byte`);
        const xv = rows[e * K + k], two = sh * (u(e, k) - zh) + sl * (u(E + e, k) - zl);
        assert.ok(Math.abs(two - xv) <= 0.5001 * step + 1e-6 * Math.abs(xv), `row ${e} k ${k}: ${two} for ${xv} (residual step ${sl})`);
      }
    }
    for (let v = 0; v < wasm.length; v++) {
      const what = `${variants[v]} B ${B} T ${T} P ${P} K ${K}`;
      assert.equal(outs[v + 1].q, o.q, `${what}: bytes`);
      assert.equal([...outs[v + 1].r], [...o.r], `${what}: row parameters`);
      assert.equal([...outs[v + 1].t], [...o.t], `${what}: rows and residuals`);
    }
  }
});

Q('add_prefix_rows: bit for bit (GELU within 2e-6); only the prefix rows of y are written', () => {
  for (const [B, T, P, N, ldy, bias, gelu, off] of [[1, 3, 1, 1, 1, 0, 0, 0], [2, 5, 2, 7, 9, 1, 0, 1], [3, 4, 1, 12, 12, 1, 1, 2], [2, 7, 2, 33, 40, 0, 1, 3], [1, 197, 1, 192, 192, 1, 1, 0]]) {
    const E = B * P, z = randn(2 * E * N, N + T, 3), b = randn(N, 7), y0 = new Float32Array(B * T * ldy).fill(12345);
    const outs = [ref, ...wasm].map((be) => {
      const ptrs: Ptr[] = [];
      const zp = putFloats(be, z, off, ptrs), bp = bias ? putFloats(be, b, off, ptrs) : 0, yp = putFloats(be, y0, off, ptrs);
      run(be, 'add_prefix_rows', zp, N, B, T, P, bp, yp, ldy, gelu);
      const out = be.read(yp, B * T * ldy);
      for (const p of ptrs) be.free(p);
      return out;
    });
    const o = outs[0];
    for (let r = 0; r < B * T; r++) for (let j = 0; j < ldy; j++) {
      const e = (r % T) < P && j < N ? Math.floor(r / T) * P + (r % T) : -1, got = o[r * ldy + j];
      if (e < 0) { assert.is(got, 12345, `row ${r} col ${j}: untouched`); continue; }
      const v = Math.fround(Math.fround(z[e * N + j] + z[(E + e) * N + j]) + (bias ? b[j] : 0));
      if (!gelu) assert.is(got, v, `row ${r} col ${j}`);
    }
    for (let v = 0; v < wasm.length; v++) {
      const what = `${variants[v]} B ${B} T ${T} P ${P} N ${N} ldy ${ldy} bias ${bias} gelu ${gelu}`;
      if (gelu) close(outs[v + 1], o, 2e-6, 2e-6, what);
      else assert.equal([...outs[v + 1]], [...o], what);
    }
  }
});
Q.run();
