// Writes Fashion-MNIST as an ImageFolder directory of PNGs, the layout
// `--data DIR` reads: OUT/train/<class>/<i>.png and OUT/val/<class>/<i>.png
// (class names with '/' replaced by '_', as a folder name cannot hold it; the
// folder loader matches them back to the labels). Images are spread evenly
// over each class of the package's train and test splits.
//   npx tsx scripts/fmnist-folder.ts --out data/fmnist-png --train 500 --val 100 [--size 28]
// --size S resizes to S x S (bilinear) and writes RGB, to stand in for photos.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFashionMnist, FASHION_MNIST_CLASSES } from '../src/data/mnist.js';
import { encodePng } from '../src/io/image.js';
import { resizeU8 } from '../src/io/resize.js';
import type { Split } from '../src/data/dataset.js';

const { values: a } = parseArgs({ options: { out: { type: 'string' }, train: { type: 'string', default: '500' }, val: { type: 'string', default: '100' }, size: { type: 'string', default: '28' } } });
if (!a.out) { console.error('usage: npx tsx scripts/fmnist-folder.ts --out DIR [--train N] [--val N] [--size S]'); process.exit(2); }
const nTrain = Number(a.train), nVal = Number(a.val), size = Number(a.size);
for (const [k, v] of [['train', nTrain], ['val', nVal], ['size', size]] as const) if (!(Number.isInteger(v) && v > 0)) { console.error(`--${k} must be a positive integer, got ${v}`); process.exit(2); }
const ds = loadFashionMnist();

export function folderName(label: string): string { return label.replace(/\//g, '_'); }

function write(split: Split, per: number, sub: string): number {
  let written = 0;
  for (let c = 0; c < 10; c++) {
    const idx: number[] = [];
    for (let i = 0; i < split.n; i++) if (split.labels[i] === c) idx.push(i);
    const dir = join(a.out!, sub, folderName(FASHION_MNIST_CLASSES[c]));
    mkdirSync(dir, { recursive: true });
    const k = Math.min(per, idx.length);
    for (let j = 0; j < k; j++) {
      const i = idx[Math.floor((j * idx.length) / k)], g = split.images.subarray(i * 784, (i + 1) * 784);
      const px = size === 28 ? g : resizeU8(g, 1, 28, 28, size, size, 'bilinear');
      const rgba = new Uint8Array(size * size * 4);
      for (let p = 0; p < size * size; p++) { rgba[4 * p] = rgba[4 * p + 1] = rgba[4 * p + 2] = px[p]; rgba[4 * p + 3] = 255; }
      writeFileSync(join(dir, `${String(i).padStart(5, '0')}.png`), encodePng(size, size, rgba));
      written++;
    }
  }
  return written;
}
const t = write(ds.train, nTrain, 'train'), v = write(ds.test, nVal, 'val');
console.log(`wrote ${t} train and ${v} val PNGs (${size}x${size}) to ${a.out}`);
