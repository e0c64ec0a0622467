// Reference GEMM: the executable spec of assembly/gemm.ts, in float64
// accumulation (so it is at least as accurate as any kernel checked against it).
//
//   C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] + bias     for b < batch
//
// Shapes: op(A) is M x K, op(B) is K x N, C is M x N, bias is N (or ptr 0).
// layout 0 NN: A[i,k] = a[i*lda + k]      B[k,j] = b[k*ldb + j]
// layout 1 NT: A[i,k] = a[i*lda + k]      B[k,j] = b[j*ldb + k]
// layout 2 TN: A[i,k] = a[k*lda + i]      B[k,j] = b[k*ldb + j]
// layout 3 NP: A as NN, B pre-packed by pack_b (ldb unused):
//                                          B[k,j] = b[(j>>3)*K*8 + k*8 + (j&7)]
// layout | 4 (GELU): gelu applied to the result (inference fc1, fused).
// C[i,j] = c[i*ldc + j]. Leading dimensions and batch strides sa, sb, sc are in
// elements, so attention can address one head inside a [N, 3, H, D] buffer.
// beta is 0 (overwrite; C's old contents are ignored, NaN included) or 1.
// `scratch` is the WASM kernel's packing buffer; the reference ignores it.
import type { Heap } from './heap.js';
import { erf } from './gelu.js';

export function gemm(h: Heap, layout: number, M: number, N: number, K: number, alpha: number,
  a: number, lda: number, sa: number, b: number, ldb: number, sb: number, beta: number,
  c: number, ldc: number, sc: number, batch: number, bias: number, _scratch: number): void {
  const f = h.f32, gelu = (layout & 4) !== 0;
  layout &= 3;
  for (let t = 0; t < batch; t++) {
    const A = (a >> 2) + t * sa, B = (b >> 2) + t * sb, C = (c >> 2) + t * sc;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = layout === 2 ? f[A + k * lda + i] : f[A + i * lda + k];
          const bv = layout === 1 ? f[B + j * ldb + k] : layout === 3 ? f[B + (j >> 3) * K * 8 + k * 8 + (j & 7)] : f[B + k * ldb + j];
          s += av * bv;
        }
        let r = alpha * s;
        if (beta !== 0) r += beta * f[C + i * ldc + j];
        if (bias) r += f[(bias >> 2) + j];
        if (gelu) r = 0.5 * r * (1 + erf(r / Math.SQRT2));
        f[C + i * ldc + j] = r;
      }
    }
  }
}

/**
 * op(B) (K x N; layout 1: B[k,j] = b[j*ldb + k], else b[k*ldb + j]) into
 * gemm layout 3's panels: dst[(j>>3)*K*8 + k*8 + (j&7)], columns N up to the
 * next multiple of 8 zero. ceil(N/8)*8*K floats.
 */
export function pack_b(h: Heap, layout: number, K: number, N: number, b: number, ldb: number, dst: number): void {
  const f = h.f32, B = b >> 2, D = dst >> 2, N8 = Math.ceil(N / 8) * 8;
  for (let j = 0; j < N8; j++) {
    for (let k = 0; k < K; k++) {
      f[D + (j >> 3) * K * 8 + k * 8 + (j & 7)] = j >= N ? 0 : layout === 1 ? f[B + j * ldb + k] : f[B + k * ldb + j];
    }
  }
}
