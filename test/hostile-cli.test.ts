// Hostile flags and outputs (issue 16), run in-process through main(argv, io):
// every bad numeric flag is a usage error (exit 2) before any work; an output
// that is an input (by path, symlink or hard link), a device, a FIFO or a
// directory is refused with no input changed; a symlinked output is written
// through; NaN training stops without touching the last good checkpoint;
// resume keeps log.jsonl free of duplicates; a bad config is exit 1 naming
// file and field on every loading command; --allow-nonfinite and --img-size;
// a user-chosen batch over the byte limit is a usage error naming the flag.
// Plus --help for every command, --version and "did you mean".
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cait } from './cait.js';
import { COMMANDS } from '../src/cli/main.js';
import type { FlagSet } from '../src/cli/flags.js';
import { createModel, saveModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/safetensors-file.js';
import { estimateBytes, maxModelBytes } from '../src/nn/validate.js';
import { cleanStaleTemporaries, makeFolder, writeFileAtomic } from '../src/io/output.js';
import { encodePng } from '../src/io/image.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, '../shared/fixtures/micro-vit');
const dir = mkdtempSync(join(tmpdir(), 'cait-hostile-'));
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const hashes = (files: string[]) => files.map((f) => `${f} ${sha(f)}`);

// a 28x28 one-block model: Fashion-MNIST training in a fraction of a second
const tinyCfg: VitConfig = { ...getPreset('vit_fmnist'), name: 'tiny28', imgSize: 28, patchSize: 7, embedDim: 16, depth: 1, numHeads: 2, dataSize: 28, mean: [0.286], std: [0.353] };
const tiny = join(dir, 'tiny.safetensors');
const trainArgs = ['--model', tiny, '--limit', '128', '--batch', '32', '--eval-limit', '50', '--quiet'];

const test = suite('hostile cli');
test.before(() => {
  const m = createModel(tinyCfg, 1);
  saveModel(tiny, m);
  m.dispose();
});

test('every bad numeric flag is a usage error (exit 2) before any work, naming the flag', async () => {
  const out = join(dir, 'never');
  const model = join(FIX, 'model.safetensors');
  const cases: Array<[string[], RegExp]> = [
    [['train', '--epochs', '0', '--out', out], /--epochs must be an integer in 1\.\.\d+, got '0'/],
    [['train', '--epochs', '1.5', '--out', out], /--epochs must be an integer .*got '1\.5'/],
    [['train', '--epochs', 'ten', '--out', out], /--epochs must be an integer/],
    [['train', '--epochs', '1', '--batch', '-1', '--out', out], /--batch must be an integer in 1\.\.\d+, got '-1'/],
    [['train', '--epochs', '1', '--batch', '0', '--out', out], /--batch must be an integer in 1\.\./],
    [['train', '--epochs', '1', '--limit', '0', '--out', out], /--limit must be an integer >= 1, got '0'/],
    [['train', '--epochs', '1', '--limit', '-5', '--out', out], /--limit must be an integer >= 1, got '-5'/],
    [['train', '--epochs', '1', '--lr', '-1', '--out', out], /--lr must be a number > 0, got '-1'/],
    [['train', '--epochs', '1', '--lr', '0', '--out', out], /--lr must be a number > 0/],
    [['train', '--epochs', '1', '--lr', 'NaN', '--out', out], /--lr must be a number > 0, got 'NaN'/],
    [['train', '--epochs', '1', '--warmup', '-1', '--out', out], /--warmup must be a number in 0\.\./],
    [['train', '--epochs', '1', '--save-every', '0', '--out', out], /--save-every must be an integer >= 1/],
    [['train', '--epochs', '1', '--nan', 'ignore', '--out', out], /--nan must be stop or skip, got 'ignore'/],
    [['train', '--epochs', '2', '--stop-after', '3', '--out', out], /--stop-after 3 is past --epochs 2/],
    [['train', '--epochs', '1'], /missing --out/],
    [['train', '--out', out], /missing --epochs/],
    [['train', 'fashion-mnist', '--epochs', '1', '--out', out], /unexpected argument 'fashion-mnist'/],
    [['train', '--epochs', '1', '--epochs', '2', '--out', out], /--epochs given twice/],
    [['train', '--epochs', '1', '--json=maybe', '--out', out], /--json is a switch/],
    [['demo', '--runs', '0'], /--runs must be an integer in 1\.\./],
    [['predict', '--top', '-1', '--model', model, '--image', 'x.png'], /--top must be an integer in 1\.\.\d+, got '-1'/],
    [['quantize', '--preset', 'micro', '--backend', 'webgpu', '--out', out], /--backend webgpu runs the inference commands .*: this one \(training, quantizing/],
    [['predict', '--int8-attention', 'maybe', '--model', model, '--image', 'x.png'], /--int8-attention must be on or off, got 'maybe'/],
    [['bench', '--preset', 'micro', '--batch', '1000000'], /--batch must be an integer in 1\.\.256, got '1000000'/],
    [['bench', '--preset', 'micro', '--threads', '0'], /--threads must be an integer in 1\.\.64/],
    [['bench', '--preset', 'micro', '--backend', 'cuda'], /--backend must be one of wasm, /],
    [['eval', '--model', model, '--limit', '1e3'], /--limit must be an integer/],
    [['compress', '--preset', 'micro', '--structure-only', '--target-macs', '0', '--out', out], /--target-macs must be a number > 0/],
    [['compress', '--preset', 'micro', '--structure-only', '--target-macs', 'Infinity', '--out', out], /--target-macs must be a number > 0/],
    [['segment', '--model', model, '--scene', '-1', '--out', out], /--scene must be an integer in 0\.\./],
    [['plot', '--log', 'x', '--width', '10', '--out', out], /--width must be an integer in 200\.\.4000/],
    [['export', '--preset', 'micro', '--batch', '-3', '--onnx', out], /--batch must be a positive integer or 'dynamic'/],
    [['macs', '--preset'], /--preset needs a value/],
    [['plot', '--log', ',', '--out', out], /--log names nothing, got ',': give one or more, comma-separated/],
    // a forgotten value: the next argument is a flag, known or not (an unknown one was read as the file '--foo')
    [['predict', '--model', '--foo', '--image', 'x.png'], /--model needs a value \(FILE\), got the flag --foo; write --model=--foo for a value that starts with --/],
    [['export', '--model', join(ROOT, 'models/seg-cait.safetensors'), '--onnx', out], /seg-cait\.safetensors is a segmentation model: export writes classifier graphs/],
    [['quantize', '--model', join(ROOT, 'models/seg-cait.safetensors'), '--data', 'fashion-mnist', '--out', out], /is a segmentation model: --data scores classifiers/],
    // flags that only shape --data's scoring (ignored without it, the file written)
    [['quantize', '--preset', 'micro', '--limit', '5', '--out', out], /--limit applies to the accuracy on --data's test split: give --data/],
    [['quantize', '--preset', 'micro', '--batch', '5', '--out', out], /--batch applies to the accuracy on --data's test split: give --data/],
    [['macs', '--preset', 'deit_tiny_patch16_22'], /--preset must be one of deit_tiny_patch16_224, .*, got 'deit_tiny_patch16_22' \(did you mean 'deit_tiny_patch16_224'\?\)/],
    [['train', '--epochs', '1', '--lr', '0x10', '--out', out], /--lr must be a number .*got '0x10'/],
    [['macs', '--preset', 'micro', '--merge', 'q@1'], /'q@1' is not AXIS@BLOCK/],
    [['compress', '--preset', 'micro', '--structure-only', '--target-macs', '1.5', '--merge', 'h@9', '--out', out], /--merge: .*block 9 does not exist/],
  ];
  for (const [args, re] of cases) {
    const r = await cait(...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '', `${args.join(' ')}: printed ${r.stdout}`);
  }
  assert.not.ok(existsSync(out), 'a refused command wrote its output');
});

test('--help for every command lists every flag with its type and default (exit 0); help CMD is the same; --version', async () => {
  for (const c of COMMANDS) {
    const r = await cait(c.name, '--help');
    assert.is(r.code, 0, `${c.name} --help: ${r.stderr}`);
    for (const [name, f] of Object.entries(c.flags as FlagSet)) {
      const line = r.stdout.split('\n').findIndex((l) => l.trimStart().startsWith(`--${name} `) || l.trim() === `--${name}`);
      assert.ok(line >= 0, `cait ${c.name} --help does not list --${name}`);
      const text = r.stdout.split('\n').slice(line, line + 2).join(' ');
      assert.ok(text.includes(f.help), `--${name}: its help is missing`);
      const type = f.type === 'enum' ? f.choices.join('|') : f.type;
      assert.ok(text.includes(`[${type === 'strings' ? 'string' : type}`), `--${name}: no type in '${text}'`);
      if ('default' in f && f.default !== undefined) assert.ok(text.includes(`default ${f.default}`), `--${name}: no default in '${text}'`);
    }
    const h = await cait('help', c.name);
    assert.is(h.code, 0);
    assert.is(h.stdout, r.stdout, `cait help ${c.name} differs from cait ${c.name} --help`);
    const short = await cait(c.name, '-h');
    assert.is(short.stdout, r.stdout);
  }
  const g = await cait('--help');
  assert.is(g.code, 0);
  for (const c of COMMANDS) assert.match(g.stdout, new RegExp(`^  ${c.name} `, 'm'));
  const v = await cait('--version');
  assert.is(v.code, 0);
  assert.is(v.stdout.trim(), `cait ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`);
  const none = await cait();
  assert.is(none.code, 2, 'no command is a usage error');
});

test('did you mean: a misspelled command or flag names the nearest one', async () => {
  const r = await cait('trian');
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown command 'trian' \(did you mean 'train'\?\)/);
  const f = await cait('bench', '--presets', 'micro');
  assert.match(f.stderr, /unknown flag --presets \(did you mean --preset\?\)/);
  const far = await cait('zzzzzz');
  assert.not.match(far.stderr, /did you mean/);
  const h = await cait('help', 'segmnet');
  assert.is(h.code, 2);
  assert.match(h.stderr, /did you mean 'segment'/);
});

test('an output that is an input (same path, symlink, hard link) is refused, exit 2, no input changed', async () => {
  const d = join(dir, 'same');
  mkdirSync(d);
  const model = join(d, 'm.safetensors'), input = join(d, 'in.safetensors'), png = join(d, 'in.png'), log = join(d, 'log.jsonl');
  copyFileSync(join(FIX, 'model.safetensors'), model);
  copyFileSync(join(FIX, 'input.safetensors'), input);
  writeFileSync(png, encodePng(2, 2, new Uint8Array(16).fill(200)));
  writeFileSync(log, '{"epoch":1,"step":1,"loss":2}\n');
  symlinkSync(model, join(d, 'link-to-model'));
  linkSync(model, join(d, 'hard-model.safetensors'));
  const run = join(d, 'run');
  mkdirSync(run);
  copyFileSync(tiny, join(run, 'model.safetensors'));
  const inputs = [model, input, png, log, join(run, 'model.safetensors')];
  const before = hashes(inputs);
  const fwd = ['forward', '--model', model, '--preset', 'micro', '--input', input, '--out'];
  const cases: Array<[string[], RegExp]> = [
    [['export', '--model', model, '--preset', 'micro', '--onnx', model], /--onnx .*is the input --model/],
    [[...fwd, model], /--out .*is the input --model/],
    [[...fwd, input], /--out .*is the input --input/],
    [[...fwd, join(d, 'link-to-model')], /--out .*link-to-model: is the input --model/],
    [[...fwd, join(d, 'hard-model.safetensors')], /--out .*hard-model\.safetensors: is the input --model/],
    [[...fwd, `${d}/../same/./m.safetensors`], /is the input --model/],
    [['segment', '--model', model, '--image', png, '--out', model], /--out .*is the input --model/],
    [['segment', '--model', model, '--image', png, '--out', png], /--out .*is the input --image/],
    [['plot', '--log', log, '--out', log], /--out .*is the input --log/],
    [['plot', '--log', d, '--out', log], /--out .*is the input --log/],
    [['compress', '--model', model, '--target-macs', '2', '--out', model], /--out .*is the input --model/],
    [['train', '--model', join(run, 'model.safetensors'), '--epochs', '1', '--out', run], /is the input --model/],
  ];
  for (const [args, re] of cases) {
    const r = await cait(...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /refusing to overwrite an input/);
  }
  assert.equal(hashes(inputs), before, 'an input changed');
  assert.ok(lstatSync(join(d, 'link-to-model')).isSymbolicLink());
  assert.equal(readdirSync(d).filter((f) => f.includes('.tmp-')), [], 'temporaries left behind');
});

test('a model folder: its model.safetensors and config files are inputs no output may replace (quantize replaced the weights)', async () => {
  const d = join(dir, 'folder-model');
  mkdirSync(d);
  for (const f of ['model.safetensors', 'config.json', 'preprocessor_config.json', 'input.safetensors']) copyFileSync(join(ROOT, '../shared/fixtures/hf-vit', f), join(d, f));
  const files = ['model.safetensors', 'config.json', 'preprocessor_config.json'].map((f) => join(d, f));
  const before = hashes(files);
  const cases: Array<[string[], RegExp]> = [
    [['quantize', '--model', d, '--out', files[0]], /--out .*model\.safetensors: is the input --model /],
    [['quantize', '--model', d, '--out', files[1]], /--out .*config\.json: is the input --model \(config\.json\)/],
    [['quantize', '--model', files[0], '--out', files[2]], /is the input --model \(preprocessor_config\.json\)/],
    [['compress', '--model', d, '--structure-only', '--target-macs', '1.5', '--quantize', 'int8', '--out', files[0]], /--out .*is the input --model /],
    [['export', '--model', d, '--onnx', files[0]], /--onnx .*is the input --model /],
    [['forward', '--model', d, '--input', join(d, 'input.safetensors'), '--out', files[0]], /--out .*is the input --model /],
    [['train', '--model', d, '--data', 'fashion-mnist', '--epochs', '1', '--overwrite', '--out', d], /is the input --model /],
  ];
  for (const [args, re] of cases) {
    const r = await cait(...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.equal(hashes(files), before, 'an input changed');
});

test('devices, FIFOs and directories are refused; a symlinked output is written through to its target', async () => {
  const d = join(dir, 'special');
  mkdirSync(d);
  const fwd = ['forward', '--model', join(FIX, 'model.safetensors'), '--preset', 'micro', '--input', join(FIX, 'input.safetensors'), '--out'];
  const dev = await cait(...fwd, '/dev/null');
  assert.is(dev.code, 2);
  assert.match(dev.stderr, /--out \/dev\/null: a device; an output must be a regular file/);
  const fifo = join(d, 'fifo');
  const mk = spawnSync('mkfifo', [fifo]);
  assert.is(mk.status, 0, 'mkfifo');
  const f = await cait(...fwd, fifo);
  assert.is(f.code, 2);
  assert.match(f.stderr, /fifo: a FIFO/);
  assert.ok(lstatSync(fifo).isFIFO(), 'the FIFO was replaced');
  const dd = await cait(...fwd, d);
  assert.is(dd.code, 2);
  assert.match(dd.stderr, /a directory/);
  // through a symlink (and a symlink to a device is refused like the device)
  symlinkSync('/dev/null', join(d, 'null-link'));
  const nl = await cait(...fwd, join(d, 'null-link'));
  assert.is(nl.code, 2);
  assert.match(nl.stderr, /a device/);
  const target = join(d, 'target.safetensors');
  writeFileSync(target, 'old');
  symlinkSync('target.safetensors', join(d, 'out-link'));
  const ok = await cait(...fwd, join(d, 'out-link'), '--json');
  assert.is(ok.code, 0, ok.stderr);
  assert.ok(lstatSync(join(d, 'out-link')).isSymbolicLink(), 'the link was replaced by a file');
  assert.equal(readSafetensorsFile(target).tensors.get('logits')!.shape, [2, 10]);
});

test('a --merge step with nothing left to merge on the patch grid is a usage error (it ran as a no-op and was reported)', async () => {
  for (const cmd of [['macs'], ['predict', '--image', join(ROOT, 'web/public/samples/07-sneaker.png')]]) {
    const r = await cait(cmd[0], '--model', join(ROOT, 'models/fmnist-dense.safetensors'), '--merge', 'h@0,h@1,h@2,h@3,h@4', ...cmd.slice(1));
    assert.is(r.code, 2, `${cmd[0]}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /--merge: merge schedule 'h@0,h@1,h@2,h@3,h@4': step h@3 on a grid 8x1 has nothing left to merge/);
  }
});

test('folder-only flags with a built-in dataset or scenes are usage errors (they were ignored)', async () => {
  const dense = join(ROOT, 'models/fmnist-dense.safetensors');
  const runs: Array<[string[], RegExp]> = [
    [['eval', '--model', dense, '--val-split', '0.5', '--limit', '10'], /--val-split applies to an image folder \(--data DIR\), not the built-in dataset fashion-mnist/],
    [['train', ...trainArgs, '--no-rrc', '--no-flip', '--epochs', '1', '--out', join(dir, 'ff-run')], /--no-flip, --no-rrc apply to an image folder \(--data DIR\), not the built-in dataset fashion-mnist/],
    [['compress', '--model', dense, '--data', 'mnist', '--rrc-scale', '0.5', '--target-macs', '1.2', '--out', join(dir, 'ff.safetensors')], /--rrc-scale applies to an image folder \(--data DIR\), not the built-in dataset mnist/],
    [['eval', '--model', join(ROOT, 'models/seg-cait.safetensors'), '--val-split', '0.2', '--limit', '4'], /--val-split applies to an image folder \(--data DIR\), not segmentation scenes/],
  ];
  for (const [args, re] of runs) {
    const r = await cait(...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re);
  }
  assert.not.ok(existsSync(join(dir, 'ff-run')) || existsSync(join(dir, 'ff.safetensors')), 'a refused command wrote its output');
});

test('an output under a folder that cannot be made fails at once, naming the output (Node 20\'s recursive mkdir spun forever under /proc)', async () => {
  const inp = ['--model', join(FIX, 'model.safetensors'), '--preset', 'micro'];
  for (const args of [['export', ...inp, '--onnx', '/proc/cait-no-such/x.onnx'], ['forward', ...inp, '--input', join(FIX, 'input.safetensors'), '--out', '/proc/cait-no-such/y.safetensors']]) {
    const t0 = performance.now();
    const r = await cait(...args);
    assert.is(r.code, 1, `${args[0]}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /\/proc\/cait-no-such\/[xy]\.(onnx|safetensors): (could not write the file: )?could not make the folder \/proc\/cait-no-such \(ENOENT\)/);
    assert.ok(performance.now() - t0 < 30_000);
  }
  // a file on the way
  writeFileSync(join(dir, 'plain'), 'x');
  assert.throws(() => makeFolder(join(dir, 'plain', 'sub'), 'out.bin'), /out\.bin: .*plain is a file, not a folder/);
  makeFolder(join(dir, 'made', 'two', 'levels'));
  assert.ok(lstatSync(join(dir, 'made', 'two', 'levels')).isDirectory());
});

test('stale temporaries of the target from dead processes are removed; live ones and others are kept', () => {
  const d = join(dir, 'tmps');
  mkdirSync(d);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  const target = join(d, 'out.bin');
  const stale = `out.bin.tmp-${deadPid}-abcdef`, live = `out.bin.tmp-${process.pid}-abcdef`, other = `other.bin.tmp-${deadPid}-abcdef`;
  for (const n of [stale, live, other]) writeFileSync(join(d, n), 'x');
  writeFileAtomic(target, new Uint8Array([1, 2, 3]));
  assert.equal(readdirSync(d).sort(), [live, 'other.bin.tmp-' + deadPid + '-abcdef', 'out.bin'].sort());
  assert.equal(Array.from(readFileSync(target)), [1, 2, 3]);
  assert.equal(cleanStaleTemporaries(target), [], 'nothing left to clean');
});

test('a run removes the temporaries a killed run left in its directory', async () => {
  const run = join(dir, 'orphans');
  mkdirSync(run);
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  const orphans = ['checkpoint.safetensors', 'model.safetensors', 'log.jsonl'].map((f) => `${f}.tmp-${dead}-0123456789ab`);
  for (const o of orphans) writeFileSync(join(run, o), 'half a file');
  const r = await cait('train', ...trainArgs, '--epochs', '1', '--out', run);
  assert.is(r.code, 0, r.stderr);
  assert.equal(readdirSync(run).sort(), ['checkpoint.safetensors', 'log.jsonl', 'model.safetensors']);
});

/** A finished run of `epochs` epochs in dir/name: its folder, its three files and their hashes. */
async function trainedRun(name: string, epochs: number): Promise<{ run: string; files: string[]; before: string[] }> {
  const run = join(dir, name);
  const a = await cait('train', ...trainArgs, '--epochs', String(epochs), '--out', run);
  assert.is(a.code, 0, a.stderr);
  const files = ['checkpoint.safetensors', 'model.safetensors', 'log.jsonl'].map((f) => join(run, f));
  return { run, files, before: hashes(files) };
}

test('a fresh train into an --out holding a run is refused (exit 2, nothing touched) unless --overwrite; --resume continues it', async () => {
  const { run, files, before } = await trainedRun('again', 1);
  const b = await cait('train', ...trainArgs, '--epochs', '1', '--out', run);
  assert.is(b.code, 2, b.stderr);
  assert.match(b.stderr, new RegExp(`--out ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} already holds a run \\(model\\.safetensors, checkpoint\\.safetensors, log\\.jsonl\\): continue it with --resume .*checkpoint\\.safetensors, choose another --out, or add --overwrite`));
  assert.equal(hashes(files), before, 'the earlier run changed');
  // a log alone (a run killed in its first epoch, or a user's file) counts too
  const logOnly = join(dir, 'log-only');
  mkdirSync(logOnly);
  writeFileSync(join(logOnly, 'log.jsonl'), '{"epoch":1}\n');
  assert.is((await cait('train', ...trainArgs, '--epochs', '1', '--out', logOnly)).code, 2);
  assert.is(readFileSync(join(logOnly, 'log.jsonl'), 'utf8'), '{"epoch":1}\n');
  const c = await cait('train', ...trainArgs, '--epochs', '2', '--out', run, '--resume', join(run, 'checkpoint.safetensors'), '--json');
  assert.is(c.code, 0, c.stderr);
  assert.equal(readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch), [1, 2]);
  const d = await cait('train', ...trainArgs, '--epochs', '1', '--out', run, '--overwrite', '--json');
  assert.is(d.code, 0, d.stderr);
  assert.equal(readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch), [1], 'a fresh log');
});

test('NaN training: resuming with --lr 1e30 stops (exit 1) and leaves the checkpoint, model and log byte for byte', async () => {
  const { run, files, before } = await trainedRun('nan', 2);
  const r = await cait('train', ...trainArgs, '--epochs', '4', '--out', run, '--resume', join(run, 'checkpoint.safetensors'), '--lr', '1e30');
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /non-finite (loss|gradient) .* training stopped; the last good checkpoint .* is kept/);
  assert.equal(hashes(files), before, 'a file of the run changed');
  assert.equal(readdirSync(run).sort(), ['checkpoint.safetensors', 'log.jsonl', 'model.safetensors']);
  // --nan skip: the run goes on, counting the skipped batches in the log
  const s = await cait('train', ...trainArgs, '--epochs', '3', '--out', run, '--resume', join(run, 'checkpoint.safetensors'), '--lr', '1e30', '--nan', 'skip', '--json');
  assert.is(s.code, 0, s.stderr);
  assert.ok(s.json.skipped > 0, `skipped ${s.json.skipped}`);
  const lines = readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.map((l) => l.epoch), [1, 2, 3]);
  assert.is(lines[2].skipped, s.json.skipped);
  for (const t of readSafetensorsFile(join(run, 'checkpoint.safetensors')).tensors.values()) assert.ok(t.data.every(Number.isFinite), 'a non-finite checkpoint');
});

test('a resume checkpoint with a bad train_state (RNG state, running loss, counts) is refused naming the file and the field; nothing of the run changes', async () => {
  const { run, files, before } = await trainedRun('badstate', 1);
  const src = readSafetensorsFile(join(run, 'checkpoint.safetensors')), st = JSON.parse(src.metadata.train_state);
  const mid = { batch: 1, epochRng: st.rng, lossSum: 1.5, seen: 32 };
  const ck = join(dir, 'badstate.safetensors');
  for (const [patch, re] of [
    // Rng's bare TypeError ("Rng.setState: expected ..."), naming no file
    [{ rng: { s: [1, 2, 3] } }, /badstate\.safetensors: train_state\.rng: expected \{ s: \[4 uint32\], spare \}, got \{"s":\[1,2,3\]\}/],
    [{ ...mid, epochRng: 'zz' }, /train_state\.epochRng: expected \{ s: \[4 uint32\], spare \}, got "zz"/],
    // these went on into the log: "loss": null, "skipped": -3
    [{ ...mid, lossSum: 'abc' }, /train_state\.lossSum: expected a finite number .*got "abc"/],
    [{ ...mid, seen: 'x' }, /train_state\.seen: expected a non-negative integer count, got "x"/],
    [{ ...mid, skipped: -3 }, /train_state\.skipped: expected a non-negative integer count, got -3/],
  ] as Array<[Record<string, unknown>, RegExp]>) {
    writeSafetensorsFile(ck, src.tensors, { ...src.metadata, train_state: JSON.stringify({ ...st, ...patch }) });
    const r = await cait('train', ...trainArgs, '--epochs', '2', '--out', run, '--resume', ck);
    assert.is(r.code, 1, `${JSON.stringify(patch)}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re);
  }
  assert.equal(hashes(files), before, 'a file of the run changed');
});

test('resume never duplicates log lines; the model file matches the checkpoint it resumes from', async () => {
  const run = join(dir, 'dedupe');
  const a = await cait('train', ...trainArgs, '--epochs', '3', '--stop-after', '2', '--out', run);
  assert.is(a.code, 0, a.stderr);
  const ckpt2 = join(dir, 'epoch2.safetensors');
  copyFileSync(join(run, 'checkpoint.safetensors'), ckpt2);
  for (let k = 0; k < 2; k++) {
    const r = await cait('train', ...trainArgs, '--epochs', '3', '--out', run, '--resume', ckpt2, '--json');
    assert.is(r.code, 0, r.stderr);
    const epochs = readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
    assert.equal(epochs, [1, 2, 3], `resume ${k + 1}: log epochs ${epochs}`);
  }
  const m = readSafetensorsFile(join(run, 'model.safetensors')).metadata, c = JSON.parse(readSafetensorsFile(join(run, 'checkpoint.safetensors')).metadata.train_state);
  assert.equal([m.epoch, m.step], [String(c.epoch), String(c.step)], 'model.safetensors and the checkpoint are of different steps');
  // another batch size or limit would replay other batches: refused, naming the flag and the checkpoint's value
  const batch = trainArgs[trainArgs.indexOf('--batch') + 1];
  const other = trainArgs.map((a, i) => (trainArgs[i - 1] === '--batch' ? String(Number(batch) * 2) : a));
  const b = await cait('train', ...other, '--epochs', '3', '--out', run, '--resume', ckpt2);
  assert.is(b.code, 1, b.stderr);
  assert.match(b.stderr, new RegExp(`the checkpoint was trained with --batch ${batch}, this run has --batch ${Number(batch) * 2}; .*give --batch ${batch}`));
  // a finished run resumed: no epoch left, said as such (was 'loss undefined')
  const done = await cait('train', ...trainArgs, '--epochs', '3', '--out', run, '--resume', join(run, 'checkpoint.safetensors'));
  assert.is(done.code, 0, done.stderr);
  assert.match(done.stdout, /no epoch left to run/);
  assert.not.match(done.stdout, /undefined/);
});

test('--save-every writes a resumable mid-epoch checkpoint with the model file of the same step', async () => {
  const run = join(dir, 'every');
  // 128 images, batch 32: 4 steps per epoch; --save-every 3 saves after step 3 (mid-epoch 1), the epoch end after step 4
  const r = await cait('train', ...trainArgs, '--epochs', '1', '--save-every', '3', '--out', run);
  assert.is(r.code, 0, r.stderr);
  const st = JSON.parse(readSafetensorsFile(join(run, 'checkpoint.safetensors')).metadata.train_state);
  assert.equal([st.epoch, st.step, st.batch], [1, 4, undefined], 'the epoch-end checkpoint replaces the mid-epoch one');
  const help = await cait('train', '--help');
  assert.match(help.stdout, /--save-every STEPS/);
});

/** tiny.safetensors rewritten: its tensors (one changed by `edit`) under the config `cfg`. */
function rewrite(file: string, cfg: unknown, edit?: (name: string, data: Float32Array) => void): string {
  const src = readSafetensorsFile(tiny);
  const tensors = new Map([...src.tensors].map(([n, t]) => { const data = Float32Array.from(t.data as Float32Array); edit?.(n, data); return [n, { shape: t.shape, data }]; }));
  writeSafetensorsFile(file, tensors, { format: 'pt', config: JSON.stringify(cfg) });
  return file;
}

/** pixel_values [B, 1, S, S] of a standard-normal-ish pattern, as forward reads them. */
function pixels(file: string, B: number, S: number): string {
  const data = new Float32Array(B * S * S).map((_, i) => Math.sin(i * 0.37));
  writeSafetensorsFile(file, new Map([['pixel_values', { shape: [B, 1, S, S], data }]]));
  return file;
}

/** Runs with CAIT_MAX_MODEL_BYTES set, restoring it after. */
async function withLimit<T>(bytes: number, f: () => Promise<T>): Promise<T> {
  const old = process.env.CAIT_MAX_MODEL_BYTES;
  process.env.CAIT_MAX_MODEL_BYTES = String(bytes);
  try { return await f(); } finally { if (old === undefined) delete process.env.CAIT_MAX_MODEL_BYTES; else process.env.CAIT_MAX_MODEL_BYTES = old; }
}

test('a ConfigError from the loader is exit 1 naming the file and the field, on every command that loads a model; no output written', async () => {
  const bad = rewrite(join(dir, 'bad-heads.safetensors'), { ...tinyCfg, numHeads: 3 });
  const inp = pixels(join(dir, 'cfg-in.safetensors'), 2, 28), out = join(dir, 'cfg-out'), before = hashes([bad, inp]);
  const runs: string[][] = [
    ['forward', '--model', bad, '--input', inp, '--out', out], ['eval', '--model', bad, '--limit', '10'], ['macs', '--model', bad],
    ['bench', '--model', bad, '--runs', '1'], ['export', '--model', bad, '--onnx', out], ['quantize', '--model', bad, '--out', out],
    ['predict', '--model', bad, '--image', join(dir, 'none.png')], ['compress', '--model', bad, '--structure-only', '--target-macs', '1.5', '--out', out],
  ];
  for (const args of runs) {
    const r = await cait(...args);
    assert.is(r.code, 1, `${args[0]}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /bad-heads\.safetensors: config field 'numHeads': expected a divisor of embedDim 16, got 3/, `${args[0]}: ${r.stderr}`);
    assert.is(r.stdout, '', `${args[0]} printed ${r.stdout}`);
  }
  assert.not.ok(existsSync(out), 'a refused command wrote its output');
  assert.equal(hashes([bad, inp]), before);
});

test('--preset names the architecture of weights without a config (macs and bench too); beside a config it is a usage error, not merged', async () => {
  const bare = join(FIX, 'model.safetensors');
  const m = await cait('macs', '--model', bare, '--preset', 'micro', '--json');
  assert.is(m.code, 0, m.stderr);
  assert.ok(m.json.macs > 0, m.stdout);
  const b = await cait('bench', '--model', bare, '--preset', 'micro', '--runs', '1', '--warmup', '0', '--json');
  assert.is(b.code, 0, b.stderr);
  // merged into the file's own config, vit_seg64 had made the classifier a segmenter; beside a config.json it was ignored
  for (const [model, own] of [[tiny, /__metadata__\.config/], [join(ROOT, '../shared/fixtures/hf-vit'), /hf-vit\/config\.json/]] as const) {
    for (const cmd of [['predict', '--image', join(ROOT, 'web/public/samples/07-sneaker.png')], ['macs'], ['eval', '--limit', '10']]) {
      const r = await cait(cmd[0], '--model', model, '--preset', 'vit_seg64', ...cmd.slice(1));
      assert.is(r.code, 2, `${cmd[0]} ${model}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, /--preset vit_seg64: .*config field '\(preset\)': expected no preset: the model has its own config/);
      assert.match(r.stderr, own);
      assert.is(r.stdout, '');
    }
  }
});

test('--allow-nonfinite: a NaN weight is refused by name (exit 1) unless the flag is given; --allow-nonfinite without --model is a usage error', async () => {
  const nan = rewrite(join(dir, 'nan.safetensors'), tinyCfg, (n, d) => { if (n === 'blocks.0.attn.qkv.weight') d[5] = NaN; });
  const inp = pixels(join(dir, 'nan-in.safetensors'), 2, 28), out = join(dir, 'nan-out.safetensors');
  const refused = await cait('forward', '--model', nan, '--input', inp, '--out', out);
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /nan\.safetensors: tensor 'blocks\.0\.attn\.qkv\.weight' holds NaN at element 5 .*--allow-nonfinite/);
  assert.not.ok(existsSync(out));
  const ok = await cait('forward', '--model', nan, '--input', inp, '--out', out, '--allow-nonfinite', '--json');
  assert.is(ok.code, 0, ok.stderr);
  assert.equal(ok.json.shape, [2, 10]);
  const logits = readSafetensorsFile(out).tensors.get('logits')!.data;
  assert.ok(Array.from(logits).some((v) => Number.isNaN(v)), 'the NaN weight was loaded as it is');
  const m = await cait('macs', '--model', nan, '--allow-nonfinite', '--json');
  assert.is(m.code, 0, m.stderr);
  const noModel = await cait('bench', '--preset', 'micro', '--allow-nonfinite');
  assert.is(noModel.code, 2);
  assert.match(noModel.stderr, /--allow-nonfinite applies to a loaded model's weights: it needs --model/);
});

test('weights that overflow (finite, 3e38): predict, eval and segment exit 1 naming the image or split, nothing printed or written (they printed NaN%, scored 10%, drew all background, exit 0)', async () => {
  const huge = rewrite(join(dir, 'huge-head.safetensors'), tinyCfg, (n, d) => { if (n === 'head.weight') d.fill(3e38); });
  const png = join(dir, 'grey.png');
  writeFileSync(png, encodePng(28, 28, new Uint8Array(28 * 28 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256))));
  for (const json of [[], ['--json']]) {
    const p = await cait('predict', '--model', huge, '--image', png, ...json);
    assert.is(p.code, 1, p.stderr);
    assert.match(p.stderr, /grey\.png: gives non-finite logits: the inputs are within \d\.\d+ in magnitude, as preprocessed images are: the model's own weights overflow/);
    assert.is(p.stdout, '', `printed ${p.stdout}`);
  }
  // eval scored the NaN rows as class 0 (10% accuracy, exit 0)
  const e = await cait('eval', '--model', huge, '--limit', '20', '--json');
  assert.is(e.code, 1, e.stderr);
  assert.match(e.stderr, /model 'tiny28' gives non-finite logits on images 0\.\.19 of the split: the inputs are within .* the model's own weights overflow.*; no scores/);
  assert.is(e.stdout, '');
  const seg = readSafetensorsFile(join(ROOT, 'models/seg-dense.safetensors'));
  const segHuge = join(dir, 'seg-huge.safetensors'), mask = join(dir, 'seg-huge.png');
  writeSafetensorsFile(segHuge, new Map([...seg.tensors].map(([n, t]) => [n, { shape: t.shape, data: n === 'head.weight' ? new Float32Array(t.data.length).fill(3e38) : Float32Array.from(t.data) }])), seg.metadata);
  const s = await cait('segment', '--model', segHuge, '--scene', '0', '--out', mask);
  assert.is(s.code, 1, s.stderr);
  assert.match(s.stderr, /test scene 0: gives non-finite logits: .*the model's own weights overflow.*; nothing written/);
  assert.not.ok(existsSync(mask), 'a mask was written');
});

test('--img-size N runs a model at another input size (position embedding resampled, with a message); sizes that do not fit are usage errors naming the flag', async () => {
  // tiny: 28x28, patch 7 (a 4x4 grid); at 42 a 6x6 grid: 1 + 36 tokens
  const m = await cait('macs', '--model', tiny, '--img-size', '42', '--json');
  assert.is(m.code, 0, m.stderr);
  assert.equal(m.json.tokens, [37]);
  assert.match(m.stderr, /position embedding resampled from a 4x4 to a 6x6 token grid/);
  const inp = pixels(join(dir, 'img42.safetensors'), 3, 42), out = join(dir, 'img42-out.safetensors');
  const f = await cait('forward', '--model', tiny, '--img-size', '42', '--input', inp, '--out', out, '--json');
  assert.is(f.code, 0, f.stderr);
  assert.equal(f.json.shape, [3, 10]);
  assert.ok(readSafetensorsFile(out).tensors.get('logits')!.data.every(Number.isFinite));
  // the input must then be at the new size
  const wrong = await cait('forward', '--model', tiny, '--img-size', '42', '--input', pixels(join(dir, 'img28.safetensors'), 1, 28), '--out', join(dir, 'never-42'));
  assert.is(wrong.code, 1, 'the input file is data');
  assert.match(wrong.stderr, /expected \[B, 1,42,42\]/);
  // distilled DeiT: both prefix tokens kept, 6x6 -> 8x8 patches
  const d = await cait('macs', '--model', join(ROOT, '../shared/fixtures/hf-deit-distilled'), '--img-size', '64', '--json');
  assert.is(d.code, 0, d.stderr);
  assert.equal(d.json.tokens, [66, 66]);
  for (const [args, re] of [
    [['macs', '--model', tiny, '--img-size', '30'], /--img-size 30: .*config field 'patchSize': expected a divisor of imgSize 30, got 7/],
    [['macs', '--model', tiny, '--img-size', '21'], /--img-size 21: .*config field 'dataSize'/],
    [['macs', '--model', tiny, '--img-size', '0'], /--img-size must be an integer in 1\.\.4096, got '0'/],
    [['bench', '--preset', 'micro', '--img-size', '64'], /--img-size runs a loaded model at another input size .*it needs --model/],
  ] as Array<[string[], RegExp]>) {
    const r = await cait(...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re, r.stderr);
  }
});

test('a user-chosen batch is checked against the byte limit before any activation is allocated, naming the flag', async () => {
  // DeiT-Base at batch 256: about 3.3 GB estimated, over the default 2 GiB; refused before the model is made
  const big = await cait('bench', '--preset', 'deit_base_patch16_224', '--batch', '256');
  assert.is(big.code, 2, big.stderr);
  assert.match(big.stderr, /--batch 256: the weights and a forward of 256 images of deit_base_patch16_224 \(224x224\) take an estimated \d\.\d+ GiB, over the limit 2\.00 GiB \(CAIT_MAX_MODEL_BYTES\); at most \d+ fit/);
  const fromScratch = await cait('train', '--preset', 'deit_base_patch16_224', '--data', join(dir, 'no-such-folder'), '--epochs', '1', '--batch', '4096', '--out', join(dir, 'never-base'));
  assert.is(fromScratch.code, 2, fromScratch.stderr);
  assert.match(fromScratch.stderr, /--batch 4096: the weights and a forward of 4096 images of deit_base_patch16_224 .*at most \d+ fit/);
  assert.not.ok(existsSync(join(dir, 'never-base', 'model.safetensors')));
  const fit = Number(/at most (\d+) fit/.exec(big.stderr)![1]);
  assert.ok(estimateBytes(getPreset('deit_base_patch16_224'), fit) <= maxModelBytes() && estimateBytes(getPreset('deit_base_patch16_224'), fit + 1) > maxModelBytes(), `largest batch ${fit}`);
  // a limit that the model and 4 images fit: larger batches are refused on every command that takes one
  const limit = estimateBytes(tinyCfg, 4), inp = pixels(join(dir, 'b8.safetensors'), 8, 28), out = join(dir, 'b8-out.safetensors');
  await withLimit(limit, async () => {
    for (const [args, re] of [
      [['bench', '--model', tiny, '--batch', '8', '--runs', '1'], /--batch 8: .* at most 4 fit/],
      [['eval', '--model', tiny, '--batch', '100'], /--batch 100: .* at most 4 fit/],
      [['forward', '--model', tiny, '--input', inp, '--out', out], /--input .*b8\.safetensors: pixel_values batch 8: .* at most 4 fit/],
      [['compress', '--model', tiny, '--structure-only', '--target-macs', '1.5', '--latency-batch', '5', '--out', out], /--latency-batch 5: .* at most 4 fit/],
      [['train', '--model', tiny, '--epochs', '1', '--batch', '16', '--out', join(dir, 'b16')], /--batch 16: .* at most 4 fit/],
    ] as Array<[string[], RegExp]>) {
      const r = await cait(...args);
      assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, re, r.stderr);
    }
    const ok = await cait('bench', '--model', tiny, '--batch', '4', '--runs', '2', '--warmup', '0', '--json');
    assert.is(ok.code, 0, ok.stderr);
    assert.is(ok.json.batch, 4);
  });
  assert.not.ok(existsSync(out));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
