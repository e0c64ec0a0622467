// The kernel table: every kernel's name and its arguments, once. The same
// names and argument lists are the exports of assembly/*.ts, the functions of
// src/backend/reference/*.ts (after the heap), and the WGSL kernels of
// src/backend/webgpu/kernels/ (whose uniform struct is generated from here);
// test/kernels/table.test.ts checks all three against this table.
//
// Format: one entry per kernel, `name: 'arg:kind arg:kind ...'` in call order,
// kind `p` a heap pointer (byte offset; usize in AssemblyScript), `i` an
// integer (i32), `f` a float (f32). From it come KERNELS (the names, in table
// order: the worker pool's kernel ids), KERNEL_ARGS (parsed), KERNEL_PTR_ARGS
// (what src/plan.ts relocates into its arena), the named-argument call
// `call(be, 'gemm', { layout, M, ... })`, and the thread splits, which name
// arguments too (src/backend/threads.ts). Adding a kernel: one line here, its
// AssemblyScript export, its reference twin, its WGSL twin (or a null entry
// with a reason in webgpu/kernels/index.ts), its op and its tests.
import type { Backend } from './backend.js';

export const KERNEL_TABLE = {
  // assembly/gemm.ts
  gemm: 'layout:i M:i N:i K:i alpha:f a:p lda:i sa:i b:p ldb:i sb:i beta:f c:p ldc:i sc:i batch:i bias:p scratch:p',
  pack_b: 'layout:i K:i N:i b:p ldb:i dst:p',
  // assembly/softmax.ts
  softmax_fwd: 'x:p y:p rows:i cols:i',
  softmax_bwd: 'y:p dy:p dx:p rows:i cols:i',
  // assembly/layernorm.ts
  layernorm_fwd: 'x:p gamma:p beta:p y:p mean:p rstd:p rows:i cols:i eps:f',
  layernorm_bwd: 'x:p gamma:p mean:p rstd:p dy:p dx:p dgamma:p dbeta:p rows:i cols:i',
  // assembly/gelu.ts
  gelu_fwd: 'x:p y:p n:i',
  gelu_bwd: 'x:p dy:p dx:p n:i',
  // assembly/elementwise.ts
  add: 'a:p b:p y:p n:i m:i',
  mul: 'a:p b:p y:p n:i m:i',
  scale: 'x:p y:p n:i s:f',
  axpy: 'x:p y:p n:i alpha:f',
  fill: 'y:p n:i v:f',
  copy2d: 'src:p sld:i dst:p dld:i rows:i cols:i',
  // assembly/reduce.ts
  row_sum: 'x:p y:p rows:i cols:i',
  col_sum: 'x:p y:p rows:i cols:i',
  sum_sq: 'x:p n:i',
  // assembly/adamw.ts
  adamw: 'p:p g:p m:p v:p n:i lr:f b1:f b2:f eps:f wd:f bc1:f bc2:f',
  // assembly/patch.ts
  patchify: 'x:p y:p B:i C:i H:i W:i P:i',
  unpatchify: 'y:p x:p B:i C:i H:i W:i P:i',
  // assembly/atme.ts
  atme_similarity: 'x:p ld:i heads:i dim:i B:i prefix:i gh:i gw:i axis:i sim:p',
  atme_plan: 'sim:p B:i gh:i gw:i axis:i map:p',
  atme_merge_fwd: 'x:p sizes:p map:p B:i prefix:i T:i T2:i C:i y:p ysizes:p',
  atme_merge_bwd: 'dy:p sizes:p ysizes:p map:p B:i prefix:i T:i T2:i C:i dx:p',
  atme_unmerge_fwd: 'x:p map:p B:i prefix:i T:i T2:i C:i y:p',
  atme_unmerge_bwd: 'dy:p map:p B:i prefix:i T:i T2:i C:i dx:p',
  // assembly/gather.ts
  gather_rows: 'x:p ldx:i idx:p k:i cols:i y:p',
  scatter_rows: 'y:p idx:p k:i cols:i x:p ldx:i',
  gather_cols: 'x:p ldx:i rows:i idx:p k:i y:p',
  scatter_cols: 'y:p rows:i idx:p k:i x:p ldx:i',
  // assembly/qgemm.ts (int8 inference; byte layouts there)
  quantize_rows: 'x:p ldx:i M:i K:i qa:p rowp:p levels:i',
  pack_qb: 'K:i N:i w:p ldw:i dst:p',
  qgemm: 'M:i N:i K:i qa:p rowp:p wp:p wscale:p bias:p c:p ldc:i flags:i',
  quantize_prefix_rows: 'x:p ldx:i B:i T:i P:i K:i tmp:p qa:p rowp:p',
  add_prefix_rows: 'z:p N:i B:i T:i P:i bias:p y:p ldy:i flags:i',
  quantize_pack_qb: 'K:i N:i w:p ldk:i ldn:i alpha:f dst:p wscale:p mid:p',
  softmax_quantize_rows: 'x:p rows:i cols:i qa:p rowp:p levels:i',
} as const;

