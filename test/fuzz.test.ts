// The loader fuzz (issue 16), a fast deterministic subset in the suite: the
// first 300 cases of bench/fuzz.ts's seed-1 run (every case issue 16 lists,
// then random header, data, config and library-config mutations) in-process,
// through the loader and one forward. bench/fuzz.ts runs >= 5,000 in worker
// processes under a watchdog (aborts, hangs) and writes bench/results/fuzz.json.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateCases, runCase, type CaseResult } from '../bench/fuzz.js';

const test = suite('fuzz: corrupt model files through the loader and a forward');

test('300 cases: every one rejected with a project error naming the file, or accepted and run; none silent, none slow', () => {
  const results: CaseResult[] = [];
  for (const c of generateCases(0, 300, 1)) results.push(runCase(c));
  assert.is(results.length, 300);
  const bad = results.filter((r) => r.outcome === 'crash' || r.outcome === 'silent' || r.ms > 10_000);
  assert.equal(bad.map((r) => `#${r.index} ${r.kind}: ${r.outcome} ${r.error ?? ''}`), [], 'crashes, silently accepted invalid configs, hangs');
  const listed = results.filter((r) => r.kind.startsWith('listed: '));
  assert.ok(listed.length >= 25, `${listed.length} listed cases`);
  for (const r of listed) assert.is(r.outcome, 'rejected', `${r.kind}: ${r.error}`);
  // both kinds of outcome occur: the generator makes valid variants too
  assert.ok(results.filter((r) => r.outcome === 'accepted').length >= 10);
  assert.ok(results.filter((r) => r.outcome === 'rejected').length >= 200);
});

test.run();
