// LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm.
//   layernorm_fwd(x, gamma, beta, y, mean, rstd, rows, cols, eps)
//     y = (x - mean) * rstd * gamma + beta, saving mean[rows], rstd[rows] = 1/sqrt(var + eps)
//   layernorm_bwd(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols)
//     xhat = (x - mean) * rstd, g = dy * gamma
//     dx = rstd * (g - mean(g) - xhat * mean(g * xhat));  dgamma = sum_rows dy*xhat; dbeta = sum_rows dy
//     (dgamma and dbeta are overwritten, not accumulated)
import type { Heap } from './heap.js';

export function layernorm_fwd(h: Heap, x: number, gamma: number, beta: number, y: number,
  mean: number, rstd: number, rows: number, cols: number, eps: number): void {
  const f = h.f32, G = gamma >> 2, Bt = beta >> 2;
  for (let r = 0; r < rows; r++) {
    const X = (x >> 2) + r * cols, Y = (y >> 2) + r * cols;
    let m = 0;
    for (let j = 0; j < cols; j++) m += f[X + j];
    m /= cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (f[X + j] - m) ** 2;
    v /= cols;
    const rs = 1 / Math.sqrt(v + Math.fround(eps));
    for (let j = 0; j < cols; j++) f[Y + j] = (f[X + j] - m) * rs * f[G + j] + f[Bt + j];
    f[(mean >> 2) + r] = m;
    f[(rstd >> 2) + r] = rs;
  }
}

export function layernorm_bwd(h: Heap, x: number, gamma: number, mean: number, rstd: number,
  dy: number, dx: number, dgamma: number, dbeta: number, rows: number, cols: number): void {
  const f = h.f32, G = gamma >> 2;
  const dg = new Float64Array(cols), db = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const X = (x >> 2) + r * cols, DY = (dy >> 2) + r * cols, DX = (dx >> 2) + r * cols;
    const m = f[(mean >> 2) + r], rs = f[(rstd >> 2) + r];
    let sg = 0, sgx = 0;
    for (let j = 0; j < cols; j++) {
      const xh = (f[X + j] - m) * rs, g = f[DY + j] * f[G + j];
      sg += g; sgx += g * xh;
      dg[j] += f[DY + j] * xh; db[j] += f[DY + j];
    }
    sg /= cols; sgx /= cols;
    for (let j = 0; j < cols; j++) {
      const xh = (f[X + j] - m) * rs;
      f[DX + j] = rs * (f[DY + j] * f[G + j] - sg - xh * sgx);
    }
  }
  for (let j = 0; j < cols; j++) { f[(dgamma >> 2) + j] = dg[j]; f[(dbeta >> 2) + j] = db[j]; }
}
