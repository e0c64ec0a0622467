// Test entry: runs every test/**/*.test.ts with uvu in one process and ends
// with the line CI reads, `N passed, N failed`, counted from uvu's own results.
// Usage: npm test [-- pattern]   (a regular expression tested against each test
// file's path from the repository root, test/...: where the clone lives does not match)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const pattern = process.argv[2] ? new RegExp(process.argv[2]) : null;
const files: string[] = [];
(function walk(dir: string) {
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (f.endsWith('.test.ts') && (!pattern || pattern.test(`test/${relative(here, p)}`))) files.push(p);
  }
})(here);

type Runner = () => Promise<[true | string, number, number, number]>;
const g = globalThis as unknown as { UVU_DEFER: number; UVU_INDEX: number; UVU_QUEUE: Array<Array<string | Runner | null>> };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];
const uvu = await import('uvu');

let passed = 0, failed = 0, skipped = 0;
for (let i = 0; i < files.length; i++) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE.push([relative(here, files[i])]);
  await import(pathToFileURL(files[i]).href);
}
for (const group of g.UVU_QUEUE) {
  for (let j = 1; j < group.length; j++) {
    const run = group[j] as Runner;
    group[j] = async () => {
      const r = await run();
      const [errs, ran, skip, total] = r;
      passed += ran; skipped += skip; failed += total - ran;
      if (errs !== true && total === ran) failed += 1; // a hook threw
      return r;
    };
  }
}
await uvu.exec(false);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
