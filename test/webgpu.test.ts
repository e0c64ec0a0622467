// The WebGPU backend (src/backend/webgpu/) on whatever adapter Node can get:
// a real GPU, else a software one (SwiftShader Vulkan or Mesa llvmpipe through
// OpenGL ES; scripts/setup-webgpu.sh installs them, src/backend/webgpu/node.ts
// picks one). Every kernel against the reference spec, then whole-model parity
// with the WASM backend: logits within 1e-4 on the micro-vit fixture, a dense
// DeiT-Tiny with random weights (batch 1), a merged (ATME) model and a compact
// (CDCP-extracted) one, merged too. When no adapter can be created every test
// here is skipped and the reasons are printed; nothing else skips.
//
// Software adapters are slow: models are small except the one DeiT-Tiny run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import type { KernelName } from '../src/backend/kernels.js';
import { GELU, NN, NP, NT, TN, packedSize } from '../src/backend/kernels.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { createNodeWebGpu, NoWebGpuError, NO_WEBGPU_HELP, ROUTES, type NodeWebGpu } from '../src/backend/webgpu/node.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { Tensor, scope, setBackend, getBackend, liveTensorCount, readTensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { load } from '../src/api/node.js';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { loadModel, createModel } from '../src/nn/model.js';
import { VisionTransformer } from '../src/nn/vit.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import type { Init } from '../src/nn/module.js';
import { CaitModel } from '../src/cait/wrap.js';
import { channelMask, topk, type BlockMasks } from '../src/cait/cdcp.js';
import { extractCompact } from '../src/cait/extract.js';
import { randn, close, diff } from './util.js';

const FIX = fileURLToPath(new URL('../../shared/fixtures/micro-vit/', import.meta.url));
const test = suite('webgpu');

let gpu: NodeWebGpu | null = null;
let why = '';
const t0 = performance.now();
try { gpu = await createNodeWebGpu(); } catch (e) { why = (e as Error).message; }
const be = gpu?.backend as WebGpuBackend;
if (gpu) console.log(`  webgpu: ${gpu.adapter} (adapter and device in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
else console.log(`  webgpu tests SKIPPED: ${why}`);

const ref = new ReferenceBackend();
const wasm = loadWasmSync('auto');
/** A test that needs the adapter: skipped, with the reason above, when there is none. */
const gtest = (name: string, fn: () => Promise<void> | void) => (gpu ? test(name, fn) : test.skip(name, fn));

let seed = 7;
const rnd = (n: number, scale = 1, offset = 0) => { const a = randn(n, seed++, scale); if (offset) for (let i = 0; i < n; i++) a[i] += offset; return a; };
const nan = (n: number) => new Float32Array(n).fill(NaN);
const i32 = (a: ArrayLike<number>) => new Float32Array(Int32Array.from(a).buffer);

// ------------------------------------------------------------ kernels

const GUARD = 4, SENTINEL = -12345.5;

/** exec of test/kernels/harness.ts, read back asynchronously: buffers at +4 bytes, fenced by sentinels. */
async function execGpu(b: WebGpuBackend, kernel: KernelName, bufs: Float32Array[], args: (p: number[]) => number[]): Promise<Float32Array[]> {
  return execGpuWith(b, bufs, (p) => b.run(kernel, ...args(p)), kernel);
}

/** execGpu with any call on the buffers' pointers (an extra such as logf). */
async function execGpuWith(b: WebGpuBackend, bufs: Float32Array[], call: (p: number[]) => void, kernel = 'call'): Promise<Float32Array[]> {
  const bases = bufs.map((d) => b.alloc(d.length + 1 + GUARD)), ptrs = bases.map((x) => x + 4);
  const fence = new Float32Array(GUARD).fill(SENTINEL);
  bufs.forEach((d, i) => { b.write(bases[i], new Float32Array([SENTINEL])); b.write(ptrs[i], d); b.write(ptrs[i] + d.length * 4, fence); });
  call(ptrs);
  const out = await Promise.all(bufs.map((d, i) => b.readAsync(ptrs[i], d.length)));
  const fences = await Promise.all(bufs.map((d, i) => b.readAsync(bases[i], d.length + 1 + GUARD)));
  fences.forEach((f, i) => {
    const n = bufs[i].length;
    assert.ok(f[0] === SENTINEL && f.subarray(n + 1).every((v) => v === SENTINEL), `webgpu ${kernel}: wrote outside buffer ${i} (length ${n})`);
  });
  bases.forEach((x) => b.free(x));
  return out;
}

function execRef(kernel: KernelName, bufs: Float32Array[], args: (p: number[]) => number[]): Float32Array[] {
  const ptrs = bufs.map((d) => { const p = ref.alloc(d.length); ref.write(p, d); return p; });
  ref.run(kernel, ...args(ptrs));
  const out = bufs.map((d, i) => ref.read(ptrs[i], d.length));
  ptrs.forEach((p) => ref.free(p));
  return out;
}

/** Run on the reference and the GPU, compare buffers `check` ([index, atol, rtol]). */
async function against(kernel: KernelName, what: string, bufs: Float32Array[], args: (p: number[]) => number[], check: Array<[number, number, number]>): Promise<void> {
  const want = execRef(kernel, bufs, args), got = await execGpu(be, kernel, bufs, args);
  for (const [i, atol, rtol] of check) {
    // infinities (ATME's "no next candidate") must match exactly; compare the rest numerically
    const inf = (a: Float32Array) => a.map((v) => (v === -Infinity ? -1e30 : v === Infinity ? 1e30 : v));
    close(inf(got[i]), inf(want[i]), atol, rtol, `${kernel} ${what} buffer ${i}:`);
  }
}

// runs with or without an adapter: a route that cannot work fails at once, with what to install or do
test('no adapter: the error lists each route\'s reason, then what to install or do', async () => {
  const saved = process.env.CAIT_WEBGPU_ICD;
  process.env.CAIT_WEBGPU_ICD = '/nonexistent/vk_swiftshader_icd.json';
  let err: unknown = null;
  try { (await createNodeWebGpu({ route: 'swiftshader' })).backend.destroy(); } catch (e) { err = e; } finally {
    if (saved === undefined) delete process.env.CAIT_WEBGPU_ICD; else process.env.CAIT_WEBGPU_ICD = saved;
  }
  assert.instance(err, NoWebGpuError);
  const msg = (err as Error).message;
  assert.match(msg, /^no WebGPU adapter could be created:\n  (swiftshader: ICD file \/nonexistent\/vk_swiftshader_icd\.json does not exist|the optional npm package 'webgpu')/);
  assert.ok(msg.endsWith(`\n${NO_WEBGPU_HELP}`), msg);
  assert.match(NO_WEBGPU_HELP, /npm install webgpu.*libegl-mesa0.*libvulkan1.*WASM backend/);
});

gtest('every WGSL kernel compiles', async () => {
  const errors = await be.checkShaders();
  assert.equal(errors, [], errors.join('\n'));
});

gtest('pack_b and gemm NP (| GELU): odd shapes, both sources', async () => {
  for (const [src, M, N, K] of [[NT, 5, 13, 7], [NN, 33, 9, 40], [NT, 17, 70, 33]] as const) {
    const ldb = (src === NT ? K : N) + 2, P = packedSize(K, N);
    const A = rnd(M * K), B = rnd(ldb * (src === NT ? N : K)), bias = rnd(N), D = nan(P), C = nan(M * N);
    const wantP = execRef('pack_b', [B, D], (p) => [src, K, N, p[0], ldb, p[1]]);
    const gotP = await execGpu(be, 'pack_b', [B, D], (p) => [src, K, N, p[0], ldb, p[1]]);
    close(gotP[1], wantP[1], 0, 0, `pack_b ${M}x${N}x${K}:`);
    for (const act of [0, GELU]) {
      const want = execRef('gemm', [A, B, C, bias], (p) => [src | act, M, N, K, 1, p[0], K, 0, p[1], ldb, 0, 0, p[2], N, 0, 1, p[3], 0]);
      const got = await execGpu(be, 'gemm', [A, wantP[1], C, bias], (p) => [NP | act, M, N, K, 1, p[0], K, 0, p[1], 0, 0, 0, p[2], N, 0, 1, p[3], 0]);
      close(got[2], want[2], 1e-5, 1e-5, `gemm NP${act ? '|GELU' : ''} ${M}x${N}x${K}:`);
    }
  }
});

gtest('gemm: NN, NT, TN, batched and strided, alpha, beta, bias, edges', async () => {
  const cases: Array<[number, number, number, number, number]> = [
    // layout, M, N, K, batch
    [NN, 1, 1, 1, 1], [NT, 3, 5, 7, 1], [TN, 33, 31, 17, 1], [NN, 65, 70, 40, 2], [NT, 64, 64, 64, 3], [TN, 40, 33, 100, 2],
  ];
  for (const [layout, M, N, K, batch] of cases) {
    for (const [alpha, beta, withBias] of [[1, 0, false], [0.5, 1, true], [-2, 0, true]] as const) {
      // A and B stored with padded leading dimensions and batch strides
      const lda = (layout === TN ? M : K) + 3, ldb = (layout === NT ? K : N) + 2, ldc = N + 1;
      const sa = lda * (layout === TN ? K : M) + 5, sb = ldb * (layout === NT ? N : K) + 1, sc = ldc * M + 3;
      const A = rnd(sa * batch), B = rnd(sb * batch), C = beta ? rnd(sc * batch) : nan(sc * batch), bias = rnd(N);
      const want = execRef('gemm', [A, B, C, bias], (p) => [layout, M, N, K, alpha, p[0], lda, sa, p[1], ldb, sb, beta, p[2], ldc, sc, batch, withBias ? p[3] : 0, 0]);
      const got = await execGpu(be, 'gemm', [A, B, C, bias], (p) => [layout, M, N, K, alpha, p[0], lda, sa, p[1], ldb, sb, beta, p[2], ldc, sc, batch, withBias ? p[3] : 0, 0]);
      // compare only C's elements (the padding stays as it was: NaN where beta = 0 in both)
      const g: number[] = [], w: number[] = [];
      for (let t = 0; t < batch; t++) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { g.push(got[2][t * sc + i * ldc + j]); w.push(want[2][t * sc + i * ldc + j]); }
      close(g, w, 1e-5, 1e-5, `gemm layout ${layout} ${M}x${N}x${K} batch ${batch} alpha ${alpha} beta ${beta}:`);
    }
  }
});

gtest('softmax, layernorm, gelu (forward and backward), in place where allowed', async () => {
  for (const [R, C] of [[1, 1], [3, 5], [4, 64], [5, 197], [2, 1000]]) {
    const x = rnd(R * C, 3);
    await against('softmax_fwd', `${R}x${C}`, [x, nan(R * C)], (p) => [p[0], p[1], R, C], [[1, 1e-6, 1e-5]]);
    await against('softmax_fwd', `${R}x${C} in place`, [x], (p) => [p[0], p[0], R, C], [[0, 1e-6, 1e-5]]);
    const y = execRef('softmax_fwd', [x, nan(R * C)], (p) => [p[0], p[1], R, C])[1];
    await against('softmax_bwd', `${R}x${C}`, [y, rnd(R * C), nan(R * C)], (p) => [p[0], p[1], p[2], R, C], [[2, 1e-6, 1e-5]]);
    const g = rnd(C, 1, 1), b = rnd(C);
    await against('layernorm_fwd', `${R}x${C}`, [rnd(R * C, 2, 0.5), g, b, nan(R * C), nan(R), nan(R)],
      (p) => [p[0], p[1], p[2], p[3], p[4], p[5], R, C, 1e-6], [[3, 1e-5, 1e-5], [4, 1e-6, 1e-5], [5, 1e-5, 1e-5]]);
    const xx = rnd(R * C, 2), st = execRef('layernorm_fwd', [xx, g, b, nan(R * C), nan(R), nan(R)], (p) => [p[0], p[1], p[2], p[3], p[4], p[5], R, C, 1e-5]);
    await against('layernorm_bwd', `${R}x${C}`, [xx, g, st[4], st[5], rnd(R * C), nan(R * C), nan(C), nan(C)],
      (p) => [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], R, C], [[5, 1e-5, 1e-5], [6, 1e-5, 1e-5], [7, 1e-5, 1e-5]]);
    await against('layernorm_bwd', `${R}x${C} dx = dy`, [xx, g, st[4], st[5], rnd(R * C), nan(C), nan(C)],
      (p) => [p[0], p[1], p[2], p[3], p[4], p[4], p[5], p[6], R, C], [[4, 1e-5, 1e-5], [5, 1e-5, 1e-5], [6, 1e-5, 1e-5]]);
  }
  for (const n of [1, 5, 197, 4096]) {
    const x = rnd(n, 6);
    await against('gelu_fwd', `n=${n}`, [x, nan(n)], (p) => [p[0], p[1], n], [[1, 1e-6, 1e-6]]);
    await against('gelu_bwd', `n=${n}`, [x, rnd(n), nan(n)], (p) => [p[0], p[1], p[2], n], [[2, 1e-6, 1e-6]]);
  }
});

gtest('elementwise, reductions, patches, adamw', async () => {
  for (const [n, m] of [[1, 1], [12, 4], [197 * 8, 8], [1000, 1000]]) {
    await against('add', `${n}/${m}`, [rnd(n), rnd(m), nan(n)], (p) => [p[0], p[1], p[2], n, m], [[2, 0, 0]]);
    await against('mul', `${n}/${m}`, [rnd(n), rnd(m), nan(n)], (p) => [p[0], p[1], p[2], n, m], [[2, 0, 0]]);
    await against('add', `${n}/${m} in place`, [rnd(n), rnd(m)], (p) => [p[0], p[1], p[0], n, m], [[0, 0, 0]]);
    await against('scale', `${n}`, [rnd(n), nan(n)], (p) => [p[0], p[1], n, 0.37], [[1, 0, 0]]);
    await against('axpy', `${n}`, [rnd(n), rnd(n)], (p) => [p[0], p[1], n, -1.25], [[1, 0, 2e-7]]);   // two roundings (one in the reference)
    await against('fill', `${n}`, [nan(n)], (p) => [p[0], n, 2.5], [[0, 0, 0]]);
  }
  await against('copy2d', 'strided', [rnd(7 * 9), new Float32Array(7 * 11).fill(-7)], (p) => [p[0], 9, p[1], 11, 7, 6], [[1, 0, 0]]);
  await against('copy2d', 'broadcast row', [rnd(6), new Float32Array(5 * 8).fill(-7)], (p) => [p[0], 0, p[1], 8, 5, 6], [[1, 0, 0]]);
  for (const [R, C] of [[1, 1], [3, 70], [197, 192]]) {
    await against('row_sum', `${R}x${C}`, [rnd(R * C), nan(R)], (p) => [p[0], p[1], R, C], [[1, 1e-5, 1e-6]]);
    await against('col_sum', `${R}x${C}`, [rnd(R * C), nan(C)], (p) => [p[0], p[1], R, C], [[1, 1e-5, 1e-6]]);
  }
  for (const [B, C, S, P] of [[1, 1, 4, 2], [2, 3, 32, 8], [1, 3, 10, 4]]) {
    const gh = Math.floor(S / P), K = C * P * P;
    await against('patchify', `${B}x${C}x${S} P${P}`, [rnd(B * C * S * S), nan(B * gh * gh * K)], (p) => [p[0], p[1], B, C, S, S, P], [[1, 0, 0]]);
    await against('unpatchify', `${B}x${C}x${S} P${P}`, [rnd(B * gh * gh * K), nan(B * C * S * S)], (p) => [p[0], p[1], B, C, S, S, P], [[1, 0, 0]]);
  }
  const n = 300;
  await against('adamw', `n=${n}`, [rnd(n), rnd(n), rnd(n, 0.1), rnd(n, 0.01, 0.02)], (p) => [p[0], p[1], p[2], p[3], n, 1e-3, 0.9, 0.999, 1e-8, 0.05, 0.1, 0.002],
    [[0, 1e-6, 1e-6], [2, 1e-7, 1e-6], [3, 1e-7, 1e-6]]);
});

gtest('copy2d over many workgroups, and the extra log kernel (logf) against the reference, tail sizes', async () => {
  // 70 x 131 = 9170 elements: 144 workgroups, the last one partial
  await against('copy2d', '70x131 strided', [rnd(70 * 133), new Float32Array(70 * 140).fill(-7)], (p) => [p[0], 133, p[1], 140, 70, 131], [[1, 0, 0]]);
  for (const n of [1, 5, 197, 4099]) {
    // merged-token sizes (1, 2, 3, ...) and a wide range of positive values
    const x = Float32Array.from(rnd(n), (v, i) => (i % 2 ? 1 + (i % 7) : Math.exp(4 * v)));
    const px = ref.alloc(n), py = ref.alloc(n);
    ref.write(px, x); ref.logf(px, py, n);
    const want = ref.read(py, n);
    ref.free(px); ref.free(py);
    const [, got] = await execGpuWith(be, [x, nan(n)], (p) => be.logf(p[0], p[1], n));
    close(got, want, 1e-6, 1e-6, `logf n=${n}:`);
  }
});

gtest('channel gather/scatter (repeated indices add up)', async () => {
  for (const [R, ld, cols, k] of [[1, 1, 1, 1], [7, 9, 6, 5], [33, 37, 35, 19]]) {
    const x = rnd(R * ld), idxR = Int32Array.from({ length: k }, (_, i) => (i * 5 + 3) % R), idxC = Int32Array.from({ length: k }, (_, i) => (i * 7 + 1) % cols);
    await against('gather_rows', `${R}x${ld}`, [x, i32(idxR), nan(k * cols)], (p) => [p[0], ld, p[1], k, cols, p[2]], [[2, 0, 0]]);
    await against('scatter_rows', `${R}x${ld}`, [rnd(k * cols), i32(idxR), x], (p) => [p[0], p[1], k, cols, p[2], ld], [[2, 1e-7, 1e-6]]);
    await against('gather_cols', `${R}x${ld}`, [x, i32(idxC), nan(R * k)], (p) => [p[0], ld, R, p[1], k, p[2]], [[2, 0, 0]]);
    await against('scatter_cols', `${R}x${ld}`, [rnd(R * k), i32(idxC), x], (p) => [p[0], R, p[1], k, p[2], ld], [[2, 1e-7, 1e-6]]);
  }
});

gtest('ATME kernels: similarity, plan, merge and unmerge, forward and backward', async () => {
  for (const [gh, gw, heads, dim, prefix] of [[4, 4, 3, 5, 1], [5, 3, 2, 9, 2], [14, 14, 3, 64, 1], [7, 6, 1, 12, 1]]) {
    const B = 2, T = gh * gw, N = prefix + T;
    for (const axis of [0, 1]) {
      const ld = heads * dim * 3 + 1, S = axis === 0 ? gh * (gw >> 1) : (gh >> 1) * gw;
      const x = rnd(B * N * ld);
      await against('atme_similarity', `${gh}x${gw} axis ${axis}`, [x, nan(B * S * 2)],
        (p) => [p[0] + 4 * heads * dim, ld, heads, dim, B, prefix, gh, gw, axis, p[1]], [[1, 2e-6, 0]]);
      const sim = execRef('atme_similarity', [x, nan(B * S * 2)], (p) => [p[0] + 4 * heads * dim, ld, heads, dim, B, prefix, gh, gw, axis, p[1]])[1];
      await against('atme_plan', `${gh}x${gw} axis ${axis}`, [sim, i32(new Int32Array(B * T).fill(-1))], (p) => [p[0], B, gh, gw, axis, p[1]], [[1, 0, 0]]);
      await against('atme_plan', `${gh}x${gw} axis ${axis} fixed`, [i32(new Int32Array(B * T).fill(-1))], (p) => [0, B, gh, gw, axis, p[0]], [[0, 0, 0]]);
      const map = execRef('atme_plan', [sim, i32(new Int32Array(B * T))], (p) => [p[0], B, gh, gw, axis, p[1]])[1];
      const T2 = axis === 0 ? gh * ((gw + 1) >> 1) : ((gh + 1) >> 1) * gw, N2 = prefix + T2, C = 20;
      const sizes = Float32Array.from(rnd(B * N), (v) => 1 + Math.floor(Math.abs(v) * 4));
      await against('atme_merge_fwd', `${gh}x${gw} axis ${axis}`, [rnd(B * N * C), sizes, map, nan(B * N2 * C), nan(B * N2)],
        (p) => [p[0], p[1], p[2], B, prefix, T, T2, C, p[3], p[4]], [[3, 1e-6, 1e-6], [4, 0, 0]]);
      const ys = execRef('atme_merge_fwd', [rnd(B * N * C), sizes, map, nan(B * N2 * C), nan(B * N2)], (p) => [p[0], p[1], p[2], B, prefix, T, T2, C, p[3], p[4]])[4];
      await against('atme_merge_bwd', `${gh}x${gw} axis ${axis}`, [rnd(B * N2 * C), sizes, ys, map, nan(B * N * C)],
        (p) => [p[0], p[1], p[2], p[3], B, prefix, T, T2, C, p[4]], [[4, 1e-6, 1e-6]]);
      await against('atme_unmerge_fwd', `${gh}x${gw} axis ${axis}`, [rnd(B * N2 * C), map, nan(B * N * C)],
        (p) => [p[0], p[1], B, prefix, T, T2, C, p[2]], [[2, 0, 0]]);
      await against('atme_unmerge_bwd', `${gh}x${gw} axis ${axis}`, [rnd(B * N * C), map, nan(B * N2 * C)],
        (p) => [p[0], p[1], B, prefix, T, T2, C, p[2]], [[2, 1e-6, 1e-6]]);
    }
  }
});

gtest('heap: growth keeps contents, reads are snapshots, sync reads refuse, sum_sq is unsupported', async () => {
  const a = be.alloc(1000), data = rnd(1000);
  be.write(a, data);
  const before = be.heapBytes.capacity;
  const big = be.alloc((before / 4) * 1.5);   // forces a grow
  assert.ok(be.heapBytes.capacity > before, 'heap grew');
  be.run('scale', a, a, 1000, 2);
  const snap = be.readAsync(a, 1000);
  be.run('fill', a, 1000, 0);                 // after the read was taken
  close(await snap, data.map((v) => 2 * v), 0, 0, 'after growth:');
  be.free(big); be.free(a);
  assert.throws(() => be.read(a, 1), /asynchronously|synchronously/);
  assert.throws(() => be.run('sum_sq', a, 1), /not supported/);
  await be.sync();
});

// ------------------------------------------------------------ models

const ZERO_INIT: Init = { truncNormal: () => 0, uniform: () => 0 };

/** The same model on the GPU: parameters copied from `src` (on another backend). */
function toGpu(src: VisionTransformer): VisionTransformer {
  setBackend(be);
  const m = new VisionTransformer(structuredClone(src.cfg), ZERO_INIT);
  const from = new Map(src.namedParameters());
  for (const [n, p] of m.namedParameters()) p.write(from.get(n)!.toArray());
  return m;
}

type Runner = { forward(x: Tensor): Tensor };

/** Logits of one no-grad forward on the WASM model and on the GPU model, same input. */
async function logitsBoth(cpu: Runner, gpuM: Runner, input: Float32Array, shape: number[]): Promise<{ want: Float32Array; got: Float32Array }> {
  setBackend(wasm);
  const want = noGrad(() => scope(() => cpu.forward(Tensor.from(input, shape, wasm)).toArray()));
  setBackend(be);
  const before = liveTensorCount(), { writes, reads } = be.counters;
  const y = noGrad(() => scope(() => gpuM.forward(Tensor.from(input, shape, be))));
  const got = await readTensor(y);
  y.dispose();
  assert.is(liveTensorCount(), before, 'GPU forward leaked tensors');
  // weights stay uploaded, activations stay on the GPU: the input goes up, the logits come back, nothing else
  assert.is(be.counters.writes - writes, 1, 'host-to-GPU copies in one forward');
  assert.is(be.counters.reads - reads, 1, 'GPU-to-host copies in one forward');
  return { want, got };
}

function check(what: string, got: Float32Array, want: Float32Array, tol = 1e-4): void {
  const d = diff(got, want);
  console.log(`  webgpu ${what}: max |logit diff| ${d.maxAbs.toExponential(2)} (max |logit| ${d.maxRef.toExponential(2)})`);
  assert.ok(d.maxAbs <= tol, `${what}: max |diff| ${d.maxAbs} > ${tol} at [${d.at}]: got ${d.got}, want ${d.want}`);
}

gtest('parity: micro-vit fixture logits match WASM (and the PyTorch oracle) within 1e-4', async () => {
  setBackend(wasm);
  const { model: cpu } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });
  setBackend(be);
  const { model: g } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });   // weights uploaded straight from the file
  const pv = readSafetensorsFile(FIX + 'input.safetensors').tensors.get('pixel_values')!;
  const { want, got } = await logitsBoth(cpu, g, pv.data, pv.shape);
  check('micro-vit vs wasm', got, want);
  close(got, readSafetensorsFile(FIX + 'expected.safetensors').tensors.get('logits')!.data, 1e-4, 0, 'micro-vit vs PyTorch:');
  cpu.dispose(); g.dispose();
});

gtest('parity: dense DeiT-Tiny (random weights, batch 1) logits match WASM within 1e-4', async () => {
  setBackend(wasm);
  const cfg = getPreset('deit_tiny_patch16_224');
  const cpu = createModel(cfg, 3);
  const g = toGpu(cpu);
  const t = performance.now();
  const { want, got } = await logitsBoth(cpu, g, rnd(3 * 224 * 224), [1, 3, 224, 224]);
  console.log(`  webgpu deit-tiny: both forwards in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  check('deit-tiny dense', got, want);
  cpu.dispose(); g.dispose();
});

