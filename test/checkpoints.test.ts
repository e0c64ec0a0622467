// Checkpoints in the layouts people have (issue 15): the three model fixtures
// made by PyTorch from independent implementations (../shared/fixtures:
// transformers ViTForImageClassification and DeiTForImageClassificationWithTeacher,
// a timm hub distilled DeiT) through the library (loadModel on the folder,
// modelFromCheckpoint on the bytes) and the CLI (cait forward), logits within
// 1e-4; saving back as this project's file and as the transformers layout;
// the position embedding resampled for another input size.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Tensor, scope, setBackend, getBackend, liveTensorCount } from '../src/tensor.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { noGrad } from '../src/autograd.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { loadModel, saveModel, saveHf, createModel } from '../src/nn/model.js';
import { modelFromCheckpoint } from '../src/nn/checkpoint.js';
import { resamplePosEmbed } from '../src/nn/posembed.js';
import { getPreset, PRESETS, type VitConfig } from '../src/nn/presets.js';
import { imageToInput } from '../src/data/preprocess.js';
import { readImageFile } from '../src/io/image.js';
import { CaitModel } from '../src/cait/wrap.js';
import { InferencePlan } from '../src/plan.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/safetensors-file.js';
import type { VisionTransformer } from '../src/nn/vit.js';
import { close, randn } from './util.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, '../shared/fixtures');
const FIXTURES = ['hf-vit', 'hf-deit-distilled', 'timm-deit-distilled'] as const;
const LABELS = ['tabby cat', 'golden retriever', 'teapot', 'volcano', 'espresso'];
const tmp = mkdtempSync(join(tmpdir(), 'cait-ckpt-'));
const SAMPLES = join(ROOT, 'web/public/samples');

const input = (d: string) => readSafetensorsFile(join(FIX, d, 'input.safetensors')).tensors.get('pixel_values')!;
const expected = (d: string) => readSafetensorsFile(join(FIX, d, 'expected.safetensors')).tensors.get('logits')!;
const logitsOf = (m: { forward(x: Tensor): Tensor }, d: string): Float32Array => {
  const x = input(d);
  return noGrad(() => scope(() => m.forward(Tensor.from(x.data, x.shape)).toArray()));
};

