// Workgroup reductions shared by the row kernels (softmax, LayerNorm,
// row_sum): 64 threads, a tree over workgroup memory. Every thread of the
// workgroup must call them (they contain barriers) in uniform control flow.
// A kernel uses each function at most once (see below).
import { WG } from '../shader.js';

function tree(name: string, arr: string, op: (a: string, b: string) => string): string {
  let body = `var<workgroup> ${arr}: array<f32, ${WG}>;\nfn ${name}(li: u32, v: f32) -> f32 {\n  ${arr}[li] = v;\n  workgroupBarrier();\n`;
  for (let s = WG / 2; s >= 1; s >>= 1) body += `  if (li < ${s}u) { ${arr}[li] = ${op(`${arr}[li]`, `${arr}[li + ${s}u]`)}; }\n  workgroupBarrier();\n`;
  return body + `  let r = ${arr}[0];\n  workgroupBarrier();\n  return r;\n}\n`;
}

// Two things keep these correct on Mesa's llvmpipe (the OpenGL ES route),
// where Tint's GLSL has only barrier() (no memoryBarrierShared) and the
// compiler was seen to re-load a reduction's result from workgroup memory after
// a LATER reduction had overwritten it: each call site has its own array (wsum_a
// and wsum_b are never the same memory), and the tree is unrolled.
export const WG_REDUCE = tree('wsum_a', 'red_a', (a, b) => `${a} + ${b}`) + tree('wsum_b', 'red_b', (a, b) => `${a} + ${b}`) +
  tree('wmax_a', 'red_m', (a, b) => `max(${a}, ${b})`);

/** Header of a kernel that runs one workgroup per row: `row` is the row index (uniform). */
export const ROW_ARGS = /* wgsl */ `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32`;
