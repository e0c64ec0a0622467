// ATME, CAIT's asymmetric token merging (docs/cait-method.md, "ATME"):
// one step halves one axis of the patch grid. Float64 accumulation throughout.
//
// Layout: image b holds N = prefix + T tokens, the prefix (class token, and a
// distillation token if any) first, then the T = gh*gw patch tokens row-major.
// `axis` 0 is a horizontal step (pairs columns), 1 a vertical one (pairs rows).
// Along the axis of length L, even lines are destinations and keep their
// place; odd lines are sources. Source line 2i+1 has two candidates, line 2i
// (prev) and 2i+2 (next); the next is absent when 2i+2 = L. New length
// L2 = ceil(L/2); destination 2i becomes line i.
// Sources are numbered row-major over the source positions:
//   axis 0: s = r*floor(gw/2) + j for source (r, 2j+1);  axis 1: s = i*gw + c for source (2i+1, c).
// Maps are int32: map[b, t] is patch token t's destination index in the new
// grid (gh*ceil(gw/2) or ceil(gh/2)*gw tokens); a destination maps to itself.
//
//   atme_similarity(x, ld, heads, dim, B, prefix, gh, gw, axis, sim)
//     v(b, n) = sum_h x[(b*N + n)*ld + h*dim + d], d < dim (the head sum: for
//       keys, x points at the keys inside qkv and ld is qkv's width; the mean
//       over heads has the same cosine); features: heads = 1, dim = ld = C.
//     sim[b, s, 0] = cos(v(src), v(prev)), sim[b, s, 1] = cos(v(src), v(next)),
//       -Infinity where there is no next; cos(a, b) = a.b / max(|a| |b|, 1e-8).
//   atme_plan(sim, B, gh, gw, axis, map)
//     partner choice: source s goes to next iff sim[b,s,1] > sim[b,s,0] (ties
//     and NaN: prev); sim = 0 (no buffer) is fixed pairing, every source to prev.
//     Writes map [B, gh*gw].
//   atme_merge_fwd(x, sizes, map, B, prefix, T, T2, C, y, ysizes)
//     x [B, prefix+T, C], sizes [B, prefix+T] -> y [B, prefix+T2, C], ysizes [B, prefix+T2]:
//     prefix rows and sizes copied; ysizes[d] = sum_{map t = d} sizes[t];
//     y[d] = sum_{map t = d} sizes[t] x[t] / ysizes[d] (0 and size 0 for a d nothing maps to).
//   atme_merge_bwd(dy, sizes, ysizes, map, B, prefix, T, T2, C, dx)
//     dx[t] = sizes[t] / ysizes[map t] * dy[map t]; prefix rows copied.
//   atme_unmerge_fwd(x, map, B, prefix, T, T2, C, y)
//     x [B, prefix+T2, C] -> y [B, prefix+T, C]: y[t] = x[map t]; prefix rows copied.
//   atme_unmerge_bwd(dy, map, B, prefix, T, T2, C, dx)
//     dx[d] = sum_{map t = d} dy[t]; prefix rows copied.
// (Patch-token indices t, d above are offset by `prefix` inside the rows.)
import type { Heap } from './heap.js';

const EPS = 1e-8;

/** Source positions along `axis`: [src, prev, next or -1] token indices within the grid, in source order. */
export function atmeSources(gh: number, gw: number, axis: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  if (axis === 0) {
    for (let r = 0; r < gh; r++)
      for (let c = 1; c < gw; c += 2) out.push([r * gw + c, r * gw + c - 1, c + 1 < gw ? r * gw + c + 1 : -1]);
  } else {
    for (let r = 1; r < gh; r += 2)
      for (let c = 0; c < gw; c++) out.push([r * gw + c, (r - 1) * gw + c, r + 1 < gh ? (r + 1) * gw + c : -1]);
  }
  return out;
}

/** Whether patch token t (of a grid gw wide) is a destination: an even line along `axis`. */
export function atmeIsDest(t: number, gw: number, axis: number): boolean {
  return (axis === 0 ? t % gw : Math.floor(t / gw)) % 2 === 0;
}

/** Index in the halved grid of destination t (of a grid gw wide): line 2i becomes line i. */
export function atmeDest(t: number, gw: number, axis: number): number {
  const r = Math.floor(t / gw), c = t % gw, gw2 = axis === 0 ? (gw + 1) >> 1 : gw;
  return axis === 0 ? r * gw2 + c / 2 : (r / 2) * gw2 + c;
}

export function atme_similarity(h: Heap, x: number, ld: number, heads: number, dim: number, B: number,
  prefix: number, gh: number, gw: number, axis: number, sim: number): void {
  const f = h.f32, N = prefix + gh * gw, src = atmeSources(gh, gw, axis), S = src.length;
  const vec = (b: number, t: number): Float64Array => {
    const v = new Float64Array(dim), base = (x >> 2) + (b * N + prefix + t) * ld;
    for (let hh = 0; hh < heads; hh++) for (let d = 0; d < dim; d++) v[d] += f[base + hh * dim + d];
    return v;
  };
  const cos = (a: Float64Array, c: Float64Array): number => {
    let ab = 0, aa = 0, cc = 0;
    for (let d = 0; d < dim; d++) { ab += a[d] * c[d]; aa += a[d] * a[d]; cc += c[d] * c[d]; }
    return ab / Math.max(Math.sqrt(aa) * Math.sqrt(cc), EPS);
  };
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const [t, p, n] = src[s], v = vec(b, t), o = (sim >> 2) + (b * S + s) * 2;
      f[o] = cos(v, vec(b, p));
      f[o + 1] = n < 0 ? -Infinity : cos(v, vec(b, n));
    }
  }
}

