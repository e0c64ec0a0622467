// The library bundled by webpack 5, as a user's project would: an empty
// project ("type": "module") whose node_modules/caitjs holds what npm installs
// (test/browser-page.ts installPackage), its src/main.js the same user script
// as the esbuild and Vite tests, built with webpack-cli and no config file
// (`webpack --entry ./src/main.js --mode production`, webpack's defaults).
// webpack reads the package's `browser` export condition, refuses a `node:`
// import it cannot resolve (UnhandledSchemeError), and takes every
// `new URL('literal', import.meta.url)` for an asset to emit: the package's
// build/ kernels must come through that way, and the lookup beside the bundle
// (files that do not exist in the package) must not fail the build. The build
// must end with no error and no warning. The output (dist/, with an
// index.html, the committed CAIT model and a sample PNG beside it) is served
// from 127.0.0.1 and run in headless Chromium and Firefox ESR
// (test/browsers.ts): Node's top-1 and logits within 1e-4, and what the page
// downloads to classify (every script it fetched plus the one WASM file) at
// most the esbuild test's 250 KB gzipped (printed on every run).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { BROWSERS, browserMissing } from './browsers.js';
import { FAILURE_SCRIPT, MODEL, ROOT, SAMPLE, USER_SCRIPT, assertLikeNode, installPackage, nodeAnswer, runPage, serveDir, pageDownload } from './browser-page.js';

const test = suite('webpack');
const work = mkdtempSync(join(tmpdir(), 'cait-webpack-'));
const proj = join(work, 'app'), out = join(proj, 'dist');
let server: Server | null = null, base = '';
const fetched: string[] = [];


interface StatsMessage { message: string; moduleName?: string }

// the build, run once by the first test that needs it: an assertion failing in a before hook is not shown by uvu
let built: Promise<void> | null = null;
async function buildApp(): Promise<void> {
  installPackage(join(proj, 'node_modules/caitjs'), 'webpack');
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  mkdirSync(join(proj, 'src'));
  writeFileSync(join(proj, 'src/main.js'), USER_SCRIPT);

  // the CLI as a user runs it, from the project's folder; --json: the errors and warnings, to assert on
  const stats = join(work, 'stats.json');
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/webpack-cli/bin/cli.js'), '--entry', './src/main.js', '--mode', 'production', `--json=${stats}`],
    { cwd: proj, encoding: 'utf8', timeout: 300_000 });
  let s: { errors?: StatsMessage[]; warnings?: StatsMessage[] } = {};
  try { s = JSON.parse(readFileSync(stats, 'utf8')); } catch { /* no stats: the CLI's output says why */ }
  const show = (ms: StatsMessage[] = []) => ms.map((m) => `${m.moduleName ?? ''}: ${m.message.split('\n')[0]}`);
  assert.equal(show(s.errors), [], 'webpack builds the package with no errors');
  assert.is(r.status, 0, `webpack-cli exited ${r.status}: ${r.stderr || r.stdout}`);
  // among them a performance hint (an asset over 244 KiB) or a magic-comment warning
  assert.equal(show(s.warnings), [], 'webpack builds the package with no warnings');
  const emitted = readdirSync(out);
  const js = emitted.filter((f) => f.endsWith('.js'));
  // (webpack refuses a node: module it is asked to bundle, UnhandledSchemeError, and so the errors above;
  // this is the output's side, as test/vite.test.ts checks it. The Node-only paths' node: names in strings,
  // getBuiltinModule('node:...') and the pool worker's source, are no imports)
  const nodeImports = js.flatMap((f) => readFileSync(join(out, f), 'utf8').match(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'`]node:[a-z_/]+/g) ?? []);
  assert.equal(nodeImports, [], 'the webpack bundle imports no Node built-in');
  // the package's kernels, emitted as assets (webpack names them by their hash)
  assert.ok(emitted.filter((f) => f.endsWith('.wasm')).length >= 2, `webpack emits the kernels as assets (got ${emitted.join(', ')})`);

  writeFileSync(join(out, 'index.html'), `<!doctype html><meta charset="utf-8"><title>caitjs</title>\n${FAILURE_SCRIPT}\n<script src="main.js"></script>\n`);
  copyFileSync(MODEL, join(out, 'fmnist-cait.safetensors'));
  copyFileSync(SAMPLE, join(out, 'sneaker.png'));
  ({ server, base } = await serveDir(out, fetched, (path) => {
    const name = normalize(path || 'index.html');
    return name.startsWith('..') ? null : name;
  }));
}

test.after(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(work, { recursive: true, force: true });
});

for (const name of BROWSERS) {
  test(`${name}: the webpack build classifies as Node does`, async () => {
    await (built ??= buildApp());
    const why = await browserMissing(name);
    if (why) { console.log(`  webpack ${name}: SKIPPED: ${why}`); return; }
    const want = await nodeAnswer();
    fetched.length = 0;
    const { result: got, version } = await runPage(name, base + 'index.html');
    const { total, parts } = pageDownload(name, out, fetched);
    assertLikeNode('webpack', name, version, want, got, total, parts);
  });
}

test.run();
