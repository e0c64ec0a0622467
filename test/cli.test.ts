// The CLI is the contract: run `cait` as a user would and check its outputs.
// Most cases run in-process through main(argv, io) (no TypeScript transpile per
// case); a few spawn the real entry to check exit codes and the bin's symlink.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/safetensors-file.js';
import { cait, caitProcess } from './cait.js';
import { close } from './util.js';
import { loadModel } from '../src/nn/model.js';
import { evaluate } from '../src/train/trainer.js';
import { loadFashionMnist, FASHION_MNIST_CLASSES } from '../src/data/fashion-mnist.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, '../shared/fixtures/micro-vit');

const test = suite('cli');
const dir = mkdtempSync(join(tmpdir(), 'cait-cli-'));

test('forward reproduces the fixture logits within 1e-4', async () => {
  const out = join(dir, 'logits.safetensors');
  const r = await cait('forward', '--model', join(FIX, 'model.safetensors'), '--preset', 'micro', '--input', join(FIX, 'input.safetensors'), '--out', out, '--json');
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.json.shape, [2, 10]);
  const got = readSafetensorsFile(out).tensors.get('logits')!.data;
  close(got, readSafetensorsFile(join(FIX, 'expected.safetensors')).tensors.get('logits')!.data, 1e-4, 0, 'cait forward logits');
});

