// What the bundler tests share (test/bundle.test.ts: esbuild,
// test/vite.test.ts: Vite, test/webpack.test.ts: webpack): the user script
// each bundles, the installed package, the download budget, Node's answer for
// the same model and image, the static server, and running the page in a
// browser and comparing it with Node.
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import { extname, join, sep } from 'node:path';
import * as assert from 'uvu/assert';
import { load } from '../src/api/node.js';
import { withBrowser, type BrowserName } from './browsers.js';
import { ROOT, tscIfStale } from './pack.js';

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

/**
 * What a user writes to run the threaded backend: the page starts a module
 * Worker (threads block on Atomics.wait, which a page's main thread may not)
 * and sends it the model's and the image's URLs (a worker's relative URLs are
 * relative to its script, wherever the bundler put it); the worker loads with
 * { threads: 2 } and posts back the answer, and the page sets window.result
 * or window.failure as the other scripts do.
 */
export const THREADS_PAGE_SCRIPT = `const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
w.onmessage = (e) => { if (e.data.error) window.failure = e.data.error; else window.result = e.data; };
w.onerror = (e) => { window.failure = 'worker: ' + e.message; };
w.postMessage({ model: new URL('fmnist-cait.safetensors', location.href).href, image: new URL('sneaker.png', location.href).href });
`;
export const THREADS_WORKER_SCRIPT = `import { load } from 'caitjs';

self.onmessage = async (e) => {
  try {
    const model = await load(e.data.model, { threads: 2 });
    const image = await (await fetch(e.data.image)).blob();
    const top = await model.classify(image, { topk: 3 });
    const logits = await model.forward(model.preprocess(await createImageBitmap(image, { colorSpaceConversion: 'none' })));
    postMessage({ top, logits: Array.from(logits), others: [], backend: model.info.backend, quant: model.info.quant, int8Dot: model.info.int8Dot });
    model.dispose();
  } catch (err) { postMessage({ error: String(err && err.message || err) }); }
};
`;

/**
 * load({ threads: 2 }) on a page's main thread: the message it fails with,
 * as window.result.error (a clear one is expected: threads need a Web Worker).
 */
export const THREADS_MAIN_SCRIPT = `import { load } from 'caitjs';

try { (await load('fmnist-cait.safetensors', { threads: 2 })).dispose(); window.result = { error: null, isolated: self.crossOriginIsolated }; }
catch (e) { window.result = { error: String(e && e.message || e), isolated: self.crossOriginIsolated }; }
`;

/** COOP/COEP: a cross-origin isolated page, which SharedArrayBuffer (threads) needs. */
export const ISOLATED: OutgoingHttpHeaders = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

/**
 * node_modules/caitjs under `pkg` as npm installs it, as far as a browser build
 * can reach: package.json, dist/ (less the CommonJS build and source maps) and
 * build/*.wasm. dist/ is rebuilt with tsc first when a source file is newer
 * than it (CI builds it in npm ci); `tag` names the test in tsc's report.
 */
export function installPackage(pkg: string, tag: string): void {
  const built = (() => { try { return statSync(join(ROOT, 'dist/browser.js')).mtimeMs; } catch { return 0; } })();
  tscIfStale(tag, built);
  cpSync(join(ROOT, 'dist'), join(pkg, 'dist'), { recursive: true, filter: (f) => !f.endsWith('.map') && !f.includes(`${sep}cjs`) });
  mkdirSync(join(pkg, 'build'), { recursive: true });
  for (const f of readdirSync(join(ROOT, 'build')).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(ROOT, 'build', f), join(pkg, 'build', f));
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
}

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

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.png': 'image/png', '.safetensors': 'application/octet-stream', '.json': 'application/json' };

/**
 * Serves files under `dir` from 127.0.0.1; `file` maps a URL path (no leading /) to a name under `dir`, or null for 404;
 * every name served is pushed to `fetched`; `headers` go with every answer (ISOLATED for a cross-origin isolated page).
 */
export async function serveDir(dir: string, fetched: string[], file: (path: string) => string | null, headers: OutgoingHttpHeaders = {}): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const name = file(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1)));
    if (name === null) { res.writeHead(404, headers).end(); return; }
    try {
      const body = readFileSync(join(dir, name));
      fetched.push(name);
      res.writeHead(200, { ...headers, 'content-type': TYPES[extname(name)] ?? 'application/octet-stream' }).end(body);
    } catch { res.writeHead(404, headers).end(); }
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

/** A file's size gzipped at level 9 (what a server would send). */
export const gzSize = (file: string): number => gzipSync(readFileSync(file), { level: 9 }).length;

/**
 * What a bundler's page downloaded to classify, gzipped: every script it
 * fetched from `out` plus the one WASM file (asserted one), for assertLikeNode.
 */
export function pageDownload(name: string, out: string, fetched: readonly string[]): { total: number; parts: string } {
  const wasm = [...new Set(fetched.filter((f) => f.endsWith('.wasm')))], js = [...new Set(fetched.filter((f) => f.endsWith('.js')))];
  assert.is(wasm.length, 1, `${name} fetched one WASM file (got ${wasm.join(', ')})`);
  const jsGz = js.reduce((s, f) => s + gzSize(join(out, f)), 0), wasmGz = gzSize(join(out, wasm[0]));
  return { total: jsGz + wasmGz, parts: `${js.length} scripts ${(jsGz / 1024).toFixed(1)} KB + ${wasm[0]} ${(wasmGz / 1024).toFixed(1)} KB` };
}
