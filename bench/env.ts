// The environment stamp every benchmark result carries, and robust statistics.
import os from 'node:os';
import { relaxedSimdSupported } from '../src/backend/wasm.js';

export function envStamp(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    node: process.versions.node, v8: process.versions.v8, cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length,
    platform: `${os.platform()}-${os.arch()}`, date: new Date().toISOString(), relaxedSimd: relaxedSimdSupported(),
    loadavg1m: Number(os.loadavg()[0].toFixed(2)), ...extra,
  };
}

/** Median, min, max and the median absolute deviation of samples. */
export function stats(xs: number[]): { median: number; min: number; max: number; mad: number; n: number } {
  const s = [...xs].sort((a, b) => a - b), n = s.length;
  const med = (a: number[]) => (a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2);
  const median = med(s);
  return { median, min: s[0], max: s[n - 1], mad: med(s.map((x) => Math.abs(x - median)).sort((a, b) => a - b)), n };
}
