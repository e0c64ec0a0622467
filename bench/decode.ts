// How long decoding an uploaded PNG takes the thread that does it, by size,
// and what the server's decode worker costs around it (src/serve/decode.ts:
// images over INLINE_PIXELS are decoded there, so that a large upload does
// not stall every other request; this is the measurement behind that limit).
// Per side: the PNG of a noise-like pattern (pngjs's worst case is
// incompressible data; this one compresses, as photos partly do), decoded
// with decodeImage + imageToInput inline, and through ImageDecoder's worker
// (the round trip, bytes copied both ways); each checked against the other
// bit for bit first, warm-up runs dropped, median and spread of the rest.
// Usage: node --import tsx bench/decode.ts [--runs 9] [--out bench/results/decode.json]   (npm run bench:decode)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage, encodePng } from '../src/io/image.js';
import { imageToInput } from '../src/data/preprocess.js';
import { getPreset } from '../src/nn/presets.js';
import { ImageDecoder, INLINE_PIXELS } from '../src/serve/decode.js';
import { environment } from '../src/util/timing.js';
import { scriptArgs } from './args.js';

const cli = scriptArgs(process.argv.slice(2), { runs: 'number', out: 'string' },
  `node --import tsx bench/decode.ts [--runs 9] [--out bench/results/decode.json]   (npm run bench:decode)
  Writes --out (by default over the committed bench/results/decode.json).`);
const RUNS = cli.int('runs', 9, 1), WARM = 2;
const out = resolve((cli.flags.out as string | undefined) ?? fileURLToPath(new URL('./results/decode.json', import.meta.url)));
const cfg = getPreset('vit_fmnist'), dec = new ImageDecoder(2 ** 31 - 1);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const spread = (v: number[]) => { const m = median(v); return median(v.map((x) => Math.abs(x - m))) / m; };
const rows: Array<Record<string, number>> = [];
for (const side of [128, 256, 512, 1024, 2048, 4096]) {
  const px = new Uint8Array(side * side * 4);
  for (let i = 0; i < px.length; i++) px[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
  const png = encodePng(side, side, px);
  const inline = () => imageToInput(decodeImage(png, 'upload'), cfg);
  // (dec.input decodes inline up to INLINE_PIXELS; a pixel count over it sends any image to the worker)
  const viaWorker = () => dec.input(png, INLINE_PIXELS + 1, cfg);
  const a = inline(), b = await viaWorker();
  if (!a.every((v, i) => Object.is(v, b[i]))) throw new Error(`${side}x${side}: the worker's input differs from the inline one`);
  const ti: number[] = [], tw: number[] = [];
  for (let r = 0; r < RUNS + WARM; r++) {
    let t = performance.now(); inline(); const i = performance.now() - t;
    t = performance.now(); await viaWorker(); const w = performance.now() - t;
    if (r >= WARM) { ti.push(i); tw.push(w); }
  }
  const row = { side, pixels: side * side, png_bytes: png.length, inline_ms: +median(ti).toFixed(2), inline_spread: +spread(ti).toFixed(3), worker_ms: +median(tw).toFixed(2), worker_spread: +spread(tw).toFixed(3) };
  rows.push(row);
  console.log(`${side}x${side} (${png.length} bytes): inline ${row.inline_ms} ms (spread ${(100 * row.inline_spread).toFixed(1)}%), through the worker ${row.worker_ms} ms (${(100 * row.worker_spread).toFixed(1)}%)`);
}
await dec.close();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({
  what: 'bench/decode.ts: PNG decode + preprocess (vit_fmnist) on the calling thread against through src/serve/decode.ts\'s worker, by side; median over runs after warm-up', inline_pixels: INLINE_PIXELS,
  env: environment(), runs: RUNS, warmup: WARM, rows,
}, null, 2) + '\n');
console.log(`wrote ${out}`);
