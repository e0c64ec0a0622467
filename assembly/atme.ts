// ATME, CAIT's asymmetric token merging: neighbour similarity, partner choice,
// size-weighted merge and unmerge, forward and backward.
// Spec (and the full definition of the layout): src/backend/reference/atme.ts.
//
// Shapes: image b holds N = prefix + T tokens, prefix first, then T = gh*gw
// patch tokens row-major; C floats per token row; a step leaves T2 patch tokens.
// axis 0 pairs columns (horizontal step), 1 pairs rows (vertical step).
//   sim   [B, S, 2] f32   cosine of each source to its prev / next destination
//   map   [B, T]    i32   each patch token's destination index in the new grid
//   sizes [B, N]    f32   tokens each token stands for; ysizes [B, prefix + T2]
// Pointers are bytes and need no alignment. No output may alias an input.
//
//   atme_similarity(x, ld, heads, dim, B, prefix, gh, gw, axis, sim)
//   atme_plan(sim, B, gh, gw, axis, map)                              (sim = 0: fixed pairing)
//   atme_merge_fwd(x, sizes, map, B, prefix, T, T2, C, y, ysizes)     y[d] = sum s_t x_t / sum s_t
//   atme_merge_bwd(dy, sizes, ysizes, map, B, prefix, T, T2, C, dx)   dx[t] = s_t / ysizes[d] dy[d]
//   atme_unmerge_fwd(x, map, B, prefix, T, T2, C, y)                  y[t] = x[map t]
//   atme_unmerge_bwd(dy, map, B, prefix, T, T2, C, dx)                dx[d] = sum_{map t = d} dy[t]
//
// Accuracy (measured against the float64 reference on 14x14, 14x7, 7x7 and
// 5x3 grids with 3x64, 6x64, 1x192 and 2x9 heads x dims, both builds):
// similarity accumulates in f32 with 5 f32x4 accumulators, its cosines within
// 1.2e-7 absolute; the plan is exact given the same sim. merge_fwd forms
// w = s_t / ysizes[d] once in f32 and accumulates w x_t into a zeroed row in
// source order (a destination and at most 2 sources): within 8e-8 of max |y|
// (an element where sources cancel has a larger relative error, as any f32
// sum). merge_bwd is that division and one multiply: within 1 ulp.
// unmerge_fwd is a copy (exact); unmerge_bwd adds in source order in f32.
// Cost: O(B N C), noise beside a block's GEMMs (DeiT-Tiny, batch 1: a whole
// step, similarity + plan + merge + key bias, 0.06-0.12 ms of a 33 ms forward).
import { fma4 } from './simd';
import { loadN } from './math';

// y[0..n) += w * x[0..n)
// @ts-ignore: decorator
@inline function rowAxpy(y: usize, x: usize, w: f32, n: i32): void {
  const n4 = n & ~3, vw = f32x4.splat(w);
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, fma4(vw, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + w * load<f32>(x + o));
  }
}

// y[0..n) = w * x[0..n)
// @ts-ignore: decorator
@inline function rowScale(y: usize, x: usize, w: f32, n: i32): void {
  const n4 = n & ~3, vw = f32x4.splat(w);
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.mul(vw, v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, w * load<f32>(x + o));
  }
}

// y[0..n) += x[0..n)
// @ts-ignore: decorator
@inline function rowAdd(y: usize, x: usize, n: i32): void {
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o));
  }
}

// Four lanes d..d+3 (k valid, the rest 0) of the head sum at token row p.
// @ts-ignore: decorator
@inline function headSum(p: usize, heads: i32, dimBytes: usize, k: i32): v128 {
  let v = k == 4 ? v128.load(p) : loadN(p, k, 0);
  for (let h = 1; h < heads; h++) {
    const q = p + <usize>h * dimBytes;
    v = f32x4.add(v, k == 4 ? v128.load(q) : loadN(q, k, 0));
  }
  return v;
}