/** A small ViT for the merged and compact runs: 8x8 patch grid, 4 blocks. */
const SMALL: VitConfig = { ...getPreset('micro'), name: 'small', imgSize: 32, patchSize: 4, embedDim: 48, depth: 4, numHeads: 3 };

gtest('parity: merged model (ATME h@0,v@1,h@2; keys, features and fixed pairing) matches WASM within 1e-4', async () => {
  setBackend(wasm);
  const cpu = createModel(SMALL, 11);
  const g = toGpu(cpu);
  const x = rnd(2 * 3 * 32 * 32);
  for (const similarity of ['keys', 'features', 'fixed'] as const) {
    for (const propAttn of [true, false]) {
      const o = { merge: 'h@0,v@1,h@2', similarity, propAttn };
      const { want, got } = await logitsBoth(new CaitModel(cpu, o), new CaitModel(g, o), x, [2, 3, 32, 32]);
      check(`merged ${o.merge} ${similarity}${propAttn ? ' +prop-attn' : ''}`, got, want);
    }
  }
  cpu.dispose(); g.dispose();
});

gtest('parity: compact (CDCP-extracted) model, dense and merged, matches WASM within 1e-4', async () => {
  setBackend(wasm);
  const dense = createModel(SMALL, 12);
  const D = SMALL.embedDim / SMALL.numHeads, M = dense.blocks[0].mlp.fc1.outFeatures;
  const masks: BlockMasks[] = dense.blocks.map((_, i) => ({
    qk: channelMask(D, topk(rnd(D), 9 + (i % 3))),
    v: channelMask(D, topk(rnd(D), 11 - (i % 2))),
    mlp: channelMask(M, topk(rnd(M), 100 + 7 * i)),
  }));
  const cpu = noGrad(() => extractCompact(dense, masks, ''));
  assert.ok(cpu.cfg.widths && cpu.cfg.widths[0].qk !== cpu.cfg.widths[0].v, 'compact widths differ per head dim');
  const g = toGpu(cpu);
  const x = rnd(2 * 3 * 32 * 32);
  let r = await logitsBoth(cpu, g, x, [2, 3, 32, 32]);
  check('compact', r.got, r.want);
  const o = { merge: 'v@1,h@2' };
  r = await logitsBoth(new CaitModel(cpu, o), new CaitModel(g, o), x, [2, 3, 32, 32]);
  check('compact merged v@1,h@2', r.got, r.want);
  dense.dispose(); cpu.dispose(); g.dispose();
});

