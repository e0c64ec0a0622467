// What the bundler tests share (test/bundle.test.ts: esbuild,
// test/vite.test.ts: Vite): the user script each bundles, the download
// budget, Node's answer for the same model and image, the static server, and
// running the page in a browser and comparing it with Node.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join } from 'node:path';
import * as assert from 'uvu/assert';
import { load } from '../src/api/node.js';
import { withBrowser, type BrowserName } from './browsers.js';
import { ROOT } from './pack.js';

export { ROOT };
export const MODEL = join(ROOT, 'models/fmnist-cait.safetensors');
/** The same model quantized (cait quantize): its int8 kernels run in the page (relaxed or plain SIMD build). */
export const MODEL_INT8 = join(ROOT, 'models/fmnist-cait-int8.safetensors');
export const SAMPLE = join(ROOT, 'web/public/samples/07-sneaker.png');
/** Budget for what a browser downloads to classify (bundle + one WASM file), gzipped. */
export const BUDGET_GZ = 250 * 1024;

// what a user writes (the README's browser example does the same), for a model file served beside it
export const userScript = (modelFile: string, options?: Record<string, unknown>): string => `import { load } from 'caitjs';

const model = await load('${modelFile}'${options ? `, ${JSON.stringify(options)}` : ''});
const image = await (await fetch('sneaker.png')).blob();
const top = await model.classify(image, { topk: 3 });

// the raw logits too, from pixels the page decodes itself
const bitmap = await createImageBitmap(image, { colorSpaceConversion: 'none' });
const logits = await model.forward(model.preprocess(bitmap));

// the other kinds of input: an <img>, encoded bytes, a URL relative to the page
const img = new Image(); img.src = 'sneaker.png'; await img.decode();
const others = [await model.classify(img), await model.classify(new Uint8Array(await image.arrayBuffer())), await model.classify('sneaker.png')];

window.result = { top, logits: Array.from(logits), others: others.map((t) => t[0].label), backend: model.info.backend, quant: model.info.quant, int8Dot: model.info.int8Dot };
model.dispose();
`;
export const USER_SCRIPT = userScript('fmnist-cait.safetensors');

/** Sets window.failure on an uncaught error or rejection, so a test waiting for window.result stops early. */
export const FAILURE_SCRIPT = `<script>addEventListener('error', (e) => { window.failure = String(e.message); }); addEventListener('unhandledrejection', (e) => { window.failure = String(e.reason && e.reason.stack || e.reason); });</script>`;

export interface PageResult { top: Array<{ label: string; index: number; score: number }>; logits: number[]; others: string[]; backend: string; quant: string | null; int8Dot: string | null }

/** Node's answer for the same model and image: the library in Node (itself checked against `cait predict` in test/api.test.ts). */
export async function nodeAnswer(model = MODEL, backend?: 'wasm-simd' | 'wasm-relaxed'): Promise<{ top: string; logits: Float32Array }> {
  const m = await load(model, backend ? { backend } : {});
  try {
    const top = (await m.classify(SAMPLE, { topk: 1 }))[0].label;
    return { top, logits: await m.forward(m.preprocess(SAMPLE)) };
  } finally { m.dispose(); }
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.png': 'image/png', '.safetensors': 'application/octet-stream' };

/** Serves files under `dir` from 127.0.0.1; `file` maps a URL path (no leading /) to a name under `dir`, or null for 404; every name served is pushed to `fetched`. */
export async function serveDir(dir: string, fetched: string[], file: (path: string) => string | null): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const name = file(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1)));
    if (name === null) { res.writeHead(404).end(); return; }
    try {
      const body = readFileSync(join(dir, name));
      fetched.push(name);
      res.writeHead(200, { 'content-type': TYPES[extname(name)] ?? 'application/octet-stream' }).end(body);
    } catch { res.writeHead(404).end(); }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const a = server.address();
  return { server, base: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/` };
}

/** Loads `url` in the named browser and waits for the user script's window.result; throws, naming `who`, when the page set window.failure. */
export async function runPage(name: BrowserName, url: string, who: string = name): Promise<{ result: PageResult; version: string }> {
  return withBrowser(name, async (page, b) => {
    await page.goto(url);
    await page.waitForFunction('window.result || window.failure', { timeout: 60_000 });
    const failure = await page.evaluate('window.failure') as string | undefined;
    if (failure) throw new Error(`${who}: the page failed: ${failure}`);
    return { result: await page.evaluate('window.result') as PageResult, version: b.version };
  });
}

/** The largest absolute difference between Node's logits and the page's. */
export function largestDifference(want: ArrayLike<number>, got: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
  return worst;
}

/**
 * A bundled page's answer against Node's: prints it with what the page
 * downloaded to classify (`total` gzipped bytes; `parts` says of what), then
 * asserts the same top-1 (also from an <img> and PNG bytes), logits within
 * 1e-4, and the download within BUDGET_GZ.
 */
export function assertLikeNode(tag: string, name: BrowserName, version: string, want: { top: string; logits: Float32Array }, got: PageResult, total: number, parts: string): void {
  const worst = largestDifference(want.logits, got.logits);
  console.log(`  ${tag} ${name} (${version}, ${got.backend}): top-1 ${got.top[0].label} (Node ${want.top}), largest logit difference ${worst.toExponential(2)}; ` +
    `download to classify ${(total / 1024).toFixed(1)} KB gzipped (${parts})`);
  assert.is(got.top[0].label, want.top, `${name} top-1`);
  assert.equal(got.others, [want.top, want.top, want.top], `${name}: top-1 from an <img>, from PNG bytes and from its URL`);
  assert.is(got.logits.length, want.logits.length);
  assert.ok(worst <= 1e-4, `${name}: logits differ from Node's by up to ${worst} (> 1e-4)`);
  assert.ok(total <= BUDGET_GZ, `${name}: the page downloads ${total} bytes gzipped to classify, over the ${BUDGET_GZ}-byte budget`);
}
