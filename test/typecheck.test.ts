// The code around the package (benchmarks, the demo page, scripts, these
// tests) calls src/ too, but tsx runs it without type checks and `tsc -p
// tsconfig.json` builds src/ alone: a renamed option or a changed signature
// broke bench/atme.ts unseen. tsconfig.check.json type-checks all of it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('bench/, web/, scripts/ and test/ type-check against src/ (tsconfig.check.json)', () => {
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.check.json'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, `tsc -p tsconfig.check.json:\n${r.stdout}${r.stderr}`);
});

test.run();
