// Every kernel the engine has, one file per op family (mirrors src/backend/reference/).
// Kernels take byte pointers and integers and never allocate; their only
// static data are read-only constant tables (assembly/math.ts), the same
// bytes in every instance, so one module can run in several workers over one
// shared memory.
export * from './gemm';
export * from './softmax';
export * from './layernorm';
export { gelu_fwd, gelu_bwd } from './gelu'; // not geluv / geluTile: helpers of the GEMMs' epilogues
export * from './elementwise';
export * from './reduce';
export * from './adamw';
export * from './patch';
export * from './atme';
export * from './gather';
export * from './qgemm';
export { static_data_end } from './math'; // not a kernel: the tables' end, checked by src/backend/wasm.ts
