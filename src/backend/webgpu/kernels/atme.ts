// ATME token merging, WGSL twins of assembly/atme.ts (spec and layout:
// src/backend/reference/atme.ts). Maps are int32 (raw heap words).
//
//   atme_similarity(x, ld, heads, dim, B, prefix, gh, gw, axis, sim)
//     one thread per (image, source). The head sums and the three dot products
//     run over four-lane accumulators (lane d % 4) folded as (l0 + l2) + (l1 + l3),
//     the order of the WASM kernel's f32x4 code, so both see the same cosines up
//     to fma rounding and choose the same partners (the plan is an argmax over them).
//   atme_plan(sim, B, gh, gw, axis, map)           one thread per (image, patch token)
//   atme_merge_fwd(x, sizes, map, B, prefix, T, T2, C, y, ysizes)
//     one workgroup per output row: the destination's total size, then
//     y = sum_t (s_t / total) x_t in source order, as the WASM kernel.
//   atme_merge_bwd(dy, sizes, ysizes, map, B, prefix, T, T2, C, dx)   one thread per element
//   atme_unmerge_fwd(x, map, B, prefix, T, T2, C, y)                  one thread per element
//   atme_unmerge_bwd(dy, map, B, prefix, T, T2, C, dx)                one workgroup per output row,
//     sources added in order.
// The merge kernels find a destination's sources by scanning the map (O(T) per
// row): valid for any map, and noise beside the block's GEMMs at ViT sizes.
// Out-of-range map entries (which the reference rejects) are skipped or read as 0.
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';

const idx = `let i = wgid(wid, nwg) * ${WG}u + li;`;

/** Sources of one image on a gh x gw grid along `axis`. */
const sources = (gh: number, gw: number, axis: number): number => (axis === 0 ? gh * (gw >> 1) : (gh >> 1) * gw);