export type KernelName = keyof typeof KERNEL_TABLE;
export type ArgKind = 'p' | 'i' | 'f';
export interface KernelArg { readonly name: string; readonly kind: ArgKind }

/** Kernel names in table order (the worker pool numbers kernels by this order). */
export const KERNELS = Object.keys(KERNEL_TABLE) as KernelName[];

/** Parse one table entry ('name:kind ...'). */
export function parseKernelArgs(spec: string): KernelArg[] {
  return spec.trim().split(/\s+/).map((s) => {
    const [name, kind] = s.split(':');
    if (!name || (kind !== 'p' && kind !== 'i' && kind !== 'f')) throw new Error(`kernel table: bad argument '${s}' (expected name:p, name:i or name:f)`);
    return { name, kind };
  });
}

/** Each kernel's arguments, parsed. */
export const KERNEL_ARGS = Object.fromEntries(KERNELS.map((k) => [k, parseKernelArgs(KERNEL_TABLE[k])])) as unknown as Record<KernelName, readonly KernelArg[]>;

/**
 * Which arguments of each kernel are heap pointers (0-based positions).
 * src/plan.ts moves a recorded call's buffers into its arena through these.
 */
export const KERNEL_PTR_ARGS = Object.fromEntries(KERNELS.map((k) =>
  [k, KERNEL_ARGS[k].flatMap((a, i) => (a.kind === 'p' ? [i] : []))])) as unknown as Record<KernelName, readonly number[]>;

/** Position of each argument by name: KERNEL_ARG_INDEX.gemm.c === 12. */
export const KERNEL_ARG_INDEX = Object.fromEntries(KERNELS.map((k) =>
  [k, Object.fromEntries(KERNEL_ARGS[k].map((a, i) => [a.name, i]))])) as { [K in KernelName]: Record<ArgNames<K>, number> };

type Names<S extends string> = S extends `${infer A} ${infer R}` ? Names<A> | Names<R> : S extends `${infer N}:${string}` ? N : never;
/** The argument names of kernel K, as a union of string literals. */
export type ArgNames<K extends KernelName> = Names<(typeof KERNEL_TABLE)[K]>;
/** A kernel's arguments by name (all required). */
export type KernelArgs<K extends KernelName> = { [N in ArgNames<K>]: number };

/** A named-argument call as the positional list the backends take. */
export function kernelArgList<K extends KernelName>(kernel: K, args: KernelArgs<K>): number[] {
  const spec = KERNEL_ARGS[kernel], out = new Array<number>(spec.length), a = args as Record<string, number>;
  for (let i = 0; i < spec.length; i++) {
    const v = a[spec[i].name];
    if (typeof v !== 'number') throw new TypeError(`${kernel}: argument '${spec[i].name}' missing (${KERNEL_TABLE[kernel]})`);
    out[i] = v;
  }
  return out;
}

/** Run a kernel with named arguments: call(be, 'softmax_fwd', { x, y, rows, cols }). */
export function call<K extends KernelName>(be: Backend, kernel: K, args: KernelArgs<K>): number {
  return be.run(kernel, ...kernelArgList(kernel, args));
}

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
/** Bytes pack_qb writes for K x N int8 weights: 8-channel panels of K rounded up to 4, then the int32 column sums. */
export const qPackedBytes = (K: number, N: number): number => Math.ceil(N / 8) * 8 * (((K + 3) & ~3) + 4);
/** qgemm's flags: GELU in the store; the composed dot even where the engine's fused one is exact and single (assembly/qgemm.ts dotFused; the same bits, for A/B timing); rows quantized with 63 levels (u <= 63: the composed dot sums pairs of groups in i16, assembly/qgemm.ts tilePaired; the same bits). */
export const QGEMM_GELU = 1, QGEMM_COMPOSED_DOT = 2, QGEMM_A6 = 4;
/** The qgemm flag that rows quantized with `levels` (quantize_rows, softmax_quantize_rows) allow: QGEMM_A6 for 63, none for 127. */
export const qgemmRowFlags = (levels: 127 | 63): number => (levels === 63 ? QGEMM_A6 : 0);
/** Bytes quantize_rows writes for M rows of K: strips of 4 rows, K rounded up to 4 (its row parameters: 2 M floats). */
export const qRowsBytes = (M: number, K: number): number => Math.ceil(M / 4) * 4 * ((K + 3) & ~3);
