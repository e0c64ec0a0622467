// GEMM operands and their float64 product, shared by bench/gemm.ts,
// bench/suite.ts (the browser suite: this file stays browser-safe) and
// bench/qgemm-ab.ts, so that they time and check the same calls.
import { qPackedBytes, qRowsBytes, qgemmRowFlags } from '../src/backend/kernels.js';
import type { Backend } from '../src/backend/backend.js';

/** n floats in [-0.5, 0.5) from a 32-bit LCG: the same operands in every run and process. */
export function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/** C = A * B in float64, i-k-j order. */
export function naive(A: Float32Array, B: Float32Array, M: number, K: number, N: number): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const a = A[i * K + k];
      for (let j = 0; j < N; j++) C[i * N + j] += a * B[k * N + j];
    }
  return C;
}

/**
 * int8 operands on `be`: W packed by pack_qb, A quantized once by
 * quantize_rows with `levels` (63: 6-bit rows, run with qgemm's QGEMM_A6);
 * `gemm` runs qgemm alone, `both` quantize_rows + qgemm.
 */
export function int8Run(be: Backend, A: Float32Array, qw: { q: Int8Array; scale: Float32Array }, M: number, N: number, K: number, levels: 127 | 63 = 127) {
  const raw = new Int32Array(Math.ceil((N * K) / 4));
  new Int8Array(raw.buffer).set(qw.q);
  const w8 = be.alloc(raw.length), wp = be.alloc(qPackedBytes(K, N) / 4), ws = be.alloc(N);
  const a = be.alloc(M * K), qa = be.alloc(qRowsBytes(M, K) / 4), rp = be.alloc(2 * M), c = be.alloc(M * N);
  be.write(w8, raw); be.write(ws, qw.scale); be.write(a, A);
  be.run('pack_qb', K, N, w8, K, wp);
  const quant = () => { be.run('quantize_rows', a, K, M, K, qa, rp, levels); };
  const gemm = () => { be.run('qgemm', M, N, K, qa, rp, wp, ws, 0, c, N, qgemmRowFlags(levels)); };
  quant(); gemm();
  return {
    c: be.read(c, M * N), gemm, both: () => { quant(); gemm(); },
    free: () => { for (const p of [w8, wp, ws, a, qa, rp, c]) be.free(p); },
  };
}
