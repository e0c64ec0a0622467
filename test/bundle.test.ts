// The library in browsers, as a user would ship it: a 15-line script that
// imports `caitjs` is bundled by esbuild (platform browser, the package's
// `browser` entry, no Node built-ins), served from 127.0.0.1 beside the WASM
// kernels, the committed CAIT model and a sample PNG, and run in headless
// Chromium and Firefox ESR (test/browsers.ts). Each must give Node's top-1
// and logits within 1e-4 of Node's. The size check: what the page downloads
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
import { FAILURE_SCRIPT, MODEL, ROOT, SAMPLE, USER_SCRIPT, assertLikeNode, nodeAnswer, runPage, serveDir } from './browser-page.js';

const test = suite('bundle');
const dir = mkdtempSync(join(tmpdir(), 'cait-bundle-'));
let server: Server | null = null, base = '';
const fetched: string[] = [];
let bundleGz = 0;

test.before(async () => {
  writeFileSync(join(dir, 'user.js'), USER_SCRIPT);
  // 'caitjs' resolves to this checkout's browser entry, through the same
  // `browser` field (node: built-ins disabled) a bundler sees in the package
  const r = await build({
    entryPoints: [join(dir, 'user.js')], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true,
    outfile: join(dir, 'bundle.js'), alias: { caitjs: join(ROOT, 'src/browser.ts') }, logLevel: 'error', metafile: true,
  });
  const nodeImports = Object.values(r.metafile.inputs).flatMap((i) => i.imports).filter((i) => i.path.startsWith('node:') && !i.path.startsWith('(disabled)'));
  assert.equal(nodeImports.map((i) => i.path), [], 'the browser bundle must not import Node built-ins');
  bundleGz = gzipSync(readFileSync(join(dir, 'bundle.js')), { level: 9 }).length;
  for (const f of ['cait.simd.wasm', 'cait.relaxed.wasm']) copyFileSync(join(ROOT, 'build', f), join(dir, f));
  copyFileSync(MODEL, join(dir, 'fmnist-cait.safetensors'));
  copyFileSync(SAMPLE, join(dir, 'sneaker.png'));
  writeFileSync(join(dir, 'index.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>
${FAILURE_SCRIPT}
<script type="module" src="bundle.js"></script>\n`);
  ({ server, base } = await serveDir(dir, fetched, (path) => {
    const name = path || 'index.html';
    return name.includes('/') || name.includes('..') ? null : name;
  }));
});

test.after(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(dir, { recursive: true, force: true });
});

for (const name of BROWSERS) {
  test(`${name}: the bundled script classifies as Node does`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  bundle ${name}: SKIPPED: ${why}`); return; }
    const want = await nodeAnswer();
    fetched.length = 0;
    const { result: got, version } = await runPage(name, base + 'index.html');
    const wasm = fetched.filter((f) => f.endsWith('.wasm'));
    assert.is(wasm.length, 1, `${name} fetched one WASM file (got ${wasm.join(', ')})`);
    const wasmGz = gzipSync(readFileSync(join(dir, wasm[0])), { level: 9 }).length, total = bundleGz + wasmGz;
    assertLikeNode('bundle', name, version, want, got, total, `bundle ${(bundleGz / 1024).toFixed(1)} KB + ${wasm[0]} ${(wasmGz / 1024).toFixed(1)} KB`);
  });
}

test.run();
