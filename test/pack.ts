// What the tests of the built package share (test/package.test.ts,
// test/vite.test.ts, test/browser-page.ts): the checkout's root, and
// rebuilding dist/ when a source file is newer than it.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The newest modification time of any file below `dir` (ms). */
export function newest(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    t = Math.max(t, f.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Runs tsc, as `npm run build:ts` does first, when a file under src/ is newer than `builtMs`; says whether it ran. */
export function tscIfStale(tag: string, builtMs: number): boolean {
  if (newest(join(ROOT, 'src')) <= builtMs) return false;
  // tsc writes its output even where a file has type errors
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) console.log(`  ${tag}: tsc reported errors (output written anyway):\n${r.stdout.split('\n').slice(0, 5).join('\n')}`);
  return true;
}
