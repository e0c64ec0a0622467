// Channel gather/scatter for CDCP, WGSL twins of assembly/gather.ts (spec:
// src/backend/reference/gather.ts). idx points to k int32 values (read as the
// raw heap word).
//   gather_rows(x, ldx, idx, k, cols, y)    y[r*cols + j]  = x[idx[r]*ldx + j]    one thread per output
//   scatter_rows(y, idx, k, cols, x, ldx)   x[idx[r]*ldx + j] += y[r*cols + j]    one thread per column j,
//                                           rows r in order: repeated indices add up, deterministically
//   gather_cols(x, ldx, rows, idx, k, y)    y[r*k + j]     = x[r*ldx + idx[j]]    one thread per output
//   scatter_cols(y, rows, idx, k, x, ldx)   x[r*ldx + idx[j]] += y[r*k + j]       one thread per row r, j in order
// Copies are exact; the scatters are one f32 add per element, in the reference's order.
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';

const idx = `let i = wgid(wid, nwg) * ${WG}u + li;`;

export const gather_rows: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  if (i >= U.k * U.cols) { return; }
  let r = i / U.cols; let j = i - r * U.cols;
  H[U.y + i] = H[U.x + H[U.idx + r] * U.ldx + j];
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.k * v.cols) }],
};

export const scatter_rows: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  if (i >= U.cols) { return; }
  for (var r = 0u; r < U.k; r++) {
    let d = U.x + H[U.idx + r] * U.ldx + i;
    st(d, ld(d) + ld(U.y + r * U.cols + i));
  }
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.cols) }],
};

export const gather_cols: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  if (i >= U.rows * U.k) { return; }
  let r = i / U.k; let j = i - r * U.k;
  H[U.y + i] = H[U.x + r * U.ldx + H[U.idx + j]];
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.rows * v.k) }],
};

export const scatter_cols: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  if (i >= U.rows) { return; }
  for (var j = 0u; j < U.k; j++) {
    let d = U.x + i * U.ldx + H[U.idx + j];
    st(d, ld(d) + ld(U.y + i * U.k + j));
  }
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.rows) }],
};
