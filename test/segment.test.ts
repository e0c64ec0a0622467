// Segmentation transfer (issue #7): deterministic scenes from real items with
// train/test separation and exact labels, the metric on hand-computed cases,
// the bilinear upsampling operator (torch's values, finite-difference
// gradients), the segmentation model as a CAIT wrapper (an empty schedule is
// the plain forward), and the commands end to end on a tiny run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, scope, setBackend, getBackend } from '../src/tensor.js';
import { backward, noGrad, zeroGrad } from '../src/autograd.js';
import * as ops from '../src/ops/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadFashionMnist } from '../src/data/mnist.js';
import { makeScenes, sceneSeed, SceneSet, type Scene } from '../src/data/scenes.js';
import type { ImageSource } from '../src/data/augment.js';
import { Rng } from '../src/util/rng.js';
import { createModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { bilinearWeights, upsampleTokens } from '../src/seg/upsample.js';
import { SegMeter, argmaxRows } from '../src/seg/metrics.js';
import { SegHead, segModel, segMacs } from '../src/seg/model.js';
import { renderSegmentation, SEG_COLOURS } from '../src/seg/render.js';
import { CaitModel } from '../src/cait/wrap.js';
import { unmerge } from '../src/cait/atme.js';
import { countMacs } from '../src/cait/macs.js';
import { decodePng, encodePng } from '../src/io/image.js';
import { gradcheck } from './gradcheck.js';
import { close, randn } from './util.js';
import { cait } from './cait.js';

const test = suite('segment');
test.before(() => setBackend(loadWasmSync('auto')));

/** n items of h x w: item j is a rectangle of value `v(j)` inside a zero border of `pad`, class j % 10. */
function boxes(n: number, v: (j: number) => number, h = 8, w = 8, pad = 1): ImageSource {
  const images = new Uint8Array(n * h * w), labels = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    labels[j] = j % 10;
    for (let r = pad; r < h - pad; r++) for (let c = pad; c < w - pad; c++) images[j * h * w + r * w + c] = v(j);
  }
  return { images, labels, n, h, w };
}

const disjoint = (a: Scene['items'][number], b: Scene['items'][number]) =>
  a.top + a.height <= b.top || b.top + b.height <= a.top || a.left + a.width <= b.left || b.left + b.width <= a.left;

test('scenes: the same every time and in any order; 2-4 items, on the canvas, boxes disjoint, pixels the items\' own', () => {
  const ds = loadFashionMnist(), a = makeScenes(ds, { train: 300, test: 50 }), b = makeScenes(ds, { train: 5000, test: 50 });
  const S = a.train.size, counts = [0, 0, 0, 0, 0];
  for (let i = 299; i >= 0; i--) {
    const s = a.train.scene(i), t = b.train.scene(i);
    assert.equal(Array.from(s.image), Array.from(t.image), `scene ${i} differs between two sets`);
    assert.equal(Array.from(s.label), Array.from(t.label));
    assert.ok(s.items.length >= 2 && s.items.length <= 4, `scene ${i}: ${s.items.length} items`);
    counts[s.items.length]++;
    // k is the scene generator's first draw; Fashion-MNIST scenes rarely end short of it
    const k = 2 + new Rng(sceneSeed(0, 'train', i)).int(3);
    assert.ok(s.items.length <= k);
    const covered = new Uint8Array(S * S);
    for (const [n, it] of s.items.entries()) {
      assert.ok(it.top >= 0 && it.left >= 0 && it.top + it.height <= S && it.left + it.width <= S, `scene ${i} item ${n} off the canvas`);
      for (const other of s.items.slice(n + 1)) assert.ok(disjoint(it, other), `scene ${i}: items overlap`);
      assert.is(it.label, ds.train.labels[it.index]);
      for (let r = 0; r < it.height; r++) for (let c = 0; c < it.width; c++) covered[(it.top + r) * S + it.left + c] = 1;
    }
    for (let p = 0; p < S * S; p++) if (!covered[p]) assert.is(s.image[p], 0, `scene ${i}: pixel ${p} outside every item is not 0`);
    // each item's non-zero pixels appear at its box, its class+1 where >= 32
    const it = s.items[0], src = ds.train.images.subarray(it.index * 784, (it.index + 1) * 784);
    let sum = 0, placed = 0;
    for (let q = 0; q < 784; q++) sum += src[q];
    for (let r = 0; r < it.height; r++) for (let c = 0; c < it.width; c++) placed += s.image[(it.top + r) * S + it.left + c];
    assert.is(placed, sum, `scene ${i}: item ${it.index} not copied whole`);
  }
  for (const k of [2, 3, 4]) assert.ok(counts[k] > 60, `item counts ${counts}`);
  assert.throws(() => a.train.scene(300), /out of range/);
});

