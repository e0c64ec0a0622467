// Attention's two batched GEMMs in int8, for a quantized model's inference
// (src/quant/int8.ts wraps each Attention with it; forward only). The same
// computation as ops.attention (src/ops/attention.ts), per image b and head h:
//
//   S = scale * Q K^T (+ keyBias)    P = softmax(S)    O = P V
//
// with both products through qgemm (assembly/qgemm.ts), whose weight operand
// is here an activation, quantized at run time:
//   Q K^T  q rows: quantize_rows (per token, asymmetric 7-bit, or 6-bit:
//          `levels`, quantizeModel's sixBit, with qgemm's QGEMM_A6; P's
//          rows likewise by `pLevels`); k as the
//          weight: quantize_pack_qb, per key token symmetric int8, `scale`
//          folded into its per-key scales; keyBias (ATME's log sizes) is
//          qgemm's bias, per key.
//   P V    P rows: softmax_quantize_rows, the softmax written straight in
//          quantize_rows' layout (zero point 0, step max(P row) / levels; no
//          float P); v as the weight: quantize_pack_qb, per channel over the
//          tokens, centred on the channel's midpoint c, which is qgemm's bias
//          (P's rows sum to 1: P V = P (V - 1 c^T) + c).
// The softmax itself is float (exp4). One head at a time, start to end, its
// scratch (S = its N x N logits) reused over heads.
// Accuracy: on the trained Fashion-MNIST dense model, with random inputs
// (seeds 3-5, batch 4; test/quant.test.ts), the int8 logits are 1.0-1.6% from
// float against 0.6-1.2% with float attention; on the ten sample images the
// CAIT model's 0.2-2.4% (test/api.test.ts holds 3%). Test accuracy: README.
// Why v is centred: symmetric about 0, the CAIT model's logits on the shirt
// sample were 12.0% (of the largest) from float (0.8% with float attention);
// a float simulation of each quantization alone (not kept) put 11.8% of it
// on v: a channel on an offset keeps little of its variation under steps of
// offset/127, and the rounding error in P's row sum multiplies the offset.
// Centred, 2.4% (the simulation 1.1%: differences of 1e-7 per layer flip
// roundings and ATME merges downstream on this image).
// Runs whose code was not kept, before centring: the CAIT model's logits
// on random inputs moved 0.8-4.2% against 1.2-3.1% (ATME's merges flip
// either way); on the dense model P V in int8 alone 0.9-2.6%, q k^T alone
// 0.7-1.3%; the class token's q and P rows in two 7-bit parts 1.4-1.9%.
import { Tensor, sameBackend } from '../tensor.js';
import { qPackedBytes, qRowsBytes, call, qgemmRowFlags } from '../backend/kernels.js';
import type { AttentionOpts } from '../ops/attention.js';

/** ops.attention's forward with int8 GEMMs (qkv [B, N, H*(2*Dqk + Dv)] -> [B, N, H*Dv]). */
export function attentionInt8(qkv: Tensor, o: AttentionOpts, levels: 127 | 63 = 127, pLevels: 127 | 63 = levels): Tensor {
  const [B, N, W] = qkv.shape, H = o.heads, be = qkv.backend;
  const Dqk = o.headDimQK ?? W / 3 / H, Dv = o.headDimV ?? W / 3 / H;
  if (H * (2 * Dqk + Dv) !== W) throw new Error(`attention (int8): qkv width ${W} != heads ${H} x (2*${Dqk} + ${Dv})`);
  sameBackend('attention (int8)', qkv, o.keyBias);
  const Cv = H * Dv, offK = H * Dqk, offV = 2 * H * Dqk, f = 4, flags = qgemmRowFlags(levels), pFlags = qgemmRowFlags(pLevels);
  const S = new Tensor([N, N], be), out = new Tensor([B, N, Cv], be);
  const qa = new Tensor([qRowsBytes(N, Dqk) / 4], be), qp = new Tensor([qRowsBytes(N, N) / 4], be), rowp = new Tensor([2 * N], be);
  const wp = new Tensor([Math.max(qPackedBytes(Dqk, N), qPackedBytes(N, Dv)) / 4], be), ws = new Tensor([Math.max(N, Dv)], be), vmid = new Tensor([Dv], be);
  for (let b = 0; b < B; b++) {
    const base = qkv.ptr + b * N * W * f, bias = o.keyBias ? o.keyBias.ptr + b * N * f : 0;
    for (let h = 0; h < H; h++) {
      call(be, 'quantize_rows', { x: base + h * Dqk * f, ldx: W, M: N, K: Dqk, qa: qa.ptr, rowp: rowp.ptr, levels });
      call(be, 'quantize_pack_qb', { K: Dqk, N, w: base + (offK + h * Dqk) * f, ldk: 1, ldn: W, alpha: o.scale, dst: wp.ptr, wscale: ws.ptr, mid: 0 });
      call(be, 'qgemm', { M: N, N, K: Dqk, qa: qa.ptr, rowp: rowp.ptr, wp: wp.ptr, wscale: ws.ptr, bias, c: S.ptr, ldc: N, flags });
      call(be, 'softmax_quantize_rows', { x: S.ptr, rows: N, cols: N, qa: qp.ptr, rowp: rowp.ptr, levels: pLevels });
      call(be, 'quantize_pack_qb', { K: N, N: Dv, w: base + (offV + h * Dv) * f, ldk: W, ldn: 1, alpha: 1, dst: wp.ptr, wscale: ws.ptr, mid: vmid.ptr });
      call(be, 'qgemm', { M: N, N: Dv, K: N, qa: qp.ptr, rowp: rowp.ptr, wp: wp.ptr, wscale: ws.ptr, bias: vmid.ptr, c: out.ptr + (b * N * Cv + h * Dv) * f, ldc: Cv, flags: pFlags });
    }
  }
  S.dispose(); qa.dispose(); qp.dispose(); rowp.dispose(); wp.dispose(); ws.dispose(); vmid.dispose();
  return out;
}
