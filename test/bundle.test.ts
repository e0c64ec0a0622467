// The library in browsers, as a user would ship it: a 15-line script that
// imports `caitjs` is bundled by esbuild (platform browser, the package's
// `browser` entry, no Node built-ins), served from 127.0.0.1 beside the WASM
// kernels, the committed CAIT model and a sample PNG, and run in headless
// Chromium and Firefox ESR (test/browsers.ts). Each must give Node's top-1
// and logits within 1e-4 of Node's; so must the same script on the int8 file
// (models/fmnist-cait-int8.safetensors: the int8 kernels of the relaxed build
// in Chromium, of the plain SIMD one in Firefox), against Node on the build
// the page ran: the two builds' int8 forwards differ by more than their float
// ones (1.3e-4 against 2.4e-7 here: the float steps' last-bit differences,
// fused multiply-adds in one build and not the other, flip a 7-bit rounding
// here and there); and on the float file with { quantize: 'int8' }, which
// must give the int8 file's answer. The size check: what the page downloads
// to classify (the bundle plus the one WASM file it fetched) must stay at
// most 250 KB gzipped (README "Use it from code"; printed on every run).
// Then what goes wrong, in the same browsers: inputs that are no image, a
// model file with its config.json beside it, the `wasm` option under a
// <base href>, a bundle that is not an ES module, WebGPU where there is none,
// and the thread pool (a worker of a cross-origin isolated page, on a second
// server that sends COOP/COEP): its kernels missing, then served, and asked of
// the page's main thread. Each error must name the input and say what to do.
// Skips a browser, saying why, when its executable or puppeteer-core is missing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { load as nodeLoad } from '../src/api/node.js';
import { loadModel, saveHf } from '../src/nn/model.js';
import { BROWSERS, browserMissing } from './browsers.js';
import {
  FAILURE_SCRIPT, ISOLATED, MODEL, MODEL_INT8, ROOT, SAMPLE, THREADS_MAIN_SCRIPT, THREADS_PAGE_SCRIPT, THREADS_WORKER_SCRIPT,
  assertLikeNode, largestDifference, nodeAnswer, runPage, serveDir, userScript,
} from './browser-page.js';

const test = suite('bundle');
const dir = mkdtempSync(join(tmpdir(), 'cait-bundle-'));
let server: Server | null = null, base = '', isolated: Server | null = null, isolatedBase = '';
/** Whether the isolated server serves the .shared.wasm builds (the pool's kernels). */
let sharedServed = false;
const fetched: string[] = [];

// what goes wrong, each caught and its message kept in window.result; beside them, a model
// file (transformers layout, hf/) whose config is its config.json alone
const ERRORS_SCRIPT = `import { load } from 'caitjs';

const message = async (f) => { try { await f(); return null; } catch (e) { return String(e && e.message || e); } };
const out = {};
const model = await load('fmnist-cait.safetensors');
// an <img> whose src is missing: loaded ('complete'), broken, and in the page (so with a layout size)
const broken = new Image();
await new Promise((done) => { broken.onload = broken.onerror = done; broken.src = 'missing.png'; document.body.append(broken); });
out.brokenImg = await message(() => model.classify(broken));
out.notImageUrl = await message(() => model.classify('notimage.png'));
out.notImageBlob = await message(() => model.classify(new Blob(['hello'], { type: 'text/plain' })));
out.notImageBytes = await message(() => model.classify(new Uint8Array([1, 2, 3, 4])));
model.dispose();
out.hfFile = await message(async () => { const m = await load('hf/model.safetensors'); out.hfLabel = (await m.classify('sneaker.png'))[0].label; m.dispose(); });
out.webgpu = await message(async () => (await load('fmnist-cait.safetensors', { backend: 'webgpu' })).dispose());
out.threadsNotIsolated = await message(async () => (await load('fmnist-cait.safetensors', { threads: 2 })).dispose());
out.wasmMissing = await message(async () => (await load('fmnist-cait.safetensors', { backend: 'wasm-simd', wasm: 'nowhere/' })).dispose());
window.result = out;
`;
// under <base href="kern/">: the model, the image and the wasm option are all relative to it (the server has k.wasm only there)
const BASE_SCRIPT = `import { load } from 'caitjs';

const model = await load('fmnist-cait.safetensors', { backend: 'wasm-simd', wasm: 'k.wasm' });
window.result = { label: (await model.classify('sneaker.png'))[0].label, backend: model.info.backend };
model.dispose();
`;
// not an ES module: esbuild's default format for a browser bundle without --format=esm is an IIFE, import.meta empty
const IIFE_SCRIPT = `import { load } from 'caitjs';

load('fmnist-cait.safetensors').then(() => { window.result = { error: null }; }, (e) => { window.result = { error: String(e && e.message || e) }; });
`;
// page -> the model file its script loads (and load's options)
const PAGES = { index: 'fmnist-cait.safetensors', int8: 'fmnist-cait-int8.safetensors', quantize: 'fmnist-cait.safetensors' };
const OPTIONS: Partial<Record<keyof typeof PAGES, Record<string, unknown>>> = { quantize: { quantize: 'int8' } };