test('scene seeds: another seed gives other scenes, not seed 0\'s in another order', () => {
  const seeds = (seed: number) => new Set(Array.from({ length: 4096 }, (_, i) => sceneSeed(seed, 'train', i)));
  const base = seeds(0);
  for (const s of [1, 2, 3, 1000000]) {
    let shared = 0;
    for (const v of seeds(s)) if (base.has(v)) shared++;
    assert.ok(shared <= 2, `seed ${s} shares ${shared} of 4096 scene streams with seed 0`);
  }
});

test('train scenes take only training items, test scenes only test items', () => {
  // training items are drawn in value 100, test items in 200: no scene may mix them
  const train = boxes(40, () => 100), test = boxes(30, () => 200);
  const s = makeScenes({ train, test }, { train: 60, test: 60 }, { size: 24 });
  for (const [set, want, n] of [[s.train, 100, 40], [s.test, 200, 30]] as const) {
    for (let i = 0; i < set.n; i++) {
      const sc = set.scene(i);
      for (const v of sc.image) assert.ok(v === 0 || v === want, `${set.split} scene ${i} holds pixel value ${v}`);
      for (const it of sc.items) assert.ok(it.index < n);
    }
  }
  assert.is.not(Array.from(s.train.scene(0).image).join(), Array.from(s.test.scene(0).image).join());
});

test('labels: class + 1 where the item pixel >= threshold, background elsewhere (a tiny case by hand)', () => {
  // one 4x4 item, class 4; its zero first row and column are cropped by the box
  const px = [0, 0, 0, 0, 0, 10, 31, 32, 0, 33, 200, 0, 0, 255, 40, 1];
  const items: ImageSource = { images: Uint8Array.from(px), labels: Uint8Array.from([4]), n: 1, h: 4, w: 4 };
  const set = new SceneSet(items, 'train', 60, { size: 5, minItems: 1, maxItems: 1, threshold: 32 });
  const seen = new Set<string>();
  for (let i = 0; i < 60; i++) {
    const sc = set.scene(i), [it] = sc.items;
    assert.equal([it.height, it.width, it.index, it.label], [3, 3, 0, 4]);
    seen.add(`${it.top},${it.left}`);
    for (let r = 0; r < 5; r++) for (let c = 0; c < 5; c++) {
      const inBox = r >= it.top && r < it.top + 3 && c >= it.left && c < it.left + 3;
      const v = inBox ? px[(r - it.top + 1) * 4 + (c - it.left + 1)] : 0;
      assert.is(sc.image[r * 5 + c], v);
      assert.is(sc.label[r * 5 + c], v >= 32 ? 5 : 0, `scene ${i} pixel (${r}, ${c}) value ${v}`);
    }
  }
  assert.is(seen.size, 9, 'every one of the 3x3 positions is used');
  // a batch: normalised pixels, the labels per pixel; a flip mirrors both
  const b = set.makeBatch([0, 0], { pad: 5, mean: 0.5, std: 0.25, augment: { rng: { next: () => 0 } as unknown as Rng, cropPad: 0, flip: true } });
  const sc = set.scene(0);
  for (let r = 0; r < 5; r++) for (let c = 0; c < 5; c++) {
    assert.is(b.y[r * 5 + c], sc.label[r * 5 + 4 - c]);
    close([b.x[r * 5 + c]], [(sc.image[r * 5 + 4 - c] / 255 - 0.5) / 0.25], 1e-6);
  }
  assert.throws(() => set.makeBatch([0], { pad: 8, mean: 0, std: 1 }), /scenes are 5x5, but the model takes 8x8/);
});