test('the JSON line only with --json', async () => {
  const a = await cait('macs', '--preset', 'micro');
  assert.is(a.code, 0, a.stderr);
  assert.is(a.json, null, `no JSON without --json: ${a.stdout}`);
  assert.match(a.stdout, /GMACs/);
  const b = await cait('macs', '--preset', 'micro', '--json');
  assert.is(b.json.model, 'micro');
  assert.not.match(b.stdout, /GMACs \(/, 'with --json the JSON object is all of stdout');
});

test('usage errors: unknown command and unknown flag (exit 2, message names it)', async () => {
  const a = await cait('frobnicate');
  assert.is(a.code, 2);
  assert.match(a.stderr, /unknown command 'frobnicate'/);
  const b = await cait('eval', '--modle', 'x');
  assert.is(b.code, 2);
  assert.match(b.stderr, /unknown flag --modle \(did you mean --model\?\)/);
});

test('bad files: corrupt model and wrong input shape give clear errors (exit 1)', async () => {
  const bad = join(dir, 'bad.safetensors');
  writeFileSync(bad, Buffer.from('not a safetensors file at all'));
  const a = await cait('forward', '--model', bad, '--input', join(FIX, 'input.safetensors'), '--out', join(dir, 'o.safetensors'));
  assert.is(a.code, 1);
  assert.match(a.stderr, /bad\.safetensors/);
  const b = await cait('forward', '--model', join(FIX, 'model.safetensors'), '--preset', 'micro', '--input', join(FIX, 'model.safetensors'), '--out', join(dir, 'o.safetensors'));
  assert.is(b.code, 1);
  assert.match(b.stderr, /no tensor 'pixel_values' \(the file holds '/);
  // a batch of 0, a NaN pixel and a device as --input: data errors naming the file, nothing written
  const x = readSafetensorsFile(join(FIX, 'input.safetensors')).tensors.get('pixel_values')!;
  const empty = join(dir, 'b0.safetensors'), nan = join(dir, 'nan.safetensors'), o = join(dir, 'never.safetensors');
  writeSafetensorsFile(empty, { pixel_values: { shape: [0, ...x.shape.slice(1)], data: new Float32Array(0) } });
  const d = x.data.slice(); d[7] = NaN;
  writeSafetensorsFile(nan, { pixel_values: { shape: x.shape, data: d } });
  const huge = join(dir, 'huge.safetensors');
  writeSafetensorsFile(huge, { pixel_values: { shape: x.shape, data: new Float32Array(x.data.length).fill(3e38) } });
  for (const [file, msg] of [[huge, /huge\.safetensors: tensor 'pixel_values' gives non-finite logits: values up to 3\.00e\+38 in magnitude overflow the model/], [empty, /b0\.safetensors: tensor 'pixel_values' has shape \[0,.*with B >= 1/], [nan, /nan\.safetensors: tensor 'pixel_values' holds NaN at element 7/],
    ['/dev/zero', /\/dev\/zero: is a device; the --input must be a regular file/]] as const) {
    const r = await cait('forward', '--model', join(FIX, 'model.safetensors'), '--preset', 'micro', '--input', file, '--out', o);
    assert.is(r.code, 1, `${file}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.not.ok(existsSync(o), `${file}: no output`);
  }
});

test('macs: DeiT-Tiny 1.25 G dense, 0.65 G with h@3,v@6 (within 1%)', async () => {
  const d = await cait('macs', '--preset', 'deit_tiny_patch16_224', '--json'), m = await cait('macs', '--preset', 'deit_tiny_patch16_224', '--merge', 'h@3,v@6', '--json');
  assert.ok(Math.abs(d.json.gmacs / 1.25 - 1) < 0.01, `dense ${d.json.gmacs}`);
  assert.ok(Math.abs(m.json.gmacs / 0.65 - 1) < 0.01, `merged ${m.json.gmacs}`);
  assert.equal(m.json.tokens, [197, 197, 197, 197, 99, 99, 99, 50, 50, 50, 50, 50]);
});

test('compress --structure-only meets the MAC target and saves a loadable compact model', async () => {
  const out = join(dir, 'struct.safetensors');
  const r = await cait('compress', '--preset', 'vit_fmnist', '--structure-only', '--target-macs', '1.7', '--out', out, '--runs', '3', '--json');
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.json.mac_ratio >= 1.7, `mac ratio ${r.json.mac_ratio}`);
  const m = await cait('macs', '--model', out, '--json');
  assert.is(m.code, 0, m.stderr);
  assert.is(m.json.macs, r.json.compressed.macs, 'the saved model carries its widths and schedule');
  // dense: the full-width architecture, as compress reports it (it was the compact widths without merging)
  assert.equal([m.json.dense_macs, m.json.mac_ratio], [r.json.dense.macs, r.json.mac_ratio]);
  // the default policy timed its candidates and kept the fastest; all met the target
  assert.is(r.json.policy, 'search');
  assert.ok(r.json.candidates.length >= 2, `${r.json.candidates.length} candidates`);
  for (const c of r.json.candidates) assert.ok(c.mac_ratio >= 1.7 && c.latency_ms > 0, JSON.stringify(c));
  const best = r.json.candidates.reduce((a: { latency_ms: number }, b: { latency_ms: number }) => (b.latency_ms < a.latency_ms ? b : a));
  assert.equal([best.merge, best.prune], [r.json.merge, r.json.prune]);
  const mlp = await cait('compress', '--preset', 'vit_fmnist', '--structure-only', '--target-macs', '1.7', '--prune', 'mlp', '--merge', 'h@1', '--out', out, '--runs', '3', '--json');
  assert.is(mlp.code, 0, mlp.stderr);
  assert.equal([mlp.json.policy, mlp.json.merge, mlp.json.candidates], ['mlp', 'h@1', undefined]);
  assert.ok(mlp.json.mac_ratio >= 1.7);
  // each mode's own flags given to the other are usage errors (they were ignored: --structure-only --finetune-epochs 5 trained nothing)
  const mixed = await cait('compress', '--preset', 'vit_fmnist', '--structure-only', '--target-macs', '1.7', '--finetune-epochs', '5', '--no-flip', '--out', out);
  assert.is(mixed.code, 2, mixed.stderr);
  assert.match(mixed.stderr, /--finetune-epochs, --no-flip: --structure-only does not train/);
  const searchOnly = await cait('compress', '--model', join(ROOT, 'models/fmnist-dense.safetensors'), '--target-macs', '1.7', '--prune', 'uniform', '--out', out);
  assert.is(searchOnly.code, 2, searchOnly.stderr);
  assert.match(searchOnly.stderr, /--prune applies to --structure-only/);
  const bad = await cait('compress', '--preset', 'vit_fmnist', '--structure-only', '--target-macs', '-2', '--out', out);
  assert.is(bad.code, 2);
  const badPrune = await cait('compress', '--preset', 'vit_fmnist', '--structure-only', '--target-macs', '1.7', '--prune', 'heads', '--out', out);
  assert.is(badPrune.code, 2);
  assert.match(badPrune.stderr, /--prune must be one of search, uniform, mlp, got 'heads'/);
  // --data is checked before anything is searched or written: the existing --out is kept
  writeFileSync(out, 'precious');
  for (const [data, code] of [['no-such-data', 2], [join(FIX, 'model.safetensors'), 2]] as const) {
    const r = await cait('compress', '--model', join(ROOT, 'models/fmnist-dense.safetensors'), '--structure-only', '--target-macs', '1.5', '--prune', 'uniform', '--runs', '1', '--data', data, '--out', out);
    assert.is(r.code, code, r.stderr);
    assert.match(r.stderr, /--data/);
    assert.is(readFileSync(out, 'utf8'), 'precious', `--data ${data}: --out untouched`);
  }
});

// The method's switches from the command line (test/cdcp.test.ts and atme.test.ts test them through
// the library): a tiny model, one search and one fine-tune epoch on 64 images, a fraction of a second each
test('compress with every switch from the CLI: gates, shared Q/K/V, hard distillation, ATME features without proportional attention; uniform allocation meets --target-macs', async () => {
  const { createModel, saveModel } = await import('../src/nn/model.js');
  const { getPreset } = await import('../src/nn/presets.js');
  const cfg = { ...getPreset('vit_fmnist'), name: 'tiny28', imgSize: 28, patchSize: 7, embedDim: 16, depth: 2, numHeads: 2, dataSize: 28, mean: [0.286], std: [0.353] };
  const file = join(dir, 'tiny28.safetensors');
  const m = createModel(cfg, 1); saveModel(file, m); m.dispose();
  const run = ['compress', '--model', file, '--limit', '64', '--eval-limit', '32', '--search-epochs', '1', '--finetune-epochs', '1', '--json', '--quiet'];
  const out = join(dir, 'tiny28-switches.safetensors');
  const r = await cait(...run, '--target-macs', '1.3', '--masks', 'gates', '--shared-qkv', '--hard-distill', '--alpha', '0.3', '--tau', '3', '--lambda', '1',
    '--merge', 'h@0', '--similarity', 'features', '--no-prop-attn', '--out', out);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.json.merge, 'h@0');
  assert.ok(r.json.mac_ratio >= 1.3, `mac_ratio ${r.json.mac_ratio}`);
  const saved = loadModel(out);
  assert.equal(JSON.parse(saved.metadata.atme), { similarity: 'features', propAttn: false }, 'the ATME switches ride with the model');
  saved.model.dispose();
  // uniform widths follow the keep ratio alone: it must come from the target (it was 0.5 whatever was asked)
  for (const target of [1.25, 2]) {
    const u = await cait(...run, '--target-macs', String(target), '--merge', 'none', '--allocation', 'uniform', '--out', join(dir, `tiny28-uniform-${target}.safetensors`));
    assert.is(u.code, 0, u.stderr);
    assert.ok(u.json.mac_ratio >= target && u.json.mac_ratio < target * 1.25, `--target-macs ${target}: ${u.json.mac_ratio.toFixed(3)}x fewer MACs`);
  }
});

test('eval --data fashion-mnist --json: the same scores as an image folder (top-1, top-5, per class, confusion), accuracy and n as before', async () => {
  const r = await cait('eval', '--model', join(ROOT, 'models/fmnist-dense.safetensors'), '--data', 'fashion-mnist', '--limit', '200', '--json');
  assert.is(r.code, 0, r.stderr);
  const j = r.json, K = 10;
  assert.equal(Object.keys(j).sort(), ['accuracy', 'classes', 'confusion', 'data', 'images_per_sec', 'merge', 'n', 'per_class', 'top1', 'top5']);
  assert.is(j.n, 200);
  assert.is(j.data, 'fashion-mnist');
  assert.equal(j.classes, FASHION_MNIST_CLASSES);
  assert.is(j.confusion.length, K);
  const rows = j.confusion.map((row: number[]) => row.reduce((a, b) => a + b, 0));
  assert.is(rows.reduce((a: number, b: number) => a + b, 0), 200);
  assert.equal(rows, Array(K).fill(20), 'the 200 images spread over the class-sorted test split: 20 per class');
  const trace = j.confusion.reduce((a: number, row: number[], i: number) => a + row[i], 0);
  assert.is(j.accuracy, trace / 200);
  assert.is(j.top1, j.accuracy);
  assert.ok(j.top5 >= j.top1 && j.top5 <= 1);
  FASHION_MNIST_CLASSES.forEach((c, i) => assert.is(j.per_class[c], j.confusion[i][i] / 20, c));
  // the training loop's own top-1 (trainer.ts evaluate) on the same 200 images
  const { model } = loadModel(join(ROOT, 'models/fmnist-dense.safetensors'));
  try {
    const e = evaluate(model, loadFashionMnist().test, { mean: model.cfg.mean[0], std: model.cfg.std[0], limit: 200, quiet: true });
    assert.equal([j.accuracy, j.n], [e.accuracy, e.n]);
    assert.ok(j.accuracy > 0.8, `accuracy ${j.accuracy}`);
  } finally { model.dispose(); }
  const h = await cait('eval', '--model', join(ROOT, 'models/fmnist-dense.safetensors'), '--limit', '50', '--quiet');
  assert.match(h.stdout, /top-1 \d+\.\d\d%, top-5 \d+\.\d\d% on 50 fashion-mnist test images/);
  assert.match(h.stdout, /Ankle boot +\d+\.\d\d%/);
});

test('in-process runs restore the backend and stop a thread pool they made', async () => {
  const { getBackend } = await import('../src/tensor.js');
  const before = getBackend();
  const r = await cait('bench', '--preset', 'micro', '--threads', '2', '--runs', '2', '--warmup', '0', '--json');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.json.threads, 2);
  assert.is(getBackend(), before, 'the backend of the caller is back');
});

test('the real entry: no command is exit 2, a usage error exit 2, a symlinked bin runs (as npm links it)', () => {
  const entry = join(ROOT, 'src/cli/main.ts');
  const none = caitProcess(entry);
  assert.is(none.code, 2);
  assert.match(none.stderr, /usage: cait <command>/);
  const bad = caitProcess(entry, 'train', '--epochs', '0', '--out', join(dir, 'never'));
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--epochs must be an integer in 1\.\./);
  const link = join(dir, 'cait-bin.ts');
  symlinkSync(entry, link);
  const v = caitProcess(link, '--version');
  assert.is(v.code, 0, v.stderr);
  assert.is(v.stdout.trim(), `cait ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`);
});

test.run();
