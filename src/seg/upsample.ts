// Bilinear upsampling of per-token logits to pixels, as a fixed linear map.
//
// torch.nn.functional.interpolate(mode='bilinear', align_corners=False) is
// separable: along one axis, output i reads input src = max(0, (i + 0.5) *
// in/out - 0.5) with weights 1 - (src - floor src) and src - floor src on
// floor src and min(floor src + 1, in - 1). So with Ay [Sh, h] and Ax [Sw, w]
// those per-axis matrices, an image's token logits Z [h, w, K] become
//   Y = Ay Z Ax^T  (per class k),
// which here is two GEMMs on the existing kernel, no kernel of its own:
//   stage 1 (columns)  t[r] = Ax Z[r]      per grid row r: [Sw, w] x [w, K]
//   stage 2 (rows)     y    = Ay t         [Sh, h] x [h, Sw*K]
// Cost per image h Sw w K + Sh h Sw K MACs (8x8 -> 64x64, K = 11: 0.41 M),
// against Sh Sw h w K = 2.9 M for the full [Sh Sw, h w] matrix. Being linear
// in Z, its gradient is the transposed GEMMs in reverse order (dZ = Ax^T (Ay^T dY)
// stage by stage); the matrices are constants and take none.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { NN, TN, call } from '../backend/kernels.js';

/** The [out, in] row-major weights of bilinear resampling along one axis (align_corners=False). */
export function bilinearWeights(inSize: number, outSize: number): Float32Array {
  if (!(Number.isInteger(inSize) && Number.isInteger(outSize) && inSize >= 1 && outSize >= 1)) throw new RangeError(`bilinearWeights: sizes ${inSize} -> ${outSize}`);
  const w = new Float32Array(outSize * inSize), scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = Math.max(0, (i + 0.5) * scale - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1), i1 = Math.min(i0 + 1, inSize - 1), l1 = src - i0;
    w[i * inSize + i0] += 1 - l1;
    w[i * inSize + i1] += l1;
  }
  return w;
}

/**
 * z [B, prefix + h*w, K] (prefix tokens first, then the h x w grid row-major)
 * -> pixel logits [B * Sh * Sw, K], one row per pixel (image-major, then
 * row-major), where ay [Sh, h] and ax [Sw, w] are bilinearWeights. The prefix
 * rows are skipped (their gradient is 0).
 */
export function upsampleTokens(z: Tensor, grid: readonly [number, number], ay: Tensor, ax: Tensor, prefix: number): Tensor {
  const [h, w] = grid, be = z.backend, f = 4;
  if (z.shape.length !== 3 || z.shape[1] !== prefix + h * w)
    throw new Error(`upsampleTokens: logits [${z.shape}], expected [B, ${prefix} + ${h}x${w}, K]`);
  if (ay.shape.length !== 2 || ay.shape[1] !== h || ax.shape.length !== 2 || ax.shape[1] !== w)
    throw new Error(`upsampleTokens: interpolation matrices [${ay.shape}] and [${ax.shape}], expected [Sh, ${h}] and [Sw, ${w}]`);
  const [B, N, K] = z.shape, Sh = ay.shape[0], Sw = ax.shape[0], row = Sw * K;
  const t = new Tensor([B, h, Sw, K], be), y = new Tensor([B * Sh * Sw, K], be);
  for (let b = 0; b < B; b++)
    call(be, 'gemm', { layout: NN, M: Sw, N: K, K: w, alpha: 1, a: ax.ptr, lda: w, sa: 0, b: z.ptr + (b * N + prefix) * K * f, ldb: K, sb: w * K, beta: 0, c: t.ptr + b * h * row * f, ldc: K, sc: row, batch: h, bias: 0, scratch: be.scratch });
  call(be, 'gemm', { layout: NN, M: Sh, N: row, K: h, alpha: 1, a: ay.ptr, lda: h, sa: 0, b: t.ptr, ldb: row, sb: h * row, beta: 0, c: y.ptr, ldc: row, sc: Sh * row, batch: B, bias: 0, scratch: be.scratch });
  t.dispose();
  return record(y, [z], (dy) => {
    const dt = new Tensor([B, h, Sw, K], be), dz = Tensor.zeros(z.shape, be);
    call(be, 'gemm', { layout: TN, M: h, N: row, K: Sh, alpha: 1, a: ay.ptr, lda: h, sa: 0, b: dy.ptr, ldb: row, sb: Sh * row, beta: 0, c: dt.ptr, ldc: row, sc: h * row, batch: B, bias: 0, scratch: be.scratch });
    for (let b = 0; b < B; b++)
      call(be, 'gemm', { layout: TN, M: w, N: K, K: Sw, alpha: 1, a: ax.ptr, lda: w, sa: 0, b: dt.ptr + b * h * row * f, ldb: K, sb: row, beta: 0, c: dz.ptr + (b * N + prefix) * K * f, ldc: K, sc: w * K, batch: h, bias: 0, scratch: be.scratch });
    dt.dispose();
    return [dz];
  });
}
