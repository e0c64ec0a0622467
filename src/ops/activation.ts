// Exact-erf GELU (torch's approximate='none'); the kernel's erf error bound is in assembly/gelu.ts.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

export function gelu(x: Tensor): Tensor {
  const be = x.backend, y = new Tensor(x.shape, be);
  call(be, 'gelu_fwd', { x: x.ptr, y: y.ptr, n: x.size });
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    call(be, 'gelu_bwd', { x: x.ptr, dy: dy.ptr, dx: dx.ptr, n: x.size });
    return [dx];
  });
}
