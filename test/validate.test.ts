// The config validator and the weight checks (issue 16): every hostile config
// the issue lists ends in a ConfigError naming the file and the field with
// expected against got, before anything is allocated (no tensor made, memory
// estimate checked first); duplicate JSON keys, integer dtypes and non-finite
// weights are refused; unknown fields are kept; the CLI exits 1 naming them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setBackend, liveTensorCount } from '../src/tensor.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { createModel, loadModel, saveModel } from '../src/nn/model.js';
import { modelFromBytes } from '../src/nn/load-bytes.js';
import { ConfigError, validateConfig, estimateBytes, maxModelBytes, parameterShapes, parseJsonStrict, DEFAULT_MAX_MODEL_BYTES } from '../src/nn/validate.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { SafetensorsError, findDuplicateKey } from '../src/io/safetensors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cait-validate-'));

/** A safetensors file from a raw header object (any JSON text) and data bytes. */
function rawFile(headerText: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(headerText), pad = Math.ceil(h.length / 8) * 8;
  const out = new Uint8Array(8 + pad + data.length);
  new DataView(out.buffer).setUint32(0, pad, true);
  out.set(h, 8); out.fill(0x20, 8 + h.length, 8 + pad); out.set(data, 8 + pad);
  return out;
}
/** The header of a saved file, as an object, and its data. */
function split(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

const test = suite('validate: configs, weights and the memory limit');
let good: Uint8Array, fmnist: VitConfig;
test.before(() => {
  setBackend(loadWasmSync('relaxed'));
  fmnist = getPreset('vit_fmnist');
  const m = createModel(fmnist, 1), f = join(tmp, 'good.safetensors');
  saveModel(f, m);
  m.dispose();
  good = new Uint8Array(readFileSync(f));
});

/** good's weights with __metadata__.config replaced by `config` (any JSON value or raw text). */
const withConfig = (config: unknown, raw = false): Uint8Array => {
  const { header, data } = split(good);
  header.__metadata__.config = raw ? config : JSON.stringify(config);
  return rawFile(JSON.stringify(header), data);
};
const patch = (p: Record<string, unknown>): Uint8Array => withConfig({ ...fmnist, ...p });

/** Loading throws a ConfigError for `field`, names the file, allocates nothing. */
function rejects(bytes: Uint8Array, field: RegExp | string, what: string): ConfigError {
  const before = liveTensorCount();
  let err: unknown = null;
  try { modelFromBytes(bytes, {}, 'hostile.safetensors').model.dispose(); } catch (e) { err = e; }
  assert.ok(err instanceof ConfigError, `${what}: expected a ConfigError, got ${err instanceof Error ? `${err.name}: ${err.message}` : 'no error'}`);
  const e = err as ConfigError;
  assert.is(e.file, 'hostile.safetensors', what);
  assert.ok(typeof field === 'string' ? e.field === field : field.test(e.field), `${what}: field '${e.field}'`);
  assert.match(e.message, /^hostile\.safetensors: config field '.+': expected .+, got .+/, what);
  assert.is(liveTensorCount(), before, `${what}: nothing allocated`);
  return e;
}

test("issue 16's configs: each a ConfigError naming the field, expected vs got", () => {
  const cases: Array<[string, Record<string, unknown>, RegExp | string]> = [
    ['dataSize 1e9', { dataSize: 1e9 }, 'dataSize'],
    ['depth 1e6', { depth: 1e6 }, 'depth'],
    ['embedDim 1e9', { embedDim: 1e9 }, 'embedDim'],
    ['numHeads 3 with embedDim 64', { numHeads: 3 }, 'numHeads'],
    ['eps -1', { eps: -1 }, 'eps'],
    ['eps NaN (as null)', { eps: null }, 'eps'],
    ['std [0]', { std: [0] }, 'std[0]'],
    // > 0 in f64, 0 in f32: every input Infinity, predict printed NaN% (exit 0)
    ['std [1e-300]', { std: [1e-300] }, 'std[0]'],
    ['mean []', { mean: [] }, 'mean'],
    ['merge 42', { merge: 42 }, 'merge'],
    ['merge past the depth', { merge: 'h@6' }, 'merge'],
    ['merge past the grid', { merge: 'h@0,h@1,h@2,h@3' }, 'merge'],
    ['merge garbage', { merge: 'x@1' }, 'merge'],
    ['imgSize 1e9', { imgSize: 1e9 }, 'imgSize'],
    ['patch does not divide', { patchSize: 5 }, 'patchSize'],
    ['patchSize -4', { patchSize: -4 }, 'patchSize'],
    ['inChans -1', { inChans: -1 }, 'inChans'],
    ['inChans 0', { inChans: 0 }, 'inChans'],
    ['numClasses 0', { numClasses: 0 }, 'numClasses'],
    ['numClasses 2.5', { numClasses: 2.5 }, 'numClasses'],
    ['mlpRatio 0', { mlpRatio: 0 }, 'mlpRatio'],
    ['mlpRatio 1/3', { mlpRatio: 1 / 3 }, 'mlpRatio'],
    ['qkvBias "yes"', { qkvBias: 'yes' }, 'qkvBias'],
    ['classes not matching numClasses', { classes: ['a', 'b'] }, 'classes'],
    ['widths of 5 blocks for depth 6', { widths: Array(5).fill({ qk: 16, v: 16, mlp: 256 }) }, 'widths'],
    ['widths wider than dense', { widths: Array(6).fill({ qk: 17, v: 16, mlp: 256 }) }, 'widths[0].qk'],
    ['task "detect"', { task: 'detect' }, 'task'],
    ['scenes.maxItems 1e9', { task: 'segment', imgSize: 64, scenes: { data: 'fashion-mnist', size: 64, minItems: 2, maxItems: 1e9, threshold: 32, seed: 0 } }, 'scenes.maxItems'],
    ['scenes.data unknown', { task: 'segment', imgSize: 64, scenes: { data: 'cifar', size: 64, minItems: 2, maxItems: 4, threshold: 32, seed: 0 } }, 'scenes.data'],
    ['preprocess size != imgSize', { inChans: 3, mean: [0, 0, 0], std: [1, 1, 1], preprocess: { kind: 'timm', size: 224, interpolation: 'bicubic', cropPct: 0.9, mean: [0, 0, 0], std: [1, 1, 1] } }, 'preprocess.size'],
    ['preprocess cropPct 0', { preprocess: { kind: 'timm', size: 32, interpolation: 'bicubic', cropPct: 0, mean: fmnist.mean, std: fmnist.std } }, 'preprocess.cropPct'],
    ['distilled "yes"', { distilled: 'yes' }, 'distilled'],
  ];
  for (const [what, p, field] of cases) rejects(patch(p), field, what);
  rejects(withConfig(null), '(config)', 'config null');
  rejects(withConfig([1, 2]), '(config)', 'config an array');
  rejects(withConfig('{"name": "x",', true), '__metadata__.config', 'config not JSON');
  const e = rejects(patch({ numHeads: 3, embedDim: 64 }), 'numHeads', 'message');
  assert.match(e.message, /expected a divisor of embedDim 64, got 3/);
  assert.match(rejects(patch({ std: [1e-7] }), 'std[0]', 'std 1e-7').message, /expected a finite number in \[1e-6, 1e6\], got 1e-7/);
});

test('depth 7 on a 6-block file: an error naming the file and the missing tensors, nothing left allocated', () => {
  const before = liveTensorCount();
  assert.throws(() => modelFromBytes(patch({ depth: 7 }), {}, 'm.safetensors'),
    (e: Error) => e instanceof SafetensorsError && /m\.safetensors: checkpoint does not match the model:\n  missing 12 tensor\(s\): 'blocks\.6\.norm1\.weight'/.test(e.message));
  assert.is(liveTensorCount(), before);
});

test('duplicate keys: in the config, in __metadata__, in the header', () => {
  const cfgText = JSON.stringify(fmnist).replace('"depth":6', '"depth":6,"depth":2');
  rejects(withConfig(cfgText, true), '__metadata__.config.depth', 'duplicate config key');
  const { header, data } = split(good);
  const text = JSON.stringify(header);
  const dupMeta = text.replace('"__metadata__":{', '"__metadata__":{"config":"{}",');
  assert.throws(() => modelFromBytes(rawFile(dupMeta, data), {}, 'd.safetensors'), /d\.safetensors: header has the key '__metadata__\.config' twice/);
  const dupTop = text.replace(/^\{/, '{"__metadata__":{"format":"pt"},');
  assert.throws(() => modelFromBytes(rawFile(dupTop, data), {}, 'd.safetensors'), /header has the key '__metadata__' twice/);
  assert.is(findDuplicateKey('{"a":{"b":1},"c":[{"b":2},{"b":3}],"s":"{\\"a\\":1,\\"a\\":2}"}'), null, 'keys in different objects, and inside strings, are not duplicates');
  assert.throws(() => parseJsonStrict('{"x":1,"y":{"z":1,"z":2}}', 'c.json', 'config'), /c\.json: config field 'config\.y\.z': expected each key once/);
});

test('values nested past 32 arrays or objects: a ConfigError naming the field (they overflowed the stack: a RangeError, not a project error)', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const cfgText = JSON.stringify(fmnist);
  for (const [text, field] of [
    [cfgText.replace('"name":"', `"name":${deep(200_000)},"x":"`), '__metadata__.config.name'],
    [cfgText.replace('"mean":', `"futureField":${deep(5000)},"mean":`), '__metadata__.config.futureField'], // kept, it crashed the next save
    [deep(200_000), '__metadata__.config[0]'],
  ] as const) {
    const e = rejects(withConfig(text, true), field, field);
    assert.match(e.message, /expected arrays and objects nested at most 32 deep, got a value nested deeper/);
  }
  // a transformers folder: config.json and preprocessor_config.json alike
  assert.throws(() => parseJsonStrict(`{"resample":${deep(100_000)}}`, 'p.json', 'preprocessor_config'), /p\.json: config field 'preprocessor_config\.resample': expected arrays and objects nested at most 32 deep/);
  assert.throws(() => parseJsonStrict(`{"caitjs":{"name":${deep(5000)}}}`, 'c.json', 'config'), /c\.json: config field 'config\.caitjs': expected arrays/);
  assert.equal(parseJsonStrict(`{"a":${deep(31)}}`, 'c.json', 'config'), JSON.parse(`{"a":${deep(31)}}`), '32 deep in all is fine');
});

test('unknown fields are kept and ignored', () => {
  const { model } = modelFromBytes(patch({ futureField: { any: 'thing' } }), {}, 'u.safetensors');
  assert.equal((model.cfg as unknown as Record<string, unknown>).futureField, { any: 'thing' });
  model.dispose();
});

test('weights: F32 bytes relabelled I32/U32 refused; a NaN names the tensor; allowNonFinite loads it', () => {
  const { header, data } = split(good);
  for (const dt of ['I32', 'U32']) {
    const h = structuredClone(header);
    h['blocks.2.mlp.fc1.weight'].dtype = dt;
    assert.throws(() => modelFromBytes(rawFile(JSON.stringify(h), data), {}, 'r.safetensors'),
      new RegExp(`r\\.safetensors: tensor 'blocks\\.2\\.mlp\\.fc1\\.weight' has dtype ${dt}, expected a float type`));
  }
  const d = new Uint8Array(data), off = header['head.bias'].data_offsets[0] + 4 * 3;
  new DataView(d.buffer, d.byteOffset).setFloat32(off, NaN, true);
  const bytes = rawFile(JSON.stringify(header), d), before = liveTensorCount();
  assert.throws(() => modelFromBytes(bytes, {}, 'n.safetensors'), /n\.safetensors: tensor 'head\.bias' holds NaN at element 3 \(1 non-finite value\(s\) in it\)/);
  assert.is(liveTensorCount(), before);
  const { model } = modelFromBytes(bytes, { allowNonFinite: true }, 'n.safetensors');
  assert.ok(Number.isNaN(model.head.bias!.toArray()[3]));
  // and such a model is never saved
  assert.throws(() => saveModel(join(tmp, 'nan.safetensors'), model), /not written: parameter 'head\.bias' holds NaN at element 3/);
  model.dispose();
  // dtype byte-size mismatch is the header's check
  const h = structuredClone(header);
  h['head.bias'].dtype = 'F16';
  assert.throws(() => modelFromBytes(rawFile(JSON.stringify(h), data), {}, 's.safetensors'), /'head\.bias': data_offsets .* span 40 bytes but shape \[10\] of F16 needs 10 x 2 = 20 bytes/);
});

test('memory estimate: checked before allocating, limit from the option and CAIT_MAX_MODEL_BYTES', () => {
  const base = getPreset('deit_base_patch16_224');
  const need = estimateBytes(base);
  assert.ok(need > 2 * 86e6 * 4 && need < 1.5 * 2 ** 30, `DeiT-Base estimate ${need}`);
  assert.is(validateConfig(base, 'b').name, base.name);
  assert.throws(() => validateConfig(base, 'b.safetensors', { maxBytes: need - 1 }), /b\.safetensors: config field '\(model size\)': expected at most .* \(raise with CAIT_MAX_MODEL_BYTES or maxBytes\), got an estimated/);
  const wide = { ...fmnist, embedDim: 8192, numHeads: 8, depth: 200 };
  assert.throws(() => validateConfig(wide, 'w'), /'\(model size\)'/);
  assert.is(maxModelBytes(), DEFAULT_MAX_MODEL_BYTES);
  const old = process.env.CAIT_MAX_MODEL_BYTES;
  try {
    process.env.CAIT_MAX_MODEL_BYTES = '1e6';
    assert.is(maxModelBytes(), 1e6);
    rejects(good, '(model size)', 'env limit below a small model');
    process.env.CAIT_MAX_MODEL_BYTES = 'lots';
    assert.throws(() => maxModelBytes(), /CAIT_MAX_MODEL_BYTES must be a positive number of bytes, got 'lots'/);
  } finally { if (old === undefined) delete process.env.CAIT_MAX_MODEL_BYTES; else process.env.CAIT_MAX_MODEL_BYTES = old; }
  // a file larger than the limit is refused before it is read
  assert.throws(() => loadModel(join(tmp, 'good.safetensors'), { maxBytes: 1000 }), /good\.safetensors: file is \d+ bytes, over the model byte limit 1000/);
});

test('parameterShapes (checked before allocating) equals the model\'s own parameters, every layout', () => {
  const micro = getPreset('micro');
  const cfgs: VitConfig[] = [micro, fmnist, getPreset('vit_seg64'),
    { ...micro, distilled: true }, { ...micro, distilled: true, distillHead: false }, { ...micro, qkvBias: false },
    { ...micro, widths: [{ qk: 5, v: 16, mlp: 100 }, { qk: 16, v: 3, mlp: 192 }] }, { ...micro, imgSize: 40, mlpRatio: 2.5 }];
  for (const cfg of cfgs) {
    const m = createModel(cfg);
    assert.equal(parameterShapes(cfg), m.namedParameters().map(([n, p]) => [n, [...p.shape]]), JSON.stringify(cfg).slice(0, 120));
    assert.ok(estimateBytes(cfg) > 2 * 4 * m.numParams());
    m.dispose();
  }
});

test('every committed model and preset passes', () => {
  for (const f of ['fmnist-dense', 'fmnist-atme', 'fmnist-cdcp', 'fmnist-cait', 'seg-dense', 'seg-cait']) {
    const { model } = loadModel(join(ROOT, 'models', `${f}.safetensors`));
    model.dispose();
  }
  for (const n of ['deit_tiny_patch16_224', 'deit_small_distilled_patch16_224', 'vit_base_patch16_224', 'vit_fmnist', 'vit_seg64', 'micro']) validateConfig(getPreset(n), n);
});

test('the CLI: a hostile config exits 1 with the file and field, nothing written', () => {
  const f = join(tmp, 'hostile.safetensors');
  writeFileSync(f, patch({ dataSize: 1e9 }));
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'forward', '--model', f, '--input', join(ROOT, '../shared/fixtures/micro-vit/input.safetensors'), '--out', join(tmp, 'out.safetensors')], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /hostile\.safetensors: config field 'dataSize': expected an integer in 1\.\.32, got 1000000000/);
  assert.throws(() => readFileSync(join(tmp, 'out.safetensors')));
});

test.run();
