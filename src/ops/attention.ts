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
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { NN, NT, TN } from '../backend/kernels.js';

export interface AttentionOpts { heads: number; scale: number; keyBias?: Tensor | null; headDimQK?: number; headDimV?: number }

/**
 * qkv's last axis is H*Dqk (q) + H*Dqk (k) + H*Dv (v); Dqk = Dv = C/H for a
 * dense model, smaller for a CDCP-pruned one. Output [B, N, H*Dv].
 */
export function attention(qkv: Tensor, o: AttentionOpts): Tensor {
  const [B, N, W] = qkv.shape, H = o.heads, be = qkv.backend;
  const Dqk = o.headDimQK ?? W / 3 / H, Dv = o.headDimV ?? W / 3 / H;
  if (H * (2 * Dqk + Dv) !== W) throw new Error(`attention: qkv width ${W} != heads ${H} x (2*${Dqk} + ${Dv})`);
  const Cv = H * Dv, offK = H * Dqk, offV = 2 * H * Dqk, NN2 = N * N;
  const P = new Tensor([B, H, N, N], be), out = new Tensor([B, N, Cv], be);
  const f = 4; // bytes per float
  for (let b = 0; b < B; b++) {
    const base = qkv.ptr + b * N * W * f, Pb = P.ptr + b * H * NN2 * f;
    be.run('gemm', NT, N, N, Dqk, o.scale, base, W, Dqk, base + offK * f, W, Dqk, 0, Pb, N, NN2, H, 0, be.scratch);
    if (o.keyBias) be.run('add', Pb, o.keyBias.ptr + b * N * f, Pb, H * NN2, N);
  }
  be.run('softmax_fwd', P.ptr, P.ptr, B * H * N, N);
  for (let b = 0; b < B; b++) {
    const base = qkv.ptr + b * N * W * f, Pb = P.ptr + b * H * NN2 * f;
    be.run('gemm', NN, N, Dv, N, 1, Pb, N, NN2, base + offV * f, W, Dv, 0, out.ptr + b * N * Cv * f, Cv, Dv, H, 0, be.scratch);
  }
  return record(out, [qkv], (dO) => {
    const dqkv = new Tensor(qkv.shape, be), dP = new Tensor(P.shape, be);
    for (let b = 0; b < B; b++) {
      const base = qkv.ptr + b * N * W * f, dbase = dqkv.ptr + b * N * W * f;
      const Pb = P.ptr + b * H * NN2 * f, dPb = dP.ptr + b * H * NN2 * f, dOb = dO.ptr + b * N * Cv * f;
      be.run('gemm', NT, N, N, Dv, 1, dOb, Cv, Dv, base + offV * f, W, Dv, 0, dPb, N, NN2, H, 0, be.scratch);
      be.run('gemm', TN, N, Dv, N, 1, Pb, N, NN2, dOb, Cv, Dv, 0, dbase + offV * f, W, Dv, H, 0, be.scratch);
    }
    be.run('softmax_bwd', P.ptr, dP.ptr, dP.ptr, B * H * N, N);
    for (let b = 0; b < B; b++) {
      const base = qkv.ptr + b * N * W * f, dbase = dqkv.ptr + b * N * W * f, dSb = dP.ptr + b * H * NN2 * f;
      be.run('gemm', NN, N, Dqk, N, o.scale, dSb, N, NN2, base + offK * f, W, Dqk, 0, dbase, W, Dqk, H, 0, be.scratch);
      be.run('gemm', TN, N, Dqk, N, o.scale, dSb, N, NN2, base, W, Dqk, 0, dbase + offK * f, W, Dqk, H, 0, be.scratch);
    }
    dP.dispose();
    return [dqkv];
  });
}
