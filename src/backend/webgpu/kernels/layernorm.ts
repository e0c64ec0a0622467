// LayerNorm over the last axis, WGSL twin of assembly/layernorm.ts (spec:
// src/backend/reference/layernorm.ts). Biased variance, two passes (mean, then
// squared deviations), as the WASM kernel.
//   layernorm_fwd(x, gamma, beta, y, mean, rstd, rows, cols, eps)
//     one workgroup per row; y may alias x (a thread writes only the columns it read)
//   layernorm_bwd(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols)
//     stage 1, one thread per column: dgamma = sum_rows dy xhat, dbeta = sum_rows dy
//     (overwritten); stage 2, one workgroup per row: dx. In this order so that
//     dx may alias dy, as on the other backends.
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';
import { ROW_ARGS, WG_REDUCE } from './reductions.js';

export const layernorm_fwd: KernelSpec = {
  wgsl: WG_REDUCE + `${K} fn main(${ROW_ARGS}) {
  let row = wgid(wid, nwg);
  if (row >= U.rows) { return; }
  let X = U.x + row * U.cols; let Y = U.y + row * U.cols;
  let invn = 1.0 / f32(U.cols);
  var s = 0.0;
  for (var j = li; j < U.cols; j += ${WG}u) { s += ld(X + j); }
  let m = wsum_a(li, s) * invn;
  var v = 0.0;
  for (var j = li; j < U.cols; j += ${WG}u) { let d = ld(X + j) - m; v += d * d; }
  let rs = 1.0 / sqrt(wsum_b(li, v) * invn + U.eps);
  for (var j = li; j < U.cols; j += ${WG}u) { st(Y + j, (ld(X + j) - m) * rs * ld(U.gamma + j) + ld(U.beta + j)); }
  if (li == 0u) { st(U.mean + row, m); st(U.rstd + row, rs); }
}`,
  stages: [{ entry: 'main', groups: (v) => (v.cols > 0 ? v.rows : 0) }],
};

export const layernorm_bwd: KernelSpec = {
  wgsl: WG_REDUCE + `${K} fn params(${A}) {
  let c = wgid(wid, nwg) * ${WG}u + li;
  if (c >= U.cols) { return; }
  var dg = 0.0; var db = 0.0;
  for (var r = 0u; r < U.rows; r++) {
    let dyv = ld(U.dy + r * U.cols + c);
    let xh = (ld(U.x + r * U.cols + c) - ld(U.mean + r)) * ld(U.rstd + r);
    dg += dyv * xh; db += dyv;
  }
  st(U.dgamma + c, dg); st(U.dbeta + c, db);
}
${K} fn rows(${ROW_ARGS}) {
  let row = wgid(wid, nwg);
  if (row >= U.rows) { return; }
  let X = U.x + row * U.cols; let DY = U.dy + row * U.cols; let DX = U.dx + row * U.cols;
  let m = ld(U.mean + row); let rs = ld(U.rstd + row);
  let invn = 1.0 / f32(U.cols);
  var sg = 0.0; var sgx = 0.0;
  for (var j = li; j < U.cols; j += ${WG}u) {
    let g = ld(DY + j) * ld(U.gamma + j);
    sg += g; sgx += g * (ld(X + j) - m) * rs;
  }
  sg = wsum_a(li, sg) * invn;
  sgx = wsum_b(li, sgx) * invn;
  for (var j = li; j < U.cols; j += ${WG}u) {
    let xh = (ld(X + j) - m) * rs;
    st(DX + j, rs * (ld(DY + j) * ld(U.gamma + j) - sg - xh * sgx));
  }
}`,
  stages: [
    { entry: 'params', groups: (v) => (v.rows > 0 ? perThread(v.cols) : 0) },
    { entry: 'rows', groups: (v) => (v.cols > 0 ? v.rows : 0) },
  ],
};