// @ts-ignore: decorator
@inline function hsum4(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

// @ts-ignore: decorator
@inline function cosine(ab: f32, aa: f32, bb: f32): f32 {
  return ab / max(Mathf.sqrt(aa) * Mathf.sqrt(bb), <f32>1e-8);
}

// Writes sim[0] = cos(a, p), sim[1] = cos(a, n) (or -inf when n == 0) for
// token rows a, p, n (byte pointers; n = 0 means no next candidate).
function sourceSim(a: usize, p: usize, n: usize, heads: i32, dim: i32, out: usize): void {
  const dimBytes = <usize>dim << 2;
  let aa = f32x4.splat(0), pp = f32x4.splat(0), nn = f32x4.splat(0);
  let ap = f32x4.splat(0), an = f32x4.splat(0);
  for (let d = 0; d < dim; d += 4) {
    const k = min(4, dim - d), o = <usize>d << 2;
    const va = headSum(a + o, heads, dimBytes, k), vp = headSum(p + o, heads, dimBytes, k);
    aa = fma4(va, va, aa);
    pp = fma4(vp, vp, pp);
    ap = fma4(va, vp, ap);
    if (n != 0) {
      const vn = headSum(n + o, heads, dimBytes, k);
      nn = fma4(vn, vn, nn);
      an = fma4(va, vn, an);
    }
  }
  const saa = hsum4(aa);
  store<f32>(out, cosine(hsum4(ap), saa, hsum4(pp)));
  store<f32>(out, n != 0 ? cosine(hsum4(an), saa, hsum4(nn)) : -Infinity, 4);
}

export function atme_similarity(x: usize, ld: i32, heads: i32, dim: i32, B: i32, prefix: i32,
  gh: i32, gw: i32, axis: i32, sim: usize): void {
  const N = prefix + gh * gw, row = <usize>ld << 2;
  let out = sim;
  for (let b = 0; b < B; b++) {
    const X = x + <usize>(b * N + prefix) * row;
    if (axis == 0) {
      for (let r = 0; r < gh; r++) {
        for (let c = 1; c < gw; c += 2) {
          const t = X + <usize>(r * gw + c) * row;
          sourceSim(t, t - row, c + 1 < gw ? t + row : 0, heads, dim, out);
          out += 8;
        }
      }
    } else {
      const line = <usize>gw * row;
      for (let r = 1; r < gh; r += 2) {
        for (let c = 0; c < gw; c++) {
          const t = X + <usize>(r * gw + c) * row;
          sourceSim(t, t - line, r + 1 < gh ? t + line : 0, heads, dim, out);
          out += 8;
        }
      }
    }
  }
}

export function atme_plan(sim: usize, B: i32, gh: i32, gw: i32, axis: i32, map: usize): void {
  let s = sim, m = map;
  for (let b = 0; b < B; b++) {
    if (axis == 0) {
      const gw2 = (gw + 1) >> 1;
      for (let r = 0; r < gh; r++) {
        for (let c = 0; c < gw; c++) {
          let d = c >> 1;                    // even c: itself; odd c: prev (c-1)/2
          if (c & 1) {
            // next exists iff c + 1 < gw; sim[1] is -inf otherwise, but fixed pairing has no sim
            if (sim != 0 && c + 1 < gw && load<f32>(s, 4) > load<f32>(s)) d++;
            s += 8;
          }
          store<i32>(m, r * gw2 + d);
          m += 4;
        }
      }
    } else {
      for (let r = 0; r < gh; r++) {
        for (let c = 0; c < gw; c++) {
          let d = r >> 1;
          if (r & 1) {
            if (sim != 0 && r + 1 < gh && load<f32>(s, 4) > load<f32>(s)) d++;
            s += 8;
          }
          store<i32>(m, d * gw + c);
          m += 4;
        }
      }
    }
  }
}

export function atme_merge_fwd(x: usize, sizes: usize, map: usize, B: i32, prefix: i32,
  T: i32, T2: i32, C: i32, y: usize, ysizes: usize): void {
  const row = <usize>C << 2, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const X = x + <usize>(b * N) * row, Y = y + <usize>(b * N2) * row;
    const S = sizes + (<usize>(b * N) << 2), YS = ysizes + (<usize>(b * N2) << 2);
    const M = map + (<usize>(b * T) << 2);
    memory.copy(Y, X, <usize>prefix * row);
    memory.copy(YS, S, <usize>prefix << 2);
    const Sp = S + (<usize>prefix << 2), YSp = YS + (<usize>prefix << 2);
    const Xp = X + <usize>prefix * row, Yp = Y + <usize>prefix * row;
    memory.fill(YSp, 0, <usize>T2 << 2);
    for (let t = 0; t < T; t++) {
      const q = YSp + (<usize>load<i32>(M + (<usize>t << 2)) << 2);
      store<f32>(q, load<f32>(q) + load<f32>(Sp + (<usize>t << 2)));
    }
    memory.fill(Yp, 0, <usize>T2 * row);
    for (let t = 0; t < T; t++) {
      const d = load<i32>(M + (<usize>t << 2));
      const w = load<f32>(Sp + (<usize>t << 2)) / load<f32>(YSp + (<usize>d << 2));
      rowAxpy(Yp + <usize>d * row, Xp + <usize>t * row, w, C);
    }
  }
}

