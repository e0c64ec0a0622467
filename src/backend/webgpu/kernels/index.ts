// The WGSL kernel table: one KernelSpec per name of src/backend/kernels.ts
// (null where the backend cannot offer the kernel), plus the WebGPU-only extras.
import type { KernelName } from '../../kernels.js';
import type { ExtraKernelSpec, KernelSpec } from '../shader.js';
import * as gemm from './gemm.js';
import * as softmax from './softmax.js';
import * as layernorm from './layernorm.js';
import * as gelu from './gelu.js';
import * as elementwise from './elementwise.js';
import * as reduce from './reduce.js';
import * as adamw from './adamw.js';
import * as patch from './patch.js';
import * as atme from './atme.js';
import * as gather from './gather.js';

const { log, ...elementwiseKernels } = elementwise;
const { TILE: _tile, ...gemmKernels } = gemm;
const { PHI: _phi, ...geluKernels } = gelu;

export const WGSL_KERNELS: Record<KernelName, KernelSpec | null> = {
  ...gemmKernels, ...softmax, ...layernorm, ...geluKernels, ...elementwiseKernels, ...reduce, ...adamw, ...patch, ...atme, ...gather,
  quantize_rows: null, pack_qb: null, qgemm: null, quantize_prefix_rows: null, add_prefix_rows: null, quantize_pack_qb: null, softmax_quantize_rows: null,
};

/** Kernels with no WASM twin, used through WebGpuBackend's own methods. */
export const EXTRA_KERNELS = { log } satisfies Record<string, ExtraKernelSpec>;

const INT8 = 'int8 inference runs on the CPU backends; WebGPU runs an int8 model with its weights dequantized to float at load (src/quant/)';
/** Kernels that exist in the table but cannot run here, and why. */
export const UNSUPPORTED: Partial<Record<KernelName, string>> = {
  quantize_rows: INT8,
  pack_qb: INT8,
  qgemm: INT8,
  quantize_prefix_rows: INT8,
  add_prefix_rows: INT8,
  quantize_pack_qb: INT8,
  softmax_quantize_rows: INT8,
  sum_sq: 'its result is a host scalar, which WebGPU returns only asynchronously (it serves gradient-norm clipping in training; the WebGPU backend runs inference)',
};
