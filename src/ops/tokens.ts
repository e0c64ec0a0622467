// Token bookkeeping for the ViT: prepend the class token, select a token.
// Shapes: x [B, T, C], tok [1, 1, C] -> [B, T+1, C];  x [B, N, C] -> [B, C] (token i of each image).
import { Tensor, sameBackend } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

export function prependToken(x: Tensor, tok: Tensor): Tensor {
  sameBackend('prependToken', x, tok);
  const [B, T, C] = x.shape, be = x.backend, N = T + 1;
  const y = new Tensor([B, N, C], be);
  call(be, 'copy2d', { src: tok.ptr, sld: 0, dst: y.ptr, dld: N * C, rows: B, cols: C });
  call(be, 'copy2d', { src: x.ptr, sld: T * C, dst: y.ptr + C * 4, dld: N * C, rows: B, cols: T * C });
  return record(y, [x, tok], (dy) => {
    let dx: Tensor | null = null, dt: Tensor | null = null;
    if (x.requiresGrad) { dx = new Tensor(x.shape, be); call(be, 'copy2d', { src: dy.ptr + C * 4, sld: N * C, dst: dx.ptr, dld: T * C, rows: B, cols: T * C }); }
    if (tok.requiresGrad) {
      const rows = new Tensor([B, C], be);
      call(be, 'copy2d', { src: dy.ptr, sld: N * C, dst: rows.ptr, dld: C, rows: B, cols: C });
      dt = new Tensor(tok.shape, be);
      call(be, 'col_sum', { x: rows.ptr, y: dt.ptr, rows: B, cols: C });
      rows.dispose();
    }
    return [dx, dt];
  });
}

export function selectToken(x: Tensor, i: number): Tensor {
  const [B, N, C] = x.shape, be = x.backend;
  const y = new Tensor([B, C], be);
  call(be, 'copy2d', { src: x.ptr + i * C * 4, sld: N * C, dst: y.ptr, dld: C, rows: B, cols: C });
  return record(y, [x], (dy) => {
    const dx = Tensor.zeros(x.shape, be);
    call(be, 'copy2d', { src: dy.ptr, sld: C, dst: dx.ptr + i * C * 4, dld: N * C, rows: B, cols: C });
    return [dx];
  });
}

/** Mean over tokens [from, N) of each image: [B, N, C] -> [B, C] (global average pooling). */
export function meanTokens(x: Tensor, from = 0): Tensor {
  const [B, N, C] = x.shape, be = x.backend, T = N - from;
  const y = new Tensor([B, C], be);
  for (let b = 0; b < B; b++) call(be, 'col_sum', { x: x.ptr + (b * N + from) * C * 4, y: y.ptr + b * C * 4, rows: T, cols: C });
  call(be, 'scale', { x: y.ptr, y: y.ptr, n: B * C, s: 1 / T });
  return record(y, [x], (dy) => {
    const dx = Tensor.zeros(x.shape, be);
    for (let b = 0; b < B; b++) call(be, 'add', { a: dx.ptr + (b * N + from) * C * 4, b: dy.ptr + b * C * 4, y: dx.ptr + (b * N + from) * C * 4, n: T * C, m: C });
    call(be, 'scale', { x: dx.ptr, y: dx.ptr, n: dx.size, s: 1 / T });
    return [dx];
  });
}