export function atme_merge_bwd(dy: usize, sizes: usize, ysizes: usize, map: usize, B: i32, prefix: i32,
  T: i32, T2: i32, C: i32, dx: usize): void {
  const row = <usize>C << 2, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const DY = dy + <usize>(b * N2) * row, DX = dx + <usize>(b * N) * row;
    const Sp = sizes + (<usize>(b * N + prefix) << 2), YSp = ysizes + (<usize>(b * N2 + prefix) << 2);
    const M = map + (<usize>(b * T) << 2);
    memory.copy(DX, DY, <usize>prefix * row);
    const DYp = DY + <usize>prefix * row, DXp = DX + <usize>prefix * row;
    for (let t = 0; t < T; t++) {
      const d = load<i32>(M + (<usize>t << 2));
      const w = load<f32>(Sp + (<usize>t << 2)) / load<f32>(YSp + (<usize>d << 2));
      rowScale(DXp + <usize>t * row, DYp + <usize>d * row, w, C);
    }
  }
}

export function atme_unmerge_fwd(x: usize, map: usize, B: i32, prefix: i32, T: i32, T2: i32, C: i32, y: usize): void {
  const row = <usize>C << 2, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const X = x + <usize>(b * N2) * row, Y = y + <usize>(b * N) * row, M = map + (<usize>(b * T) << 2);
    memory.copy(Y, X, <usize>prefix * row);
    const Xp = X + <usize>prefix * row, Yp = Y + <usize>prefix * row;
    for (let t = 0; t < T; t++) {
      memory.copy(Yp + <usize>t * row, Xp + <usize>load<i32>(M + (<usize>t << 2)) * row, row);
    }
  }
}

export function atme_unmerge_bwd(dy: usize, map: usize, B: i32, prefix: i32, T: i32, T2: i32, C: i32, dx: usize): void {
  const row = <usize>C << 2, N = prefix + T, N2 = prefix + T2;
  for (let b = 0; b < B; b++) {
    const DY = dy + <usize>(b * N) * row, DX = dx + <usize>(b * N2) * row, M = map + (<usize>(b * T) << 2);
    memory.copy(DX, DY, <usize>prefix * row);
    const DYp = DY + <usize>prefix * row, DXp = DX + <usize>prefix * row;
    memory.fill(DXp, 0, <usize>T2 * row);
    for (let t = 0; t < T; t++) {
      rowAdd(DXp + <usize>load<i32>(M + (<usize>t << 2)) * row, DYp + <usize>t * row, C);
    }
  }
}
