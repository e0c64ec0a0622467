// What the bundler tests share (test/bundle.test.ts: esbuild,
// test/vite.test.ts: Vite): the user script each bundles, the download
// budget, and Node's answer for the same model and image.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from '../src/api/node.js';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const MODEL = join(ROOT, 'models/fmnist-cait.safetensors');
export const SAMPLE = join(ROOT, 'web/public/samples/07-sneaker.png');
/** Budget for what a browser downloads to classify (bundle + one WASM file), gzipped. */
export const BUDGET_GZ = 250 * 1024;

// what a user writes (the README's browser example does the same)
export const USER_SCRIPT = `import { load } from 'caitjs';

const model = await load('fmnist-cait.safetensors');
const image = await (await fetch('sneaker.png')).blob();
const top = await model.classify(image, { topk: 3 });

// the raw logits too, from pixels the page decodes itself
const bitmap = await createImageBitmap(image, { colorSpaceConversion: 'none' });
const logits = await model.forward(model.preprocess(bitmap));

// the other kinds of input: an <img>, encoded bytes
const img = new Image(); img.src = 'sneaker.png'; await img.decode();
const others = [await model.classify(img), await model.classify(new Uint8Array(await image.arrayBuffer()))];

window.result = { top, logits: Array.from(logits), others: others.map((t) => t[0].label), backend: model.info.backend };
model.dispose();
`;

/** Sets window.failure on an uncaught error or rejection, so a test waiting for window.result stops early. */
export const FAILURE_SCRIPT = `<script>addEventListener('error', (e) => { window.failure = String(e.message); }); addEventListener('unhandledrejection', (e) => { window.failure = String(e.reason && e.reason.stack || e.reason); });</script>`;

export interface PageResult { top: Array<{ label: string; index: number; score: number }>; logits: number[]; others: string[]; backend: string }

/** Node's answer for the same model and image: the library in Node (itself checked against `cait predict` in test/api.test.ts). */
export async function nodeAnswer(): Promise<{ top: string; logits: Float32Array }> {
  const m = await load(MODEL);
  try {
    const top = (await m.classify(SAMPLE, { topk: 1 }))[0].label;
    return { top, logits: await m.forward(m.preprocess(SAMPLE)) };
  } finally { m.dispose(); }
}
