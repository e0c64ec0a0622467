// layerNorm over the last axis (torch.nn.LayerNorm, biased variance).
// Shapes: x [..., C], gamma [C], beta [C]. Saves mean and rstd per row for backward.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';

export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  const C = gamma.size, R = x.size / C, be = x.backend;
  if (x.shape[x.shape.length - 1] !== C) throw new Error(`layerNorm: input [${x.shape}] does not end in ${C}`);
  const y = new Tensor(x.shape, be), mean = new Tensor([R], be), rstd = new Tensor([R], be);
  be.run('layernorm_fwd', x.ptr, gamma.ptr, beta.ptr, y.ptr, mean.ptr, rstd.ptr, R, C, eps);
  return record(y, [x, gamma, beta], (dy) => {
    const dx = new Tensor(x.shape, be), dg = new Tensor([C], be), db = new Tensor([C], be);
    be.run('layernorm_bwd', x.ptr, gamma.ptr, mean.ptr, rstd.ptr, dy.ptr, dx.ptr, dg.ptr, db.ptr, R, C);
    return [dx, dg, db];
  });
}