gtest('the other software routes: micro-vit parity on each further adapter that can be created', async () => {
  const pv = readSafetensorsFile(FIX + 'input.safetensors').tensors.get('pixel_values')!;
  setBackend(wasm);
  const { model: cpu } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });
  const want = noGrad(() => scope(() => cpu.forward(Tensor.from(pv.data, pv.shape, wasm)).toArray()));
  cpu.dispose();
  // the software routes besides the one in use (native, if it worked, is the one in use)
  for (const route of ROUTES.filter((r) => r !== gpu!.route && r !== 'native')) {
    let other: NodeWebGpu;
    try { other = await createNodeWebGpu({ route }); } catch (e) { console.log(`  webgpu route ${route}: not available here (${(e as Error).message.split('\n').slice(1).join('; ').trim()})`); continue; }
    setBackend(other.backend);
    const { model } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });
    const y = noGrad(() => scope(() => model.forward(Tensor.from(pv.data, pv.shape, other.backend))));
    const got = await readTensor(y);
    y.dispose(); model.dispose();
    setBackend(wasm);
    other.backend.destroy();
    check(`micro-vit on ${other.adapter}`, got, want);
  }
});

// int8 on WebGPU (no int8 kernels there): an int8 file runs its dequantized
// weights in float; load's quantize: 'int8' needs to read the weights back,
// which WebGPU cannot, so it is refused with a message naming the backend
gtest("int8: an int8 file runs in float with its dequantized weights; quantize: 'int8' on a float file is refused", async () => {
  const models = fileURLToPath(new URL('../models/', import.meta.url));
  const m = await load(models + 'fmnist-cait-int8.safetensors', { backend: be });
  try {
    assert.is(m.info.quant, 'int8-dynamic');
    assert.is(m.info.int8, false, 'no int8 kernels on WebGPU');
    assert.is(m.info.int8Dot, null);
  } finally { m.dispose(); }
  let err = '';
  try { (await load(models + 'fmnist-cait.safetensors', { backend: be, quantize: 'int8' })).dispose(); } catch (e) { err = (e as Error).message; }
  assert.match(err, /fmnist-cait\.safetensors: quantize 'int8' needs int8 kernels \(the WASM or reference backend\), not webgpu: write the int8 file with cait quantize/);
});

