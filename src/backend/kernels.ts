// The kernel table: one name per kernel, the same in assembly/, in
// src/backend/reference/, in WGSL shaders and in tests. The argument lists are
// documented where the kernels are defined (reference/*.ts is the spec).

export const KERNELS = [
  // assembly/gemm.ts
  'gemm',
  // assembly/softmax.ts
  'softmax_fwd', 'softmax_bwd',
  // assembly/layernorm.ts
  'layernorm_fwd', 'layernorm_bwd',
  // assembly/gelu.ts
  'gelu_fwd', 'gelu_bwd',
  // assembly/elementwise.ts
  'add', 'mul', 'scale', 'axpy', 'fill', 'copy2d',
  // assembly/reduce.ts
  'row_sum', 'col_sum', 'sum_sq',
  // assembly/adamw.ts
  'adamw',
  // assembly/patch.ts
  'patchify', 'unpatchify',
  // assembly/atme.ts
  'atme_similarity', 'atme_plan', 'atme_merge_fwd', 'atme_merge_bwd', 'atme_unmerge_fwd', 'atme_unmerge_bwd',
  // assembly/gather.ts
  'gather_rows', 'scatter_rows', 'gather_cols', 'scatter_cols',
] as const;

export type KernelName = (typeof KERNELS)[number];

/** GEMM layouts: which operands are stored transposed. */
export const NN = 0, NT = 1, TN = 2;

/** Bytes of packing scratch a GEMM call may use (see assembly/gemm.ts). */
export const GEMM_SCRATCH_BYTES = 1 << 20;
