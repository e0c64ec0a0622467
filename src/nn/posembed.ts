// Position embedding resampling for a model run at another input size, as
// timm's resample_abs_pos_embed (timm/layers/pos_embed.py) does it when it
// loads a checkpoint into a model of another img_size: prefix rows kept, the
// patch rows as a [C, h, w] image resized with
// F.interpolate(mode='bicubic', antialias=True, align_corners=False).
// With antialias=True PyTorch runs _upsample_bicubic2d_aa, which is Pillow's
// separable resampling (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
// _compute_indices_min_size_weights_aa): Keys' cubic with a = -0.5, support
// 2 * max(scale, 1), taps clipped to the image and the weights renormalised;
// width first, then height. Computed here in float64, stored float32 (PyTorch
// keeps float32 between the passes: differences of a few ulp). The kernel
// is checked against Pillow's own bicubic resizes of the preprocessing
// fixture, up and down, within one grey level (test/checkpoints.test.ts).

/** PyTorch's aa bicubic filter (a = -0.5, as Pillow). */
function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per output index: first input tap and normalised weights. */
function weights(inSize: number, outSize: number): Array<{ start: number; w: Float64Array }> {
  const scale = inSize / outSize, support = scale >= 1 ? 2 * scale : 2, inv = scale >= 1 ? 1 / scale : 1;
  const out: Array<{ start: number; w: Float64Array }> = [];
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const w = new Float64Array(xsize);
    let total = 0;
    for (let j = 0; j < xsize; j++) { w[j] = cubic((j + xmin - center + 0.5) * inv); total += w[j]; }
    if (total !== 0) for (let j = 0; j < xsize; j++) w[j] /= total;
    out.push({ start: xmin, w });
  }
  return out;
}

/**
 * pos [prefix + h0*w0, C] (row-major tokens) -> [prefix + h1*w1, C]: prefix
 * rows copied, the grid resampled per channel.
 */
export function resamplePosEmbed(pos: Float32Array, C: number, prefix: number, from: readonly [number, number], to: readonly [number, number]): Float32Array {
  const [h0, w0] = from, [h1, w1] = to;
  if (pos.length !== (prefix + h0 * w0) * C) throw new Error(`resamplePosEmbed: ${pos.length} values, expected (${prefix} + ${h0}x${w0}) x ${C}`);
  const out = new Float32Array((prefix + h1 * w1) * C);
  out.set(pos.subarray(0, prefix * C));
  const wx = weights(w0, w1), wy = weights(h0, h1);
  const tmp = new Float64Array(h0 * w1 * C); // width pass: [h0, w1, C]
  for (let y = 0; y < h0; y++) for (let x = 0; x < w1; x++) {
    const { start, w } = wx[x], o = (y * w1 + x) * C;
    for (let j = 0; j < w.length; j++) {
      const src = (prefix + y * w0 + start + j) * C, wj = w[j];
      for (let c = 0; c < C; c++) tmp[o + c] += wj * pos[src + c];
    }
  }
  for (let y = 0; y < h1; y++) {
    const { start, w } = wy[y];
    for (let x = 0; x < w1; x++) {
      const o = (prefix + y * w1 + x) * C;
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < w.length; j++) s += w[j] * tmp[((start + j) * w1 + x) * C + c];
        out[o + c] = s;
      }
    }
  }
  return out;
}
