// Training machinery: no leaks over 1,000 steps, resume equals straight
// training bit for bit, optimizer groups, and model files that fail loudly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, scope, setBackend, liveTensorCount, getBackend } from '../src/tensor.js';
import { backward, zeroGrad, tapeLength } from '../src/autograd.js';
import { crossEntropy } from '../src/ops/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { createModel, loadModel, saveModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { AdamW, decays, cosineLr, clipGradNorm } from '../src/train/optim.js';
import { train, NonFiniteError, type TrainOptions } from '../src/train/trainer.js';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { makeBatch } from '../src/data/augment.js';
import { createHash } from 'node:crypto';
import type { ImageSource } from '../src/data/augment.js';
import { randn } from './util.js';

const tiny: VitConfig = { ...getPreset('vit_fmnist'), name: 'tiny', imgSize: 8, patchSize: 4, embedDim: 8, depth: 1, numHeads: 2, dataSize: 6, mean: [0.5], std: [0.25] };
const tmp = () => mkdtempSync(join(tmpdir(), 'cait-test-'));

/** 48 synthetic 6x6 images of 3 classes (bright band in a class-dependent row). */
function synthetic(): ImageSource {
  const n = 48, images = new Uint8Array(n * 36), labels = new Uint8Array(n);
  const noise = randn(n * 36, 5);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    for (let p = 0; p < 36; p++) images[i * 36 + p] = Math.max(0, Math.min(255, Math.round(60 + 50 * noise[i * 36 + p] + (Math.floor(p / 6) === 2 * labels[i] ? 120 : 0))));
  }
  return { images, labels, n, h: 6, w: 6 };
}

const test = suite('training');
test.before(() => setBackend(loadWasmSync('auto')));

test('1,000 training steps leak no tensors and no heap bytes', () => {
  const model = createModel(tiny, 1);
  const named = model.namedParameters(), params = named.map(([, p]) => p);
  const opt = new AdamW(named, { lr: 1e-3 });
  const x = randn(4 * 64, 2), y = [0, 1, 2, 3];
  const step = () => {
    scope(() => { backward(crossEntropy(model.forward(Tensor.from(x, [4, 1, 8, 8])), y, 0.1)); });
    clipGradNorm(params, 1);
    opt.update(1e-3);
    zeroGrad(params);
  };
  for (let i = 0; i < 10; i++) step();
  const live = liveTensorCount(), bytes = getBackend().stats().bytesInUse;
  for (let i = 0; i < 1000; i++) step();
  assert.is(liveTensorCount(), live, 'live tensor count grew');
  assert.is(getBackend().stats().bytesInUse, bytes, 'heap bytes in use grew');
  assert.is(tapeLength(), 0, 'tape not cleared');
  opt.dispose(); model.dispose();
});

test('no weight decay on norms, biases, pos_embed, cls_token', () => {
  const model = createModel(tiny, 1);
  const decayed = model.namedParameters().filter(([n, p]) => decays(n, p)).map(([n]) => n).sort();
  assert.equal(decayed, ['blocks.0.attn.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc2.weight', 'head.weight', 'patch_embed.proj.weight']);
  model.dispose();
});

test('warmup then cosine', () => {
  assert.ok(Math.abs(cosineLr(0, 100, 10, 1) - 0.1) < 1e-12);
  assert.ok(Math.abs(cosineLr(9, 100, 10, 1) - 1) < 1e-12);
  assert.ok(Math.abs(cosineLr(55, 100, 10, 1) - 0.5) < 1e-12);
  assert.ok(Math.abs(cosineLr(100, 100, 10, 1, 0.01) - 0.01) < 1e-12);
});