function cait(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const test = suite('checkpoints: transformers and timm layouts against PyTorch');
test.before(() => setBackend(loadWasmSync('relaxed')));

for (const d of FIXTURES) {
  test(`${d}: loadModel(folder) logits within 1e-4 of PyTorch; labels, distillation and preprocessing from the configs`, () => {
    const { model, layout } = loadModel(join(FIX, d));
    try {
      assert.is(layout, d.startsWith('hf') ? 'hf' : 'timm');
      assert.is(model.numPrefixTokens, d === 'hf-vit' ? 1 : 2);
      assert.is(!!model.head_dist, d !== 'hf-vit');
      assert.equal(model.cfg.classes, LABELS);
      assert.is(model.cfg.eps, d.startsWith('hf') ? 1e-12 : 1e-6);
      close(logitsOf(model, d), expected(d).data, 1e-4, 0, `${d} logits (largest difference reported)`);
      const pre = model.cfg.preprocess!;
      if (d === 'hf-vit') assert.equal(pre, { kind: 'hf', size: 48, interpolation: 'bilinear', resize: { height: 48, width: 48 }, crop: false, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
      if (d === 'hf-deit-distilled') assert.equal(pre, { kind: 'hf', size: 48, interpolation: 'bicubic', resize: { height: 56, width: 56 }, crop: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
      if (d === 'timm-deit-distilled') assert.equal(pre, { kind: 'timm', size: 48, interpolation: 'bicubic', cropPct: 0.875, cropMode: 'center', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
      assert.equal(model.cfg.mean, pre.mean);
    } finally { model.dispose(); }
    // the reference backend (the executable spec) too
    const prev = getBackend();
    setBackend(new ReferenceBackend());
    try {
      const r = loadModel(join(FIX, d)).model;
      close(logitsOf(r, d), expected(d).data, 1e-4, 0, `${d} logits on the reference backend`);
      r.dispose();
    } finally { setBackend(prev); }
  });

  test(`${d}: modelFromCheckpoint on the bytes (the browser path) and loadModel on model.safetensors with config.json beside it agree`, () => {
    const dir = join(FIX, d), text = (f: string) => existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : undefined;
    const a = modelFromCheckpoint({ weights: new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), config: text('config.json'), preprocessorConfig: text('preprocessor_config.json') }, {}, `${d}/model.safetensors`).model;
    const b = loadModel(join(dir, 'model.safetensors')).model;
    try {
      assert.equal(a.cfg, b.cfg);
      close(logitsOf(a, d), expected(d).data, 1e-4, 0, `${d} bytes`);
      close(logitsOf(b, d), expected(d).data, 1e-4, 0, `${d} file`);
    } finally { a.dispose(); b.dispose(); }
  });

  test(`${d}: saved back as one project file (config, labels, preprocessing in __metadata__) and in the transformers layout, same logits`, () => {
    const { model } = loadModel(join(FIX, d));
    const file = join(tmp, `${d}.safetensors`), hfDir = join(tmp, `${d}-hf`);
    saveModel(file, model);
    saveHf(hfDir, model);
    const meta = readSafetensorsFile(file).metadata, cfg = JSON.parse(meta.config);
    assert.equal(cfg.classes, LABELS);
    assert.equal(cfg.preprocess, model.cfg.preprocess);
    const back = loadModel(file).model, hf = loadModel(hfDir);
    try {
      assert.equal(back.cfg, model.cfg);
      assert.is(hf.layout, 'hf');
      assert.equal(hf.model.cfg.classes, LABELS);
      assert.equal(hf.model.cfg.preprocess, model.cfg.preprocess, 'the exact pipeline (config.json caitjs)');
      const proc = JSON.parse(readFileSync(join(hfDir, 'preprocessor_config.json'), 'utf8'));
      assert.equal([proc.crop_size?.height ?? proc.size.height, proc.image_mean], [48, model.cfg.mean], 'preprocessor_config.json for transformers');
      const want = logitsOf(model, d);
      assert.equal(Array.from(logitsOf(back, d)), Array.from(want), 'project file: bitwise');
      assert.equal(Array.from(logitsOf(hf.model, d)), Array.from(want), 'transformers layout: bitwise');
      const hfNames = [...readSafetensorsFile(join(hfDir, 'model.safetensors')).tensors.keys()];
      assert.ok(hfNames.includes(`${d === 'hf-vit' ? 'vit' : 'deit'}.encoder.layer.1.attention.attention.value.weight`), 'transformers names');
    } finally { model.dispose(); back.dispose(); hf.model.dispose(); }
  });

  test(`${d}: cait forward --model FOLDER (the CLI) logits within 1e-4`, () => {
    const out = join(tmp, `${d}-logits.safetensors`);
    const r = cait('forward', '--model', join(FIX, d), '--input', join(FIX, d, 'input.safetensors'), '--out', out);
    assert.is(r.code, 0, r.stderr);
    close(readSafetensorsFile(out).tensors.get('logits')!.data, expected(d).data, 1e-4, 0, `${d} CLI logits`);
  });
}

test('distilled fixtures under ATME: both prefix tokens unmerged, all patch tokens accounted for', () => {
  for (const d of ['hf-deit-distilled', 'timm-deit-distilled']) {
    const { model } = loadModel(join(FIX, d));
    const cm = new CaitModel(model, { merge: 'h@0,v@1' });
    noGrad(() => scope(() => {
      const x = input(d), out = cm.forwardTokens(Tensor.from(x.data, x.shape));
      assert.equal(out.tokens.shape, [3, 2 + 3 * 3, 48]); // 6x6 -> 6x3 -> 3x3
      const s = out.sizes!.toArray();
      for (let b = 0; b < 3; b++) {
        assert.equal([s[b * 11], s[b * 11 + 1]], [1, 1], `${d}: prefix sizes`);
        assert.is(s.subarray(b * 11 + 2, b * 11 + 11).reduce((a, v) => a + v, 0), 36);
      }
    }));
    model.dispose();
  }
});

test('distilled fixtures: the planned forward (src/plan.ts, what cait bench and serve run) equals eager bit for bit, with and without ATME', () => {
  for (const d of ['hf-deit-distilled', 'timm-deit-distilled']) {
    const { model } = loadModel(join(FIX, d));
    const x = input(d), be = model.cls_token.backend;
    for (const m of [model, new CaitModel(model, { merge: 'h@1' })]) {
      const plan = InferencePlan.capture(be, x.data, x.shape, (t) => m.forward(t));
      const want = logitsOf(m, d);
      close(plan.run(x.data), want, 0, 0, `${d} planned`);
      if (m === model) close(want, expected(d).data, 1e-4, 0, `${d} eager`);
      plan.dispose();
    }
    model.dispose();
  }
});

test('bare timm checkpoint with --preset, and the new presets build', () => {
  // the timm fixture's weights without its config: the distilled preset at the fixture's sizes
  const cfg = { ...getPreset('deit_tiny_distilled_patch16_224'), imgSize: 48, patchSize: 8, embedDim: 48, depth: 2, numHeads: 3, numClasses: 5 };
  delete cfg.preprocess;
  const { model } = loadModel(join(FIX, 'timm-deit-distilled/model.safetensors'), { config: cfg });
  close(logitsOf(model, 'timm-deit-distilled'), expected('timm-deit-distilled').data, 1e-4, 0, 'explicit config');
  model.dispose();
  for (const n of ['deit_tiny_distilled_patch16_224', 'vit_tiny_patch16_224']) {
    const p = PRESETS[n];
    assert.is(p.preprocess!.size, 224);
    if (n.startsWith('vit')) assert.equal([p.mean, p.std, p.preprocess!.cropPct], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 0.9]);
    else assert.is(p.distilled, true);
  }
  // Object.prototype's members are no presets (getPreset('toString') threw structuredClone's DOMException)
  for (const n of ['toString', 'constructor', '__proto__']) {
    assert.throws(() => getPreset(n), new RegExp(`unknown preset '${n}'; known: `));
    assert.throws(() => loadModel(join(FIX, 'micro-vit/model.safetensors'), { preset: n }), /unknown preset/);
  }
});

test('position embedding: resampled for another input size (message on stderr), identity at the same size', () => {
  // properties of timm's resample (PyTorch bicubic, antialias): same size = identity; constants stay; prefix rows copied
  const C = 3, pre = 2, pos = randn((pre + 16) * C, 3);
  assert.equal(Array.from(resamplePosEmbed(pos, C, pre, [4, 4], [4, 4])), Array.from(pos));
  const flat = new Float32Array((pre + 16) * C).fill(0.25);
  for (const to of [[6, 6], [2, 2], [3, 5]] as const) {
    const r = resamplePosEmbed(flat, C, pre, [4, 4], to);
    assert.is(r.length, (pre + to[0] * to[1]) * C);
    close(r, new Float32Array(r.length).fill(0.25), 1e-6, 0, `constant ${to}`);
  }
  // a 2x downsample with antialiasing is a weighted mean: a checkerboard goes flat in the interior
  const cb = new Float32Array((1 + 64) * 1);
  for (let t = 0; t < 64; t++) cb[1 + t] = ((t >> 3) + (t & 7)) & 1 ? 1 : -1;
  const down = resamplePosEmbed(cb, 1, 1, [8, 8], [4, 4]);
  assert.ok(Math.abs(down[1 + 5]) < 0.2, `checkerboard interior ${down[1 + 5]}`);
  // a model run at 64x64 instead of 48x48: 8x8 grid, warns, runs
  const warn = console.warn, said: string[] = [];
  console.warn = (m: string) => { said.push(m); };
  try {
    const { model } = loadModel(join(FIX, 'hf-vit'), { imgSize: 64 });
    assert.equal(model.pos_embed.shape, [1, 1 + 64, 48]);
    assert.equal(model.cfg.preprocess!.size, 64);
    const y = noGrad(() => scope(() => model.forward(Tensor.from(randn(3 * 64 * 64, 5), [1, 3, 64, 64])).toArray()));
    assert.ok(y.every(Number.isFinite));
    model.dispose();
  } finally { console.warn = warn; }
  assert.is(said.length, 1);
  assert.match(said[0], /hf-vit.*position embedding resampled from a 6x6 to a 8x8 token grid/);
});

test('saveHf round trip of this project\'s own models: the same config (dataSize, merge, no pipeline) and bitwise logits; compact models refused', () => {
  for (const [n, patch] of [['vit_fmnist', {}], ['micro', { merge: 'h@1', distilled: true, classes: Array.from({ length: 10 }, (_, i) => `c${i}`) }]] as const) {
    const cfg = { ...getPreset(n), ...patch }, m = createModel(cfg, 4), dir = join(tmp, `rt-${n}`);
    saveHf(dir, m);
    const back = loadModel(dir);
    try {
      assert.equal(back.model.cfg, m.cfg);
      const x = Tensor.from(randn(2 * cfg.inChans * cfg.imgSize ** 2, 9), [2, cfg.inChans, cfg.imgSize, cfg.imgSize]);
      noGrad(() => scope(() => assert.equal(Array.from(back.model.forward(x).toArray()), Array.from(m.forward(x).toArray()))));
    } finally { m.dispose(); back.model.dispose(); }
  }
  const compact = createModel({ ...getPreset('micro'), widths: [{ qk: 8, v: 8, mlp: 96 }, { qk: 16, v: 16, mlp: 192 }] });
  assert.throws(() => saveHf(join(tmp, 'compact'), compact), /CDCP-compact model .* has no transformers layout/);
  compact.dispose();
});

test('saveHf of the committed Fashion-MNIST model: the 28x28-in-32x32 padding kept in config.json (caitjs), so the folder preprocesses and predicts exactly as the file; an edited folder follows its transformers fields', () => {
  const { model } = loadModel(join(ROOT, 'models/fmnist-dense.safetensors'));
  const dir = join(tmp, 'fmnist-dense-hf');
  saveHf(dir, model);
  const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const config = json('config.json'), proc = json('preprocessor_config.json');
  assert.equal(config.caitjs, model.cfg, 'this project\'s config in config.json');
  assert.is(config.caitjs.dataSize, 28);
  assert.equal(proc.size, { height: 32, width: 32 }, 'what transformers can say: a resize to 32x32');
  // Fashion-MNIST test images (web/public/samples: test indices 0, 1000, ..., 9000)
  const imgs = readdirSync(SAMPLES).filter((f) => f.endsWith('.png')).sort().map((f) => readImageFile(join(SAMPLES, f)));
  assert.is(imgs.length, 10);
  const inputs = (cfg: VitConfig) => { const x = new Float32Array(10 * 32 * 32); imgs.forEach((im, i) => x.set(imageToInput(im, cfg), i * 1024)); return x; };
  const logits = (m: VisionTransformer, x: Float32Array) => noGrad(() => scope(() => m.forward(Tensor.from(x, [10, 1, 32, 32])).toArray()));
  const want = inputs(model.cfg), wantLogits = logits(model, want);
  const back = loadModel(dir).model;
  try {
    assert.equal(back.cfg, model.cfg);
    const got = inputs(back.cfg);
    assert.equal(Array.from(got), Array.from(want), 'imageToInput: identical');
    assert.equal(Array.from(logits(back, got)), Array.from(wantLogits), 'logits: bitwise');
    const argmax = (z: Float32Array, i: number) => { let b = 0; for (let k = 1; k < 10; k++) if (z[i * 10 + k] > z[i * 10 + b]) b = k; return b; };
    assert.ok(imgs.filter((_, i) => argmax(wantLogits, i) === i).length >= 8, 'the samples are classified as trained');
  } finally { back.dispose(); }

  // without the caitjs key (what the first saveHf wrote): preprocessor_config.json's resize, a different input
  const edited = (name: string, edit: (c: Record<string, unknown>, p: Record<string, unknown>) => void) => {
    const d = join(tmp, `fmnist-hf-${name}`);
    mkdirSync(d, { recursive: true });
    const c = structuredClone(config), p = structuredClone(proc);
    edit(c, p);
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
    writeFileSync(join(d, 'preprocessor_config.json'), JSON.stringify(p));
    writeFileSync(join(d, 'model.safetensors'), readFileSync(join(dir, 'model.safetensors')));
    return d;
  };
  const plain = loadModel(edited('plain', (c) => { delete c.caitjs; })).model;
  const warn = console.warn, said: string[] = [];
  console.warn = (m: string) => { said.push(m); };
  try {
    assert.equal(plain.cfg.preprocess, { kind: 'hf', size: 32, interpolation: 'bilinear', resize: { height: 32, width: 32 }, crop: false, mean: [0.286], std: [0.3528] });
    let d = 0;
    const x = inputs(plain.cfg);
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - want[i]));
    assert.ok(d > 1, `the resize to 32x32 differs from the padding (largest difference ${d})`);
    // edited after saving: the transformers fields win, with a warning naming what changed
    const bicubic = loadModel(edited('bicubic', (_, p) => { p.resample = 3; })).model;
    assert.is(bicubic.cfg.preprocess?.interpolation, 'bicubic');
    assert.match(said.pop() ?? '', /caitjs config .* disagrees .*preprocessor_config\.json/);
    const relabelled = loadModel(edited('labels', (c) => { (c.id2label as Record<string, string>)['0'] = 'Top'; })).model;
    assert.is(relabelled.cfg.classes?.[0], 'Top');
    assert.match(said.pop() ?? '', /disagrees .*id2label vs caitjs\.classes/);
    bicubic.dispose(); relabelled.dispose();
    assert.is(said.length, 0);
  } finally { console.warn = warn; plain.dispose(); model.dispose(); }
  assert.throws(() => loadModel(edited('bad', (c) => { (c.caitjs as Record<string, unknown>).depth = 'six'; })), (e: Error) => /config\.json.*caitjs\.depth/.test(e.message));
});

test('transformers names without the vit. prefix (saved from ViTModel plus a classifier) load the same; a pooler is ignored', () => {
  const t = readSafetensorsFile(join(FIX, 'hf-vit/model.safetensors')).tensors;
  const bare = new Map([...t].map(([n, v]) => [n.replace(/^vit\./, ''), v]));
  bare.set('pooler.dense.weight', { dtype: 'F32', shape: [48, 48], data: new Float32Array(48 * 48) });
  bare.set('pooler.dense.bias', { dtype: 'F32', shape: [48], data: new Float32Array(48) });
  const dir = join(tmp, 'bare-hf');
  mkdirSync(dir, { recursive: true });
  writeSafetensorsFile(join(dir, 'model.safetensors'), bare);
  for (const f of ['config.json', 'preprocessor_config.json']) writeFileSync(join(dir, f), readFileSync(join(FIX, 'hf-vit', f)));
  const { model, layout } = loadModel(dir);
  assert.is(layout, 'hf');
  close(logitsOf(model, 'hf-vit'), expected('hf-vit').data, 1e-4, 0, 'bare names');
  model.dispose();
});

test('a bad transformers / timm config.json: ConfigError naming config.json and the library\'s field, nothing allocated', () => {
  const before = liveTensorCount();
  const w = (d: string) => new Uint8Array(readFileSync(join(FIX, d, 'model.safetensors')));
  const hf = JSON.parse(readFileSync(join(FIX, 'hf-vit/config.json'), 'utf8'));
  const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ['hf-vit', 'config.json', { ...hf, num_attention_heads: 5 }, /x\/config\.json: config field 'num_attention_heads \[numHeads\]': expected a divisor of embedDim 48, got 5/],
    ['hf-vit', 'config.json', { ...hf, hidden_act: 'gelu_new' }, /config field 'hidden_act': expected 'gelu'/],
    ['hf-vit', 'config.json', { ...hf, layer_norm_eps: -1 }, /config field 'layer_norm_eps \[eps\]'/],
    ['hf-vit', 'config.json', { ...hf, id2label: { 0: 'a', 2: 'b' } }, /config field 'id2label\.1': expected a label for every class id 0\.\.1/],
    ['hf-vit', 'config.json', { ...hf, num_hidden_layers: 3 }, /x\/model\.safetensors: checkpoint does not match the model:\n  missing 12 tensor/],
    // model_type 'bert' beside ViT architectures, or no model_type and no architectures, loaded as a ViT (named 'undefined')
    ['hf-vit', 'config.json', { ...hf, model_type: 'bert' }, /config field 'model_type': expected 'vit' or 'deit' .*got "bert"/],
    ['hf-vit', 'config.json', { ...hf, model_type: undefined, architectures: [] }, /config field 'architectures': expected ViTForImageClassification, .*got \[\]/],
    ['hf-vit', 'config.json', { ...hf, model_type: undefined, architectures: [1] }, /config field 'architectures': expected .*got \[1\]/],
    ['hf-vit', 'config.json', { ...hf, num_labels: '5' }, /config field 'num_labels': expected 5 \(the length of id2label\), got "5"/],
  ];
  const timm = JSON.parse(readFileSync(join(FIX, 'timm-deit-distilled/config.json'), 'utf8'));
  cases.push(['timm-deit-distilled', 'config.json', { ...timm, model_args: { ...timm.model_args, num_heads: 5 } }, /config field 'model_args\.num_heads \[numHeads\]'/]);
  cases.push(['timm-deit-distilled', 'config.json', { ...timm, global_pool: 'avg' }, /config field 'global_pool': expected 'token'/]);
  cases.push(['timm-deit-distilled', 'config.json', { ...timm, pretrained_cfg: { ...timm.pretrained_cfg, crop_pct: 2 } }, /config field 'pretrained_cfg \[preprocess\.cropPct\]'/]);
  cases.push(['timm-deit-distilled', 'config.json', { ...timm, pretrained_cfg: { ...timm.pretrained_cfg, std: [0.2, 1e-300, 0.2] } }, /config field 'pretrained_cfg\.std \[std\[1\]\]': expected a finite number in \[1e-6, 1e6\], got 1e-300/]);
  // names of Object.prototype's members were looked up as presets: a DOMException from structuredClone, or a nonsense field
  for (const arch of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
    cases.push(['timm-deit-distilled', 'config.json', { ...timm, architecture: arch }, new RegExp(`config field 'architecture': expected a ViT/DeiT timm architecture .*got "${arch}"`)]);
  for (const [d, , config, re] of cases) {
    assert.throws(() => modelFromCheckpoint({ weights: w(d), config: JSON.stringify(config), configName: 'x/config.json' }, {}, 'x/model.safetensors'), re, `${d}: ${re}`);
  }
  const pre = JSON.parse(readFileSync(join(FIX, 'hf-deit-distilled/preprocessor_config.json'), 'utf8'));
  const cfgText = readFileSync(join(FIX, 'hf-deit-distilled/config.json'), 'utf8');
  for (const [p, re] of [[{ ...pre, resample: 1 }, /p\.json: config field 'resample': expected 0 \(nearest\), 2 \(bilinear\) or 3 \(bicubic\), got 1/],
    [{ ...pre, crop_size: { height: 40, width: 40 } }, /config field 'crop_size': expected the model's image_size 48/],
    [{ ...pre, resample: '3' }, /p\.json: config field 'resample': expected 0 \(nearest\), 2 \(bilinear\) or 3 \(bicubic\), got "3"/],
    [{ ...pre, image_std: [0.2, 0, 0.2] }, /p\.json: config field 'image_std': expected 3 number\(s\), each a finite number in \[1e-6, 1e6\]/],
    [{ ...pre, image_std: [0.2, 1e-300, 0.2] }, /p\.json: config field 'image_std': expected 3 number\(s\), each a finite number in \[1e-6, 1e6\] \(num_channels 3\), got \[0\.2,1e-300,0\.2\]/]] as const)
    assert.throws(() => modelFromCheckpoint({ weights: w('hf-deit-distilled'), config: cfgText, preprocessorConfig: JSON.stringify(p), configName: 'x/config.json', preprocessorConfigName: 'p.json' }, {}, 'x/model.safetensors'), re);
  assert.is(liveTensorCount(), before);
  // a DeiT named by its architectures alone gets DeiT's processor defaults (it got ViT's: 0.5/0.5, no crop)
  const { model_type: _, ...noType } = JSON.parse(cfgText);
  const d = modelFromCheckpoint({ weights: w('hf-deit-distilled'), config: JSON.stringify(noType) }, {}, 'x/model.safetensors').model;
  assert.equal([d.cfg.mean, d.cfg.preprocess?.crop], [[0.485, 0.456, 0.406], true]);
  d.dispose();
});

test('the resampling kernel is Pillow\'s antialiased bicubic (what PyTorch\'s antialias=True ports): Pillow\'s own resizes within 1 grey level', () => {
  // ../shared/fixtures/preprocess holds Pillow 9.4 bicubic resizes (then crop, normalise) of decoded images.
  // Pillow works in 8 bits, clipping and rounding after its horizontal pass: done here between two
  // one-axis calls of resamplePosEmbed (a same-size axis is the identity). Pixels are [H, W, 3] = tokens x channels.
  const t = readSafetensorsFile(join(FIX, 'preprocess/expected.safetensors')).tensors;
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const pyRound = (x: number) => { const f = Math.floor(x), r = x - f; return r > 0.5 ? f + 1 : r < 0.5 ? f : f % 2 === 0 ? f : f + 1; };
  const u8 = (a: Float32Array) => a.map((v) => Math.min(255, Math.max(0, Math.round(v))));
  for (const img of ['rgb-301x217.png', 'gray-130x97.png', 'rgba-200x150.png', 'photo-640x480.jpg']) {
    const d = t.get(`decoded.${img}`)!, [H, W] = d.shape;
    // timm: shorter side to 256 (long side int(256 * long / short)), crop 224 at round((L - 224) / 2); transformers DeiT: 256x256, crop at (256 - 224) // 2
    const timm: [number, number] = H <= W ? [256, Math.trunc(256 * W / H)] : [Math.trunc(256 * H / W), 256];
    for (const [pipe, [nh, nw], off] of [['timm_bicubic_224_0.875_imagenet', timm, (L: number) => pyRound((L - 224) / 2)], ['hf_deit_bicubic_256_crop_224', [256, 256], (L: number) => (L - 224) >> 1]] as const) {
      const r = u8(resamplePosEmbed(u8(resamplePosEmbed(d.data, 3, 0, [H, W], [H, nw])), 3, 0, [H, nw], [nh, nw]));
      const oy = off(nh), ox = off(nw), got = new Float32Array(3 * 224 * 224);
      for (let c = 0; c < 3; c++) for (let y = 0; y < 224; y++) for (let x = 0; x < 224; x++)
        got[(c * 224 + y) * 224 + x] = (r[((y + oy) * nw + x + ox) * 3 + c] / 255 - mean[c]) / std[c];
      // one grey level after normalisation: 1/255/std, the smallest std 0.224
      close(got, t.get(`${pipe}.${img}`)!.data, 1.001 / 255 / 0.224, 0, `${pipe} ${img} (${H}x${W} -> ${nh}x${nw})`);
    }
  }
});

test('a failed load frees every tensor it allocated', () => {
  const file = join(tmp, 'missing-one.safetensors');
  const t = readSafetensorsFile(join(FIX, 'timm-deit-distilled/model.safetensors')).tensors;
  t.delete('blocks.1.mlp.fc2.bias');
  writeSafetensorsFile(file, t);
  writeFileSync(join(tmp, 'config.json'), readFileSync(join(FIX, 'timm-deit-distilled/config.json')));
  const before = liveTensorCount();
  for (let i = 0; i < 3; i++) assert.throws(() => loadModel(file), /missing 1 tensor\(s\): 'blocks\.1\.mlp\.fc2\.bias'/);
  assert.is(liveTensorCount(), before, 'no tensor left behind');
  const m: VisionTransformer = createModel(getPreset('micro'));
  assert.ok(liveTensorCount() > before);
  m.dispose();
  assert.is(liveTensorCount(), before);
});

test.run();
