// One message for logits that come out non-finite from finite inputs (3e38
// overflows inside the model): the library, `cait forward` and the server say it alike.

/** How large the inputs were, as the tail of that error. */
export function overflowText(pixels: ArrayLike<number>): string {
  let big = 0;
  for (let i = 0; i < pixels.length; i++) big = Math.max(big, Math.abs(pixels[i]));
  return `values up to ${big.toPrecision(3)} in magnitude overflow the model (preprocessed images are within a few units of 0)`;
}
