// Elementwise kernels, WGSL twins of assembly/elementwise.ts (spec:
// src/backend/reference/elementwise.ts). One thread per element.
//   add(a, b, y, n, m)      y[i] = a[i] + b[i % m]
//   mul(a, b, y, n, m)      y[i] = a[i] * b[i % m]
//   scale(x, y, n, s)       y[i] = s * x[i]
//   axpy(x, y, n, alpha)    y[i] += alpha * x[i]
//   fill(y, n, v)           y[i] = v
//   copy2d(src, sld, dst, dld, rows, cols)   dst[r*dld + c] = src[r*sld + c]
// Aliasing as in assembly/: y may be a or x; y may be b only when m = n (each
// thread reads its own elements before writing them). copy2d's source and
// destination must not overlap (the WASM kernel's memmove has no parallel twin).
// Extra (no WASM twin; see WebGpuBackend.logf): log(x, y, n)  y[i] = ln x[i].
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec, type ExtraKernelSpec } from '../shader.js';

const idx = `let i = wgid(wid, nwg) * ${WG}u + li;`;

export const add: KernelSpec = {
  wgsl: `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } st(U.y + i, ld(U.a + i) + ld(U.b + i % U.m)); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};

export const mul: KernelSpec = {
  wgsl: `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } st(U.y + i, ld(U.a + i) * ld(U.b + i % U.m)); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};

export const scale: KernelSpec = {
  wgsl: `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } st(U.y + i, U.s * ld(U.x + i)); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};

export const axpy: KernelSpec = {
  wgsl: `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } st(U.y + i, ld(U.y + i) + U.alpha * ld(U.x + i)); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};

export const fill: KernelSpec = {
  wgsl: `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } st(U.y + i, U.v); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};

export const copy2d: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  if (i >= U.rows * U.cols) { return; }
  let r = i / U.cols; let c = i - r * U.cols;
  H[U.dst + r * U.dld + c] = H[U.src + r * U.sld + c];
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.rows * v.cols) }],
};

export const log: ExtraKernelSpec = {
  args: 'x:p y:p n:i',
  wgsl: `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } st(U.y + i, log(ld(U.x + i))); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};