test('mean IoU, per-class IoU and pixel accuracy on hand-computed cases', () => {
  const m = new SegMeter(3);
  m.add([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 1);
  // confusion (truth x pred): [[1,0,1],[1,2,0],[0,0,1]]
  // IoU0 = 1/(2+2-1), IoU1 = 2/(3+2-2), IoU2 = 1/(1+2-1)
  const r = m.scores();
  close(r.perClassIou as number[], [1 / 3, 2 / 3, 1 / 2], 1e-12);
  close([r.miou, r.pixelAccuracy], [0.5, 4 / 6], 1e-12);
  assert.is(r.n, 1);
  // a class neither true nor predicted is left out of the mean
  const m4 = new SegMeter(4);
  m4.add([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]);
  assert.is(m4.scores().perClassIou[3], null);
  close([m4.scores().miou], [0.5], 1e-12);
  // predicted but absent counts (IoU 0)
  const m2 = new SegMeter(2);
  m2.add([0, 1], [0, 0]);
  close(m2.scores().perClassIou as number[], [0.5, 0], 1e-12);
  // argmax per row, ties to the lower id; out-of-range ids are errors
  assert.equal(Array.from(argmaxRows([1, 3, 3, 0, -1, -2], 3)), [1, 0]);
  assert.throws(() => m.add([3], [0]), /out of range/);
});

test('bilinear upsampling: torch F.interpolate values, prefix skipped, both backends alike, finite-difference gradient', () => {
  // torch.nn.functional.interpolate([[1,2],[3,4]], size=4, mode='bilinear', align_corners=False)
  const want = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4];
  const A = bilinearWeights(2, 4);
  for (const be of [new ReferenceBackend(), getBackend()]) {
    const z = Tensor.from([99, 1, 2, 3, 4], [1, 5, 1], be);
    const y = upsampleTokens(z, [2, 2], Tensor.from(A, [4, 2], be), Tensor.from(A, [4, 2], be), 1);
    assert.equal(y.shape, [16, 1]);
    close(y.toArray(), want, 1e-6, 0, `${be.name}:`);
  }
  // every row of the weights sums to 1 (odd sizes, up and down)
  for (const [i, o] of [[8, 64], [3, 7], [7, 3], [5, 5]]) {
    const w = bilinearWeights(i, o);
    for (let r = 0; r < o; r++) close([w.subarray(r * i, (r + 1) * i).reduce((a, b) => a + b, 0)], [1], 1e-6);
  }
  // odd grid 3x2 -> 7x5, K = 3, two images with a class token: WASM vs reference, then gradients
  const ay = Tensor.from(bilinearWeights(3, 7), [7, 3]), ax = Tensor.from(bilinearWeights(2, 5), [5, 2]);
  const zd = randn(2 * 7 * 3, 11), ref = new ReferenceBackend();
  const yr = upsampleTokens(Tensor.from(zd, [2, 7, 3], ref), [3, 2], Tensor.from(bilinearWeights(3, 7), [7, 3], ref), Tensor.from(bilinearWeights(2, 5), [5, 2], ref), 1);
  close(upsampleTokens(Tensor.from(zd, [2, 7, 3]), [3, 2], ay, ax, 1).toArray(), yr.toArray(), 1e-6, 0, 'wasm vs reference:');
  gradcheck('upsampleTokens', ([z]) => upsampleTokens(z, [3, 2], ay, ax, 1), [[2, 7, 3]], { samples: 42 });
  assert.throws(() => upsampleTokens(Tensor.from(zd, [2, 7, 3]), [2, 2], ay, ax, 1), /expected \[B, 1 \+ 2x2, K\]/);
});

const tinySeg: VitConfig = {
  ...getPreset('vit_seg64'), name: 'tiny_seg', imgSize: 16, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2, numClasses: 5,
  mean: [0.2], std: [0.3], classes: ['background', 'a', 'b', 'c', 'd'],
};

