// Latency measurement shared by `cait bench`, `cait demo`, `cait compress` and
// bench/: one process, one input, the same weights; warm-up rounds discarded
// (JIT tier-up, heap growth); within a round every model runs once, in
// rotating order, so a slow patch of a shared machine hits all of them.
import os from 'node:os';
import { Tensor, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { InferencePlan, CaptureError } from '../plan.js';

export interface LatencyStats {
  median_ms: number; mean_ms: number; min_ms: number; p10_ms: number; p90_ms: number; max_ms: number;
  /** median absolute deviation from the median, and it over the median */
  mad_ms: number; spread: number;
  runs: number;
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q, lo = Math.floor(i), hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export function latencyStats(times: number[]): LatencyStats {
  const s = [...times].sort((a, b) => a - b), med = quantile(s, 0.5);
  const mad = quantile(times.map((t) => Math.abs(t - med)).sort((a, b) => a - b), 0.5);
  const r = (v: number) => +v.toFixed(3);
  return {
    median_ms: r(med), mean_ms: r(times.reduce((a, b) => a + b, 0) / times.length), min_ms: r(s[0]),
    p10_ms: r(quantile(s, 0.1)), p90_ms: r(quantile(s, 0.9)), max_ms: r(s[s.length - 1]),
    mad_ms: r(mad), spread: +(mad / med).toFixed(4), runs: times.length,
  };
}

type Runner = { forward(x: Tensor, train?: boolean): Tensor };

/** Milliseconds of one no-gradient forward of `x`, activations freed included. */
function timeOnce(m: Runner, x: Tensor): number {
  const t0 = performance.now();
  noGrad(() => scope(() => { m.forward(x).toArray(); }));
  return performance.now() - t0;
}

/** Milliseconds of one replay of a planned forward: input written, output read back. */
function timePlan(p: InferencePlan, data: Float32Array): number {
  const t0 = performance.now();
  p.run(data);
  return performance.now() - t0;
}

/** How each runner was timed: its planned forward (src/plan.ts), or op by op where it cannot be planned. */
export type TimingPath = 'planned' | 'eager';
export type TimedRuns = number[][] & { paths: TimingPath[] };

/**
 * Times every runner on the same input: `warmup` discarded rounds, then
 * `runs` rounds; within a round all runners run once, in rotating order.
 * With `planned`, each runner that can be planned is captured once and its
 * replays are timed (what a deployment runs), the others op by op.
 */
export function timeRunners(runners: Runner[], x: Tensor, runs: number, warmup: number, o: { planned?: boolean } = {}): TimedRuns {
  const data = x.toArray();
  const plans = runners.map((m) => {
    if (!o.planned) return null;
    try { return InferencePlan.capture(x.backend, data, x.shape, (t) => m.forward(t)); }
    catch (e) { if (e instanceof CaptureError) return null; throw e; }
  });
  const times = runners.map(() => [] as number[]);
  try {
    for (let r = 0; r < warmup + runs; r++) {
      for (let j = 0; j < runners.length; j++) {
        const k = (j + r) % runners.length, p = plans[k];
        const t = p ? timePlan(p, data) : timeOnce(runners[k], x);
        if (r >= warmup) times[k].push(t);
      }
    }
  } finally { for (const p of plans) p?.dispose(); }
  return Object.assign(times, { paths: plans.map((p): TimingPath => (p ? 'planned' : 'eager')) });
}

export function environment(): Record<string, string | number> {
  const cpus = os.cpus();
  return { node: process.versions.node, v8: process.versions.v8, cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, loadavg: +os.loadavg()[0].toFixed(2), date: new Date().toISOString() };
}

