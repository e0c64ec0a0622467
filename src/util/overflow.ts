// One message for logits that come out non-finite from finite inputs: the
// library, `cait forward`, `cait predict` and the server say it alike. Either
// the inputs are far outside a preprocessed image's range (3e38 overflows
// inside the model), or they are ordinary and the model's own weights
// overflow (finite, so the loader let them through, but as large as 3e38).

/** Inputs within this magnitude are ordinary: a preprocessed image is within a few units of 0. */
const ORDINARY = 1e3;

/** How large the inputs were, and so what overflowed, as the tail of that error. */
export function overflowText(pixels: ArrayLike<number>): string {
  let big = 0;
  for (let i = 0; i < pixels.length; i++) big = Math.max(big, Math.abs(pixels[i]));
  if (big <= ORDINARY) return `the inputs are within ${big.toPrecision(3)} in magnitude, as preprocessed images are: the model's own weights overflow (NaN or Infinity inside the model)`;
  return `values up to ${big.toPrecision(3)} in magnitude overflow the model (preprocessed images are within a few units of 0)`;
}
