// The kernel table: one name per kernel, the same in assembly/, in
// src/backend/reference/, in WGSL shaders and in tests. The argument lists are
// documented where the kernels are defined (reference/*.ts is the spec).

export const KERNELS = [
  // assembly/gemm.ts
  'gemm', 'pack_b',
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

/**
 * Which arguments of each kernel are heap pointers (0-based positions in the
 * argument list, as in reference/*.ts without the heap). src/plan.ts needs
 * this to move a recorded call's buffers into its arena; a kernel missing
 * here cannot be planned.
 */
export const KERNEL_PTR_ARGS: Readonly<Record<KernelName, readonly number[]>> = {
  gemm: [5, 8, 12, 16, 17], pack_b: [3, 5],
  softmax_fwd: [0, 1], softmax_bwd: [0, 1, 2],
  layernorm_fwd: [0, 1, 2, 3, 4, 5], layernorm_bwd: [0, 1, 2, 3, 4, 5, 6, 7],
  gelu_fwd: [0, 1], gelu_bwd: [0, 1, 2],
  add: [0, 1, 2], mul: [0, 1, 2], scale: [0, 1], axpy: [0, 1], fill: [0], copy2d: [0, 2],
  row_sum: [0, 1], col_sum: [0, 1], sum_sq: [0],
  adamw: [0, 1, 2, 3],
  patchify: [0, 1], unpatchify: [0, 1],
  atme_similarity: [0, 9], atme_plan: [0, 5], atme_merge_fwd: [0, 1, 2, 8, 9], atme_merge_bwd: [0, 1, 2, 3, 9],
  atme_unmerge_fwd: [0, 1, 7], atme_unmerge_bwd: [0, 1, 7],
  gather_rows: [0, 2, 5], scatter_rows: [0, 1, 4], gather_cols: [0, 3, 5], scatter_cols: [0, 2, 4],
};

/** GEMM layouts: which operands are stored transposed. */
export const NN = 0, NT = 1, TN = 2;
/** A row-major, B pre-packed by pack_b into 8-column panels (see assembly/gemm.ts). */
export const NP = 3;
/** Or-ed into a layout: GELU applied to the result as it is stored (inference only: no pre-activation is kept). */
export const GELU = 4;
/** Floats pack_b writes for a K x N operand. */
export const packedSize = (K: number, N: number): number => Math.ceil(N / 8) * 8 * K;

/** Bytes of packing scratch a GEMM call may use (see assembly/gemm.ts). */
export const GEMM_SCRATCH_BYTES = 1 << 20;
