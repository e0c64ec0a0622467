// ONNX export (issue #6): the protobuf encoding, and the exported graph run in
// onnxruntime-node against this engine's logits (max |diff| <= 1e-4) for the
// micro-vit fixture, a random CDCP-compact model, and ATME-merged models
// (keys, features and fixed partner choice, proportional attention on and
// off, odd grids), distilled DeiTs (two prefix tokens, the mean of two
// heads; the transformers and timm fixtures against PyTorch too), at batch 1
// and > 1, dynamic and fixed; then the CLI.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { Pb, encodeModel } from '../src/io/onnx.js';
import { exportVitOnnx, type VitOnnxOptions } from '../src/cait/onnx.js';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { createModel, loadModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import type { VisionTransformer } from '../src/nn/vit.js';
import { CaitModel } from '../src/cait/wrap.js';
import { readMap, type AtmeOptions } from '../src/cait/atme.js';
import { Tensor, scope, setBackend } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { close, randn } from './util.js';
import { cait } from './cait.js';
import * as api from '../src/index.js';

const FIX = fileURLToPath(new URL('../../shared/fixtures/micro-vit/', import.meta.url));
const test = suite('onnx export');
const dir = mkdtempSync(join(tmpdir(), 'cait-onnx-'));

test.before(() => { setBackend(loadWasmSync('simd')); });

/** Logits of the exported graph in onnxruntime-node (one CPU thread). */
async function ortLogits(model: Uint8Array | string, x: Float32Array, shape: number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(model as Uint8Array, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const r = await s.run({ pixel_values: new ort.Tensor('float32', x, shape) });
  await s.release();
  return { data: r.logits.data as Float32Array, dims: r.logits.dims };
}

function engineLogits(m: Pick<CaitModel, 'forward'>, x: Float32Array, shape: number[]): Float32Array {
  return noGrad(() => scope(() => m.forward(Tensor.from(x, shape)).toArray()));
}

/** Weights of O(1) effect (timm's init makes near-zero logits that would hide mistakes). */
function randomize(vit: VisionTransformer, seed: number): VisionTransformer {
  vit.namedParameters().forEach(([name, p], i) => {
    const u = randn(p.size, seed * 1000 + i);
    if (p.shape.length >= 2 && name.endsWith('weight')) {
      const fanIn = p.size / p.shape[0], s = Math.sqrt(3 / fanIn);
      p.write(u.map((v) => v * s));
    } else if (/norm\d?\.weight$/.test(name)) p.write(u.map((v) => 1 + 0.3 * v));
    else p.write(u.map((v) => 0.3 * v));
  });
  return vit;
}

const micro = (over: Partial<VitConfig> = {}): VitConfig => ({ ...getPreset('micro'), ...over });

async function parity(vit: VisionTransformer, batch: number, o: VitOnnxOptions & { merge?: string } = {}, what = ''): Promise<void> {
  const { bytes } = exportVitOnnx(vit, o);
  const cfg = vit.cfg, shape = [batch, cfg.inChans, cfg.imgSize, cfg.imgSize];
  const x = randn(shape.reduce((a, b) => a * b, 1), 7 + batch, 1.5);
  const runner = o.merge ? new CaitModel(vit, { merge: o.merge, ...o.atme }) : vit;
  const want = engineLogits(runner, x, shape);
  const got = await ortLogits(bytes, x, shape);
  assert.equal(got.dims, [batch, cfg.numClasses], `${what} logits dims`);
  const d = close(got.data, want, 1e-4, 0, `${what} batch ${batch}:`);
  assert.ok(d.maxRef > 0.1, `${what}: logits too small to tell (${d.maxRef})`);
}

test('protobuf: varints (int64 negatives as 10 bytes), a float attribute, nested lengths', () => {
  assert.equal(Array.from(Pb.varint(0)), [0]);
  assert.equal(Array.from(Pb.varint(300)), [0xac, 0x02]);
  assert.equal(Array.from(Pb.varint(-1)), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.equal(Array.from(new Pb().float(2, 1).finish()), [0x15, 0, 0, 0x80, 0x3f]);
  const inner = new Pb().int(1, 8);
  assert.equal(Array.from(new Pb().msg(7, inner).string(2, 'ab').finish()), [0x3a, 2, 0x08, 8, 0x12, 2, 0x61, 0x62]);
  // ModelProto.ir_version is field 1 (tag 0x08) and comes first
  const m = encodeModel({ irVersion: 8, opset: 17, graph: { name: 'g', nodes: [], initializers: [], inputs: [], outputs: [] } });
  assert.equal(Array.from(m.subarray(0, 2)), [0x08, 8]);
});

test('micro-vit fixture: ONNX logits = the PyTorch oracle and this engine (batch 2 from the fixture, 1 and 5 dynamic)', async () => {
  const { model: vit } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });
  const inp = readSafetensorsFile(FIX + 'input.safetensors').tensors.get('pixel_values')!;
  const expected = readSafetensorsFile(FIX + 'expected.safetensors').tensors.get('logits')!.data;
  for (const batch of ['dynamic', 2] as const) {
    const got = await ortLogits(exportVitOnnx(vit, { batch }).bytes, inp.data, inp.shape);
    close(got.data, expected, 1e-4, 0, `fixture (batch ${batch}) vs PyTorch:`);
    close(got.data, engineLogits(vit, inp.data, inp.shape), 1e-4, 0, `fixture (batch ${batch}) vs engine:`);
  }
  for (const b of [1, 5]) await parity(vit, b, {}, 'fixture model');
});

test('a fixed batch is fixed: batch 2 export rejects 3 images', async () => {
  const vit = randomize(createModel(micro(), 1), 1);
  const s = await ort.InferenceSession.create(exportVitOnnx(vit, { batch: 2 }).bytes);
  const x = new Float32Array(3 * 3 * 32 * 32);
  let err = '';
  try { await s.run({ pixel_values: new ort.Tensor('float32', x, [3, 3, 32, 32]) }); } catch (e) { err = (e as Error).message; }
  assert.match(err, /dimension|shape|Got: 3/i);
});

test('compact model (qk 8, v 12 on 16-dim heads; per-block widths; no qkv bias): ONNX = engine', async () => {
  const cfg = micro({ name: 'micro_compact', widths: [{ qk: 8, v: 12, mlp: 100 }, { qk: 4, v: 16, mlp: 64 }] });
  const vit = randomize(createModel(cfg, 2), 2);
  for (const b of [1, 3]) await parity(vit, b, {}, 'compact');
  const noBias = randomize(createModel({ ...cfg, qkvBias: false }, 3), 3);
  await parity(noBias, 2, { batch: 2 }, 'compact, no qkv bias');
});

const SIMS: AtmeOptions[] = [
  { similarity: 'keys', propAttn: true }, { similarity: 'features', propAttn: true },
  { similarity: 'fixed', propAttn: true }, { similarity: 'keys', propAttn: false },
];

test('merged (ATME h@0,v@1 on 4x4): keys, features, fixed, no proportional attention; ONNX = engine', async () => {
  const vit = randomize(createModel(micro({ depth: 3 }), 4), 4);
  for (const atme of SIMS) for (const b of [1, 4]) await parity(vit, b, { merge: 'h@0,v@1', atme }, `${atme.similarity}${atme.propAttn ? '' : ' no-prop'}`);
});

test('merged on an odd grid (5x5 -> 5x3 -> 3x3: border sources with one candidate), compact widths, fixed batch', async () => {
  const cfg = micro({ imgSize: 40, depth: 3, widths: [{ qk: 8, v: 12, mlp: 100 }, { qk: 12, v: 8, mlp: 64 }, { qk: 16, v: 16, mlp: 192 }] });
  const vit = randomize(createModel(cfg, 5), 5);
  for (const atme of SIMS) await parity(vit, 3, { merge: 'h@0,v@1', atme, batch: 3 }, `odd grid ${atme.similarity}`);
  // the choice is per image and not all-previous, so the graph's argmax is exercised both ways
  const x = randn(3 * 3 * 40 * 40, 9, 1.5);
  const plans = noGrad(() => scope(() => {
    const out = new CaitModel(vit, { merge: 'h@0,v@1' }).forwardTokens(Tensor.from(x, [3, 3, 40, 40]));
    return out.plans.map(readMap);
  }));
  const h = plans[0], odd = (t: number) => t % 5 === 1;   // sources at column 1 may go to column 0 or 2
  const next = Array.from(h).filter((d, t) => odd(t % 25) && d === Math.floor((t % 25) / 5) * 3 + 1).length;
  assert.ok(next > 0 && next < 15, `sources at column 1 choosing the next destination: ${next} of 15`);
});

const SHARED = fileURLToPath(new URL('../../shared/fixtures/', import.meta.url));

test('distilled DeiT fixtures (transformers and timm layouts): ONNX logits = PyTorch and the engine; merged, both prefix tokens kept', async () => {
  for (const d of ['hf-deit-distilled', 'timm-deit-distilled']) {
    const { model: vit } = loadModel(SHARED + d);
    assert.is(vit.numPrefixTokens, 2, d);
    const inp = readSafetensorsFile(SHARED + d + '/input.safetensors').tensors.get('pixel_values')!;
    const expected = readSafetensorsFile(SHARED + d + '/expected.safetensors').tensors.get('logits')!.data;
    const r = exportVitOnnx(vit);
    const got = await ortLogits(r.bytes, inp.data, inp.shape);
    close(got.data, expected, 1e-4, 0, `${d} ONNX vs PyTorch:`);
    close(got.data, engineLogits(vit, inp.data, inp.shape), 1e-4, 0, `${d} ONNX vs engine:`);
    assert.equal(r.tokens, [38, 38, 38], `${d}: 2 prefix + 6x6 patches`);
    // 6x6 -> 6x3 -> 3x3: the two prefix tokens pass every merge
    const m = exportVitOnnx(vit, { merge: 'h@0,v@1' });
    assert.equal(m.tokens, [38, 20, 11]);
    for (const atme of SIMS) await parity(vit, 2, { merge: 'h@0,v@1', atme }, `${d} merged ${atme.similarity}${atme.propAttn ? '' : ' no-prop'}`);
    // the same through the CLI, from the model folder
    const out = join(dir, `${d}.onnx`);
    const c = await cait('export', '--model', SHARED + d, '--onnx', out, '--json');
    assert.is(c.code, 0, c.stderr);
    assert.equal(c.json.tokens, [38, 38, 38]);
    close((await ortLogits(out, inp.data, inp.shape)).data, expected, 1e-4, 0, `cait export ${d} vs PyTorch:`);
  }
});

test('distilled micro (random, compact widths, odd grid, fixed batch; and without head_dist): ONNX = engine', async () => {
  const cfg = micro({ imgSize: 40, depth: 3, distilled: true, widths: [{ qk: 8, v: 12, mlp: 100 }, { qk: 12, v: 8, mlp: 64 }, { qk: 16, v: 16, mlp: 192 }] });
  const vit = randomize(createModel(cfg, 6), 6);
  for (const atme of SIMS) await parity(vit, 3, { merge: 'h@0,v@1', atme, batch: 3 }, `distilled odd grid ${atme.similarity}`);
  // transformers' DeiTForImageClassification: the distillation token is in the sequence, the logits are the class head's
  const noHead = randomize(createModel({ ...micro(), distilled: true, distillHead: false }, 7), 7);
  assert.is(noHead.head_dist, null);
  await parity(noHead, 2, {}, 'distilled, no head_dist');
  await parity(noHead, 2, { merge: 'v@0' }, 'distilled, no head_dist, merged');
});

test('the library exports the float ONNX export beside the int8 one (the package exports only its index)', async () => {
  assert.is(api.exportVitOnnx, exportVitOnnx);
  assert.is(typeof api.vitToOnnx, 'function');
  assert.is(api.ONNX_OPSET, 17);
  assert.is(typeof api.exportInt8Onnx, 'function');
  const { model: vit } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });
  const inp = readSafetensorsFile(FIX + 'input.safetensors').tensors.get('pixel_values')!;
  const got = await ortLogits(api.exportVitOnnx(vit).bytes, inp.data, inp.shape);
  close(got.data, readSafetensorsFile(FIX + 'expected.safetensors').tensors.get('logits')!.data, 1e-4, 0, 'library exportVitOnnx:');
});

