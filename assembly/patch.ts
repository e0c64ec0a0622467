// Non-overlapping patch extraction (im2col for a conv with stride = kernel = P),
// so PatchEmbed is one GEMM against the conv weight [E, C, P, P] viewed as
// [E, C*P*P]. Spec: src/backend/reference/patch.ts (its index order exactly).
//
// Shapes: x is [B, C, H, W]; y is [B, gh*gw, C*P*P] with gh = H/P, gw = W/P
// (integer division: rows/columns past the last whole patch are dropped by
// patchify and zeroed by unpatchify); within a patch the column order is
// (c, ky, kx). x and y must not overlap. No alignment needed.
//
//   patchify(x, y, B, C, H, W, P)     y[b, py*gw + px, (c*P + ky)*P + kx] = x[b, c, py*P + ky, px*P + kx]
//   unpatchify(y, x, B, C, H, W, P)   the adjoint: scatters y back into x (overwrites x)
//
// Both are pure copies (exact). Each (b, c, image row) of x is walked once in
// order, and its P-float runs go to gw different patches: x streams, y gets
// P contiguous floats per write (P = 4, 8, 16 in practice: whole vectors).

// n floats from s to d (d and s do not overlap)
// @ts-ignore: decorator
@inline function copyRun(d: usize, s: usize, n: i32): void {
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) v128.store(d + (<usize>i << 2), v128.load(s + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(d + (<usize>i << 2), load<f32>(s + (<usize>i << 2)));
}

// toY: true = patchify (x -> y), false = unpatchify (y -> x)
// @ts-ignore: decorator
@inline function walk(toY: bool, x: usize, y: usize, B: i32, C: i32, H: i32, W: i32, P: i32): void {
  const gh = H / P, gw = W / P, K = C * P * P;
  const run = <usize>P << 2;                 // bytes of one kx run
  const patchBytes = <usize>K << 2;          // bytes between consecutive patches in y
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      for (let py = 0; py < gh; py++) {
        for (let ky = 0; ky < P; ky++) {
          // x row (b, c, py*P + ky); y patches (b, py, 0..gw) at column (c*P + ky)*P
          let xp = x + (<usize>(((b * C + c) * H + py * P + ky) * W) << 2);
          let yp = y + (<usize>((b * gh + py) * gw * K + (c * P + ky) * P) << 2);
          for (let px = 0; px < gw; px++) {
            if (toY) copyRun(yp, xp, P); else copyRun(xp, yp, P);
            xp += run;
            yp += patchBytes;
          }
        }
      }
    }
  }
}

export function patchify(x: usize, y: usize, B: i32, C: i32, H: i32, W: i32, P: i32): void {
  walk(true, x, y, B, C, H, W, P);
}

export function unpatchify(y: usize, x: usize, B: i32, C: i32, H: i32, W: i32, P: i32): void {
  // only pixels outside every patch need zeroing (none when P divides H and W)
  if (H % P != 0 || W % P != 0) memory.fill(x, 0, <usize>(B * C * H * W) << 2);
  walk(false, x, y, B, C, H, W, P);
}
