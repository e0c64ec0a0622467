// Kernels that "overwrite" their outputs must not read them: every output
// buffer starts full of NaN (as recycled heap memory may hold anything), and
// the result must still match the reference. This caught a dgamma that
// accumulated into stale memory, invisible to tests on fresh zeroed buffers.
import { suite } from 'uvu';
import { ReferenceBackend } from '../../src/backend/reference/index.js';
import { loadWasmSync } from '../../src/backend/wasm.js';
import type { Backend } from '../../src/backend/backend.js';
import type { KernelName } from '../../src/backend/kernels.js';
import { close, randn } from '../util.js';

interface Case { kernel: KernelName; inputs: number[]; outputs: number[]; args: (p: number[], scratch: number) => number[] }
const R = 5, C = 19, B = 2, CH = 3, H = 4, W = 6, P = 2;
const cases: Case[] = [
  { kernel: 'gemm', inputs: [R * C, C * 7], outputs: [R * 7], args: ([a, b, c], scratch) => [0, R, 7, C, 1, a, C, 0, b, 7, 0, 0, c, 7, 0, 1, 0, scratch] },
  { kernel: 'softmax_fwd', inputs: [R * C], outputs: [R * C], args: ([x, y]) => [x, y, R, C] },
  { kernel: 'softmax_bwd', inputs: [R * C, R * C], outputs: [R * C], args: ([y, dy, dx]) => [y, dy, dx, R, C] },
  { kernel: 'layernorm_fwd', inputs: [R * C, C, C], outputs: [R * C, R, R], args: ([x, g, b, y, m, r]) => [x, g, b, y, m, r, R, C, 1e-5] },
  { kernel: 'layernorm_bwd', inputs: [R * C, C, R, R, R * C], outputs: [R * C, C, C], args: ([x, g, m, r, dy, dx, dg, db]) => [x, g, m, r, dy, dx, dg, db, R, C] },
  { kernel: 'gelu_fwd', inputs: [R * C], outputs: [R * C], args: ([x, y]) => [x, y, R * C] },
  { kernel: 'gelu_bwd', inputs: [R * C, R * C], outputs: [R * C], args: ([x, dy, dx]) => [x, dy, dx, R * C] },
  { kernel: 'add', inputs: [R * C, C], outputs: [R * C], args: ([a, b, y]) => [a, b, y, R * C, C] },
  { kernel: 'mul', inputs: [R * C, C], outputs: [R * C], args: ([a, b, y]) => [a, b, y, R * C, C] },
  { kernel: 'scale', inputs: [R * C], outputs: [R * C], args: ([x, y]) => [x, y, R * C, 0.3] },
  { kernel: 'copy2d', inputs: [R * C], outputs: [R * 7], args: ([s, d]) => [s, C, d, 7, R, 7] },
  { kernel: 'row_sum', inputs: [R * C], outputs: [R], args: ([x, y]) => [x, y, R, C] },
  { kernel: 'col_sum', inputs: [R * C], outputs: [C], args: ([x, y]) => [x, y, R, C] },
  { kernel: 'patchify', inputs: [B * CH * H * W], outputs: [B * CH * H * W], args: ([x, y]) => [x, y, B, CH, H, W, P] },
  { kernel: 'unpatchify', inputs: [B * CH * H * W], outputs: [B * CH * H * W], args: ([y, x]) => [y, x, B, CH, H, W, P] },
];

function runCase(be: Backend, c: Case, garbage: number): Float32Array[] {
  const ins = c.inputs.map((n, i) => { const p = be.alloc(n); be.write(p, randn(n, 11 + i).map((v) => (c.kernel === 'layernorm_bwd' && (i === 3) ? 1 + Math.abs(v) : v))); return p; });
  const outs = c.outputs.map((n) => { const p = be.alloc(n); be.run('fill', p, n, garbage); return p; });
  // gemm packs into the backend's scratch (0 would be the reserved low memory, which holds the WASM build's constant tables)
  be.run(c.kernel, ...c.args([...ins, ...outs], be.scratch));
  const res = outs.map((p, i) => be.read(p, c.outputs[i]));
  for (const p of [...ins, ...outs]) be.free(p);
  return res;
}

const test = suite('kernels overwrite their outputs');
for (const variant of ['simd', 'relaxed'] as const) {
  test(`${variant}: outputs pre-filled with NaN match the reference`, () => {
    const wasm = loadWasmSync(variant), ref = new ReferenceBackend();
    for (const c of cases) {
      const want = runCase(ref, c, 0), got = runCase(wasm, c, NaN);
      got.forEach((g, i) => close(g, want[i], 1e-4, 1e-4, `${c.kernel} output ${i}:`));
    }
  });
}
test.run();
