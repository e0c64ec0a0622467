// The benchmark scripts as a user runs them (`npm run bench:NAME -- FLAGS`):
// every one answers --help with its usage (exit 0) and refuses an unknown flag
// or a count it cannot use with the usage on stderr (exit 2), before any work,
// so a typo never starts a long run or overwrites a committed result
// (bench/results/). scriptArgs (bench/args.ts) is the one way they do it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const scripts = Object.entries(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>)
  .filter(([k]) => k.startsWith('bench:')).map(([k, v]) => [k, /bench\/[\w-]+\.ts/.exec(v)![0]] as const)
  // and the scripts the README runs by path
  .concat(['profile', 'serve', 'segment', 'fuzz'].map((n) => [`bench/${n}.ts`, `bench/${n}.ts`] as const));
const run = (file: string, ...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', file, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

test('every bench:* script: --help prints its usage (exit 0); an unknown flag is a usage error (exit 2) that starts nothing', () => {
  assert.ok(scripts.length >= 10, `bench scripts in package.json: ${scripts.length}`);
  for (const [name, file] of scripts) {
    const h = run(file, '--help');
    assert.is(h.status, 0, `${name} --help: exit ${h.status}\n${h.stderr}`);
    assert.match(h.stdout, /^usage: /, `${name} --help: ${h.stdout}`);
    const u = run(file, '--nope', '1');   // (a script of positional arguments refuses the flag as unknown too)
    assert.is(u.status, 2, `${name} --nope: exit ${u.status}\n${u.stderr}`);
    assert.match(u.stderr, /--nope/, `${name}: the message names the flag`);
    assert.match(u.stderr, /usage: /, `${name}: and gives the usage`);
    assert.is(u.stdout, '', `${name}: nothing on stdout`);
  }
});

test('counts a script cannot use are refused before it writes anything: the committed results stay as they are', () => {
  const committed = readFileSync(join(ROOT, 'bench/results/int8-logits.json'), 'utf8');
  for (const [file, args, re] of [
    ['bench/int8-logits.ts', ['--seeds', '0'], /--seeds/],   // once wrote null means over the committed file
    ['bench/vit.ts', ['--runs', '0'], /--runs: an integer >= 1, got 0/],
    ['bench/vit.ts', ['--models', 'huge'], /--models: unknown 'huge' \(known: tiny, small/],
    ['bench/atme.ts', ['--runs', 'x'], /--runs/],
    ['bench/serve.ts', ['--rounds', '0'], /--rounds: an integer >= 1, got 0/],   // --help had started its load test
    ['bench/fuzz.ts', ['x'], /cases: an integer >= 1, got 'x'/],
    ['bench/segment.ts', ['a.safetensors', 'b.safetensors', '0'], /runs: a positive integer, got '0'/],
  ] as const) {
    const r = run(file, ...args);
    assert.is(r.status, 2, `${file} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, re, `${file}: ${r.stderr}`);
  }
  assert.is(readFileSync(join(ROOT, 'bench/results/int8-logits.json'), 'utf8'), committed);
});

test.run();
