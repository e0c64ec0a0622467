// Shared SIMD helpers. The relaxed build (asconfig target `relaxed`) enables
// the relaxed-simd feature; ASC_FEATURE_RELAXED_SIMD is then a compile-time
// true and the plain branch is dropped. relaxed_madd may fuse the multiply-add
// (one rounding instead of two), so the two builds differ by about one ulp per
// accumulation step; tests hold both to the same tolerance against the reference.

/** a * b + c on four lanes. */
// @ts-ignore: decorator
@inline export function fma4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
