// Paired, interleaved timing of two sides (the A/B benches: bench/qgemm-ab.ts,
// bench/kernels-ab.ts, bench/threads.ts): each round times `reps` calls of
// side a and of side b, the order alternating round by round so that a change
// of the machine's speed lands on both; the first `warm` rounds are dropped.
// Per-round ratios b/a are kept alongside: on a noisy machine their median
// answers "how much faster is b" better than the ratio of the two medians.
import { readFileSync } from 'node:fs';
import { latencyStats, type LatencyStats } from '../src/util/timing.js';
import { WasmBackend, resolveVariant } from '../src/backend/wasm.js';
import { scriptArgs } from './args.js';
import { pinToOneCpu, type Pinning } from './pin.js';

/** One side of a build A/B: the file, its label, and the build loaded as a backend. */
export interface AbBuild { key: 'a' | 'b'; file: string; label: string; be: WasmBackend }

/**
 * The command line of the build A/Bs (bench/qgemm-ab.ts, bench/kernels-ab.ts):
 * --a OLD.wasm --b NEW.wasm (relaxed builds), their labels, --rounds (more
 * than `warm`), --out NAME (under bench/results/), --cpu; refused by name,
 * exit 2, before any work. The pin is taken and both builds loaded.
 */
export function abBuilds(script: string, o: { rounds: number; warm: number }): { sides: [AbBuild, AbBuild]; rounds: number; out: string; pinning: Pinning } {
  const cli = scriptArgs(process.argv.slice(2), { a: 'string', b: 'string', 'label-a': 'string', 'label-b': 'string', out: 'string', rounds: 'number', cpu: 'string' },
    `node --import tsx bench/${script}.ts --a OLD.wasm --b NEW.wasm [--label-a S] [--label-b S] [--out NAME] [--rounds R] [--cpu K|none]   (npm run bench:${script} -- ...)
  OLD/NEW: relaxed builds (build/cait.relaxed.wasm, or one built at another commit). Writes bench/results/NAME.json (default ${script}.json).`);
  const { flags } = cli;
  if (typeof flags.a !== 'string' || typeof flags.b !== 'string') cli.fail('--a OLD.wasm and --b NEW.wasm are required');
  const rounds = cli.int('rounds', o.rounds, o.warm + 1);
  const out = (flags.out as string | undefined) ?? script;
  if (!/^[\w.-]+$/.test(out)) cli.fail(`--out: a file name without extension (written under bench/results/ as NAME.json), got '${out}'`);
  const pinning = cli.check(() => pinToOneCpu(flags.cpu as string | undefined, 1));
  resolveVariant('relaxed');
  const side = (key: 'a' | 'b'): AbBuild => {
    const file = flags[key] as string;
    return { key, file, label: (flags[`label-${key}`] as string | undefined) ?? file, be: new WasmBackend(new WebAssembly.Module(readFileSync(file)), 'relaxed') };
  };
  return { sides: [side('a'), side('b')], rounds, out, pinning };
}

/** Per-call times (ms) of each side over the kept rounds, and each kept round's b/a. */
export function pairedRounds(run: readonly [() => void, () => void], rounds: number, warm: number, reps = 1): { a: number[]; b: number[]; ratios: number[] } {
  const ms: number[][] = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const t = performance.now();
      for (let j = 0; j < reps; j++) run[i]();
      ms[i].push((performance.now() - t) / reps);
    }
  }
  const a = ms[0].slice(warm), b = ms[1].slice(warm);
  return { a, b, ratios: b.map((t, i) => t / a[i]) };
}

/** The A/B benches' row: each side's latency stats, the median per-round b/a and its 10th and 90th percentiles. */
export function abSummary(t: { a: number[]; b: number[]; ratios: number[] }): { a: LatencyStats; b: LatencyStats; b_over_a_time: number; b_over_a_time_p10_p90: [number, number] } {
  const r = [...t.ratios].sort((x, y) => x - y), at = (q: number) => +r[Math.floor(r.length * q)].toFixed(4);
  return { a: latencyStats(t.a), b: latencyStats(t.b), b_over_a_time: +r[r.length >> 1].toFixed(4), b_over_a_time_p10_p90: [at(0.1), at(0.9)] };
}