// A batch past the heap ceiling fails with the limit named; the forward's
// tensors made before the failing allocation are freed (scope() left them all
// live when its function threw: the model then failed at every batch size)
gtest('a batch past the heap ceiling: a clear error, nothing left allocated, the model still runs', async () => {
  const small = await createNodeWebGpu({ route: gpu!.route, initialBytes: 1 << 20, maxBytes: 4 << 20 });
  try {
    const m = await load(FIX + 'model.safetensors', { backend: small.backend, preset: 'micro' });
    const x = rnd(m.inputSize);
    const want = await m.forward(x, 1);
    const held = small.backend.stats().bytesInUse;
    let err = '';
    try { await m.forward(new Float32Array(256 * m.inputSize), 256); } catch (e) { err = (e as Error).message; }
    assert.match(err, /webgpu heap: \d+ bytes needed, but this device binds at most 4194304 bytes as one storage buffer \(maxStorageBufferBindingSize\); use a smaller batch/);
    assert.is(small.backend.stats().bytesInUse, held, 'bytes still allocated after the failed forward');
    close(await m.forward(x, 1), want, 0, 0, 'batch 1 after the failure:');
    m.dispose();
  } finally { small.backend.destroy(); }
});

// createServer on a WebGPU backend (cait serve --backend webgpu): a plan's
// replay reads its output synchronously, so every request was a 500 ("the host
// cannot read GPU memory synchronously"); now forwards run eagerly and are read
// back asynchronously, one at a time, batched as on WASM
gtest('serve: createServer on WebGPU answers concurrent infer requests with load()\'s logits', async () => {
  const { createServer } = await import('../src/serve/index.js');
  const file = fileURLToPath(new URL('../models/fmnist-cait.safetensors', import.meta.url));
  const item = 32 * 32, inputs = Array.from({ length: 7 }, (_, i) => rnd(item * (1 + (i % 3))));
  const m = await load(file, { backend: be });
  const want = await Promise.all(inputs.map((x) => m.forward(x, x.length / item)));
  m.dispose();
  const s = await createServer({ models: [file], port: 0, backend: be, maxBatch: 4 });
  try {
    assert.is(s.models.get('fmnist-cait')!.path, 'eager');
    const got = await Promise.all(inputs.map(async (x) => {
      const body = JSON.stringify({ inputs: [{ name: 'pixel_values', shape: [x.length / item, 1, 32, 32], datatype: 'FP32', data: Array.from(x) }] });
      const r = await fetch(`${s.url}/v2/models/fmnist-cait/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
      const text = await r.text();
      assert.is(r.status, 200, text);
      return JSON.parse(text).outputs[0].data as number[];
    }));
    got.forEach((g, i) => close(g, want[i], 1e-6, 0, `request ${i}:`));
  } finally { await s.close(); }
  setBackend(wasm);
});

gtest('no leaks: every GPU block freed', async () => {
  await be.sync();
  setBackend(wasm);
  const s = be.stats();
  assert.is(s.liveBlocks, 0, `${s.liveBlocks} blocks still live (${s.bytesInUse} bytes)`);
});

// A disposed model's backend must be collectable: dawn.node keeps a device's
// onuncapturederror handler alive after destroy(), and the handler closed
// over the backend, so each load + dispose kept its pipelines (about 20 MB a
// round on llvmpipe) until the process ended
gtest('dispose: a load(..., { backend: \'webgpu\' }) model\'s backend is collected after dispose()', async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // in a function of its own, so that no suspended frame here holds a model
  const loadRunDispose = async (): Promise<WeakRef<object>> => {
    const m = await load(FIX + 'model.safetensors', { backend: 'webgpu', preset: 'micro' });
    await m.forward(new Float32Array(m.inputSize), 1);
    m.dispose();
    return new WeakRef(m.backend);
  };
  const refs = [await loadRunDispose(), await loadRunDispose()];
  setBackend(wasm);
  // collected across turns, with no deref() until the end (a deref keeps its target alive for the job)
  for (let k = 0; k < 10; k++) { gc(); await new Promise((r) => setTimeout(r, 50)); }
  assert.equal(refs.map((r) => !r.deref()), [true, true], 'backends of disposed models still reachable');
});

// ------------------------------------------------------------ browser

/** A Chromium to drive: $CAIT_CHROMIUM, else the first on PATH. */
function findChromium(): string | null {
  if (process.env.CAIT_CHROMIUM) return process.env.CAIT_CHROMIUM;
  for (const c of ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

const chromium = findChromium();
if (!chromium) console.log('  webgpu browser test SKIPPED: no Chromium (chromium, chromium-browser or google-chrome on PATH, or $CAIT_CHROMIUM; scripts/setup-webgpu.sh installs Debian\'s)');

(chromium ? test : test.skip)('browser: headless Chromium, navigator.gpu, dense and merged logits match WASM within 1e-4', async () => {
  const { build } = await import('esbuild');
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./webgpu.page.ts', import.meta.url))],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent',
  });
  const js = bundle.outputFiles[0].text;
  const BUILD = fileURLToPath(new URL('../build/', import.meta.url));
  const profile = mkdtempSync(join(tmpdir(), 'cait-chromium-'));
  let child: ChildProcess | null = null, stderr = '';
  const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => { srv.close(); reject(new Error(`no result from Chromium in 60 s; its stderr ends:\n${stderr.slice(-2000)}`)); }, 60_000);
    const srv = createServer((req, res) => {
      const url = req.url ?? '/';
      if (req.method === 'POST' && url === '/result') {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => { res.end('ok'); clearTimeout(timer); srv.close(); resolve(JSON.parse(body)); });
        return;
      }
      const wasmFile = /^\/build\/(cait\.(simd|relaxed)\.wasm)$/.exec(url);
      if (url === '/') { res.setHeader('content-type', 'text/html'); res.end('<!doctype html><script type="module" src="/page.js"></script>'); }
      else if (url === '/page.js') { res.setHeader('content-type', 'text/javascript'); res.end(js); }
      else if (wasmFile) { res.setHeader('content-type', 'application/wasm'); res.end(readFileSync(join(BUILD, wasmFile[1]))); }
      else { res.statusCode = 404; res.end(); }
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      const args = ['--headless=new', '--enable-unsafe-webgpu', `--user-data-dir=${profile}`, '--no-first-run', '--disable-extensions', `http://127.0.0.1:${port}/`];
      if (process.getuid?.() === 0) args.unshift('--no-sandbox');   // Chromium refuses to run as root with its sandbox
      const c = spawn(chromium!, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      child = c;
      c.stderr!.on('data', (d) => { stderr += d; });
      c.on('error', (e) => { clearTimeout(timer); srv.close(); reject(e); });
    });
  }).finally(() => {
    const c = child as ChildProcess | null;
    if (c?.pid) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* already gone */ } }
    rmSync(profile, { recursive: true, force: true });
  });
  if (result.noAdapter) { console.log(`  webgpu browser test SKIPPED: Chromium has no WebGPU adapter here: ${result.noAdapter}`); return; }
  assert.ok(!result.error, `page error: ${result.error}`);
  console.log(`  webgpu browser adapter: ${result.adapter}`);
  for (const r of result.rows as Array<{ what: string; maxDiff: number; maxLogit: number }>) {
    console.log(`  webgpu browser ${r.what}: max |logit diff| ${r.maxDiff.toExponential(2)} (max |logit| ${r.maxLogit.toExponential(2)})`);
    assert.ok(r.maxDiff <= 1e-4, `browser ${r.what}: max |diff| ${r.maxDiff}`);
  }
});

test.after(() => {
  if (getBackend() === (be as Backend)) setBackend(wasm);
  gpu?.backend.destroy();
});

test.run();
