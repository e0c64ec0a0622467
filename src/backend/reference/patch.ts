// Non-overlapping patch extraction (im2col for a conv with stride = kernel = P),
// so PatchEmbed is one GEMM against the conv weight [E, C, P, P] viewed as [E, C*P*P].
//   patchify(x, y, B, C, H, W, P)     x [B, C, H, W] -> y [B, (H/P)*(W/P), C*P*P], column order (c, ky, kx)
//   unpatchify(y, x, B, C, H, W, P)   the adjoint: scatters y back into x (overwrites x)
import type { Heap } from './heap.js';

function walk(B: number, C: number, H: number, W: number, P: number, fn: (xi: number, yi: number) => void): void {
  const gh = (H / P) | 0, gw = (W / P) | 0, K = C * P * P;
  for (let b = 0; b < B; b++)
    for (let py = 0; py < gh; py++)
      for (let px = 0; px < gw; px++)
        for (let c = 0; c < C; c++)
          for (let ky = 0; ky < P; ky++)
            for (let kx = 0; kx < P; kx++) {
              const xi = ((b * C + c) * H + py * P + ky) * W + px * P + kx;
              const yi = ((b * gh + py) * gw + px) * K + (c * P + ky) * P + kx;
              fn(xi, yi);
            }
}

export function patchify(h: Heap, x: number, y: number, B: number, C: number, H: number, W: number, P: number): void {
  const f = h.f32, X = x >> 2, Y = y >> 2;
  walk(B, C, H, W, P, (xi, yi) => { f[Y + yi] = f[X + xi]; });
}
export function unpatchify(h: Heap, y: number, x: number, B: number, C: number, H: number, W: number, P: number): void {
  const f = h.f32, X = x >> 2, Y = y >> 2;
  f.fill(0, X, X + B * C * H * W);
  walk(B, C, H, W, P, (xi, yi) => { f[X + xi] = f[Y + yi]; });
}
