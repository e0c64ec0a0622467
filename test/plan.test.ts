// Planned inference (src/plan.ts): the arena placement is sound, a replayed
// forward equals the eager one bit for bit on every input (not only the one it
// was captured with: ATME's partner choices depend on the image), dense,
// merged and compact, on the reference and WASM backends; capture refuses a
// forward that reads the heap; pre-packed weights follow weight updates.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, scope, setBackend, getBackend, liveTensorCount } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { CaitModel } from '../src/cait/wrap.js';
import { uniformWidths } from '../src/cait/structure.js';
import { InferencePlan, CaptureError, placeGreedyBySize } from '../src/plan.js';
import { linear } from '../src/ops/linear.js';
import { AdamW } from '../src/train/optim.js';
import { randn, close } from './util.js';

const P = suite('plan');

// Inference frees each block's activations at the block's end (inferenceScope): an
// eager forward (WebGPU's, and the first call of each batch size) had held every
// block's until the forward ended, 33 MB per image for DeiT-Tiny, past some
// adapters' 128 MiB heap at batch 3. With the tape on they stay (the backward's).
P('an eager forward without the tape frees each block\'s activations at its end (dense and merged); with the tape they stay', () => {
  const prev = getBackend();
  setBackend(loadWasmSync('auto'));
  try {
    const cfg = { ...getPreset('micro'), depth: 6 }, vit = createModel(cfg, 3), x = randn(2 * cfg.inChans * cfg.imgSize ** 2, 4);
    const live: number[] = [];
    for (const b of vit.blocks) { const f = b.forward.bind(b); b.forward = (h: Tensor) => { live.push(liveTensorCount()); return f(h); }; }
    const grows = (run: () => void) => { live.length = 0; scope(run); return live.slice(1).map((n, i) => n - live[i]); };
    const input = () => Tensor.from(x, [2, cfg.inChans, cfg.imgSize, cfg.imgSize]);
    const eager = grows(() => { noGrad(() => vit.forward(input())); });
    assert.ok(eager.every((d) => d <= 1), `live tensors added per block without the tape: ${eager} (the block's output only)`);
    const taped = grows(() => { vit.forward(input()); });
    assert.ok(taped.every((d) => d > 5), `with the tape the activations stay: ${taped}`);
    // merged (ATME's blocks run attnStep/mlpStep: count at each attention step)
    const cait = new CaitModel(vit, { merge: 'h@1,v@3' });
    const steps: number[] = [], step = cait.attnStep.bind(cait);
    cait.attnStep = (...a: Parameters<typeof step>) => { steps.push(liveTensorCount()); return step(...a); };
    scope(() => { noGrad(() => cait.forward(input())); });
    const d = steps.slice(1).map((n, i) => n - steps[i]);
    assert.ok(d.every((k) => k <= 4), `merged: live tensors added per block: ${d} (output, sizes, key bias, merge map)`);
    vit.dispose();
  } finally { setBackend(prev); }
});

P('greedy-by-size placement: blocks alive at the same time never share bytes; disjoint lifetimes reuse', () => {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 50; trial++) {
    const blocks = Array.from({ length: 40 }, () => {
      const first = Math.floor(rnd() * 100), len = Math.floor(rnd() * 20);
      return { bytes: 64 * (1 + Math.floor(rnd() * 50)), first, last: first + len, offset: -1 };
    });
    const size = placeGreedyBySize(blocks);
    for (const a of blocks) {
      assert.ok(a.offset >= 0 && a.offset + a.bytes <= size, `block outside the arena (${a.offset}+${a.bytes} > ${size})`);
      for (const b of blocks) {
        if (a === b || a.last < b.first || b.last < a.first) continue;
        const apart = a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset;
        assert.ok(apart, `blocks alive together overlap: [${a.first},${a.last}]@${a.offset}+${a.bytes} and [${b.first},${b.last}]@${b.offset}+${b.bytes}`);
      }
    }
    const sum = blocks.reduce((t, b) => t + b.bytes, 0);
    assert.ok(size <= sum);
  }
  // a chain a -> b -> c where only neighbours overlap: c can take a's place
  const chain = [{ bytes: 640, first: 0, last: 1, offset: -1 }, { bytes: 640, first: 1, last: 2, offset: -1 }, { bytes: 640, first: 2, last: 3, offset: -1 }];
  assert.is(placeGreedyBySize(chain), 1280);
});

function micro(widths = false) {
  const cfg = { ...getPreset('micro'), imgSize: 32, patchSize: 4, depth: 3 };
  return createModel(widths ? { ...cfg, widths: uniformWidths(cfg, 0.6) } : cfg, 3);
}

const backends = [['reference', () => new ReferenceBackend(1 << 26)], ['wasm', () => loadWasmSync('auto')]] as const;

