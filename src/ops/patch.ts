// patchify: non-overlapping P x P patches as rows, so a strided conv becomes one GEMM.
// Shapes: x [B, C, H, W] -> [B, (H/P)*(W/P), C*P*P], columns ordered (c, ky, kx) like a conv weight.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

export function patchify(x: Tensor, P: number): Tensor {
  const [B, C, H, W] = x.shape, be = x.backend;
  if (H % P || W % P) throw new Error(`patchify: image ${H}x${W} is not a multiple of patch ${P}`);
  const y = new Tensor([B, (H / P) * (W / P), C * P * P], be);
  call(be, 'patchify', { x: x.ptr, y: y.ptr, B, C, H, W, P });
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    call(be, 'unpatchify', { y: dy.ptr, x: dx.ptr, B, C, H, W, P });
    return [dx];
  });
}
