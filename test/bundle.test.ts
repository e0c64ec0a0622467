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
// Skips a browser, saying why, when its executable or puppeteer-core is missing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { BROWSERS, browserMissing } from './browsers.js';
import { FAILURE_SCRIPT, MODEL, MODEL_INT8, ROOT, SAMPLE, assertLikeNode, largestDifference, nodeAnswer, runPage, serveDir, userScript } from './browser-page.js';

const test = suite('bundle');
const dir = mkdtempSync(join(tmpdir(), 'cait-bundle-'));
let server: Server | null = null, base = '';
const fetched: string[] = [];
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
  for (const f of ['cait.simd.wasm', 'cait.relaxed.wasm']) copyFileSync(join(ROOT, 'build', f), join(dir, f));
  copyFileSync(MODEL, join(dir, PAGES.index));
  copyFileSync(MODEL_INT8, join(dir, PAGES.int8));
  copyFileSync(SAMPLE, join(dir, 'sneaker.png'));
  ({ server, base } = await serveDir(dir, fetched, (path) => {
    const name = path || 'index.html';
    return name.includes('/') || name.includes('..') ? null : name;
  }));
});

test.after(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
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

test.run();