test.before(async () => {
  for (const [page, model] of Object.entries(PAGES)) {
    writeFileSync(join(dir, `${page}.user.js`), userScript(model, OPTIONS[page as keyof typeof PAGES]));
    // 'caitjs' resolves to this checkout's browser entry, through the same
    // `browser` field (node: built-ins disabled) a bundler sees in the package
    const r = await build({
      entryPoints: [join(dir, `${page}.user.js`)], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true,
      outfile: join(dir, `${page}.bundle.js`), alias: { caitjs: join(ROOT, 'src/browser.ts') }, logLevel: 'error', metafile: true,
    });
    const nodeImports = Object.values(r.metafile.inputs).flatMap((i) => i.imports).filter((i) => i.path.startsWith('node:') && !i.path.startsWith('(disabled)'));
    assert.equal(nodeImports.map((i) => i.path), [], 'the browser bundle must not import Node built-ins');
    writeFileSync(join(dir, `${page}.html`), `<!doctype html><meta charset="utf-8"><title>caitjs</title>
${FAILURE_SCRIPT}
<script type="module" src="${page}.bundle.js"></script>\n`);
  }
  const bundle = async (entry: string, script: string, format: 'esm' | 'iife' = 'esm') => {
    writeFileSync(join(dir, `${entry}.user.js`), script);
    // (the IIFE build warns that import.meta is empty: that is the point)
    await build({ entryPoints: [join(dir, `${entry}.user.js`)], bundle: true, format, platform: 'browser', target: 'es2022', minify: true, outfile: join(dir, `${entry}.bundle.js`), alias: { caitjs: join(ROOT, 'src/browser.ts') }, logLevel: format === 'esm' ? 'error' : 'silent' });
  };
  await bundle('errors', ERRORS_SCRIPT);
  writeFileSync(join(dir, 'errors.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script type="module" src="errors.bundle.js"></script>\n`);
  await bundle('base', BASE_SCRIPT);
  writeFileSync(join(dir, 'base.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title><base href="kern/">\n${FAILURE_SCRIPT}\n<script type="module" src="/base.bundle.js"></script>\n`);
  await bundle('iife', IIFE_SCRIPT, 'iife');
  writeFileSync(join(dir, 'iife.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script src="iife.bundle.js"></script>\n`);
  await bundle('worker', THREADS_WORKER_SCRIPT);
  writeFileSync(join(dir, 'threads.js'), THREADS_PAGE_SCRIPT.replace('./worker.js', './worker.bundle.js'));
  writeFileSync(join(dir, 'threads.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script type="module" src="threads.js"></script>\n`);
  await bundle('threads-main', THREADS_MAIN_SCRIPT);
  writeFileSync(join(dir, 'threads-main.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script type="module" src="threads-main.bundle.js"></script>\n`);
  writeFileSync(join(dir, 'notimage.png'), 'hello, I am text');

  for (const f of ['cait.simd.wasm', 'cait.relaxed.wasm', 'cait.simd.shared.wasm', 'cait.relaxed.shared.wasm']) copyFileSync(join(ROOT, 'build', f), join(dir, f));
  copyFileSync(MODEL, join(dir, PAGES.index));
  copyFileSync(MODEL_INT8, join(dir, PAGES.int8));
  copyFileSync(SAMPLE, join(dir, 'sneaker.png'));
  // a transformers-layout folder: model.safetensors (no config in its metadata) with config.json beside it
  mkdirSync(join(dir, 'hf'));
  const { model: dense } = loadModel(join(ROOT, 'models/fmnist-dense.safetensors'));
  saveHf(join(dir, 'hf'), dense);
  dense.dispose();
  ({ server, base } = await serveDir(dir, fetched, (path) => {
    const name = path || 'index.html';
    if (name === 'kern/k.wasm') return 'cait.simd.wasm';
    if (name.startsWith('kern/') || name.startsWith('hf/')) return name.startsWith('kern/') ? name.slice(5) : name;
    // the pool's kernels (beside the bundle, where the README says to copy them) only on the isolated server, when sharedServed
    return name.includes('/') || name.includes('..') || name.endsWith('.shared.wasm') ? null : name;
  }));
  ({ server: isolated, base: isolatedBase } = await serveDir(dir, fetched, (path) => {
    const name = path || 'index.html';
    return name.includes('/') || name.includes('..') || (name.endsWith('.shared.wasm') && !sharedServed) ? null : name;
  }, ISOLATED));
});

test.after(async () => {
  for (const s of [server, isolated]) await new Promise<void>((ok) => (s ? s.close(() => ok()) : ok()));
  rmSync(dir, { recursive: true, force: true });
});

const gz = (file: string): number => gzipSync(readFileSync(join(dir, file)), { level: 9 }).length;
/** What the page downloaded to classify, gzipped: its bundle plus the one WASM file it fetched (checked). */
function download(name: string, page: keyof typeof PAGES): { total: number; parts: string } {
  const wasm = fetched.filter((f) => f.endsWith('.wasm'));
  assert.is(wasm.length, 1, `${name} fetched one WASM file (got ${wasm.join(', ')})`);
  const b = gz(`${page}.bundle.js`), w = gz(wasm[0]);
  return { total: b + w, parts: `bundle ${(b / 1024).toFixed(1)} KB + ${wasm[0]} ${(w / 1024).toFixed(1)} KB` };
}

for (const name of BROWSERS) {
  test(`${name}: the bundled script classifies as Node does`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle ${name}: SKIPPED: ${why}`); return; }
    const want = await nodeAnswer();
    fetched.length = 0;
    const { result: got, version } = await runPage(name, base + 'index.html');
    const { total, parts } = download(name, 'index');
    assertLikeNode('bundle', name, version, want, got, total, parts);
    assert.is(got.quant, null, 'the float file');
    assert.is(got.int8Dot, null, 'no int8 kernels for the float file');
  });

  test(`${name}: the same script on the int8 file runs its int8 kernels as Node does`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle int8 ${name}: SKIPPED: ${why}`); return; }
    fetched.length = 0;
    const { result: got, version } = await runPage(name, base + 'int8.html', `${name} (int8)`);
    assert.is(got.quant, 'int8-dynamic', `${name}: info.quant`);
    assert.ok(got.backend === 'wasm-simd' || got.backend === 'wasm-relaxed', `${name}: backend ${got.backend}`);
    // the relaxed build's dot is the engine's choice (fused where it is one exact
    // instruction); either way the logits below equal Node's composed ones
    assert.ok(got.backend === 'wasm-simd' ? got.int8Dot === 'i16' : got.int8Dot === 'fused' || got.int8Dot === 'composed', `${name}: int8Dot ${got.int8Dot} on ${got.backend}`);
    console.log(`  bundle int8 ${name}: ${got.backend}, int8 dot ${got.int8Dot}`);
    const want = await nodeAnswer(MODEL_INT8, got.backend as 'wasm-simd' | 'wasm-relaxed'), float = await nodeAnswer(MODEL);
    const { total, parts } = download(name, 'int8');
    assertLikeNode('bundle int8', name, version, want, got, total, parts);
    // the int8 logits are the int8 model's, not the float one's
    const d = largestDifference(float.logits, got.logits);
    assert.ok(d > 1e-4, `${name}: int8 logits ${d} from float's: the int8 forwards did not run`);
  });

  test(`${name}: the float file with { quantize: 'int8' } gives the int8 file's answer`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle quantize ${name}: SKIPPED: ${why}`); return; }
    fetched.length = 0;
    const { result: got, version } = await runPage(name, base + 'quantize.html', `${name} (quantize)`);
    assert.is(got.quant, 'int8-dynamic', `${name}: info.quant`);
    assert.ok(got.int8Dot !== null, `${name}: the int8 kernels run`);
    const want = await nodeAnswer(MODEL_INT8, got.backend as 'wasm-simd' | 'wasm-relaxed');
    const { total, parts } = download(name, 'quantize');
    assertLikeNode('bundle quantize', name, version, want, got, total, parts);
  });
}

/** Loads `page` (on the isolated server when `isolatedPage`) and returns its window.result. */
async function pageResult<T>(name: (typeof BROWSERS)[number], page: string, isolatedPage = false): Promise<T> {
  return (await runPage(name, (isolatedPage ? isolatedBase : base) + page, `${name} (${page})`)).result as unknown as T;
}

for (const name of BROWSERS) {
  test(`${name}: what goes wrong is said, naming the input`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle errors ${name}: SKIPPED: ${why}`); return; }
    const r = await pageResult<Record<string, string | null>>(name, 'errors.html');
    console.log(`  bundle errors ${name}:\n${Object.entries(r).map(([k, v]) => `    ${k}: ${v}`).join('\n')}`);
    // a broken <img> (its src 404): not the browser's raw drawImage error (InvalidStateError / 'Passed-in image is "broken"')
    assert.match(r.brokenImg ?? '', /^image element '[^']*\/missing\.png'/, `${name}: a broken <img> is named by its src`);
    assert.match(r.brokenImg ?? '', /broken|failed to load/, `${name}: a broken <img> is said to be broken`);
    assert.match(r.notImageUrl ?? '', new RegExp(`^${base}notimage\\.png: not a decodable image \\(16 bytes`), `${name}: a URL that is no image`);
    assert.match(r.notImageBlob ?? '', /^Blob: not a decodable image \(5 bytes of type 'text\/plain', starting 68 65 6c 6c 6f/, `${name}: a Blob that is no image`);
    assert.match(r.notImageBytes ?? '', /^image bytes: not a decodable image \(4 bytes, starting 01 02 03 04/, `${name}: bytes that are no image`);
    // a model file whose config is the config.json beside it, read as Node reads it
    assert.is(r.hfFile, null, `${name}: load('hf/model.safetensors') with config.json beside it`);
    const hf = await nodeLoad(join(dir, 'hf/model.safetensors'));
    try { assert.is(r.hfLabel, (await hf.classify(SAMPLE))[0].label, `${name}: the hf/ file's top-1 as Node's`); } finally { hf.dispose(); }
    // no repository paths for a package user; where WebGPU is missing, what to use instead
    assert.ok(r.webgpu === null || !/src\//.test(r.webgpu), `${name}: the WebGPU error names no repository file: ${r.webgpu}`);
    if (r.webgpu?.includes('navigator.gpu')) assert.match(r.webgpu, /use the default backend/);
    assert.match(r.threadsNotIsolated ?? '', /SharedArrayBuffer.*cross-origin isolated.*Web Worker/, `${name}: threads on a page that is not isolated`);
    assert.match(r.wasmMissing ?? '', new RegExp(`wasm option \\(nowhere/\\).*${base}nowhere/cait\\.simd\\.wasm \\(HTTP 404`), `${name}: the wasm option's URL tried`);
  });

  test(`${name}: the wasm option is relative to the page's <base href>, as model and image URLs are`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle base ${name}: SKIPPED: ${why}`); return; }
    const r = await pageResult<{ label: string; backend: string }>(name, 'base.html');
    assert.equal(r, { label: (await nodeAnswer()).top, backend: 'wasm-simd' });
  });

  test(`${name}: a bundle that is not an ES module is told to be one`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle iife ${name}: SKIPPED: ${why}`); return; }
    const r = await pageResult<{ error: string | null }>(name, 'iife.html');
    assert.match(r.error ?? '', /import\.meta\.url is empty.*not an ES module.*--format=esm/, `${name}: ${r.error}`);
  });

  test(`${name}: threads in a Web Worker of an isolated page: the .shared.wasm builds are asked for, then run as Node does`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle threads ${name}: SKIPPED: ${why}`); return; }
    sharedServed = false;
    const missing = await runPage(name, isolatedBase + 'threads.html', `${name} (threads)`).then(() => 'no error', (e: Error) => e.message);
    assert.match(missing, /could not fetch the WASM kernels \(cait\.(relaxed|simd)\.shared\.wasm\).*Copy node_modules\/caitjs\/build\/cait\.(relaxed|simd)\.shared\.wasm beside your bundle \(threads run the \.shared\.wasm builds/, `${name}: ${missing}`);
    sharedServed = true;
    try {
      const want = await nodeAnswer();
      const { result: got } = await runPage(name, isolatedBase + 'threads.html', `${name} (threads)`);
      assert.match(got.backend, /^wasm-(relaxed|simd)-x2$/, `${name}: a pool of 2 (backend ${got.backend})`);
      const worst = largestDifference(want.logits, got.logits);
      console.log(`  bundle threads ${name} (${got.backend}): top-1 ${got.top[0].label} (Node ${want.top}), largest logit difference ${worst.toExponential(2)}`);
      assert.is(got.top[0].label, want.top, `${name} threads top-1`);
      assert.ok(worst <= 1e-4, `${name}: threaded logits differ from Node's by up to ${worst} (> 1e-4)`);
    } finally { sharedServed = false; }
  });

  test(`${name}: threads on an isolated page's main thread say to use a Web Worker`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle threads-main ${name}: SKIPPED: ${why}`); return; }
    const r = await pageResult<{ error: string | null; isolated: boolean }>(name, 'threads-main.html', true);
    assert.ok(r.isolated, `${name}: the page is cross-origin isolated`);
    assert.match(r.error ?? '', /^load: threads: this thread may not block .*inside a Web Worker/, `${name}: ${r.error}`);
  });
}

test.run();
