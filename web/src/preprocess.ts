// The model input from RGBA pixels, exactly as `cait predict` makes it
// (imageToInput in src/cli/common.ts): grey images are converted with BT.601
// luma, resized (antialiased bilinear, Pillow's) to the data size, centred
// on the zero-valued canvas and normalised; RGB models resize and normalise
// per channel. test/web.test.ts checks the page's logits against Node's.
import { toGrayFloat, toRgbFloatNCHW, type RgbaImage } from '../../src/io/image.js';
import type { VitConfig } from '../../src/nn/presets.js';

export function imageToInput(img: RgbaImage, cfg: VitConfig): Float32Array {
  const S = cfg.imgSize;
  if (cfg.inChans === 3) return toRgbFloatNCHW(img, S, cfg.mean, cfg.std);
  if (cfg.inChans !== 1) throw new Error(`images can feed 1- or 3-channel models, not ${cfg.inChans}`);
  const inner = cfg.dataSize ?? S, off = (S - inner) >> 1;
  const g = toGrayFloat(img, inner), x = new Float32Array(S * S).fill((0 - cfg.mean[0]) / cfg.std[0]);
  for (let r = 0; r < inner; r++) for (let c = 0; c < inner; c++) x[(r + off) * S + c + off] = (g[r * inner + c] - cfg.mean[0]) / cfg.std[0];
  return x;
}
