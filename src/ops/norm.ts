// layerNorm over the last axis (torch.nn.LayerNorm, biased variance).
// Shapes: x [..., C], gamma [C], beta [C]. Saves mean and rstd per row for backward.
import { Tensor, sameBackend } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  const C = gamma.size, R = x.size / C, be = x.backend;
  if (x.shape[x.shape.length - 1] !== C) throw new Error(`layerNorm: input [${x.shape}] does not end in ${C}`);
  sameBackend('layerNorm', x, gamma, beta);
  const y = new Tensor(x.shape, be), mean = new Tensor([R], be), rstd = new Tensor([R], be);
  call(be, 'layernorm_fwd', { x: x.ptr, gamma: gamma.ptr, beta: beta.ptr, y: y.ptr, mean: mean.ptr, rstd: rstd.ptr, rows: R, cols: C, eps });
  return record(y, [x, gamma, beta], (dy) => {
    const dx = new Tensor(x.shape, be), dg = new Tensor([C], be), db = new Tensor([C], be);
    call(be, 'layernorm_bwd', { x: x.ptr, gamma: gamma.ptr, mean: mean.ptr, rstd: rstd.ptr, dy: dy.ptr, dx: dx.ptr, dgamma: dg.ptr, dbeta: db.ptr, rows: R, cols: C });
    return [dx, dg, db];
  });
}
