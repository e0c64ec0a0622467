// Row softmax, WGSL twin of assembly/softmax.ts (spec: src/backend/reference/softmax.ts).
// One 64-thread workgroup per row; thread l owns columns l, l+64, ... so the
// in-place forms (x == y, dx == dy) are safe: a thread writes only elements it
// alone read.
//   softmax_fwd(x, y, rows, cols)        y = exp(x - max x) / sum exp(x - max x)
//   softmax_bwd(y, dy, dx, rows, cols)   dx = y * (dy - sum(dy * y))
import { ELEMENT_HEAD as K, WG, type KernelSpec } from '../shader.js';
import { ROW_ARGS, WG_REDUCE } from './reductions.js';

export const softmax_fwd: KernelSpec = {
  wgsl: WG_REDUCE + `${K} fn main(${ROW_ARGS}) {
  let row = wgid(wid, nwg);
  if (row >= U.rows) { return; }
  let X = U.x + row * U.cols; let Y = U.y + row * U.cols;
  var m = -0x1.fffffep+127f;   // -FLT_MAX (WGSL has no infinite literal)
  for (var j = li; j < U.cols; j += ${WG}u) { m = max(m, ld(X + j)); }
  m = wmax_a(li, m);
  var s = 0.0;
  for (var j = li; j < U.cols; j += ${WG}u) { s += exp(ld(X + j) - m); }
  s = wsum_b(li, s);
  let inv = 1.0 / s;
  for (var j = li; j < U.cols; j += ${WG}u) { st(Y + j, exp(ld(X + j) - m) * inv); }
}`,
  stages: [{ entry: 'main', groups: (v) => (v.cols > 0 ? v.rows : 0) }],
};

export const softmax_bwd: KernelSpec = {
  wgsl: WG_REDUCE + `${K} fn main(${ROW_ARGS}) {
  let row = wgid(wid, nwg);
  if (row >= U.rows) { return; }
  let Y = U.y + row * U.cols; let DY = U.dy + row * U.cols; let DX = U.dx + row * U.cols;
  var s = 0.0;
  for (var j = li; j < U.cols; j += ${WG}u) { s += ld(DY + j) * ld(Y + j); }
  s = wsum_a(li, s);
  for (var j = li; j < U.cols; j += ${WG}u) { st(DX + j, ld(Y + j) * (ld(DY + j) - s)); }
}`,
  stages: [{ entry: 'main', groups: (v) => (v.cols > 0 ? v.rows : 0) }],
};
