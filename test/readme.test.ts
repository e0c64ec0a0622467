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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const test = suite('readme');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```(js(?: browser)?)\n([\s\S]*?)^```$/gm)].map((m) => ({ kind: m[1], code: m[2], line: readme.slice(0, m.index).split('\n').length }));
const work = mkdtempSync(join(tmpdir(), 'cait-readme-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

test('the README has runnable examples for Node and the browser', () => {
  assert.ok(blocks.filter((b) => b.kind === 'js').length >= 3, 'Node examples');
  assert.ok(blocks.some((b) => b.kind === 'js browser'), 'a browser example');
});

/** What a `console.log(...) // comment` line promises: quoted strings, capitalised words, numbers of 4+ digits. */
function promises(code: string): string[][] {
  return code.split('\n').filter((l) => /console\.log\(/.test(l)).map((l) => {
    const c = /\/\/\s*(.*)$/.exec(l)?.[1] ?? '';
    return [...(c.match(/'[^']*'/g) ?? []).map((q) => q.slice(1, -1)), ...(c.replace(/'[^']*'/g, '').match(/\b[A-Z][a-z]+\b|\b\d{4,}\b/g) ?? [])];
  });
}

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
    const out = r.stdout.trim().split('\n'), want = promises(b.code);
    assert.is(out.length, want.length, `README.md:${b.line}: ${want.length} lines of output expected, got:\n${r.stdout}`);
    want.forEach((words, k) => { for (const w of words) assert.ok(out[k].includes(w), `README.md:${b.line}: output line ${k + 1} '${out[k]}' lacks '${w}'`); });
  });
}

test.run();
