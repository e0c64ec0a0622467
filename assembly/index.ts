// Every kernel the engine has, one file per op family (mirrors src/backend/reference/).
// Kernels take byte pointers and integers, never allocate, and hold no static
// data, so one module can run in several workers over one shared memory.
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
