// Exact GELU, WGSL twin of assembly/gelu.ts (spec: src/backend/reference/gelu.ts):
// x Phi(x) with Phi the normal CDF. Phi is phi4 of assembly/math.ts evaluated
// per lane with the same coefficients (the same fit, fma where the relaxed
// build fuses); only exp is the device's own (WGSL's exp, a few ulp).
//   gelu_fwd(x, y, n)        y = x Phi(x)
//   gelu_bwd(x, dy, dx, n)   dx = dy (Phi(x) + x phi(x))
// y may alias x, dx may alias dy or x.
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';

/** phi(x), the normal CDF, shared with gemm's fused GELU store. */
export const PHI = /* wgsl */ `
fn phi(x: f32) -> f32 {
  let a = abs(x);
  // |x| < 1: Phi = 0.5 + x R(x^2)
  let s = x * x;
  var p = -1.3004437278141268e-05;
  p = fma(p, s, 0.0001270000502699986);
  p = fma(p, s, -0.0011983122676610947);
  p = fma(p, s, 0.009977679699659348);
  p = fma(p, s, -0.06649091839790344);
  p = fma(p, s, 0.3989422917366028);
  let near = fma(x, p, 0.5);
  // |x| >= 1: 0.5 erfc(|x|/sqrt2) = 0.5 exp(Q(|x|)), zero from 5.66 on
  let ac = min(a, 5.66);
  var q = 9.27620220636527e-08;
  q = fma(q, ac, -3.8044925076974323e-06);
  q = fma(q, ac, 7.144344272091985e-05);
  q = fma(q, ac, -0.0008206764468923211);
  q = fma(q, ac, 0.006523240823298693);
  q = fma(q, ac, -0.038718681782484055);
  q = fma(q, ac, -0.31620752811431885);
  q = fma(q, ac, -0.7989584803581238);
  q = fma(q, ac, 0.00023997330572456121);
  var hc = 0.5 * exp(q);
  if (a >= 5.66) { hc = 0.0; }
  let far = select(1.0 - hc, hc, x < 0.0);
  return select(far, near, a < 1.0);
}
`;

const idx = `let i = wgid(wid, nwg) * ${WG}u + li;`;

export const gelu_fwd: KernelSpec = {
  wgsl: PHI + `${K} fn main(${A}) { ${idx} if (i >= U.n) { return; } let v = ld(U.x + i); st(U.y + i, v * phi(v)); }`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};

export const gelu_bwd: KernelSpec = {
  wgsl: PHI + `${K} fn main(${A}) {
  ${idx}
  if (i >= U.n) { return; }
  let v = ld(U.x + i);
  let pdf = exp(v * v * -0.5) * 0.3989422804014327;
  st(U.dx + i, ld(U.dy + i) * (phi(v) + v * pdf));
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.n) }],
};