test('segmentation model: an empty ATME schedule is the plain forward bit for bit; copy unmerge is the head on copies', () => {
  const vit = createModel(tinySeg, 3), x = () => Tensor.from(randn(2 * 256, 4), [2, 1, 16, 16]);
  noGrad(() => scope(() => {
    const got = segModel(vit, { merge: '' }).forward(x());
    assert.equal(got.shape, [2 * 256, 5]);
    const z = vit.head.forward(vit.forwardFeatures(x()));
    const A = Tensor.from(bilinearWeights(4, 16), [16, 4]);
    assert.equal(Array.from(got.toArray()), Array.from(upsampleTokens(z, [4, 4], A, A, 1).toArray()), 'empty schedule != plain forward');
    // merged twice, 'copy': the head on the merged tokens, unmerged, equals unmerging the tokens first
    const m = new CaitModel(vit, { merge: 'h@0,v@1', similarity: 'fixed', head: new SegHead('copy') });
    const out = m.forwardTokens(x());
    assert.equal(out.grid, [2, 2]);
    assert.is(out.residuals, undefined);
    const first = vit.head.forward(unmerge(out.tokens, out.plans));
    close(unmerge(vit.head.forward(out.tokens), out.plans).toArray(), first.toArray(), 1e-6, 0, 'head then unmerge:');
    close(m.forward(x()).toArray(), upsampleTokens(first, [4, 4], A, A, 1).toArray(), 1e-5, 0, 'merged seg forward:');
    // a CaitModel without the head is still the classifier
    assert.equal(new CaitModel(vit, { merge: 'h@0' }).forward(x()).shape, [2, 5]);
  }));
  const mac = segMacs(tinySeg, ''), merged = segMacs(tinySeg, 'h@0,v@1');
  assert.is(mac.backbone, countMacs(tinySeg, '').total - 16 * 5);
  assert.is(mac.head, 17 * 16 * 5);
  assert.is(mac.upsample, 4 * 16 * 4 * 5 + 16 * 4 * 16 * 5);
  // the default residual unmerge runs the classifier on the full grid (17 tokens); a copy unmerge, on the merged 5
  assert.is(merged.head, 17 * 16 * 5);
  assert.is(segMacs({ ...tinySeg, segUnmerge: 'copy' }, 'h@0,v@1').head, 5 * 16 * 5);
  assert.ok(merged.total < mac.total);
  vit.dispose();
});

// The method's alternative to unmerge (docs/cait-method.md, Segmentation transfer): the reduced
// grid's logits upsampled bilinearly back to h x w, then to pixels. Checked against those two
// stages done apart (torch's bilinear, align_corners=False, each), on a 4x4 grid merged to 2x2 and
// to 2x4 (one h step), and with no merging (the plain forward); its MACs; a gradient reaches the head
test('bilinear unmerge: the reduced grid upsampled bilinearly to h x w and on to the pixels', () => {
  const vit = createModel(tinySeg, 7), x = () => Tensor.from(randn(2 * 256, 8), [2, 1, 16, 16]);
  const A = Tensor.from(bilinearWeights(4, 16), [16, 4]);
  noGrad(() => scope(() => {
    for (const [merge, grid] of [['h@0,v@1', [2, 2]], ['h@1', [4, 2]]] as const) {
      const m = new CaitModel(vit, { merge, similarity: 'fixed', head: new SegHead('bilinear') });
      const out = m.forwardTokens(x());
      assert.equal(out.grid, [...grid]);
      const z = vit.head.forward(out.tokens).toArray(), K = 5, [gh, gw] = grid;
      // stage 1 apart: [gh, gw] -> [4, 4] token logits (the prefix row stays); stage 2: the usual pixel upsampling
      const by = bilinearWeights(gh, 4), bx = bilinearWeights(gw, 4), full = new Float32Array(2 * 17 * K);
      for (let b = 0; b < 2; b++) for (let k = 0; k < K; k++) {
        full[b * 17 * K + k] = z[b * (1 + gh * gw) * K + k];
        for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
          let v = 0;
          for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) v += by[i * gh + r] * bx[j * gw + c] * z[(b * (1 + gh * gw) + 1 + r * gw + c) * K + k];
          full[(b * 17 + 1 + i * 4 + j) * K + k] = v;
        }
      }
      close(m.forward(x()).toArray(), upsampleTokens(Tensor.from(full, [2, 17, K]), [4, 4], A, A, 1).toArray(), 1e-5, 0, `${merge}: bilinear unmerge vs two stages:`);
      const mac = segMacs({ ...tinySeg, segUnmerge: 'bilinear' }, merge);
      assert.is(mac.head, (1 + gh * gw) * 16 * K);
      assert.is(mac.upsample, gh * 16 * gw * K + 16 * gh * 16 * K);
    }
    const plain = segModel(vit, { merge: '' }).forward(x()).toArray();
    assert.equal(Array.from(new CaitModel(vit, { merge: '', head: new SegHead('bilinear') }).forward(x()).toArray()), Array.from(plain), 'no merging: the plain forward');
  }));
  // a gradient reaches the head through the composed matrices
  const m = new CaitModel(vit, { merge: 'h@0,v@1', similarity: 'fixed', head: new SegHead('bilinear') });
  scope(() => {
    const y = m.forward(x(), true);
    backward(ops.crossEntropy(y, new Int32Array(y.shape[0]).fill(2)));
    const g = vit.head.weight.grad!.toArray();
    assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite), 'the head gets a finite, non-zero gradient');
  });
  zeroGrad(vit.parameters());
  vit.dispose();
});