test('cli: export the fixture (dynamic batch), run it in onnxruntime; usage errors', async () => {
  const out = join(dir, 'micro.onnx');
  const r = await cait('export', '--model', FIX + 'model.safetensors', '--preset', 'micro', '--onnx', out, '--json');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.json.opset, 17);
  assert.equal(r.json.input, { name: 'pixel_values', shape: ['batch', 3, 32, 32] });
  assert.equal(r.json.output, { name: 'logits', shape: ['batch', 10] });
  assert.is(r.json.bytes, readFileSync(out).length);
  const inp = readSafetensorsFile(FIX + 'input.safetensors').tensors.get('pixel_values')!;
  const got = await ortLogits(out, inp.data, inp.shape);
  close(got.data, readSafetensorsFile(FIX + 'expected.safetensors').tensors.get('logits')!.data, 1e-4, 0, 'cait export logits:');
  const m = await cait('export', '--preset', 'micro', '--merge', 'h@0,v@1', '--similarity', 'features', '--batch', '4', '--onnx', join(dir, 'm.onnx'), '--json');
  assert.is(m.code, 0, m.stderr);
  assert.equal([m.json.merge, m.json.similarity, m.json.prop_attn, m.json.tokens], ['h@0,v@1', 'features', true, [17, 9, 5]]);
  const bad = await cait('export', '--preset', 'micro', '--onnx', join(dir, 'x.onnx'), '--batch', '0');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--batch must be a positive integer or 'dynamic'/);
  // --seed picks a --preset's random weights: beside --model it would be ignored
  const seeded = await cait('export', '--model', FIX + 'model.safetensors', '--preset', 'micro', '--seed', '3', '--onnx', join(dir, 'x.onnx'));
  assert.is(seeded.code, 2);
  assert.match(seeded.stderr, /--seed .*--preset without --model/);
  const none = await cait('export', '--preset', 'micro');
  assert.is(none.code, 2);
  assert.match(none.stderr, /missing --onnx/);
});

test.run();
