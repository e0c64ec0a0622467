// AdamW step, WGSL twin of assembly/adamw.ts (spec: src/backend/reference/adamw.ts),
// one thread per parameter, f32 arithmetic as the WASM kernel.
//   adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2)
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';

export const adamw: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  let i = wgid(wid, nwg) * ${WG}u + li;
  if (i >= U.n) { return; }
  let gi = ld(U.g + i);
  var pi = ld(U.p + i) * (1.0 - U.lr * U.wd);
  let mi = U.b1 * ld(U.m + i) + (1.0 - U.b1) * gi;
  let vi = U.b2 * ld(U.v + i) + (1.0 - U.b2) * gi * gi;
  pi -= U.lr * (mi / U.bc1) / (sqrt(vi / U.bc2) + U.eps);
  st(U.m + i, mi); st(U.v + i, vi); st(U.p + i, pi);
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};