for (const [beName, make] of backends) {
  P(`${beName}: replay equals eager bit for bit on new inputs (dense, ATME h@1,v@2, compact + ATME)`, () => {
    const prev = getBackend();
    const be = make();
    setBackend(be);
    try {
      const shape = [2, 3, 32, 32], n = 2 * 3 * 32 * 32;
      const models: [string, { forward(x: Tensor): Tensor }][] = [
        ['dense', micro()],
        ['merged', new CaitModel(micro(), { merge: 'h@1,v@2' })],
        ['compact merged', new CaitModel(micro(true), { merge: 'h@1' })],
      ];
      for (const [label, m] of models) {
        const plan = InferencePlan.capture(be, randn(n, 1), shape, (x) => m.forward(x));
        assert.ok(plan.arenaBytes < plan.eagerBytes, `${label}: arena ${plan.arenaBytes} B should be below the eager peak ${plan.eagerBytes} B`);
        for (const seed of [2, 3]) {
          const x = randn(n, seed);
          const want = noGrad(() => scope(() => m.forward(Tensor.from(x, shape)).toArray()));
          close(plan.run(x), want, 0, 0, `${beName} ${label} seed ${seed}:`);
        }
        plan.dispose();
      }
      assert.is(be.stats().liveBlocks >= 0, true);
    } finally { setBackend(prev); }
  });
}

P('capture refuses a forward that reads the heap on the host', () => {
  const be = loadWasmSync('auto');
  const before = be.stats().bytesInUse;
  assert.throws(() => InferencePlan.capture(be, randn(8, 1), [2, 4], (x) => {
    const v = x.toArray();
    return Tensor.from(v.map((t) => t * 2), x.shape, be);
  }), (e: unknown) => e instanceof CaptureError && /reads/.test(String(e)));
  assert.is(be.stats().bytesInUse, before, 'a failed capture must free what it allocated');
});

// Two WASM instances (load() makes its own and leaves it the default): a
// forward whose weights live on the other one would read that heap's bytes
// at those addresses; the ops refuse it, eager and while capturing.
P('tensors on two backends: the ops refuse them with both named, eager and in a capture', () => {
  const prev = getBackend(), a = loadWasmSync('auto'), b = loadWasmSync('auto');
  try {
    setBackend(b);
    const vit = createModel(getPreset('micro'), 1), shape = [1, 3, 32, 32], x = randn(3 * 32 * 32, 2);
    const want = /two backends \(two instances of wasm-(relaxed|simd)\): make them on one/;
    assert.throws(() => noGrad(() => scope(() => vit.forward(Tensor.from(x, shape, a)))), (e: Error) => want.test(e.message));
    assert.throws(() => InferencePlan.capture(a, x, shape, (t) => vit.forward(t)), (e: Error) => want.test(e.message));
    const w = Tensor.from(randn(6, 3), [2, 3], new ReferenceBackend(1 << 12)), v = Tensor.from(randn(3, 4), [1, 3], a);
    assert.throws(() => linear(v, w, null), (e: Error) => /linear: tensors on two backends \(wasm-\w+ and reference\)/.test(e.message));
    assert.ok(noGrad(() => scope(() => vit.forward(Tensor.from(x, shape, b)).toArray())).every(Number.isFinite), 'one backend: runs');
    vit.dispose(); v.dispose(); w.dispose();
  } finally { setBackend(prev); }
});

P('pre-packed weights follow writes and optimizer steps', () => {
  const be = loadWasmSync('auto');
  const prev = getBackend();
  setBackend(be);
  try {
    const x = Tensor.from(randn(5 * 19, 4), [5, 19], be);
    const w = Tensor.from(randn(11 * 19, 5), [11, 19], be), b = Tensor.from(randn(11, 6), [11], be);
    const eager = () => scope(() => linear(x, w, b).toArray()); // grad on: the unpacked NT path
    const packed = () => noGrad(() => scope(() => linear(x, w, b).toArray()));
    close(packed(), eager(), 1e-6, 1e-6, 'first use:');
    w.write(randn(11 * 19, 7));
    close(packed(), eager(), 1e-6, 1e-6, 'after write:');
    w.requiresGrad = true;
    const opt = new AdamW([['w', w]], { lr: 0.1 });
    w.grad = Tensor.from(randn(11 * 19, 8), [11, 19], be);
    opt.update(0.1);
    w.grad.dispose(); w.grad = null;
    opt.dispose();
    w.requiresGrad = false;
    close(packed(), eager(), 1e-6, 1e-6, 'after an AdamW step:');
    const inUse = be.stats().bytesInUse;
    w.dispose();
    assert.ok(be.stats().bytesInUse < inUse - 11 * 19 * 4, 'disposing the weight frees its packed copy too');
    x.dispose(); b.dispose();
  } finally { setBackend(prev); }
});

P.run();
