// The library bundled by Vite, as a user's project would: an empty project
// whose node_modules/caitjs holds what npm installs (package.json, dist/,
// build/*.wasm), its index.html loading the same user script as the esbuild
// test (test/browser-page.ts), built with Vite's JS API and no config. The
// package's `exports` `browser` condition must pick dist/browser.js, Vite must
// build it without a warning (it warns when it stubs a Node built-in that the
// package's `browser` field does not turn off), no bundled script may import a
// Node built-in, and the WASM kernels must come through
// Vite's `new URL('../../build/...', import.meta.url)` asset handling with no
// option. The output is served from 127.0.0.1 with the committed CAIT model and
// a sample PNG (the project's public/), and run in headless Chromium and Firefox ESR
// (test/browsers.ts): Node's top-1 and logits within 1e-4, and what the page
// downloads to classify (every script it fetched plus the one WASM file) at
// most the esbuild test's 250 KB gzipped (printed on every run). The same
// project also runs under Vite's dev server in Chromium. A second page of
// the project (threads.html, built by itself) loads with { threads: 2 } in a
// module Worker, served cross-origin isolated: the pool's .shared.wasm builds
// must come through Vite's asset handling too. dist/ is rebuilt with tsc
// when a source file is newer than it (CI builds it in npm ci).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { build, createServer as viteServer, type Logger, type Rollup } from 'vite';
import { BROWSERS, browserMissing } from './browsers.js';
import { FAILURE_SCRIPT, ISOLATED, MODEL, SAMPLE, THREADS_PAGE_SCRIPT, THREADS_WORKER_SCRIPT, USER_SCRIPT, assertLikeNode, installPackage, largestDifference, nodeAnswer, runPage, serveDir, pageDownload } from './browser-page.js';

const test = suite('vite');
const work = mkdtempSync(join(tmpdir(), 'cait-vite-'));
const proj = join(work, 'app'), out = join(work, 'out'), outThreads = join(work, 'out-threads'), pkg = join(proj, 'node_modules/caitjs');
let server: Server | null = null, base = '', isolated: Server | null = null, isolatedBase = '';
const fetched: string[] = [];


