// Multi-head scaled dot-product attention on a fused qkv buffer, timm layout.
//
// Shapes: qkv [B, N, 3*C] with each token laid out [3][H][D] (timm's
// qkv.reshape(B, N, 3, H, D)); out [B, N, C] laid out [H][D] per token, i.e.
// (attn @ v).transpose(1, 2).reshape(B, N, C). The per-head matrices are
// addressed in place by strided batched GEMMs (leading dim 3C, batch stride D
// over heads), so no permute copies are made.
//
//   S = scale * Q K^T (+ keyBias)    P = softmax(S)    O = P V
// keyBias [B, N] is added to every row of S of image b: ATME's proportional
// attention passes log(token size) here. It takes no gradient (sizes are counts).
//
// Backward: dP = dO V^T; dS = P * (dP - rowsum(dP * P)); dQ = scale dS K;
// dK = scale dS^T Q; dV = P^T dO.
import { Tensor, sameBackend } from '../tensor.js';
import { record } from '../autograd.js';
import { NN, NT, TN, call } from '../backend/kernels.js';

export interface AttentionOpts { heads: number; scale: number; keyBias?: Tensor | null; headDimQK?: number; headDimV?: number }

/**
 * qkv's last axis is H*Dqk (q) + H*Dqk (k) + H*Dv (v); Dqk = Dv = C/H for a
 * dense model, smaller for a CDCP-pruned one. Output [B, N, H*Dv].
 */
export function attention(qkv: Tensor, o: AttentionOpts): Tensor {
  const [B, N, W] = qkv.shape, H = o.heads, be = qkv.backend;
  const Dqk = o.headDimQK ?? W / 3 / H, Dv = o.headDimV ?? W / 3 / H;
  if (H * (2 * Dqk + Dv) !== W) throw new Error(`attention: qkv width ${W} != heads ${H} x (2*${Dqk} + ${Dv})`);
  sameBackend('attention', qkv, o.keyBias);
  const Cv = H * Dv, offK = H * Dqk, offV = 2 * H * Dqk, NN2 = N * N;
  const P = new Tensor([B, H, N, N], be), out = new Tensor([B, N, Cv], be);
  const f = 4; // bytes per float
  for (let b = 0; b < B; b++) {
    const base = qkv.ptr + b * N * W * f, Pb = P.ptr + b * H * NN2 * f;
    call(be, 'gemm', { layout: NT, M: N, N, K: Dqk, alpha: o.scale, a: base, lda: W, sa: Dqk, b: base + offK * f, ldb: W, sb: Dqk, beta: 0, c: Pb, ldc: N, sc: NN2, batch: H, bias: 0, scratch: be.scratch });
    if (o.keyBias) call(be, 'add', { a: Pb, b: o.keyBias.ptr + b * N * f, y: Pb, n: H * NN2, m: N });
  }
  call(be, 'softmax_fwd', { x: P.ptr, y: P.ptr, rows: B * H * N, cols: N });
  for (let b = 0; b < B; b++) {
    const base = qkv.ptr + b * N * W * f, Pb = P.ptr + b * H * NN2 * f;
    call(be, 'gemm', { layout: NN, M: N, N: Dv, K: N, alpha: 1, a: Pb, lda: N, sa: NN2, b: base + offV * f, ldb: W, sb: Dv, beta: 0, c: out.ptr + b * N * Cv * f, ldc: Cv, sc: Dv, batch: H, bias: 0, scratch: be.scratch });
  }
  return record(out, [qkv], (dO) => {
    const dqkv = new Tensor(qkv.shape, be), dP = new Tensor(P.shape, be);
    for (let b = 0; b < B; b++) {
      const base = qkv.ptr + b * N * W * f, dbase = dqkv.ptr + b * N * W * f;
      const Pb = P.ptr + b * H * NN2 * f, dPb = dP.ptr + b * H * NN2 * f, dOb = dO.ptr + b * N * Cv * f;
      call(be, 'gemm', { layout: NT, M: N, N, K: Dv, alpha: 1, a: dOb, lda: Cv, sa: Dv, b: base + offV * f, ldb: W, sb: Dv, beta: 0, c: dPb, ldc: N, sc: NN2, batch: H, bias: 0, scratch: be.scratch });
      call(be, 'gemm', { layout: TN, M: N, N: Dv, K: N, alpha: 1, a: Pb, lda: N, sa: NN2, b: dOb, ldb: Cv, sb: Dv, beta: 0, c: dbase + offV * f, ldc: W, sc: Dv, batch: H, bias: 0, scratch: be.scratch });
    }
    call(be, 'softmax_bwd', { y: P.ptr, dy: dP.ptr, dx: dP.ptr, rows: B * H * N, cols: N });
    for (let b = 0; b < B; b++) {
      const base = qkv.ptr + b * N * W * f, dbase = dqkv.ptr + b * N * W * f, dSb = dP.ptr + b * H * NN2 * f;
      call(be, 'gemm', { layout: NN, M: N, N: Dqk, K: N, alpha: o.scale, a: dSb, lda: N, sa: NN2, b: base + offK * f, ldb: W, sb: Dqk, beta: 0, c: dbase, ldc: W, sc: Dqk, batch: H, bias: 0, scratch: be.scratch });
      call(be, 'gemm', { layout: TN, M: N, N: Dqk, K: N, alpha: o.scale, a: dSb, lda: N, sa: NN2, b: base, ldb: W, sb: Dqk, beta: 0, c: dbase + offK * f, ldc: W, sc: Dqk, batch: H, bias: 0, scratch: be.scratch });
    }
    dP.dispose();
    return [dqkv];
  });
}
