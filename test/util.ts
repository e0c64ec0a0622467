// Shared test helpers: seeded data and closeness checks that report the worst element.
import * as assert from 'uvu/assert';

/** Deterministic uniform(-1, 1) values (mulberry32). */
export function randn(n: number, seed = 1, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export interface Diff { maxAbs: number; at: number; got: number; want: number; maxRef: number }
export function diff(got: ArrayLike<number>, want: ArrayLike<number>): Diff {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let maxAbs = -1, at = 0, maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    maxRef = Math.max(maxRef, Math.abs(want[i]));
    if (!(d <= maxAbs)) { maxAbs = Number.isNaN(d) ? Infinity : d; at = i; }
  }
  return { maxAbs: Math.max(maxAbs, 0), at, got: got[at], want: want[at], maxRef };
}

/** |got - want| <= atol + rtol * max|want| everywhere; the message names the worst element. */
export function close(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0, what = ''): Diff {
  const d = diff(got, want);
  const tol = atol + rtol * d.maxRef;
  assert.ok(d.maxAbs <= tol,
    `${what} max |diff| ${d.maxAbs.toExponential(3)} > tol ${tol.toExponential(3)} at [${d.at}]: got ${d.got}, want ${d.want} (max |want| ${d.maxRef.toExponential(3)})`);
  return d;
}