export const atme_similarity: KernelSpec = {
  wgsl: /* wgsl */ `
fn headsum(p: u32, d: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var h = 0u; h < U.heads; h++) {
    let q = p + h * U.dim + d;
    var w = vec4<f32>(0.0);
    w.x = ld(q);
    if (d + 1u < U.dim) { w.y = ld(q + 1u); }
    if (d + 2u < U.dim) { w.z = ld(q + 2u); }
    if (d + 3u < U.dim) { w.w = ld(q + 3u); }
    v = select(w, v + w, h > 0u);
  }
  return v;
}
fn hsum4(v: vec4<f32>) -> f32 { return (v.x + v.z) + (v.y + v.w); }
fn cosine(ab: f32, aa: f32, bb: f32) -> f32 { return ab / max(sqrt(aa) * sqrt(bb), 1e-8); }

${K} fn main(${A}) {
  ${idx}
  var S = U.gh * (U.gw / 2u);
  if (U.axis == 1u) { S = (U.gh / 2u) * U.gw; }
  if (i >= U.B * S) { return; }
  let b = i / S; let s = i - b * S;
  var t: u32; var p: u32; var hasNext: bool; var n: u32;
  if (U.axis == 0u) {
    let half = U.gw / 2u;
    let r = s / half; let j = s - r * half;
    t = r * U.gw + 2u * j + 1u; p = t - 1u; n = t + 1u; hasNext = 2u * j + 2u < U.gw;
  } else {
    let r = s / U.gw; let c = s - r * U.gw;
    t = (2u * r + 1u) * U.gw + c; p = t - U.gw; n = t + U.gw; hasNext = 2u * r + 2u < U.gh;
  }
  let base = U.x + (b * (U.prefix + U.gh * U.gw) + U.prefix) * U.ld;
  let ta = base + t * U.ld; let tp = base + p * U.ld; let tn = base + n * U.ld;
  var aa = vec4<f32>(0.0); var pp = vec4<f32>(0.0); var nn = vec4<f32>(0.0);
  var ap = vec4<f32>(0.0); var an = vec4<f32>(0.0);
  for (var d = 0u; d < U.dim; d += 4u) {
    let va = headsum(ta, d); let vp = headsum(tp, d);
    aa = fma(va, va, aa); pp = fma(vp, vp, pp); ap = fma(va, vp, ap);
    if (hasNext) {
      let vn = headsum(tn, d);
      nn = fma(vn, vn, nn); an = fma(va, vn, an);
    }
  }
  let saa = hsum4(aa);
  let o = U.sim + 2u * i;
  st(o, cosine(hsum4(ap), saa, hsum4(pp)));
  if (hasNext) { st(o + 1u, cosine(hsum4(an), saa, hsum4(nn))); } else { H[o + 1u] = 0xff800000u; }
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.B * sources(v.gh, v.gw, v.axis)) }],
};

export const atme_plan: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  let T = U.gh * U.gw;
  if (i >= U.B * T) { return; }
  let b = i / T; let tt = i - b * T;
  let r = tt / U.gw; let c = tt - r * U.gw;
  var out: u32;
  if (U.axis == 0u) {
    let S = U.gh * (U.gw / 2u);
    var d = c / 2u;
    if ((c & 1u) == 1u) {
      let s = U.sim + 2u * (b * S + r * (U.gw / 2u) + c / 2u);
      if (U.sim != 0u && c + 1u < U.gw && ld(s + 1u) > ld(s)) { d += 1u; }
    }
    out = r * ((U.gw + 1u) / 2u) + d;
  } else {
    let S = (U.gh / 2u) * U.gw;
    var d = r / 2u;
    if ((r & 1u) == 1u) {
      let s = U.sim + 2u * (b * S + (r / 2u) * U.gw + c);
      if (U.sim != 0u && r + 1u < U.gh && ld(s + 1u) > ld(s)) { d += 1u; }
    }
    out = d * U.gw + c;
  }
  H[U.map + i] = out;
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.B * v.gh * v.gw) }],
};

export const atme_merge_fwd: KernelSpec = {
  wgsl: `${K} fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let row = wgid(wid, nwg);
  let N = U.prefix + U.T; let N2 = U.prefix + U.T2;
  if (row >= U.B * N2) { return; }
  let b = row / N2; let n2 = row - b * N2;
  let Y = U.y + row * U.C;
  if (n2 < U.prefix) {
    let X = U.x + (b * N + n2) * U.C;
    for (var c = li; c < U.C; c += ${WG}u) { H[Y + c] = H[X + c]; }
    if (li == 0u) { H[U.ysizes + row] = H[U.sizes + b * N + n2]; }
    return;
  }
  let d = n2 - U.prefix;
  let M = U.map + b * U.T; let S = U.sizes + b * N + U.prefix; let X = U.x + (b * N + U.prefix) * U.C;
  var tot = 0.0;
  for (var t = 0u; t < U.T; t++) { if (H[M + t] == d) { tot += ld(S + t); } }
  for (var c = li; c < U.C; c += ${WG}u) {
    var acc = 0.0;
    for (var t = 0u; t < U.T; t++) {
      if (H[M + t] == d) { acc = fma(ld(S + t) / tot, ld(X + t * U.C + c), acc); }
    }
    st(Y + c, acc);
  }
  if (li == 0u) { st(U.ysizes + row, tot); }
}`,
  stages: [{ entry: 'main', groups: (v) => v.B * (v.prefix + v.T2) }],
};

export const atme_merge_bwd: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  let N = U.prefix + U.T; let N2 = U.prefix + U.T2;
  if (i >= U.B * N * U.C) { return; }
  let c = i % U.C; let row = i / U.C; let b = row / N; let n = row - b * N;
  if (n < U.prefix) { H[U.dx + i] = H[U.dy + (b * N2 + n) * U.C + c]; return; }
  let t = n - U.prefix;
  let d = H[U.map + b * U.T + t];
  let w = ld(U.sizes + b * N + n) / ld(U.ysizes + b * N2 + U.prefix + d);
  st(U.dx + i, w * ld(U.dy + (b * N2 + U.prefix + d) * U.C + c));
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.B * (v.prefix + v.T) * v.C) }],
};

export const atme_unmerge_fwd: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  let N = U.prefix + U.T; let N2 = U.prefix + U.T2;
  if (i >= U.B * N * U.C) { return; }
  let c = i % U.C; let row = i / U.C; let b = row / N; let n = row - b * N;
  var src = n;
  if (n >= U.prefix) { src = U.prefix + H[U.map + b * U.T + n - U.prefix]; }
  H[U.y + i] = H[U.x + (b * N2 + src) * U.C + c];
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.B * (v.prefix + v.T) * v.C) }],
};

export const atme_unmerge_bwd: KernelSpec = {
  wgsl: `${K} fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let row = wgid(wid, nwg);
  let N = U.prefix + U.T; let N2 = U.prefix + U.T2;
  if (row >= U.B * N2) { return; }
  let b = row / N2; let n2 = row - b * N2;
  let DX = U.dx + row * U.C;
  if (n2 < U.prefix) {
    let DY = U.dy + (b * N + n2) * U.C;
    for (var c = li; c < U.C; c += ${WG}u) { H[DX + c] = H[DY + c]; }
    return;
  }
  let d = n2 - U.prefix;
  let M = U.map + b * U.T; let DY = U.dy + (b * N + U.prefix) * U.C;
  for (var c = li; c < U.C; c += ${WG}u) {
    var acc = 0.0;
    for (var t = 0u; t < U.T; t++) { if (H[M + t] == d) { acc += ld(DY + t * U.C + c); } }
    st(DX + c, acc);
  }
}`,
  stages: [{ entry: 'main', groups: (v) => v.B * (v.prefix + v.T2) }],
};
