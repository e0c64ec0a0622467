// The kernel table (src/backend/kernels.ts) against every backend: each
// kernel's argument names, kinds and count in the AssemblyScript sources
// (assembly/*.ts), the built WASM exports' arity (plain and shared builds),
// the reference functions (src/backend/reference/, after the heap), and the
// WGSL kernels (their shaders may name only table arguments; every kernel has
// a WGSL twin or a stated reason). Also what the table derives: pointer
// positions and named calls.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  KERNELS, KERNEL_ARGS, KERNEL_PTR_ARGS, KERNEL_TABLE, NN, call, kernelArgList, parseKernelArgs, type KernelName,
} from '../../src/backend/kernels.js';
import * as ref from '../../src/backend/reference/index.js';
import { UNSUPPORTED, WGSL_KERNELS } from '../../src/backend/webgpu/kernels/index.js';
import { WGSL_RENAME } from '../../src/backend/webgpu/shader.js';
import { relaxedSimdSupported } from '../../src/backend/wasm.js';

const test = suite('kernel table: one argument list per kernel, checked against every backend');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KIND: Record<string, string> = { usize: 'p', i32: 'i', f32: 'f' };

/** `name:kind ...` of a kernel, for messages. */
const sig = (k: KernelName): string => KERNEL_TABLE[k];

test('the table parses; names are unique per kernel; pointer positions derive from it', () => {
  for (const k of KERNELS) {
    const args = KERNEL_ARGS[k];
    assert.ok(args.length > 0, k);
    assert.is(new Set(args.map((a) => a.name)).size, args.length, `${k}: duplicate argument name in '${sig(k)}'`);
    assert.equal([...KERNEL_PTR_ARGS[k]], args.flatMap((a, i) => (a.kind === 'p' ? [i] : [])), k);
  }
  assert.equal([...KERNEL_PTR_ARGS.gemm], [5, 8, 12, 16, 17], 'gemm pointers where planning has always found them');
  assert.throws(() => parseKernelArgs('x:p n:q'), /bad argument 'n:q'/);
});

test('AssemblyScript exports: the same names, kinds and order as the table', () => {
  const src = new Map<string, Array<{ name: string; kind: string }>>();
  for (const f of readdirSync(join(ROOT, 'assembly'))) {
    if (!f.endsWith('.ts')) continue;
    const text = readFileSync(join(ROOT, 'assembly', f), 'utf8');
    for (const m of text.matchAll(/^export function (\w+)\(([^)]*)\)/gm)) {
      const params = m[2].split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
        const [name, type] = p.split(':').map((s) => s.trim());
        return { name, kind: KIND[type] ?? `?${type}` };
      });
      src.set(m[1], params);
    }
  }
  for (const k of KERNELS) {
    const got = src.get(k);
    assert.ok(got, `assembly/: no export function ${k}`);
    assert.equal(got!.map((a) => `${a.name}:${a.kind}`).join(' '), sig(k), `assembly ${k}`);
  }
});

test('built WASM modules: every kernel exported with the table\'s arity', () => {
  let checked = 0;
  const relaxed = relaxedSimdSupported();   // (sets Node 20's V8 flag)
  for (const f of ['cait.simd.wasm', 'cait.relaxed.wasm', 'cait.simd.shared.wasm', 'cait.relaxed.shared.wasm']) {
    const path = join(ROOT, 'build', f);
    if (!existsSync(path) || (f.includes('relaxed') && !relaxed)) continue;
    const mod = new WebAssembly.Module(readFileSync(path));
    const shared = f.includes('shared');
    const memory = new WebAssembly.Memory(shared ? { initial: 256, maximum: 256, shared: true } as WebAssembly.MemoryDescriptor : { initial: 256 });
    const exp = new WebAssembly.Instance(mod, { env: { memory, abort: () => { throw new Error('abort'); } } }).exports as Record<string, unknown>;
    for (const k of KERNELS) {
      assert.type(exp[k], 'function', `${f}: ${k} missing`);
      assert.is((exp[k] as (...a: number[]) => number).length, KERNEL_ARGS[k].length, `${f}: ${k} arity (${sig(k)})`);
    }
    checked++;
  }
  assert.ok(checked >= 1, 'no build/*.wasm: run `npm run build:wasm`');
});

test('reference kernels: the same names and order after the heap', async () => {
  const dir = join(ROOT, 'src/backend/reference'), fns: Record<string, unknown> = {};
  for (const f of readdirSync(dir)) if (f.endsWith('.ts')) Object.assign(fns, await import(pathToFileURL(join(dir, f)).href));
  for (const k of KERNELS) {
    const f = fns[k] as ((...a: unknown[]) => unknown) | undefined;
    assert.type(f, 'function', `reference: ${k} missing`);
    assert.is(f!.length, KERNEL_ARGS[k].length + 1, `reference ${k}: (heap, ${sig(k)})`);
    const params = /^[^(]*\(([^)]*)\)/.exec(f!.toString())![1].split(',').map((p) => p.trim().replace(/^_/, '').split(/[\s:=]/)[0]);
    assert.equal(params.slice(1), KERNEL_ARGS[k].map((a) => a.name), `reference ${k} parameter names`);
  }
  // and the backend assembled from them runs every kernel by name
  const be = new ref.ReferenceBackend();
  assert.ok(be.name === 'reference');
});

test('WGSL kernels: each is in the table (or says why not) and names only table arguments', () => {
  for (const k of Object.keys(WGSL_KERNELS)) assert.ok(k in KERNEL_TABLE, `webgpu kernel '${k}' is not in the kernel table`);
  for (const k of KERNELS) {
    const spec = WGSL_KERNELS[k];
    if (!spec) { assert.ok(UNSUPPORTED[k], `webgpu: ${k} has neither a WGSL kernel nor a reason in UNSUPPORTED`); continue; }
    const names = new Set(KERNEL_ARGS[k].map((a) => WGSL_RENAME[a.name] ?? a.name));
    for (const m of spec.wgsl.matchAll(/\bU\.(\w+)/g)) assert.ok(names.has(m[1]), `webgpu ${k}: shader reads U.${m[1]}, not an argument of '${sig(k)}'`);
    for (const st of spec.stages)
      for (const m of st.groups.toString().matchAll(/\bv\.(\w+)/g))
        assert.ok(KERNEL_ARGS[k].some((a) => a.name === m[1]), `webgpu ${k}: stage ${st.entry} sizes its launch by v.${m[1]}, not an argument of '${sig(k)}'`);
  }
});

test('named calls: arguments placed by the table, a missing one named', () => {
  assert.equal(kernelArgList('softmax_fwd', { rows: 3, cols: 4, y: 64, x: 128 }), [128, 64, 3, 4]);
  assert.throws(() => kernelArgList('fill', { y: 64, n: 3 } as never), /fill: argument 'v' missing/);
  const be = new ref.ReferenceBackend();
  const a = be.alloc(6), b = be.alloc(6), c = be.alloc(4);
  be.write(a, Float32Array.of(1, 2, 3, 4, 5, 6));   // 2 x 3
  be.write(b, Float32Array.of(1, 0, 0, 1, 1, 1));   // 3 x 2
  call(be, 'gemm', { layout: NN, M: 2, N: 2, K: 3, alpha: 1, a, lda: 3, sa: 0, b, ldb: 2, sb: 0, beta: 0, c, ldc: 2, sc: 0, batch: 1, bias: 0, scratch: be.scratch });
  assert.equal([...be.read(c, 4)], [4, 5, 10, 11]);
});

test.run();