export function atme_plan(h: Heap, sim: number, B: number, gh: number, gw: number, axis: number, map: number): void {
  const f = h.f32, m = h.i32, T = gh * gw, src = atmeSources(gh, gw, axis), S = src.length;
  const dest = (t: number): number => atmeDest(t, gw, axis);
  for (let b = 0; b < B; b++) {
    const M = (map >> 2) + b * T;
    for (let t = 0; t < T; t++) if (atmeIsDest(t, gw, axis)) m[M + t] = dest(t);
    for (let s = 0; s < S; s++) {
      const [t, p, n] = src[s];
      const next = sim !== 0 && n >= 0 && f[(sim >> 2) + (b * S + s) * 2 + 1] > f[(sim >> 2) + (b * S + s) * 2];
      m[M + t] = dest(next ? n : p);
    }
  }
}

function checkMap(m: Int32Array, M: number, T: number, T2: number): void {
  for (let t = 0; t < T; t++) {
    const d = m[M + t];
    if (!(d >= 0 && d < T2)) throw new RangeError(`atme: map[${t}] = ${d} outside [0, ${T2})`);
  }
}

export function atme_merge_fwd(h: Heap, x: number, sizes: number, map: number, B: number, prefix: number,
  T: number, T2: number, C: number, y: number, ysizes: number): void {
  const f = h.f32, m = h.i32, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const X = (x >> 2) + b * N * C, Y = (y >> 2) + b * N2 * C, S = (sizes >> 2) + b * N, YS = (ysizes >> 2) + b * N2;
    const M = (map >> 2) + b * T;
    checkMap(m, M, T, T2);
    for (let p = 0; p < prefix; p++) {
      for (let c = 0; c < C; c++) f[Y + p * C + c] = f[X + p * C + c];
      f[YS + p] = f[S + p];
    }
    const tot = new Float64Array(T2), acc = new Float64Array(T2 * C);
    for (let t = 0; t < T; t++) {
      const d = m[M + t], s = f[S + prefix + t];
      tot[d] += s;
      for (let c = 0; c < C; c++) acc[d * C + c] += s * f[X + (prefix + t) * C + c];
    }
    for (let d = 0; d < T2; d++) {
      f[YS + prefix + d] = tot[d];
      for (let c = 0; c < C; c++) f[Y + (prefix + d) * C + c] = tot[d] > 0 ? acc[d * C + c] / tot[d] : 0;
    }
  }
}

export function atme_merge_bwd(h: Heap, dy: number, sizes: number, ysizes: number, map: number, B: number,
  prefix: number, T: number, T2: number, C: number, dx: number): void {
  const f = h.f32, m = h.i32, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const DY = (dy >> 2) + b * N2 * C, DX = (dx >> 2) + b * N * C, S = (sizes >> 2) + b * N, YS = (ysizes >> 2) + b * N2;
    const M = (map >> 2) + b * T;
    checkMap(m, M, T, T2);
    for (let i = 0; i < prefix * C; i++) f[DX + i] = f[DY + i];
    for (let t = 0; t < T; t++) {
      const d = m[M + t], w = f[S + prefix + t] / f[YS + prefix + d];
      for (let c = 0; c < C; c++) f[DX + (prefix + t) * C + c] = w * f[DY + (prefix + d) * C + c];
    }
  }
}

export function atme_unmerge_fwd(h: Heap, x: number, map: number, B: number, prefix: number,
  T: number, T2: number, C: number, y: number): void {
  const f = h.f32, m = h.i32, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const X = (x >> 2) + b * N2 * C, Y = (y >> 2) + b * N * C, M = (map >> 2) + b * T;
    checkMap(m, M, T, T2);
    for (let i = 0; i < prefix * C; i++) f[Y + i] = f[X + i];
    for (let t = 0; t < T; t++) {
      const d = m[M + t];
      for (let c = 0; c < C; c++) f[Y + (prefix + t) * C + c] = f[X + (prefix + d) * C + c];
    }
  }
}

export function atme_unmerge_bwd(h: Heap, dy: number, map: number, B: number, prefix: number,
  T: number, T2: number, C: number, dx: number): void {
  const f = h.f32, m = h.i32, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const DY = (dy >> 2) + b * N * C, DX = (dx >> 2) + b * N2 * C, M = (map >> 2) + b * T;
    checkMap(m, M, T, T2);
    for (let i = 0; i < prefix * C; i++) f[DX + i] = f[DY + i];
    const acc = new Float64Array(T2 * C);
    for (let t = 0; t < T; t++) {
      const d = m[M + t];
      for (let c = 0; c < C; c++) acc[d * C + c] += f[DY + (prefix + t) * C + c];
    }
    for (let i = 0; i < T2 * C; i++) f[DX + prefix * C + i] = acc[i];
  }
}