test('residual unmerge: every position keeps its own stream plus its group\'s later updates', () => {
  // merge in block 1 and zero what block 1's MLP adds: nothing changes the tokens after the merge,
  // so the residual unmerge must give back the dense model's output, and copying must not
  const vit = createModel(tinySeg, 5), x = () => Tensor.from(randn(2 * 256, 6), [2, 1, 16, 16]);
  const fc2 = vit.blocks[1].mlp.fc2;
  fc2.weight.write(new Float32Array(fc2.weight.size));
  fc2.bias!.write(new Float32Array(fc2.bias!.size));
  noGrad(() => scope(() => {
    const dense = segModel(vit).forward(x()).toArray();
    for (const schedule of ['h@1', 'v@1']) {
      const res = new CaitModel(vit, { merge: schedule, head: new SegHead('residual') });
      const out = res.forwardTokens(x());
      assert.is(out.residuals!.length, 1);
      assert.equal(out.residuals![0].shape, [2, 17, 16]);
      close(res.forward(x()).toArray(), dense, 1e-5, 0, `${schedule} residual vs dense:`);
      const copy = new CaitModel(vit, { merge: schedule, head: new SegHead('copy') }).forward(x()).toArray();
      let d = 0;
      for (let i = 0; i < copy.length; i++) d = Math.max(d, Math.abs(copy[i] - dense[i]));
      assert.ok(d > 1e-3, `copy unmerge equals the dense output (max diff ${d})`);
    }
  }));
  // two merges, real updates: gradients reach the input through merge, unmerge and the residuals
  const m = new CaitModel(createModel(tinySeg, 6), { merge: 'h@0,v@1', head: new SegHead('residual') });
  gradcheck('residual seg forward', ([t]) => m.forward(t), [[1, 1, 16, 16]], { samples: 12, atol: 5e-3, rtol: 5e-2 });
  assert.throws(() => new SegHead('diagonal' as 'copy'), /expected residual or copy or bilinear/);
  vit.dispose();
});

