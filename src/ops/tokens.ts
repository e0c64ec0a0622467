// Token bookkeeping for the ViT: prepend the class token, select a token.
// Shapes: x [B, T, C], tok [1, 1, C] -> [B, T+1, C];  x [B, N, C] -> [B, C] (token i of each image).
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';

export function prependToken(x: Tensor, tok: Tensor): Tensor {
  const [B, T, C] = x.shape, be = x.backend, N = T + 1;
  const y = new Tensor([B, N, C], be);
  be.run('copy2d', tok.ptr, 0, y.ptr, N * C, B, C);
  be.run('copy2d', x.ptr, T * C, y.ptr + C * 4, N * C, B, T * C);
  return record(y, [x, tok], (dy) => {
    let dx: Tensor | null = null, dt: Tensor | null = null;
    if (x.requiresGrad) { dx = new Tensor(x.shape, be); be.run('copy2d', dy.ptr + C * 4, N * C, dx.ptr, T * C, B, T * C); }
    if (tok.requiresGrad) {
      const rows = new Tensor([B, C], be);
      be.run('copy2d', dy.ptr, N * C, rows.ptr, C, B, C);
      dt = new Tensor(tok.shape, be);
      be.run('col_sum', rows.ptr, dt.ptr, B, C);
      rows.dispose();
    }
    return [dx, dt];
  });
}

export function selectToken(x: Tensor, i: number): Tensor {
  const [B, N, C] = x.shape, be = x.backend;
  const y = new Tensor([B, C], be);
  be.run('copy2d', x.ptr + i * C * 4, N * C, y.ptr, C, B, C);
  return record(y, [x], (dy) => {
    const dx = Tensor.zeros(x.shape, be);
    be.run('copy2d', dy.ptr, C, dx.ptr + i * C * 4, N * C, B, C);
    return [dx];
  });
}

/** Mean over tokens [from, N) of each image: [B, N, C] -> [B, C] (global average pooling). */
export function meanTokens(x: Tensor, from = 0): Tensor {
  const [B, N, C] = x.shape, be = x.backend, T = N - from;
  const y = new Tensor([B, C], be);
  for (let b = 0; b < B; b++) be.run('col_sum', x.ptr + (b * N + from) * C * 4, y.ptr + b * C * 4, T, C);
  be.run('scale', y.ptr, y.ptr, B * C, 1 / T);
  return record(y, [x], (dy) => {
    const dx = Tensor.zeros(x.shape, be);
    for (let b = 0; b < B; b++) be.run('add', dx.ptr + (b * N + from) * C * 4, dy.ptr + b * C * 4, dx.ptr + (b * N + from) * C * 4, T * C, C);
    be.run('scale', dx.ptr, dx.ptr, dx.size, 1 / T);
    return [dx];
  });
}
