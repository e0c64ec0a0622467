// Shared CLI plumbing: backend choice, model loading, image to input tensor, output.
import { setBackend, setBackendFactory } from '../tensor.js';
import { loadWasmSync } from '../backend/wasm.js';
import { ReferenceBackend } from '../backend/reference/index.js';
import { loadModel } from '../nn/model.js';
import type { VitConfig } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import { toGrayFloat, toRgbFloatNCHW, type RgbaImage } from '../io/image.js';
import { UsageError } from './args.js';

export function useBackend(name: string | undefined): void {
  switch (name ?? 'wasm') {
    case 'wasm': setBackendFactory(() => loadWasmSync('auto')); break;
    case 'wasm-simd': setBackend(loadWasmSync('simd')); break;
    case 'wasm-relaxed': setBackend(loadWasmSync('relaxed')); break;
    case 'reference': setBackend(new ReferenceBackend()); break;
    default: throw new UsageError(`unknown --backend '${name}' (wasm, wasm-simd, wasm-relaxed, reference)`);
  }
}

export function need<T>(v: T | undefined, flag: string): T {
  if (v === undefined || v === '') throw new UsageError(`missing --${flag}`);
  return v;
}

export function openModel(file: string, preset?: string): VisionTransformer {
  return loadModel(file, { preset }).model;
}

/** Model input (1 x C x S x S) from a decoded image, as the model was trained. */
export function imageToInput(img: RgbaImage, cfg: VitConfig): Float32Array {
  const S = cfg.imgSize;
  if (cfg.inChans === 3) return toRgbFloatNCHW(img, S, cfg.mean, cfg.std);
  if (cfg.inChans !== 1) throw new Error(`images can feed 1- or 3-channel models, not ${cfg.inChans}`);
  const inner = cfg.dataSize ?? S, off = (S - inner) >> 1;
  const g = toGrayFloat(img, inner), x = new Float32Array(S * S).fill((0 - cfg.mean[0]) / cfg.std[0]);
  for (let r = 0; r < inner; r++) for (let c = 0; c < inner; c++) x[(r + off) * S + c + off] = (g[r * inner + c] - cfg.mean[0]) / cfg.std[0];
  return x;
}

export function softmax(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z)), e = Array.from(z, (v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Print the one JSON object scripts read: always the last line of stdout. */
export function emitJson(obj: unknown): void { process.stdout.write(JSON.stringify(obj) + '\n'); }