test('the mask picture: panels in class colours, a legend of the classes shown', () => {
  const S = 8, pred = new Int32Array(S * S).fill(0), truth = new Uint8Array(S * S);
  for (let p = 0; p < 16; p++) { pred[p] = 3; truth[p] = 2; }
  const pic = renderSegmentation({ input: new Float32Array(S * S).fill(0.5), pred, truth, size: S, classes: ['background', 'a', 'b', 'c'], scale: 4 });
  assert.equal(pic.legend.map((e) => e.id), [0, 2, 3]);
  close([pic.legend[2].fraction], [0.25], 1e-12);
  const at = (x: number, y: number) => Array.from(pic.rgba.subarray((y * pic.width + x) * 4, (y * pic.width + x) * 4 + 3));
  // the prediction panel starts at x = 10 + 32 + 10; its top row is class 3
  const top = 10 + 14 + 8;
  assert.equal(at(52 + 1, top + 1), [...SEG_COLOURS[3]]);
  assert.equal(at(52 + 1, top + 31), [...SEG_COLOURS[0]]);
  const png = decodePng(encodePng(pic.width, pic.height, pic.rgba));
  assert.equal([png.width, png.height], [pic.width, pic.height]);
});

test('CLI: train, compress, eval, bench and segment a segmentation model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-seg-'));
  const t = await cait('train', '--task', 'segment', '--epochs', '1', '--limit', '32', '--batch', '16', '--eval-limit', '8', '--out', join(dir, 't'), '--quiet', '--json');
  assert.is(t.code, 0, t.stderr);
  assert.ok(t.json.miou >= 0 && t.json.miou <= 1 && t.json.per_class_iou.length === 11 && t.json.n === 8, JSON.stringify(t.json));
  const dense = join(dir, 't', 'model.safetensors'), small = join(dir, 'c.safetensors');
  const c = await cait('compress', '--task', 'segment', '--model', dense, '--target-macs', '1.8', '--merge', 'h@2', '--search-epochs', '1', '--finetune-epochs', '1',
    '--limit', '16', '--batch', '8', '--eval-limit', '8', '--runs', '3', '--out', small, '--quiet', '--json');
  assert.is(c.code, 0, c.stderr);
  assert.is(c.json.task, 'segment');
  assert.ok(c.json.mac_ratio > 1.5 && c.json.speedup > 0 && c.json.compressed.miou >= 0 && c.json.dense.miou === t.json.miou, JSON.stringify(c.json));
  // --limit 8 picks the same 8 test scenes as compress's --eval-limit 8
  const e = await cait('eval', '--task', 'segment', '--model', small, '--limit', '8', '--json');
  assert.is(e.code, 0, e.stderr);
  assert.equal(Object.keys(e.json).sort(), ['merge', 'miou', 'n', 'per_class_iou', 'pixel_accuracy']);
  assert.is(e.json.merge, 'h@2');
  assert.is(e.json.n, 8);
  close([e.json.miou], [c.json.compressed.miou], 1e-12, 0, 'eval vs compress report:');
  const b = await cait('bench', '--model', small, '--baseline', dense, '--runs', '3', '--warmup', '1', '--json');
  assert.is(b.code, 0, b.stderr);
  assert.ok(b.json.speedup > 0 && b.json.baseline.file === dense && b.json.task === 'segment' && b.json.mac_ratio > 1.5, JSON.stringify(b.json));
  // an input picture: a 64x64 grey scene as PNG
  const ds = loadFashionMnist(), sc = makeScenes(ds, { test: 1 }).test.scene(0), rgba = new Uint8Array(64 * 64 * 4);
  for (let p = 0; p < 64 * 64; p++) rgba.set([sc.image[p], sc.image[p], sc.image[p], 255], p * 4);
  writeFileSync(join(dir, 'in.png'), encodePng(64, 64, rgba));
  const s = await cait('segment', '--model', small, '--image', join(dir, 'in.png'), '--out', join(dir, 'mask.png'), '--json');
  assert.is(s.code, 0, s.stderr);
  const png = decodePng(readFileSync(join(dir, 'mask.png')));
  assert.equal([png.width, png.height], [s.json.width, s.json.height]);
  assert.ok(png.width > 2 * 256 && s.json.classes.reduce((n: number, k: { pixels: number }) => n + k.pixels, 0) === 64 * 64);
  const g = await cait('segment', '--model', small, '--scene', '0', '--out', join(dir, 'scene.png'), '--json');
  assert.is(g.code, 0, g.stderr);
  assert.ok(existsSync(join(dir, 'scene.png')) && g.json.miou >= 0 && g.json.width > s.json.width, 'a test scene adds the true mask');
  const u = await cait('eval', '--model', small, '--unmerge', 'sideways', '--limit', '1');
  assert.is(u.code, 2);
  assert.match(u.stderr, /--unmerge must be one of residual, copy, bilinear, got 'sideways'/);
  const p = await cait('predict', '--model', small, '--image', join(dir, 'in.png'));
  assert.is(p.code, 2);
  assert.match(p.stderr, /segmentation model: use cait segment/);
  // the scenes take no shift: --crop-pad is a usage error (train and compress ignored it)
  for (const args of [['train', '--task', 'segment', '--epochs', '1', '--out', join(dir, 'pad')], ['compress', '--model', dense, '--target-macs', '1.8', '--out', join(dir, 'pad.safetensors')]]) {
    const r = await cait(...args, '--crop-pad', '0');
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /--crop-pad applies to classification \(segmentation scenes place their items at random already\)/);
  }
});

