// The README's code blocks and what their console.log comments promise, for
// test/readme.test.ts (run in this checkout) and test/package.test.ts (run in
// an empty project with the packed tarball installed).
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';

export interface ReadmeBlock { kind: string; code: string; line: number }

/** Every ```js and ```js browser block, with its line in the file. */
export function readmeBlocks(file: string): ReadmeBlock[] {
  const readme = readFileSync(file, 'utf8');
  return [...readme.matchAll(/^```(js(?: browser)?)\n([\s\S]*?)^```$/gm)].map((m) => ({ kind: m[1], code: m[2], line: readme.slice(0, m.index).split('\n').length }));
}

/** What a `console.log(...) // comment` line promises: quoted strings, capitalised words, numbers of 4+ digits. */
function promises(code: string): string[][] {
  return code.split('\n').filter((l) => /console\.log\(/.test(l)).map((l) => {
    const c = /\/\/\s*(.*)$/.exec(l)?.[1] ?? '';
    return [...(c.match(/'[^']*'/g) ?? []).map((q) => q.slice(1, -1)), ...(c.replace(/'[^']*'/g, '').match(/\b[A-Z][a-z]+\b|\b\d{4,}\b/g) ?? [])];
  });
}

/** The block's output has one line per console.log, each holding the words its comment promises. */
export function checkPromises(b: ReadmeBlock, stdout: string, where = 'README.md'): void {
  const out = stdout.trim().split('\n'), want = promises(b.code);
  assert.is(out.length, want.length, `${where}:${b.line}: ${want.length} lines of output expected, got:\n${stdout}`);
  want.forEach((words, k) => { for (const w of words) assert.ok(out[k].includes(w), `${where}:${b.line}: output line ${k + 1} '${out[k]}' lacks '${w}'`); });
}
