// Kernel test harness (test/gradcheck.ts is the op-level gradient check):
// for the non-GEMM kernels, run one kernel on any backend with
// buffers placed 4 bytes past a 64-byte boundary (so f32x4 code sees unaligned
// pointers) and fenced by sentinels (so a vector store past the end is
// caught), and central-difference gradients of a host-side scalar loss.
import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import type { KernelName } from '../../src/backend/kernels.js';

const GUARD = 4;             // sentinel floats after each buffer (one whole f32x4)
const SENTINEL = -12345.5;

export interface Ran { out: Float32Array[]; ret: number }

/**
 * Writes each of `bufs` into its own allocation at offset +4 bytes, runs
 * `kernel` with `args(pointers)`, reads every buffer back (so in-place and
 * aliased kernels can be checked) and asserts the sentinels around every
 * buffer are intact.
 */
export function exec(b: Backend, kernel: KernelName, bufs: Float32Array[], args: (p: number[]) => number[]): Ran {
  const bases = bufs.map((d) => b.alloc(d.length + 1 + GUARD));
  const ptrs = bases.map((base) => base + 4);
  const fence = new Float32Array(GUARD).fill(SENTINEL);
  bufs.forEach((d, i) => {
    b.write(bases[i], new Float32Array([SENTINEL]));
    b.write(ptrs[i], d);
    b.write(ptrs[i] + d.length * 4, fence);
  });
  const ret = b.run(kernel, ...args(ptrs));
  const out = bufs.map((d, i) => b.read(ptrs[i], d.length));
  bufs.forEach((d, i) => {
    const before = b.read(bases[i], 1)[0], after = b.read(ptrs[i] + d.length * 4, GUARD);
    assert.ok(before === SENTINEL && after.every((v) => v === SENTINEL),
      `${b.name} ${kernel}: wrote outside buffer ${i} (length ${d.length})`);
  });
  bases.forEach((base) => b.free(base));
  return { out, ret };
}

/** sum_i w[i] * y[i] in float64. */
export function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
}

/**
 * Central differences of loss(x) with respect to every element of x.
 * The step actually taken is the f32-rounded one, (x+h) - (x-h), so rounding
 * of the perturbed input does not bias the quotient.
 */
export function numericGrad(loss: (x: Float32Array) => number, x: Float32Array, h: number): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float32Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    xp[i] = x0 + h; const up = xp[i], lp = loss(xp);
    xp[i] = x0 - h; const dn = xp[i], lm = loss(xp);
    xp[i] = x0;
    g[i] = (lp - lm) / (up - dn);
  }
  return g;
}
