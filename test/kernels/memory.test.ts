// Memory after a model is disposed (issue #16, "Resources"): WebAssembly
// memory cannot shrink, so what a disposed model held must be reused. A
// DeiT-Tiny (random weights, saved once) loaded from its file, run once and
// disposed five times: the WASM memory does not grow after the first round
// and the allocator is back where it started. Also the allocator itself: a
// freed tail returns to the bump pointer, freed neighbours coalesce; and the
// WASM builds' constant tables (assembly/math.ts), which live in the heap's
// reserved low memory, stay as built through forwards, one thread and a pool.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWasmSync, type WasmBackend } from '../../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../../src/backend/threads.js';
import { HeapAllocator, HEAP_BASE } from '../../src/backend/memory.js';
import { Tensor, scope, setBackend, getBackend } from '../../src/tensor.js';
import { noGrad } from '../../src/autograd.js';
import { createModel, loadModel, saveModel } from '../../src/nn/model.js';
import { getPreset } from '../../src/nn/presets.js';

const test = suite('memory: disposed models give their heap back for reuse');
/** Where the builds' static data starts (asconfig.json's memoryBase). */
const MEMORY_BASE: number = JSON.parse(readFileSync(new URL('../../asconfig.json', import.meta.url), 'utf8')).options.memoryBase;

test('HeapAllocator: a freed tail returns to the top; freed neighbours coalesce and are reused first-fit', () => {
  let cap = 1 << 16;
  const h = new HeapAllocator(cap, (need) => (cap = Math.max(need, cap * 2)));
  const a = h.alloc(1000), b = h.alloc(1000), c = h.alloc(1000);
  h.free(c);
  assert.is(h.alloc(1000), c, 'the freed tail is the next allocation');
  h.free(a); h.free(b);
  assert.is(h.alloc(2000), a, 'a and b coalesced into one block');
  assert.is(h.liveCount, 2);
});

test('DeiT-Tiny loaded, run and disposed 5 times: WASM memory does not grow after the first', () => {
  const saved = getBackend();
  const dir = mkdtempSync(join(tmpdir(), 'cait-mem-'));
  try {
    const file = join(dir, 'deit-tiny.safetensors');
    const be = loadWasmSync('auto');
    setBackend(be);
    const cfg = getPreset('deit_tiny_patch16_224');
    const m0 = createModel(cfg, 3);
    saveModel(file, m0);
    m0.dispose();
    const base = be.stats().bytesInUse;
    const x = new Float32Array(3 * 224 * 224).fill(0.1);
    const sizes: number[] = [];
    for (let round = 0; round < 5; round++) {
      const { model } = loadModel(file);
      noGrad(() => scope(() => { model.forward(Tensor.from(x, [1, 3, 224, 224])).toArray(); }));
      model.dispose();
      assert.is(be.stats().bytesInUse, base, `round ${round + 1}: every block freed`);
      sizes.push(be.memory.buffer.byteLength);
    }
    assert.ok(sizes.every((s) => s === sizes[0]), `memory per round (bytes): ${sizes.join(', ')}`);
  } finally {
    setBackend(saved);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('constant tables: below HEAP_BASE in every build, unchanged by forwards (one thread; a pool of 2 over shared memory)', async () => {
  const saved = getBackend();
  const low = (be: WasmBackend) => new Uint8Array(be.memory.buffer, 0, HEAP_BASE).slice();
  const cfg = { ...getPreset('deit_tiny_patch16_224'), depth: 2 };
  const x = new Float32Array(2 * 3 * 224 * 224).map((_, i) => Math.sin(i));
  const run = (be: WasmBackend) => {
    setBackend(be);
    const m = createModel(cfg, 5);
    const y = noGrad(() => scope(() => m.forward(Tensor.from(x, [2, 3, 224, 224])).toArray()));
    m.dispose();
    return y;
  };
  try {
    for (const variant of ['simd', 'relaxed'] as const) {
      const be = loadWasmSync(variant);
      const end = be.exports.static_data_end();
      assert.ok(end > MEMORY_BASE && end <= HEAP_BASE, `${variant}: static data ends at ${end}, expected in (${MEMORY_BASE}, ${HEAP_BASE}]`);
      const before = low(be);
      assert.ok(before.subarray(MEMORY_BASE, end).some((b) => b !== 0), `${variant}: the tables are written at instantiation`);
      const want = run(be);
      assert.equal(low(be), before, `${variant}: low memory changed by a forward`);
      const pool = loadThreadedWasmSync({ threads: 2, variant, minWork: 0 });
      try {
        const got = run(pool);
        assert.equal(low(pool), before, `${variant} pool: low memory differs from the single-thread build's`);
        assert.ok(got.every((v, i) => v === want[i]), `${variant} pool: logits differ from one thread's`);
      } finally { await pool.close(); }
    }
  } finally {
    setBackend(saved);
  }
});

test.run();
