// Writes the page's sample images: Fashion-MNIST test images as 28x28 PNGs in
// web/public/samples/ with samples.json (file, true label, test index). The
// PNGs are committed, so building the page needs no dataset; run this again
// only to change the set:  node --import tsx web/samples.ts [--per-class N]
//
// The set is fixed, not chosen by any model: the first N test images of each
// class (the test split is class-major: class c's test images are indices
// c*1000 .. c*1000+999, src/data/fashion-mnist.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnist, FASHION_MNIST_CLASSES } from '../src/data/mnist.js';
import { encodePng } from '../src/io/image.js';
import { parseArgs } from '../src/cli/args.js';

export const SAMPLES_DIR = fileURLToPath(new URL('./public/samples/', import.meta.url));

export interface Sample { file: string; label: number; className: string; testIndex: number }

export function writeSamples(dir = SAMPLES_DIR, perClass = 1): Sample[] {
  const ds = loadFashionMnist();
  const { images, labels, h, w, n } = ds.test;
  const seen = new Array(10).fill(0), out: Sample[] = [];
  for (let i = 0; i < n && out.length < 10 * perClass; i++) {
    const c = labels[i];
    if (seen[c]++ >= perClass) continue;
    const rgba = new Uint8Array(h * w * 4);
    for (let p = 0; p < h * w; p++) { const v = images[i * h * w + p]; rgba.set([v, v, v, 255], 4 * p); }
    const file = `${String(out.length).padStart(2, '0')}-${FASHION_MNIST_CLASSES[c].toLowerCase().replace(/[^a-z]+/g, '-')}.png`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), encodePng(w, h, rgba));
    out.push({ file, label: c, className: FASHION_MNIST_CLASSES[c], testIndex: i });
  }
  out.sort((a, b) => a.label - b.label || a.testIndex - b.testIndex);
  writeFileSync(join(dir, 'samples.json'), JSON.stringify(out, null, 1) + '\n');
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { flags } = parseArgs(process.argv.slice(2), { 'per-class': 'number', out: 'string' });
  const s = writeSamples((flags.out as string | undefined) ?? SAMPLES_DIR, (flags['per-class'] as number | undefined) ?? 1);
  console.log(`wrote ${s.length} samples to ${(flags.out as string | undefined) ?? SAMPLES_DIR}`);
}
