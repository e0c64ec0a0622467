// README examples cannot rot: every ```js block of README.md runs in Node
// (`caitjs` resolved to this checkout's src/index.ts, from the repository
// root) and must exit cleanly, and where a console.log line ends in a
// comment, the words it quotes ('Sneaker'), capitalised words and long
// numbers in it must appear in that line of output. ```js browser blocks are
// bundled for the browser with esbuild (the package's browser entry), which
// fails on any name the package does not export; test/bundle.test.ts runs
// the same calls in Chromium and Firefox.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { checkPromises, readmeBlocks } from './readme-blocks.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const test = suite('readme');
const blocks = readmeBlocks(join(ROOT, 'README.md'));
const work = mkdtempSync(join(tmpdir(), 'cait-readme-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

test('the README has runnable examples for Node and the browser', () => {
  assert.ok(blocks.filter((b) => b.kind === 'js').length >= 3, 'Node examples');
  assert.ok(blocks.some((b) => b.kind === 'js browser'), 'a browser example');
});

for (const [i, b] of blocks.entries()) {
  test(`README.md:${b.line} (${b.kind})`, async () => {
    const entry = join(ROOT, 'src', b.kind === 'js' ? 'index.ts' : 'browser.ts');
    if (b.kind === 'js browser') {
      await build({ stdin: { contents: b.code, resolveDir: ROOT, loader: 'js' }, bundle: true, write: false, format: 'esm', platform: 'browser', target: 'es2022', alias: { caitjs: entry }, logLevel: 'silent' });
      return;
    }
    const cjs = /\brequire\(/.test(b.code);
    const file = join(work, `example-${i}.${cjs ? 'cjs' : 'mjs'}`);
    const spec = cjs ? JSON.stringify(entry) : JSON.stringify(pathToFileURL(entry).href);
    writeFileSync(file, b.code.replace(/(['"])caitjs\1/g, spec));
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, `README.md:${b.line} exited ${r.status}:\n${r.stderr}`);
    checkPromises(b, r.stdout);
  });
}

test.run();