test.before(async () => {
  // the installed package: what `files` ships that a browser build can reach
  installPackage(pkg, 'vite');
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(join(proj, 'main.js'), USER_SCRIPT);
  writeFileSync(join(proj, 'index.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script type="module" src="./main.js"></script>\n`);
  writeFileSync(join(proj, 'threads.js'), THREADS_PAGE_SCRIPT);
  writeFileSync(join(proj, 'worker.js'), THREADS_WORKER_SCRIPT);
  writeFileSync(join(proj, 'threads.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script type="module" src="./threads.js"></script>\n`);
  // public/: served by the dev server, copied into the build
  mkdirSync(join(proj, 'public'));
  copyFileSync(MODEL, join(proj, 'public/fmnist-cait.safetensors'));
  copyFileSync(SAMPLE, join(proj, 'public/sneaker.png'));

  const warnings: string[] = [];
  const logger: Logger = {
    info() {}, clearScreen() {}, hasErrorLogged: () => false, hasWarned: false,
    warn(msg) { warnings.push(msg); }, warnOnce(msg) { warnings.push(msg); }, error(msg) { warnings.push(msg); },
  };
  const r = await build({
    root: proj, configFile: false, logLevel: 'silent', customLogger: logger,
    build: { outDir: out, emptyOutDir: true, target: 'es2022', rolldownOptions: { onwarn(w) { warnings.push(w.message); } } },
  }) as Rollup.RolldownOutput;
  const chunks = r.output.filter((o): o is Rollup.OutputChunk => o.type === 'chunk');
  const modules = chunks.flatMap((c) => Object.keys(c.modules));
  assert.ok(modules.includes(join(pkg, 'dist/browser.js')), 'the exports map\'s browser condition picks dist/browser.js');
  assert.not.ok(modules.includes(join(pkg, 'dist/index.js')), 'the Node entry stays out of the browser bundle');
  // among them 'Module "node:fs" has been externalized for browser compatibility' for a built-in the `browser` field does not turn off
  assert.equal(warnings, [], 'Vite builds the package with no warnings');
  const nodeImports = chunks.flatMap((c) => [...c.imports, ...c.dynamicImports, ...(c.code.match(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'`]node:[a-z_/]+/g) ?? [])].filter((i) => i.includes('node:')));
  assert.equal(nodeImports, [], 'the Vite bundle must not import Node built-ins');
  const wasmAssets = r.output.filter((o) => o.type === 'asset' && o.fileName.endsWith('.wasm')).map((o) => o.fileName);
  // the pool's builds too (the page fetches them only with threads)
  for (const b of ['relaxed', 'simd', 'relaxed.shared', 'simd.shared']) assert.ok(wasmAssets.some((f) => f.includes(`cait.${b}-`)), `Vite emits cait.${b}.wasm as an asset (got ${wasmAssets.join(', ')})`);

  ({ server, base } = await serveDir(out, fetched, (path) => {
    const name = normalize(path || 'index.html');
    return name.startsWith('..') ? null : name;
  }));

  // the threads page, by itself (the index page's build and download stay as they were)
  await build({
    root: proj, configFile: false, logLevel: 'silent', customLogger: logger,
    build: { outDir: outThreads, emptyOutDir: true, target: 'es2022', rolldownOptions: { input: join(proj, 'threads.html'), onwarn(w) { warnings.push(w.message); } } },
  });
  assert.equal(warnings, [], 'Vite builds the threads page with no warnings');
  ({ server: isolated, base: isolatedBase } = await serveDir(outThreads, [], (path) => {
    const name = normalize(path || 'threads.html');
    return name.startsWith('..') ? null : name;
  }, ISOLATED));
});

test.after(async () => {
  for (const s of [server, isolated]) await new Promise<void>((ok) => (s ? s.close(() => ok()) : ok()));
  rmSync(work, { recursive: true, force: true });
});

for (const name of BROWSERS) {
  test(`${name}: the Vite build classifies as Node does`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  vite ${name}: SKIPPED: ${why}`); return; }
    const want = await nodeAnswer();
    fetched.length = 0;
    const { result: got, version } = await runPage(name, base + 'index.html');
    const { total, parts } = pageDownload(name, out, fetched);
    assertLikeNode('vite', name, version, want, got, total, parts);
  });
}

for (const name of BROWSERS) {
  // the .shared.wasm builds through Vite's assets as the plain ones are (once only the unhashed name beside
  // the bundle was looked for: 'assets/cait.relaxed.shared.wasm: HTTP 404')
  test(`${name}: the Vite build runs { threads: 2 } in a Worker as Node does`, async () => {
    const why = await browserMissing(name);
    if (why) { console.log(`  vite threads ${name}: SKIPPED: ${why}`); return; }
    const want = await nodeAnswer();
    const { result: got } = await runPage(name, isolatedBase + 'threads.html', `vite threads ${name}`);
    const worst = largestDifference(want.logits, got.logits);
    console.log(`  vite threads ${name} (${got.backend}): top-1 ${got.top[0].label} (Node ${want.top}), largest logit difference ${worst.toExponential(2)}`);
    assert.match(got.backend, /^wasm-(relaxed|simd)-x2$/, `${name}: a pool of 2`);
    assert.is(got.top[0].label, want.top, `${name} threads top-1`);
    assert.ok(worst <= 1e-4, `${name}: threaded logits differ from Node's by up to ${worst} (> 1e-4)`);
  });
}

// `vite` (the dev server): the package pre-bundled into node_modules/.vite/deps
// as Vite does by default; a missing file is answered with index.html and
// status 200 there, which the kernel loader must pass over
test('chromium: the Vite dev server runs the script as Node does', async () => {
  const why = await browserMissing('chromium');
  if (why) { console.log(`  vite dev chromium: SKIPPED: ${why}`); return; }
  const want = await nodeAnswer();
  const dev = await viteServer({ root: proj, configFile: false, logLevel: 'silent', server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false } });
  try {
    await dev.listen();
    const { result: got } = await runPage('chromium', dev.resolvedUrls!.local[0] + 'index.html', 'vite dev');
    const worst = largestDifference(want.logits, got.logits);
    console.log(`  vite dev chromium (${got.backend}): top-1 ${got.top[0].label} (Node ${want.top}), largest logit difference ${worst.toExponential(2)}`);
    assert.is(got.top[0].label, want.top, 'vite dev top-1');
    assert.ok(worst <= 1e-4, `vite dev: logits differ from Node's by up to ${worst} (> 1e-4)`);
  } finally { await dev.close(); }
});

test.run();
