// Your own images: an ImageFolder of Fashion-MNIST PNGs written by the test
// with the project's encoder, end to end through the CLI (train, eval,
// compress, plot --confusion, predict with the folders' class names), and the
// folder library itself (layouts, seeded held-out split, label matching,
// decode cache, RGB batches through a preprocess config, metrics, and
// structure-only compression that keeps a model's weights).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, cpSync, existsSync, mkdirSync, renameSync, statSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnist, FASHION_MNIST_CLASSES } from '../src/data/mnist.js';
import { encodePng, readImageFile } from '../src/io/image.js';
import { imageToInput } from '../src/data/preprocess.js';
import { listFolder, loadFolder, loadPixels, matchClasses, viewOf, PixelSplit, folderBatches, FolderError } from '../src/data/folder.js';
import { scoreFolderSync } from '../src/cli/folder.js';
import { ClassMetrics } from '../src/data/metrics.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { createModel, loadModel } from '../src/nn/model.js';
import { importanceMasks } from '../src/cait/structure.js';
import { extractCompact } from '../src/cait/extract.js';
import { blockWidths } from '../src/nn/presets.js';
import { Tensor, scope } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { cait } from './cait.js';
import { COMMANDS } from '../src/cli/main.js';
import { parseFlags } from '../src/cli/flags.js';
import { Rng } from '../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'cait-folder-'));
const fm = loadFashionMnist();
// the folders' decode caches go to the temp dir (restored after)
const savedCache = process.env.CAIT_CACHE_DIR;
process.env.CAIT_CACHE_DIR = join(root, 'cache');
const dirName = (c: number) => FASHION_MNIST_CLASSES[c].replace(/\//g, '_');

/** DIR/<split>/<class>/<i>.png: `per` images of each class, spread over the split. */
function writeFolder(dir: string, split: 'train' | 'test', per: number, sub = split === 'train' ? 'train' : 'val'): void {
  const s = fm[split];
  for (let c = 0; c < 10; c++) {
    const d = join(dir, sub, dirName(c));
    mkdirSync(d, { recursive: true });
    const idx: number[] = [];
    for (let i = 0; i < s.n; i++) if (s.labels[i] === c) idx.push(i);
    for (let j = 0; j < per; j++) {
      const i = idx[Math.floor((j * idx.length) / per)], rgba = new Uint8Array(784 * 4);
      for (let p = 0; p < 784; p++) { rgba[4 * p] = rgba[4 * p + 1] = rgba[4 * p + 2] = s.images[i * 784 + p]; rgba[4 * p + 3] = 255; }
      writeFileSync(join(d, `${i}.png`), encodePng(28, 28, rgba));
    }
  }
}
const data = join(root, 'fm');
const ROOT_MODELS = fileURLToPath(new URL('../models/', import.meta.url));
writeFolder(data, 'train', 12);
writeFolder(data, 'test', 6);

test('end to end: train, eval, plot --confusion, quantize, compress and predict from a folder, class names from the folders', async () => {
  const t0 = performance.now();
  const run = join(root, 'run');
  const tr = await cait('train', '--data', data, '--epochs', '1', '--batch', '40', '--out', run, '--quiet', '--json');
  assert.is(tr.code, 0, tr.stderr);
  const names = FASHION_MNIST_CLASSES.map((c) => c.replace(/\//g, '_')).sort();
  assert.equal(tr.json.classes, names, 'a new model takes its classes from the folders (sorted)');
  assert.is(tr.json.n, 60, 'scored on the val split');
  assert.ok(tr.json.decode_images_per_sec > 0);
  const model = join(run, 'model.safetensors');
  assert.equal(loadModel(model).model.cfg.classes, names);

  const ev = await cait('eval', '--model', model, '--data', data, '--json');
  assert.is(ev.code, 0, ev.stderr);
  const j = ev.json;
  assert.is(j.n, 60);
  assert.ok(j.top5 >= j.top1, 'top-5 >= top-1');
  assert.is(j.confusion.length, 10);
  assert.is(j.confusion.flat().reduce((a: number, b: number) => a + b, 0), 60, 'every val image counted once');
  const diag = j.confusion.reduce((s: number, r: number[], i: number) => s + r[i], 0);
  assert.ok(Math.abs(diag / 60 - j.top1) < 1e-12, 'top-1 is the diagonal');
  assert.equal(Object.keys(j.per_class).sort(), names);
  assert.ok(j.images_per_sec > 0);
  const evalOut = join(root, 'eval.json');
  writeFileSync(evalOut, ev.stdout);
  const svg = join(root, 'confusion.svg');
  const pl = await cait('plot', '--confusion', evalOut, '--out', svg, '--json');
  assert.is(pl.code, 0, pl.stderr);
  assert.match(readFileSync(svg, 'utf8'), /Ankle boot/);

  // quantize with --data DIR: the float and int8 accuracy on the folder's val split, as cait eval scores them
  const q8 = join(root, 'model-int8.safetensors');
  const q = await cait('quantize', '--model', model, '--data', data, '--out', q8, '--json');
  assert.is(q.code, 0, q.stderr);
  assert.equal([q.json.data, q.json.n, q.json.accuracy_float], [data, 60, j.top1], 'float accuracy as cait eval gives it');
  const ev8 = await cait('eval', '--model', q8, '--data', data, '--json');
  assert.is(ev8.code, 0, ev8.stderr);
  assert.is(q.json.accuracy_int8, ev8.json.top1, 'int8 accuracy as cait eval of the int8 file gives it');

  const comp = join(root, 'compressed.safetensors');
  const c = await cait('compress', '--model', model, '--data', data, '--target-macs', '1.7', '--merge', 'h@1', '--search-epochs', '1', '--finetune-epochs', '1',
    '--batch', '40', '--runs', '3', '--out', comp, '--quiet', '--json');
  assert.is(c.code, 0, c.stderr);
  assert.ok(c.json.mac_ratio >= 1.7 * 0.97, `MAC ratio ${c.json.mac_ratio}`);
  for (const k of ['dense', 'compressed']) assert.ok(c.json[k].accuracy >= 0 && c.json[k].accuracy <= 1 && c.json[k].latencyMs > 0, k);
  assert.equal(loadModel(comp).model.cfg.classes, names, 'the compressed model keeps the folder classes');
  assert.equal(readdirSync(root).filter((n) => n.startsWith('.compress-')), [], 'the stages\' scratch folder is removed');

  const img = join(data, 'val', 'Bag', readdirFirst(join(data, 'val', 'Bag')));
  const p = await cait('predict', '--model', comp, '--image', img, '--top', '3', '--json');
  assert.is(p.code, 0, p.stderr);
  assert.is(p.json.top.length, 3);
  for (const t of p.json.top) assert.ok(names.includes(t.label), `label '${t.label}' is a folder name`);
  console.log(`  end to end in ${((performance.now() - t0) / 1000).toFixed(1)} s: val top-1 ${j.top1.toFixed(3)}, compressed ${c.json.compressed.accuracy.toFixed(3)} at ${c.json.mac_ratio.toFixed(2)}x fewer MACs`);
});

const readdirFirst = (d: string): string => readdirSync(d).sort()[0];

test('predict --image DIR: every PNG and JPEG of a folder and its subfolders, sorted, in batches; each as predict gives it alone', async () => {
  const samples = fileURLToPath(new URL('../web/public/samples/', import.meta.url)), dir = join(root, 'unlabeled');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  const names = readdirSync(samples).filter((n) => n.endsWith('.png')).sort();
  names.forEach((n, i) => copyFileSync(join(samples, n), join(dir, i < 4 ? n : join('sub', n))));
  writeFileSync(join(dir, 'notes.txt'), 'not an image');
  const model = join(ROOT_MODELS, 'fmnist-cait.safetensors');
  const r = await cait('predict', '--model', model, '--image', dir, '--batch', '3', '--top', '2', '--json');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /unlabeled: skipped 1 file\(s\) that are not PNG or JPEG/, 'notes.txt is reported, under --json too');
  const want = names.map((n, i) => join(dir, i < 4 ? n : join('sub', n)));
  assert.is(r.json.n, names.length);
  assert.equal(r.json.predictions.map((p: { image: string }) => p.image), want, "sorted, the folder's files before its subfolders'");
  for (const [i, file] of want.entries()) {
    const one = await cait('predict', '--model', model, '--image', file, '--top', '2', '--json');
    assert.is(one.code, 0, one.stderr);
    const got = r.json.predictions[i].top;
    assert.equal(got.map((t: { label: string }) => t.label), one.json.top.map((t: { label: string }) => t.label), file);
    for (const [k, t] of got.entries()) assert.ok(Math.abs(t.prob - one.json.top[k].prob) < 1e-5, `${file}: ${t.prob} alone ${one.json.top[k].prob}`);
  }
  const text = await cait('predict', '--model', model, '--image', dir, '--top', '1');
  assert.is(text.code, 0, text.stderr);
  assert.equal(text.stdout.trim().split('\n').map((l) => l.split('\t')[0]), want, 'one line per image');
  mkdirSync(join(root, 'no-images'));
  const none = await cait('predict', '--model', model, '--image', join(root, 'no-images'));
  assert.is(none.code, 1);
  assert.match(none.stderr, /--image .*no-images: no PNG or JPEG images in the folder or its subfolders/);
});

test('CLI errors: unknown --data, labels that match nothing (listed), --val with a folder', async () => {
  const bad = await cait('eval', '--model', 'models/fmnist-dense.safetensors', '--data', join(root, 'nope'));
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--data must be fashion-mnist, mnist or an image folder/);
  const other = join(root, 'other');
  mkdirSync(join(other, 'Cat'), { recursive: true });
  mkdirSync(join(other, 'Trouser'), { recursive: true });
  const png = encodePng(2, 2, new Uint8Array(16).fill(200));
  writeFileSync(join(other, 'Cat', 'a.png'), png); writeFileSync(join(other, 'Trouser', 'b.png'), png);
  const mis = await cait('eval', '--model', 'models/fmnist-dense.safetensors', '--data', other);
  assert.is(mis.code, 1);
  assert.match(mis.stderr, /class folder\(s\) 'Cat' match none of the model's 10 labels/);
  const v = await cait('train', '--data', data, '--val', '5', '--epochs', '1', '--out', join(root, 'r2'));
  assert.is(v.code, 2);
  // --val-split on a folder that has train/ and val/: the flag does not fit the folder (usage, was exit 1)
  const vs = await cait('eval', '--model', 'models/fmnist-dense.safetensors', '--data', data, '--val-split', '0.2');
  assert.is(vs.code, 2, vs.stderr);
  assert.match(vs.stderr, /--val-split applies to a folder without train\/ and val\/; .* has both/);
});

test('listFolder: train/val layout, flat layout with a seeded --val-split, errors', () => {
  const l = listFolder(data);
  assert.is(l.layout, 'split');
  assert.is(l.train.files.length, 120); assert.is(l.val.files.length, 60);
  assert.is(l.classes[0], 'Ankle boot');
  const flat = join(data, 'train');
  const a = listFolder(flat, { valSplit: 0.25, seed: 1 }), b = listFolder(flat, { valSplit: 0.25, seed: 1 }), c = listFolder(flat, { valSplit: 0.25, seed: 2 });
  assert.is(a.layout, 'flat');
  assert.is(a.val.files.length, 30, '3 of 12 per class');
  assert.equal(a.val.files, b.val.files, 'same seed, same held-out images');
  assert.not.equal(a.val.files, c.val.files);
  assert.ok(a.val.files.every((f) => !a.train.files.includes(f)), 'disjoint');
  const one = listFolder(flat);
  assert.equal(one.train.files, one.val.files, 'no --val-split: one split for both');
  assert.throws(() => listFolder(data, { valSplit: 0.2 }), /applies to a folder without train/);
  const linked = join(root, 'linked');
  mkdirSync(linked);
  symlinkSync(join(data, 'val', 'Bag'), join(linked, 'Bag'));
  symlinkSync(join(data, 'val', 'Coat'), join(linked, 'Coat'));
  const ln = listFolder(linked);
  assert.equal(ln.classes, ['Bag', 'Coat'], 'symlinked class folders count');
  assert.is(ln.train.files.length, 12);
  assert.throws(() => listFolder(join(root, 'nothing')), /not a directory/);
});

test('class folder entries that are neither files nor folders (a FIFO named like an image, a broken link) are skipped and counted; one class folder cannot make a new classifier', async () => {
  const d = join(root, 'special');
  const png = encodePng(2, 2, new Uint8Array(16).fill(9));
  for (const c of ['Bag', 'Coat']) { mkdirSync(join(d, c), { recursive: true }); writeFileSync(join(d, c, 'a.png'), png); }
  const fifo = spawnSync('mkfifo', [join(d, 'Bag', 'stuck.png')]);
  assert.is(fifo.status, 0, `mkfifo: ${fifo.stderr}`);
  symlinkSync(join(d, 'gone.png'), join(d, 'Coat', 'broken.png'));
  writeFileSync(join(d, 'Coat', 'notes.txt'), 'x');
  const l = listFolder(d);
  assert.equal(l.train.files.map((f) => f.slice(d.length + 1)), ['Bag/a.png', 'Coat/a.png'], 'the FIFO and the broken link are not images to read');
  assert.is(l.special, 2);
  assert.is(l.skipped, 1, 'notes.txt');
  const ev = await cait('eval', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', d);
  assert.is(ev.code, 0, ev.stderr);
  assert.match(ev.stderr, /2 images, 2 classes/);
  assert.match(ev.stderr, /skipped 2 entries of class folders that are neither files nor folders \(FIFOs/);
  // under --json too (stdout is the JSON's; a script should still learn what was left out), but not --quiet
  const evj = await cait('eval', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', d, '--json');
  assert.is(evj.code, 0, evj.stderr);
  assert.match(evj.stderr, /skipped 1 file\(s\) that are not PNG or JPEG/);
  assert.match(evj.stderr, /skipped 2 entries of class folders/);
  assert.not.match(evj.stderr, /2 images, 2 classes/, 'the decode report is progress, not a warning');
  assert.is(evj.json.n, 2);
  const q = await cait('quantize', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', d, '--out', join(root, 'special-int8.safetensors'), '--json');
  assert.is(q.code, 0, q.stderr);
  assert.match(q.stderr, /skipped 2 entries of class folders/);
  const evq = await cait('eval', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', d, '--json', '--quiet');
  assert.is(evq.stderr, '');
  // one class: refused for a new model (exit 1, no run written); a fine-tune is warned
  const one = join(root, 'one-class');
  mkdirSync(join(one, 'Only'), { recursive: true });
  writeFileSync(join(one, 'Only', 'a.png'), png);
  const t = await cait('train', '--data', one, '--epochs', '1', '--out', join(root, 'one-run'), '--quiet');
  assert.is(t.code, 1, t.stderr);
  assert.match(t.stderr, /one class folder \('Only'\); a new classifier needs at least two/);
  assert.not.ok(existsSync(join(root, 'one-run', 'model.safetensors')));
});

test('ImageFolder\'s walk: images in subfolders of a class count (links followed, each folder once); train/ + test/ (or valid/) is the split layout; train/ alone is an error', async () => {
  const png = encodePng(2, 2, new Uint8Array(16).fill(7));
  const d = join(root, 'nested');
  for (const f of ['Bag/a.png', 'Bag/sub/b.png', 'Bag/sub/deeper/c.JPG.png', 'Coat/z.png', 'Coat/0/y.png']) { mkdirSync(join(d, f, '..'), { recursive: true }); writeFileSync(join(d, f), png); }
  symlinkSync(join(d, 'Bag'), join(d, 'Bag', 'sub', 'loop'));   // a link back up: walked once
  const l = listFolder(d);
  // a folder's own files first, then its subfolders' (sorted(os.walk)); they were dropped without a word
  assert.equal(l.train.files.map((f) => f.slice(d.length + 1)), ['Bag/a.png', 'Bag/sub/b.png', 'Bag/sub/deeper/c.JPG.png', 'Coat/z.png', 'Coat/0/y.png']);
  assert.equal(l.train.labels, [0, 0, 0, 1, 1]);
  assert.is(l.heldOut, false);
  for (const valDir of ['test', 'valid']) {
    const t = join(root, `tt-${valDir}`);
    for (const f of ['train/Bag/a.png', 'train/Coat/a.png', `${valDir}/Bag/b.png`, `${valDir}/Coat/b.png`]) { mkdirSync(join(t, f, '..'), { recursive: true }); writeFileSync(join(t, f), png); }
    const tl = listFolder(t);
    assert.is(tl.layout, 'split');
    assert.is(tl.valDir, valDir);
    assert.equal(tl.classes, ['Bag', 'Coat'], `${valDir}: not classes 'train' and '${valDir}'`);
    assert.equal(tl.val.files.map((f) => f.slice(t.length + 1)), [`${valDir}/Bag/b.png`, `${valDir}/Coat/b.png`]);
  }
  const only = join(root, 'train-only');
  mkdirSync(join(only, 'train', 'Bag'), { recursive: true });
  writeFileSync(join(only, 'train', 'Bag', 'a.png'), png);
  assert.throws(() => listFolder(only), /has train\/ but no val\/, valid\/, validation\/, test\/ beside it/);
});

test('a one-split folder without --val-split: train says the scores are on the training images (stderr, JSON held_out); a held-out split is scored every epoch; crop flags on a grey model without a preprocess config are usage errors; quantize --val-split', async () => {
  const flat = join(data, 'train');
  const run = join(root, 'noval-run');
  const t = await cait('train', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', flat, '--epochs', '1', '--limit', '24', '--batch', '12', '--out', run, '--json');
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stderr, /no held-out images \(no val\/ folder, no --val-split\): the scores after training are on the training images/);
  assert.is(t.json.held_out, false);
  const v = await cait('train', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', flat, '--val-split', '0.25', '--epochs', '1', '--limit', '24', '--batch', '12', '--out', join(root, 'val-run'), '--json');
  assert.is(v.code, 0, v.stderr);
  assert.is(v.json.held_out, true);
  assert.not.match(v.stderr, /no held-out images/);
  // the held-out images scored after every epoch, as --val N on the built-in data (plot --log shows it)
  const logOf = (d: string) => readFileSync(join(d, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.is(logOf(join(root, 'val-run'))[0].valAccuracy, v.json.accuracy, 'the last epoch\'s score is the final one');
  assert.is(logOf(run)[0].valAccuracy, undefined, 'nothing held out: nothing to log');
  // the Fashion-MNIST models are grey without a preprocess config: the crop flags did nothing there
  const r = await cait('train', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', data, '--rrc-scale', '0.6', '--epochs', '1', '--out', join(root, 'rrc-run'));
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--rrc-scale applies to models with a preprocessing config or RGB input; '.*' is grey without one/);
  assert.not.ok(existsSync(join(root, 'rrc-run', 'model.safetensors')));
  // quantize scores a held-out part as eval does (--val-split was an unknown flag)
  const q = await cait('quantize', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', flat, '--val-split', '0.25', '--out', join(root, 'q.safetensors'), '--json');
  assert.is(q.code, 0, q.stderr);
  assert.is(q.json.n, 30, '3 of 12 images per class held out');
  const e = await cait('eval', '--model', join(ROOT_MODELS, 'fmnist-dense.safetensors'), '--data', flat, '--val-split', '0.25', '--json');
  assert.is(e.json.n, 30);
  assert.is(q.json.accuracy_float, e.json.accuracy, 'the same held-out images as eval');
});

test('decode cache: a flat folder\'s splits share one cache file, so another --val-split or --seed decodes nothing', () => {
  const cfg = { ...getPreset('vit_fmnist'), classes: FASHION_MNIST_CLASSES.map((c) => c.replace(/\//g, '_')) }, flat = join(data, 'train'), cacheDir = join(root, 'c-flat');
  const a = loadFolder(flat, cfg, { valSplit: 0.25, seed: 1, cacheDir });
  assert.is(a.stats.train.decoded + a.stats.val.decoded, 120);
  // another draw of the same images (they were keyed by --val-split and --seed: all decoded again, into a new file)
  const b = loadFolder(flat, cfg, { valSplit: 0.5, seed: 7, cacheDir });
  assert.is(b.stats.train.decoded + b.stats.val.decoded, 0);
  const c = loadFolder(flat, cfg, { cacheDir });
  assert.is(c.stats.train.decoded + c.stats.val.decoded, 0, 'no --val-split: the same images again');
  assert.is(readdirSync(join(cacheDir, 'folders')).filter((f) => f.endsWith('.bin')).length, 1);
});

test('class folders that differ only in Unicode normalization are refused (they merged into one label)', () => {
  const d = join(root, 'nfd');
  const png = encodePng(2, 2, new Uint8Array(16).fill(9));
  for (const c of ['Caf\u00e9', 'Cafe\u0301', 'Tea']) { mkdirSync(join(d, c), { recursive: true }); writeFileSync(join(d, c, 'a.png'), png); }
  assert.throws(() => listFolder(d), (e: Error) => e instanceof FolderError && /differ only in Unicode normalization/.test(e.message));
});

test('names that are not UTF-8: refused naming the entry and its bytes (an image so named failed with a bare ENOENT, a class folder so named read as empty)', () => {
  const d = join(root, 'latin1'), png = encodePng(2, 2, new Uint8Array(16).fill(9));
  const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
  for (const c of ['a', 'b']) { mkdirSync(join(d, c), { recursive: true }); writeFileSync(join(d, c, '0.png'), png); }
  // a real U+FFFD is valid UTF-8, and a hidden entry is never read: both fine
  writeFileSync(join(d, 'a', 'x\uFFFD.png'), png);
  writeFileSync(bytes(join(d, 'b'), '/.', [0xff], '.png'), png);
  assert.equal(listFolder(d).train.files.length, 3);
  const file = bytes(join(d, 'a'), '/caf', [0xe9], '.png');
  writeFileSync(file, png);
  assert.throws(() => listFolder(d), (e: Error) => e instanceof FolderError && e.message.startsWith(`${join(d, 'a')}: the entry named "caf\uFFFD.png" (bytes 63 61 66 e9 2e 70 6e 67) is not valid UTF-8`) && /rename it/.test(e.message));
  rmSync(file);
  mkdirSync(bytes(d, '/', [0xff, 0xfe], 'class'));
  writeFileSync(bytes(d, '/', [0xff, 0xfe], 'class/0.png'), png);
  assert.throws(() => listFolder(d), (e: Error) => e instanceof FolderError && e.message.startsWith(`${d}: the entry named "\uFFFD\uFFFDclass" (bytes ff fe 63 6c 61 73 73) is not valid UTF-8`));
});

test('matchClasses: by name (with / for _), or in order for a model without labels', () => {
  const cfg = getPreset('vit_fmnist');
  assert.equal(matchClasses(['Bag', 'T-shirt_top'], cfg), [8, 0]);
  try { matchClasses(['Bag', 'Dog', 'Cat'], cfg, 'DIR'); assert.unreachable(); } catch (e) {
    assert.instance(e, FolderError);
    assert.match((e as Error).message, /'Dog', 'Cat' match none/);
  }
  assert.equal(matchClasses(['x', 'y'], { ...cfg, classes: undefined }), [0, 1]);
  assert.throws(() => matchClasses(Array.from({ length: 11 }, (_, i) => `c${i}`), { ...cfg, classes: undefined }), /11 class folders/);
});

test('decode cache: a second load decodes nothing; a touched file is decoded again; bytes equal the grey images', () => {
  const cfg = getPreset('vit_fmnist'), v = viewOf(cfg), files = listFolder(data).val.files;
  const first = loadPixels(files, v, { cacheDir: join(root, 'c2') });
  assert.is(first.stats.decoded, 60);
  const second = loadPixels(files, v, { cacheDir: join(root, 'c2') });
  assert.is(second.stats.decoded, 0);
  assert.equal(Array.from(second.pixels), Array.from(first.pixels));
  const t = new Date(Date.now() + 5000);
  utimesSync(files[3], t, t);
  assert.is(loadPixels(files, v, { cacheDir: join(root, 'c2') }).stats.decoded, 1, 'only the touched file');
  // one cache per folder and split (cacheKey): a subset, then the whole split again, then one image more, decode only what is new
  const key = { cacheDir: join(root, 'c3'), cacheKey: 'fm val' };
  assert.is(loadPixels(files.slice(0, 20), v, key).stats.decoded, 20);
  // a temporary left by a run killed mid-write (a pid that is gone) is removed by the next write
  const cached = readdirSync(join(root, 'c3', 'folders'))[0], dead = join(root, 'c3', 'folders', `${cached}.tmp-999999999-1796281568934`);
  writeFileSync(dead, 'half');
  assert.is(loadPixels(files, v, key).stats.decoded, 40, 'the 20 of the subset reused');
  assert.not.ok(existsSync(dead), 'the dead run\'s temporary is gone');
  const extra = join(data, 'val', dirName(0), 'extra.png');
  copyFileSync(files[0], extra);
  try {
    const more = loadPixels([...files, extra], v, key);
    assert.equal([more.stats.decoded, more.stats.cached], [1, 60], 'an added image: only it decoded');
  } finally { rmSync(extra); }
  // replaced by other bytes of the same size with the old mtime put back (cp -p, rsync -a): ctime tells
  const f = join(root, 'same-size.png'), a = encodePng(4, 4, new Uint8Array(64).fill(10)), b = encodePng(4, 4, new Uint8Array(64).fill(20));
  assert.is(a.length, b.length);
  writeFileSync(f, a);
  const before = loadPixels([f], v, { cacheDir: join(root, 'c4') });
  const { atime, mtime } = statSync(f);
  writeFileSync(f, b); utimesSync(f, atime, mtime);
  const after = loadPixels([f], v, { cacheDir: join(root, 'c4') });
  assert.is(after.stats.decoded, 1, 'the replaced file decoded again');
  assert.not.equal(Array.from(after.pixels), Array.from(before.pixels));
  // the grey view of a 28x28 PNG is the dataset's own bytes: the folder trains exactly like --data fashion-mnist
  const i = Number(files[0].split('/').pop()!.replace('.png', ''));
  assert.equal(Array.from(first.pixels.subarray(0, 784)), Array.from(fm.test.images.subarray(i * 784, (i + 1) * 784)));
});

test('RGB models with a preprocess config: C x S x S batches, normalised per channel, augmentation seeded', () => {
  const cfg: VitConfig = { ...getPreset('micro'), mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], classes: FASHION_MNIST_CLASSES,
    preprocess: { kind: 'timm', size: 32, interpolation: 'bicubic', cropPct: 0.875, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] } };
  const fd = loadFolder(data, cfg, { splits: ['val'] });
  assert.instance(fd.val, PixelSplit);
  const b = [...folderBatches(fd.val, cfg, { batchSize: 7 })];
  assert.is(b.length, 9);
  assert.equal(b[0].shape, [7, 3, 32, 32]);
  const p = (fd.val as PixelSplit).pixels(0).data;
  assert.ok(Math.abs(b[0].x[0] - (p[0] / 255 - 0.5) / 0.2) < 1e-6 && Math.abs(b[0].x[1024] - (p[1] / 255 - 0.4) / 0.25) < 1e-6, 'CHW, per-channel');
  const aug = (seed: number) => (fd.val as PixelSplit).makeBatch([0, 1, 2], { pad: 32, mean: 0, std: 1, augment: { rng: new Rng(seed), cropPad: 0, flip: true } }).x;
  assert.equal(Array.from(aug(4)), Array.from(aug(4)));
  assert.not.equal(Array.from(aug(4)), Array.from(aug(5)));
});

test('an RGB model without a preprocess config: predict\'s (and the library\'s) input is the folder\'s eval view, bit for bit (it was a float resize, up to a grey level apart)', () => {
  const dir = join(root, 'rgb-plain'), cfg: VitConfig = { ...getPreset('micro'), mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
  writeRgbFolder(dir, ['a', 'b'], 3, ['val']);
  mkdirSync(join(dir, 'train'));
  for (const c of ['a', 'b']) cpSync(join(dir, 'val', c), join(dir, 'train', c), { recursive: true });
  const fd = loadFolder(dir, cfg, { splits: ['val'] }), per = 3 * 32 * 32;
  const [b] = [...folderBatches(fd.val, cfg, { batchSize: 6 })];
  fd.listing.val.files.forEach((file, i) => assert.equal(Array.from(imageToInput(readImageFile(file), cfg, file)), Array.from(b.x.subarray(i * per, (i + 1) * per)), file));
});

test('cait train and compress an RGB preset on a folder: the training batches are [B, 3, S, S] (they were built [B, 1, S, S])', async () => {
  const out = join(root, 'rgb-run');
  const t = await cait('train', '--preset', 'micro', '--data', data, '--epochs', '1', '--limit', '40', '--batch', '8', '--out', out, '--json', '--quiet');
  assert.is(t.code, 0, t.stderr);
  const m = loadModel(join(out, 'model.safetensors')).model;
  assert.is(m.cfg.inChans, 3);
  m.dispose();
  const c = await cait('compress', '--model', join(out, 'model.safetensors'), '--data', data, '--target-macs', '1.5', '--merge', 'h@1', '--search-epochs', '0.5', '--finetune-epochs', '0',
    '--limit', '40', '--eval-limit', '20', '--batch', '8', '--runs', '2', '--out', join(root, 'rgb-c.safetensors'), '--json', '--quiet');
  assert.is(c.code, 0, c.stderr);
  // RGB views train with the random resized crop: --crop-pad (the grey views' shift) did nothing, --crop-pad 0 left the crops on
  for (const [cmd, ...rest] of [['train', '--epochs', '1', '--out', join(root, 'rgb-pad')], ['compress', '--target-macs', '1.5', '--out', join(root, 'rgb-pad.safetensors')]]) {
    const p = await cait(cmd, '--model', join(out, 'model.safetensors'), '--data', data, '--crop-pad', '0', ...rest);
    assert.is(p.code, 2, p.stderr);
    assert.match(p.stderr, /--crop-pad applies to grey models without a preprocessing config; 'micro' takes 3x32x32 views .* --rrc-scale X or --no-rrc set the crop/);
  }
  assert.not.ok(existsSync(join(root, 'rgb-pad')) || existsSync(join(root, 'rgb-pad.safetensors')));
});

test('--resume onto a folder of other classes is refused, naming both (the saved labels changed silently)', async () => {
  const other = join(root, 'renamed');
  cpSync(data, other, { recursive: true });
  for (const sp of ['train', 'val']) renameSync(join(other, sp, dirName(0)), join(other, sp, 'Tee'));
  const run = join(root, 'resume-run');
  const a = await cait('train', '--preset', 'vit_fmnist', '--data', data, '--epochs', '1', '--limit', '40', '--out', run, '--quiet');
  assert.is(a.code, 0, a.stderr);
  const r = await cait('train', '--preset', 'vit_fmnist', '--data', other, '--epochs', '2', '--limit', '40', '--out', run, '--resume', join(run, 'checkpoint.safetensors'), '--quiet');
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /checkpoint\.safetensors: the checkpoint's classes are not this run's: class \d is "T-shirt_top" there, "\w+" here \(10 against 10 classes\)/);
});

/** DIR/<split>/<class>/<i>.png: `per` RGB images of each class, a coloured square on a background, of varied sizes. */
function writeRgbFolder(dir: string, classes: string[], per: number, splits = ['train', 'val']): void {
  const rng = new Rng(7);
  for (const sp of splits) classes.forEach((c, k) => {
    const d = join(dir, sp, c);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < per; i++) {
      const w = 20 + rng.int(40), h = 20 + rng.int(40), rgba = new Uint8Array(w * h * 4);
      for (let p = 0; p < w * h; p++) {
        const x = p % w, y = Math.floor(p / w), on = Math.abs(x - w / 2) < w / 4 && Math.abs(y - h / 2) < h / 4;
        rgba[4 * p] = on ? 80 * k : rng.int(256); rgba[4 * p + 1] = on ? 255 - 80 * k : rng.int(256); rgba[4 * p + 2] = rng.int(256); rgba[4 * p + 3] = 255;
      }
      writeFileSync(join(d, `${i}.png`), encodePng(w, h, rgba));
    }
  });
}

test('fine-tuning a checkpoint on a folder of other classes: a new head for the folder\'s classes, said on stderr; resumable exactly; eval agrees (it was refused)', async () => {
  const hf = fileURLToPath(new URL('../../shared/fixtures/hf-vit', import.meta.url)), dir = join(root, 'shapes'), run = join(root, 'shapes-run');
  writeRgbFolder(dir, ['circle', 'square', 'stripes'], 4);
  const args = ['--model', hf, '--data', dir, '--epochs', '2', '--batch', '4', '--lr', '1e-3', '--json'];
  const t = await cait('train', ...args, '--out', run);
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stderr, /class folder\(s\) 'circle', 'square', 'stripes' match none of the model's 5 labels \('tabby cat', .*\): fine-tuning with a new classifier head for the folder's 3 classes \('circle', 'square', 'stripes'\), labels from the folder names/);
  assert.is(t.json.new_head, true);
  assert.equal(t.json.classes, ['circle', 'square', 'stripes']);
  const { model } = loadModel(join(run, 'model.safetensors')), fixture = loadModel(hf).model;
  assert.equal([model.cfg.classes, model.cfg.numClasses, model.head.weight.shape], [['circle', 'square', 'stripes'], 3, [3, 48]]);
  assert.equal(model.cfg.preprocess, fixture.cfg.preprocess, 'the checkpoint\'s preprocessing is kept');
  model.dispose(); fixture.dispose();
  // the head is rebuilt from --seed on a resume: stopped after one epoch and resumed, the same bytes as the run straight through
  const half = join(root, 'shapes-half');
  assert.is((await cait('train', ...args, '--out', half, '--stop-after', '1')).code, 0);
  const r = await cait('train', ...args, '--out', half, '--resume', join(half, 'checkpoint.safetensors'));
  assert.is(r.code, 0, r.stderr);
  assert.ok(readFileSync(join(run, 'model.safetensors')).equals(readFileSync(join(half, 'model.safetensors'))), 'resumed = uninterrupted');
  const e = await cait('eval', '--model', join(run, 'model.safetensors'), '--data', dir, '--json');
  assert.is(e.code, 0, e.stderr);
  assert.is(e.json.accuracy, t.json.accuracy, 'train\'s score is eval\'s');
  // a run at another --img-size resumes at it: the error says so (it named pos_embed's shapes alone)
  const big = join(root, 'shapes-64');
  assert.is((await cait('train', ...args, '--img-size', '64', '--out', big, '--stop-after', '1')).code, 0);
  const r64 = await cait('train', ...args, '--out', big, '--resume', join(big, 'checkpoint.safetensors'));
  assert.is(r64.code, 1);
  assert.match(r64.stderr, /checkpoint\.safetensors: the checkpoint was trained at 64x64 input, this run is at 48x48; a resume continues the same run \(give --img-size 64\)/);
  // the checkpoint itself cannot score these folders: eval says how to fine-tune it on them
  const bad = await cait('eval', '--model', hf, '--data', dir);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /match none of the model's 5 labels .*fine-tune the model on this folder first \(cait train --model MODEL --data /);
  // a label that matches keeps the model's own head (its classes and numbering)
  const kept = join(root, 'teapot'), keptRun = join(root, 'teapot-run');
  writeRgbFolder(kept, ['teapot', 'volcano'], 2);
  const k = await cait('train', '--model', hf, '--data', kept, '--epochs', '1', '--batch', '4', '--out', keptRun, '--json');
  assert.is(k.code, 0, k.stderr);
  assert.is(k.json.new_head, false);
  assert.is(k.json.classes.length, 5);
  // a checkpoint without labels (timm's, with --preset): a new head unless the folder has as many classes, which then name them
  // (the folders were mapped onto its first classes and the saved model answered '0'..'9')
  const micro = fileURLToPath(new URL('../../shared/fixtures/micro-vit/model.safetensors', import.meta.url));
  const u = await cait('train', '--model', micro, '--preset', 'micro', '--data', dir, '--epochs', '1', '--batch', '4', '--out', join(root, 'micro-run'), '--json');
  assert.is(u.code, 0, u.stderr);
  assert.match(u.stderr, /3 class folders, but model 'micro' has 10 classes and no labels: fine-tuning with a new classifier head/);
  assert.equal([u.json.new_head, u.json.classes], [true, ['circle', 'square', 'stripes']]);
  const ten = join(root, 'ten'), names = Array.from({ length: 10 }, (_, i) => `c${i}`);
  writeRgbFolder(ten, names, 1);
  const n = await cait('train', '--model', micro, '--preset', 'micro', '--data', ten, '--epochs', '1', '--batch', '10', '--out', join(root, 'ten-run'), '--json');
  assert.is(n.code, 0, n.stderr);
  assert.match(n.stderr, /model 'micro' has no labels: its 10 classes take the folder names in sorted order/);
  assert.equal([n.json.new_head, n.json.classes], [false, names]);
  assert.equal(loadModel(join(root, 'ten-run', 'model.safetensors')).model.cfg.classes, names);
});

test('a folder of 300 classes, every image one grey level, trains and evaluates (labels past 255 were refused; a std of 0 was an internal error)', async () => {
  const dir = join(root, 'many');
  const px = encodePng(8, 8, new Uint8Array(8 * 8 * 4).fill(200));
  for (let c = 0; c < 300; c++) { const d = join(dir, `c${String(c).padStart(3, '0')}`); mkdirSync(d, { recursive: true }); writeFileSync(join(d, 'a.png'), px); }
  const out = join(root, 'many-run');
  const t = await cait('train', '--preset', 'vit_fmnist', '--data', dir, '--epochs', '1', '--out', out, '--json', '--quiet');
  assert.is(t.code, 0, t.stderr);
  assert.is(loadModel(join(out, 'model.safetensors')).model.cfg.numClasses, 300);
  const e = await cait('eval', '--model', join(out, 'model.safetensors'), '--data', dir, '--json');
  assert.is(e.code, 0, e.stderr);
  assert.is(e.json.n, 300);
  assert.is(e.json.classes.length, 300);
});

test('--limit picks its images before decoding (the same images and scores as decoding all); a split too big to hold decoded is refused before decoding', async () => {
  const model = join(ROOT_MODELS, 'fmnist-dense.safetensors');
  const all = loadFolder(data, loadModel(model).model.cfg, { splits: ['val'], cacheDir: join(root, 'cache-all') });
  const want = scoreFolderSync(loadModel(model).model, all.val, { limit: 7 });
  const e = await cait('eval', '--model', model, '--data', data, '--limit', '7', '--json');
  assert.is(e.code, 0, e.stderr);
  const some = loadFolder(data, loadModel(model).model.cfg, { splits: ['val'], limits: { val: 7 }, cacheDir: join(root, 'cache-some') });
  assert.equal([some.val.n, some.stats.val.decoded], [7, 7], 'seven decoded of 60');
  assert.equal([e.json.n, e.json.top1, e.json.confusion], [7, want.top1, want.confusion]);
  // 8192 x 8192 RGB views: 201 MB each, 60 of them past the 2 GiB bound; nothing decoded to find out
  const huge = { ...getPreset('micro'), imgSize: 8192, classes: FASHION_MNIST_CLASSES };
  assert.throws(() => loadFolder(data, huge, { splits: ['val'] }), (err: Error) => err instanceof FolderError && /val: 60 images of 3x8192x8192 make 11\.25 GiB decoded, over the 2 GiB a split may take; use at most 10 /.test(err.message));
});

test('ClassMetrics: top-1, top-5 (ties count for the label), per class, confusion', () => {
  const m = new ClassMetrics(6, ['a', 'b', 'c', 'd', 'e', 'f']);
  m.add(Float32Array.from([5, 1, 0, 0, 0, 0, /**/ 0, 1, 9, 0, 0, 0, /**/ 9, 8, 7, 6, 5, 4]), [0, 1, 5], 3);
  const r = m.result();
  assert.is(r.n, 3);
  assert.is(r.top1, 1 / 3);
  assert.is(r.top5, 2 / 3, 'the third row ranks its label sixth');
  assert.equal(r.perClass, [1, 0, null, null, null, 0]);
  assert.equal(r.confusion[1], [0, 0, 1, 0, 0, 0]);
});

test('structure-only keeps weights: importance masks at full width reproduce the model; narrower keeps the strongest channels', () => {
  const vit = createModel(getPreset('vit_fmnist'), 3), cfg = vit.cfg;
  const full = Array.from({ length: cfg.depth }, (_, i) => blockWidths(cfg, i));
  const same = extractCompact(vit, importanceMasks(vit, full), '');
  const x = Tensor.from(new Float32Array(2 * 32 * 32).map((_, i) => Math.sin(i)), [2, 1, 32, 32]);
  const a = noGrad(() => scope(() => vit.forward(x).toArray())), b = noGrad(() => scope(() => same.forward(x).toArray()));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `logit ${i}: ${a[i]} vs ${b[i]}`);
  // zero MLP channel 7 of block 0 everywhere: it must be the first one dropped
  const fc1 = vit.blocks[0].mlp.fc1.weight, w = fc1.toArray();
  for (let c = 0; c < 64; c++) w[7 * 64 + c] = 0;
  fc1.write(w);
  const narrow = importanceMasks(vit, full.map((f) => ({ ...f, mlp: f.mlp - 8 })));
  assert.ok(!Array.from(narrow[0].mlp.keep).includes(7));
  assert.is(narrow[0].mlp.keep.length, 248);
  x.dispose(); vit.dispose(); same.dispose();
});

test('README "Bring your own model and images": every command parses with its command\'s flag spec, every script exists', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('## Bring your own model and images');
  assert.ok(start >= 0, 'the section exists');
  const end = readme.indexOf('\n## ', start + 5), section = readme.slice(start, end < 0 ? undefined : end);
  const lines = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].flatMap((m) => m[1].replace(/\\\n\s*/g, ' ').split('\n')).map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
  let commands = 0;
  for (const line of lines) {
    const argv = line.split(/\s+/);
    const cut = argv.findIndex((w) => w === '>' || w === '|');
    const words = cut >= 0 ? argv.slice(0, cut) : argv;
    if (words[0] === 'npx' && words[1] === 'cait') {
      const cmd = COMMANDS.find((c) => c.name === words[2]);
      assert.ok(cmd, `README: unknown command in '${line}'`);
      parseFlags(words.slice(3), cmd!.flags, cmd!.name);
      commands++;
    } else if (words[0] === 'npx' && words[1] === 'tsx' || words[0] === 'sh') {
      const script = words[words[0] === 'sh' ? 1 : 2];
      assert.ok(existsSync(new URL(`../${script}`, import.meta.url)), `README: ${script} exists`);
    }
  }
  assert.ok(commands >= 4, `train, eval, plot, compress, predict in the section (found ${commands})`);
});

test.after(() => {
  if (savedCache === undefined) delete process.env.CAIT_CACHE_DIR; else process.env.CAIT_CACHE_DIR = savedCache;
  rmSync(root, { recursive: true, force: true });
});

test.run();
