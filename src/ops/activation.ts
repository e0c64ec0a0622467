// Exact-erf GELU (torch's approximate='none'); the kernel's erf error bound is in assembly/gelu.ts.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';

export function gelu(x: Tensor): Tensor {
  const be = x.backend, y = new Tensor(x.shape, be);
  be.run('gelu_fwd', x.ptr, y.ptr, x.size);
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    be.run('gelu_bwd', x.ptr, dy.ptr, dx.ptr, x.size);
    return [dx];
  });
}
