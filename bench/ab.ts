// Paired, interleaved timing of two sides (the A/B benches: bench/qgemm-ab.ts,
// bench/kernels-ab.ts, bench/threads.ts): each round times `reps` calls of
// side a and of side b, the order alternating round by round so that a change
// of the machine's speed lands on both; the first `warm` rounds are dropped.
// Per-round ratios b/a are kept alongside: on a noisy machine their median
// answers "how much faster is b" better than the ratio of the two medians.
import { latencyStats, type LatencyStats } from '../src/util/timing.js';

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
