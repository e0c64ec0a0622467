// cait convert (issue 15: "whatever is loaded is saved back as this project's
// safetensors with the config, labels and preprocessing in __metadata__, so
// every later command needs only the one file"), and cait forward on the three
// model-folder fixtures: logits within 1e-4 of PyTorch from the folder, from
// the converted file, and from the transformers layout written back; the
// library's exports (src/index.ts) read the converted bytes and tell a bad
// config by its ConfigError. Outputs that are inputs and layouts that cannot
// hold the model are refused with nothing written.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cait } from './cait.js';
import { close } from './util.js';
import { ConfigError, loadModel, modelFromCheckpoint, saveHf, readSafetensorsFile, setBackend, loadWasmSync, Tensor, noGrad, scope } from '../src/index.js';
import { createHash } from 'node:crypto';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, '../shared/fixtures');
const FIXTURES = ['hf-vit', 'hf-deit-distilled', 'timm-deit-distilled'] as const;
const dir = mkdtempSync(join(tmpdir(), 'cait-convert-'));
const expected = (d: string) => readSafetensorsFile(join(FIX, d, 'expected.safetensors')).tensors.get('logits')!.data as Float32Array;
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

const test = suite('cait convert');
test.before(() => setBackend(loadWasmSync('simd')));

/** `cait forward` on `model` with the fixture's input: the logits it wrote. */
async function forward(model: string, d: string, tag: string): Promise<Float32Array> {
  const out = join(dir, `${tag}.logits.safetensors`);
  const r = await cait('forward', '--model', model, '--input', join(FIX, d, 'input.safetensors'), '--out', out, '--json');
  assert.is(r.code, 0, `${tag}: ${r.stderr}`);
  return readSafetensorsFile(out).tensors.get('logits')!.data as Float32Array;
}

for (const d of FIXTURES) {
  test(`${d}: cait forward --model FOLDER, and the converted one file, within 1e-4 of PyTorch; config, labels and preprocessing in __metadata__`, async () => {
    close(await forward(join(FIX, d), d, `${d}-folder`), expected(d), 1e-4, 0, `${d} folder via cait forward:`);
    const file = join(dir, `${d}.safetensors`);
    const r = await cait('convert', '--model', join(FIX, d), '--out', file, '--json');
    assert.is(r.code, 0, r.stderr);
    assert.equal([r.json.layout, r.json.distilled, r.json.labels, r.json.classes, r.json.out], [d.startsWith('hf') ? 'hf' : 'timm', d !== 'hf-vit', true, 5, file]);
    const folder = loadModel(join(FIX, d));
    const meta = readSafetensorsFile(file).metadata, cfg = JSON.parse(meta.config);
    assert.equal(cfg, JSON.parse(JSON.stringify(folder.model.cfg)), 'the saved config is the loaded one');
    assert.equal(cfg.classes, ['tabby cat', 'golden retriever', 'teapot', 'volcano', 'espresso']);
    assert.is(cfg.preprocess.kind, d.startsWith('hf') ? 'hf' : 'timm');
    folder.model.dispose();
    close(await forward(file, d, `${d}-file`), expected(d), 1e-4, 0, `${d} converted file via cait forward:`);
    // the library reads the same bytes with no folder beside them
    const { model } = modelFromCheckpoint({ weights: readFileSync(file) }, {}, file);
    const x = readSafetensorsFile(join(FIX, d, 'input.safetensors')).tensors.get('pixel_values')!;
    close(noGrad(() => scope(() => model.forward(Tensor.from(x.data as Float32Array, x.shape)).toArray())), expected(d), 1e-4, 0, `${d} modelFromCheckpoint:`);
    model.dispose();
  });
}

test('--hf DIR: a timm checkpoint written in the transformers layout loads back as hf with the same logits; --out and --hf together', async () => {
  const d = 'timm-deit-distilled', hf = join(dir, 'timm-as-hf'), file = join(dir, 'both.safetensors');
  const r = await cait('convert', '--model', join(FIX, d), '--hf', hf, '--out', file, '--json');
  assert.is(r.code, 0, r.stderr);
  for (const f of ['config.json', 'preprocessor_config.json', 'model.safetensors']) assert.ok(existsSync(join(hf, f)), f);
  const back = loadModel(hf);
  assert.is(back.layout, 'hf');
  assert.is(back.model.numPrefixTokens, 2);
  back.model.dispose();
  close(await forward(hf, d, 'timm-as-hf'), expected(d), 1e-4, 0, 'timm -> transformers layout:');
  close(await forward(file, d, 'both'), expected(d), 1e-4, 0, 'timm -> one file:');
  // saveHf from the package entry writes the same layout
  const lib = join(dir, 'lib-hf'), m = loadModel(file).model;
  saveHf(lib, m);
  m.dispose();
  assert.is(readFileSync(join(lib, 'model.safetensors')).length, readFileSync(join(hf, 'model.safetensors')).length);
});