test('CLI: a segmentation preset trains as one without --task (it trained as a classifier and failed in the loss)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-seg-'));
  const t = await cait('train', '--preset', 'vit_seg64', '--epochs', '1', '--limit', '8', '--batch', '8', '--eval-limit', '4', '--out', join(dir, 't'), '--quiet', '--json');
  assert.is(t.code, 0, t.stderr);
  assert.ok(t.json.miou >= 0 && t.json.n === 4, JSON.stringify(t.json));
  const c = await cait('train', '--preset', 'vit_seg64', '--task', 'classify', '--epochs', '1', '--out', join(dir, 'c'));
  assert.is(c.code, 2, c.stderr);
  assert.match(c.stderr, /--task classify, but model 'vit_seg64' is a segmentation model/);
});

test('CLI: --unmerge without a merge schedule is a usage error (it did nothing)', async () => {
  for (const args of [['--model', 'models/seg-dense.safetensors'], ['--model', 'models/seg-cait.safetensors', '--merge', 'none']]) {
    const r = await cait('eval', ...args, '--unmerge', 'copy', '--limit', '1');
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /--unmerge copy needs a merge schedule \(--merge, or a model saved with one\)/);
  }
});

test('CLI: scene flags where they choose nothing are usage errors naming them (they were ignored)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-seg-'));
  const cases: Array<[string[], RegExp]> = [
    [['eval', '--model', 'models/fmnist-dense.safetensors', '--test-scenes', '5', '--scene-seed', '2', '--limit', '1'], /--test-scenes, --scene-seed apply to segmentation scenes/],
    [['eval', '--model', 'models/seg-cait.safetensors', '--scenes', '5', '--limit', '1'], /--scenes applies to training \(train, compress\); eval scores the test scenes/],
    [['train', '--preset', 'vit_fmnist', '--epochs', '1', '--scenes', '7', '--out', join(dir, 't')], /--scenes applies to segmentation scenes/],
    [['compress', '--model', 'models/fmnist-dense.safetensors', '--target-macs', '1.3', '--scene-seed', '3', '--out', join(dir, 'c.safetensors')], /--scene-seed applies to segmentation scenes/],
    [['segment', '--model', 'models/seg-cait.safetensors', '--image', 'web/public/samples/03-dress.png', '--scene-seed', '5', '--data', 'mnist', '--out', join(dir, 'm.png')], /--data, --scene-seed apply to --scene \(which test scene\), not to --image/],
  ];
  for (const [args, re] of cases) {
    const r = await cait(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  assert.not.ok(existsSync(join(dir, 'm.png')));
});

test('CLI: compress --structure-only refuses a segmentation model (it counted and timed the classifier, scored --data as classes)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-seg-'));
  for (const args of [['--model', 'models/seg-dense.safetensors', '--data', 'fashion-mnist'], ['--preset', 'vit_seg64']]) {
    const r = await cait('compress', ...args, '--structure-only', '--target-macs', '1.3', '--search-runs', '1', '--runs', '1', '--out', join(dir, 'c.safetensors'));
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /is a segmentation model: --structure-only times and scores classifiers; compress it with training/);
  }
});

test.run();
