// Reductions, WGSL twins of assembly/reduce.ts (spec: src/backend/reference/reduce.ts).
//   row_sum(x, y, rows, cols)   y[r] = sum_c x[r, c]     one workgroup per row, tree sum
//   col_sum(x, y, rows, cols)   y[c] = sum_r x[r, c]     one thread per column, compensated
//                                                        (Kahan) sum in row order: the WASM and
//                                                        reference kernels sum in float64
//   sum_sq(x, n) -> number      not offered: its result is a host scalar, which WebGPU can
//                               only deliver asynchronously (it serves gradient clipping in
//                               training, not inference)
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';
import { ROW_ARGS, WG_REDUCE } from './reductions.js';

export const row_sum: KernelSpec = {
  wgsl: WG_REDUCE + `${K} fn main(${ROW_ARGS}) {
  let row = wgid(wid, nwg);
  if (row >= U.rows) { return; }
  let X = U.x + row * U.cols;
  var s = 0.0;
  for (var j = li; j < U.cols; j += ${WG}u) { s += ld(X + j); }
  s = wsum_a(li, s);
  if (li == 0u) { st(U.y + row, s); }
}`,
  stages: [{ entry: 'main', groups: (v) => v.rows }],
};

export const col_sum: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  let c = wgid(wid, nwg) * ${WG}u + li;
  if (c >= U.cols) { return; }
  var s = 0.0; var comp = 0.0;
  for (var r = 0u; r < U.rows; r++) {
    let v = ld(U.x + r * U.cols + c) - comp;
    let t = s + v;
    comp = (t - s) - v;
    s = t;
  }
  st(U.y + c, s);
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.cols) }],
};

export const sum_sq = null;