test('refusals: no output, an output that is an input, a compact model to --hf, a quantized file; nothing written, exit codes 2 / 1', async () => {
  const src = join(dir, 'src-folder');
  cpSync(join(FIX, 'hf-vit'), src, { recursive: true });
  const before = ['model.safetensors', 'config.json', 'preprocessor_config.json'].map((f) => sha(join(src, f)));
  const cases: Array<[string[], number, RegExp]> = [
    [['convert', '--model', src], 2, /give --out FILE\.safetensors, --hf DIR, or both/],
    [['convert', '--out', join(dir, 'x.safetensors')], 2, /missing --model/],
    [['convert', '--model', src, '--out', join(src, 'model.safetensors')], 2, /--out .*model\.safetensors/],
    [['convert', '--model', src, '--hf', src], 2, /--hf .*(model\.safetensors|config\.json)/],
    [['convert', '--model', join(ROOT, 'models/fmnist-cdcp.safetensors'), '--out', join(dir, 'cdcp.safetensors'), '--hf', join(dir, 'cdcp-hf')], 1, /CDCP-compact model .* no transformers layout; --out only/],
    [['convert', '--model', join(ROOT, 'models/fmnist-dense-int8.safetensors'), '--out', join(dir, 'int8.safetensors')], 1, /is quantized .*cait convert writes float models/],
    [['convert', '--model', src, '--img-size', '36', '--out', join(dir, 'odd.safetensors')], 2, /--img-size 36: .*patchSize/],
    // the two outputs: --hf through a file, --out inside --hf (its model.safetensors), --out as --hf
    [['convert', '--model', src, '--out', join(dir, 'x.safetensors'), '--hf', join(dir, 'afile')], 2, /--hf .*afile' is a file, not a folder/],
    [['convert', '--model', src, '--out', join(dir, 'hfx', 'model.safetensors'), '--hf', join(dir, 'hfx')], 2, /--out .*hfx\/model\.safetensors is --hf .*hfx or a file it writes/],
    [['convert', '--model', src, '--out', join(dir, 'hfx'), '--hf', join(dir, 'hfx')], 2, /is --hf .* or a file it writes/],
    // an --hf folder that cannot be made (a name over NAME_MAX): refused before --out is written (it was left behind)
    [['convert', '--model', src, '--out', join(dir, 'long.safetensors'), '--hf', join(dir, 'a'.repeat(300))], 1, /could not make the folder .*a{300} \(ENAMETOOLONG\)/],
  ];
  writeFileSync(join(dir, 'afile'), 'x');
  for (const [args, code, re] of cases) {
    const r = await cait(...args);
    assert.is(r.code, code, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re, r.stderr);
  }
  assert.equal(['model.safetensors', 'config.json', 'preprocessor_config.json'].map((f) => sha(join(src, f))), before, 'an input changed');
  for (const f of ['x.safetensors', 'cdcp.safetensors', 'cdcp-hf', 'int8.safetensors', 'odd.safetensors', 'hfx', 'long.safetensors']) assert.not.ok(existsSync(join(dir, f)), `${f} was written`);
});

test('--img-size: the converted file runs at the new size (position embedding resampled once, saved so)', async () => {
  const file = join(dir, 'at64.safetensors');
  const r = await cait('convert', '--model', join(FIX, 'hf-deit-distilled'), '--img-size', '64', '--out', file, '--json');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /position embedding resampled from a 6x6 to a 8x8 token grid/);
  assert.is(r.json.img_size, 64);
  const back = loadModel(file);
  assert.equal(back.model.pos_embed.shape, [1, 2 + 64, 48]);
  assert.is(back.model.cfg.preprocess!.size, 64);
  back.model.dispose();
});

test('the package entry exports ConfigError: a bad config in bytes is one, naming the buffer and the field', () => {
  const file = join(dir, 'hf-vit.safetensors');
  const src = readSafetensorsFile(file);
  const bad = { ...JSON.parse(src.metadata.config), numHeads: 5 };
  let err: unknown;
  try { modelFromCheckpoint({ weights: readFileSync(join(FIX, 'micro-vit/model.safetensors')) }, { config: bad }, 'bad.safetensors'); } catch (e) { err = e; }
  assert.instance(err, ConfigError);
  assert.match((err as Error).message, /^bad\.safetensors: config field 'numHeads': expected a divisor of embedDim 48, got 5/);
  assert.is((err as ConfigError).field, 'numHeads');
});

test('--help lists convert; cait --help too', async () => {
  const r = await cait('--help');
  assert.match(r.stdout, /^ {2}convert /m);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
