// LayerNorm over the last axis, biased variance, as torch.nn.LayerNorm.
// Spec: src/backend/reference/layernorm.ts.
//
// Shapes: x, y, dy, dx are [rows, cols] row-major and contiguous; gamma, beta,
// dgamma, dbeta are [cols]; mean, rstd are [rows]. Pointers need no alignment.
// Aliasing: y == x and dx == dy (or dx == x) are allowed, since every write to
// element j follows the last read of element j in that row. dgamma/dbeta must
// not alias anything else.
//
//   layernorm_fwd(x, gamma, beta, y, mean, rstd, rows, cols, eps)
//     mean = sum x / cols;  var = sum (x - mean)^2 / cols  (two passes, so no
//     cancellation for rows with a large mean);  rstd = 1 / sqrt(var + eps)
//     y = (x - mean) * rstd * gamma + beta;  mean[r], rstd[r] saved for backward
//   layernorm_bwd(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols)
//     xhat = (x - mean) rstd, g = dy gamma
//     dx = rstd (g - mean(g) - xhat mean(g xhat))
//     dgamma = sum_rows dy xhat, dbeta = sum_rows dy  (overwritten, not accumulated)
//
// Accuracy: f32 arithmetic with 8 partial sums per row (the reference uses
// float64); for cols ~ 1000 the saved mean/rstd agree with it to ~1e-6
// relative. dgamma/dbeta accumulate over rows in f32 in the output itself.
import { fma4 } from './simd';
import { hsum } from './math';

export function layernorm_fwd(x: usize, gamma: usize, beta: usize, y: usize,
  mean: usize, rstd: usize, rows: i32, cols: i32, eps: f32): void {
  const bytes = <usize>cols << 2;
  const c8 = cols & ~7, c4 = cols & ~3;
  const invn: f32 = <f32>1 / <f32>cols;
  for (let r = 0; r < rows; r++) {
    const X = x + <usize>r * bytes, Y = y + <usize>r * bytes;
    // mean
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let j = 0;
    for (; j < c8; j += 8) {
      const p = X + (<usize>j << 2);
      a0 = f32x4.add(a0, v128.load(p));
      a1 = f32x4.add(a1, v128.load(p, 16));
    }
    for (; j < c4; j += 4) a0 = f32x4.add(a0, v128.load(X + (<usize>j << 2)));
    let s = hsum(f32x4.add(a0, a1));
    for (; j < cols; j++) s += load<f32>(X + (<usize>j << 2));
    const m = s * invn;
    // variance about the mean
    const vm = f32x4.splat(m);
    a0 = f32x4.splat(0); a1 = f32x4.splat(0);
    for (j = 0; j < c8; j += 8) {
      const p = X + (<usize>j << 2);
      const d0 = f32x4.sub(v128.load(p), vm), d1 = f32x4.sub(v128.load(p, 16), vm);
      a0 = fma4(d0, d0, a0);
      a1 = fma4(d1, d1, a1);
    }
    for (; j < c4; j += 4) {
      const d0 = f32x4.sub(v128.load(X + (<usize>j << 2)), vm);
      a0 = fma4(d0, d0, a0);
    }
    let v = hsum(f32x4.add(a0, a1));
    for (; j < cols; j++) { const d = load<f32>(X + (<usize>j << 2)) - m; v += d * d; }
    const rs: f32 = <f32>1 / Mathf.sqrt(v * invn + eps);
    // y = (x - m) rs gamma + beta
    const vr = f32x4.splat(rs);
    for (j = 0; j < c4; j += 4) {
      const o = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(X + o), vm), vr);
      v128.store(Y + o, fma4(xh, v128.load(gamma + o), v128.load(beta + o)));
    }
    for (; j < cols; j++) {
      const o = <usize>j << 2;
      store<f32>(Y + o, (load<f32>(X + o) - m) * rs * load<f32>(gamma + o) + load<f32>(beta + o));
    }
    store<f32>(mean + (<usize>r << 2), m);
    store<f32>(rstd + (<usize>r << 2), rs);
  }
}

export function layernorm_bwd(x: usize, gamma: usize, mean: usize, rstd: usize,
  dy: usize, dx: usize, dgamma: usize, dbeta: usize, rows: i32, cols: i32): void {
  const bytes = <usize>cols << 2;
  const c4 = cols & ~3;
  const invn: f32 = <f32>1 / <f32>cols;
  memory.fill(dgamma, 0, bytes);
  memory.fill(dbeta, 0, bytes);
  for (let r = 0; r < rows; r++) {
    const X = x + <usize>r * bytes, DY = dy + <usize>r * bytes, DX = dx + <usize>r * bytes;
    const m = load<f32>(mean + (<usize>r << 2)), rs = load<f32>(rstd + (<usize>r << 2));
    const vm = f32x4.splat(m), vr = f32x4.splat(rs);
    // pass 1: row sums of g and g*xhat; column sums into dgamma, dbeta
    let sg = f32x4.splat(0), sgx = f32x4.splat(0);
    let j = 0;
    for (; j < c4; j += 4) {
      const o = <usize>j << 2;
      const d = v128.load(DY + o);
      const xh = f32x4.mul(f32x4.sub(v128.load(X + o), vm), vr);
      const g = f32x4.mul(d, v128.load(gamma + o));
      sg = f32x4.add(sg, g);
      sgx = fma4(g, xh, sgx);
      v128.store(dgamma + o, fma4(d, xh, v128.load(dgamma + o)));
      v128.store(dbeta + o, f32x4.add(v128.load(dbeta + o), d));
    }
    let s1 = hsum(sg), s2 = hsum(sgx);
    for (; j < cols; j++) {
      const o = <usize>j << 2;
      const d = load<f32>(DY + o);
      const xh = (load<f32>(X + o) - m) * rs;
      const g = d * load<f32>(gamma + o);
      s1 += g; s2 += g * xh;
      store<f32>(dgamma + o, load<f32>(dgamma + o) + d * xh);
      store<f32>(dbeta + o, load<f32>(dbeta + o) + d);
    }
    s1 *= invn; s2 *= invn;
    // pass 2: dx = rs (g - s1 - xhat s2)
    const v1 = f32x4.splat(s1), v2 = f32x4.splat(s2);
    for (j = 0; j < c4; j += 4) {
      const o = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(X + o), vm), vr);
      const g = f32x4.mul(v128.load(DY + o), v128.load(gamma + o));
      const t = f32x4.sub(f32x4.sub(g, v1), f32x4.mul(xh, v2));
      v128.store(DX + o, f32x4.mul(vr, t));
    }
    for (; j < cols; j++) {
      const o = <usize>j << 2;
      const xh = (load<f32>(X + o) - m) * rs;
      const g = load<f32>(DY + o) * load<f32>(gamma + o);
      store<f32>(DX + o, rs * (g - s1 - xh * s2));
    }
  }
}