test('resume after k epochs equals straight training, bit for bit', () => {
  const data = synthetic();
  const base: Omit<TrainOptions, 'outDir'> = { epochs: 3, batchSize: 16, lr: 3e-3, minLr: 1e-5, weightDecay: 0.05, warmupEpochs: 1, smoothing: 0.1, clip: 1, seed: 3, cropPad: 1, flip: true, mean: 0.5, std: 0.25, quiet: true };
  const a = createModel(tiny, 9), dirA = tmp();
  const logA = train(a, data, { ...base, outDir: dirA });
  const b = createModel(tiny, 9), dirB = tmp();
  train(b, data, { ...base, outDir: dirB, stopAfter: 2 });
  const b2 = createModel(tiny, 123); // different init: everything must come from the checkpoint
  const logB = train(b2, data, { ...base, outDir: dirB, resume: join(dirB, 'checkpoint.safetensors') });
  assert.is(logB.length, 1);
  assert.is(logB[0].loss, logA[2].loss, 'epoch-3 loss differs after resume');
  const pa = new Map(a.namedParameters());
  for (const [n, p] of b2.namedParameters()) assert.equal(Array.from(p.toArray()), Array.from(pa.get(n)!.toArray()), `parameter ${n} differs`);
  assert.ok(logA[2].loss < logA[0].loss, 'training did not reduce the loss');
  assert.equal(readdirSync(dirB).filter((f) => f.includes('.tmp')), [], 'temporary files left behind');
  for (const m of [a, b, b2]) m.dispose();
});

test('a mid-epoch checkpoint (saveEvery) resumes to the same parameters and log as straight training, bit for bit', () => {
  const data = synthetic();
  // 48 images, batch 16: 3 steps per epoch; saveEvery 2 saves after step 2 (mid-epoch 1) and step 4 (mid-epoch 2)
  const base: Omit<TrainOptions, 'outDir'> = { epochs: 2, batchSize: 16, lr: 3e-3, minLr: 1e-5, weightDecay: 0.05, warmupEpochs: 1, smoothing: 0.1, clip: 1, seed: 5, cropPad: 1, flip: true, mean: 0.5, std: 0.25, quiet: true };
  const a = createModel(tiny, 2), dirA = tmp();
  const logA = train(a, data, { ...base, outDir: dirA });
  const b = createModel(tiny, 2), dirB = tmp();
  const cut = train(b, data, { ...base, outDir: dirB, saveEvery: 2, stopAfterStep: 5 });   // "killed" after step 5: the last save was step 4
  assert.is(cut.length, 1);
  const st = JSON.parse(readSafetensorsFile(join(dirB, 'checkpoint.safetensors')).metadata.train_state);
  assert.equal([st.epoch, st.step, st.batch], [1, 4, 1], 'a mid-epoch checkpoint: epoch 2 in progress, 1 batch of it done');
  assert.is(readSafetensorsFile(join(dirB, 'model.safetensors')).metadata.step, '4', 'the model file is of the same step');
  const b2 = createModel(tiny, 77);
  const logB = train(b2, data, { ...base, outDir: dirB, resume: join(dirB, 'checkpoint.safetensors') });
  assert.is(logB.length, 1);
  assert.is(logB[0].loss, logA[1].loss, 'epoch-2 loss differs after a mid-epoch resume');
  const pa = new Map(a.namedParameters());
  for (const [n, p] of b2.namedParameters()) assert.equal(Array.from(p.toArray()), Array.from(pa.get(n)!.toArray()), `parameter ${n} differs`);
  const epochs = readFileSync(join(dirB, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
  assert.equal(epochs, [1, 2]);
  for (const m of [a, b, b2]) m.dispose();
});

test('a non-finite batch stops training with the checkpoint untouched, or is skipped and counted (nan: skip)', () => {
  const data = synthetic();
  // once poisoned, every batch gets a NaN pixel, so its loss is NaN
  let poisoned = false;
  const source = { n: data.n, makeBatch: (idx: ArrayLike<number>, o: Parameters<typeof makeBatch>[2]) => {
    const bt = makeBatch(data, idx, o);
    if (poisoned) bt.x[0] = NaN;
    return bt;
  } };
  const base: Omit<TrainOptions, 'outDir'> = { epochs: 3, batchSize: 16, lr: 3e-3, minLr: 1e-5, weightDecay: 0.05, warmupEpochs: 1, smoothing: 0.1, clip: 1, seed: 5, cropPad: 1, flip: true, mean: 0.5, std: 0.25, quiet: true };
  const dir = tmp(), m = createModel(tiny, 3);
  train(m, source, { ...base, outDir: dir, stopAfter: 1 });
  const sha = (f: string) => createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  const before = ['checkpoint.safetensors', 'model.safetensors', 'log.jsonl'].map(sha);
  poisoned = true;
  const m2 = createModel(tiny, 3);
  assert.throws(() => train(m2, source, { ...base, outDir: dir, resume: join(dir, 'checkpoint.safetensors') }),
    (e: Error) => e instanceof NonFiniteError && /non-finite loss \(NaN\) at epoch 2, step 4/.test(e.message) && /is kept as it was/.test(e.message));
  assert.equal(['checkpoint.safetensors', 'model.safetensors', 'log.jsonl'].map(sha), before, 'a file changed');
  // skip: every batch of epoch 2 is poisoned, which is an error of its own (nothing left to train on)
  const m3 = createModel(tiny, 3);
  assert.throws(() => train(m3, source, { ...base, outDir: dir, resume: join(dir, 'checkpoint.safetensors'), nan: 'skip' }),
    (e: Error) => e instanceof NonFiniteError && /every batch of epoch 2 .*\(3 skipped\)/.test(e.message));
  // only the first batch of each epoch poisoned: skipped and counted, the rest trains
  let k = 0;
  const some = { n: data.n, makeBatch: (idx: ArrayLike<number>, o: Parameters<typeof makeBatch>[2]) => {
    const bt = makeBatch(data, idx, o);
    if (k++ % 3 === 0) bt.x[0] = NaN;
    return bt;
  } };
  const m4 = createModel(tiny, 3), dir4 = tmp();
  const logs = train(m4, some, { ...base, outDir: dir4, nan: 'skip' });
  assert.equal(logs.map((l) => l.skipped), [1, 1, 1]);
  assert.equal(logs.map((l) => l.step), [2, 4, 6]);
  for (const t of readSafetensorsFile(join(dir4, 'checkpoint.safetensors')).tensors.values()) assert.ok(t.data.every(Number.isFinite));
  for (const x of [m, m2, m3, m4]) x.dispose();
});

test('model files: round trip, and clear errors for corrupt or mismatched files', () => {
  const dir = tmp(), file = join(dir, 'm.safetensors');
  const m = createModel(tiny, 4);
  saveModel(file, m);
  const { model: back } = loadModel(file);
  assert.equal(back.cfg, m.cfg);
  assert.equal(Array.from(back.head.weight.toArray()), Array.from(m.head.weight.toArray()));
  // truncated file
  const bytes = readFileSync(file);
  writeFileSync(join(dir, 'cut.safetensors'), bytes.subarray(0, bytes.length - 100));
  assert.throws(() => loadModel(join(dir, 'cut.safetensors')), (e: Error) => e.message.includes('cut.safetensors'));
  // wrong preset for a timm-style checkpoint without metadata
  assert.throws(() => loadModel('../shared/fixtures/micro-vit/model.safetensors'), (e: Error) => /--preset/.test(e.message));
  assert.throws(() => loadModel('../shared/fixtures/micro-vit/model.safetensors', { preset: 'vit_fmnist' }),
    (e: Error) => /patch_embed\.proj\.weight' has shape \[48,3,8,8\], expected \[64,1,4,4\]/.test(e.message.replace(/ /g, '')) || /shape/.test(e.message));
  assert.throws(() => loadModel(join(dir, 'missing.safetensors')), (e: Error) => e.message.includes('missing.safetensors'));
  assert.ok(existsSync(file));
  m.dispose(); back.dispose();
});

test.run();
