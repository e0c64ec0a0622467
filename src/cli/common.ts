// Shared CLI plumbing: backend choice, model loading, image to input tensor, output.
import { setBackend, setBackendFactory } from '../tensor.js';
import { loadWasmSync } from '../backend/wasm.js';
import { ReferenceBackend } from '../backend/reference/index.js';
import { loadModel } from '../nn/model.js';
import type { VitConfig } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import type { Trainable } from '../train/trainer.js';
import { CaitModel, atmeOptionsFromMetadata } from '../cait/wrap.js';
import { SIMILARITIES, toSteps, type AtmeOptions, type Similarity } from '../cait/atme.js';
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

/** Flags of every command that runs a model: ATME merging and its switches. */
export const MERGE_FLAGS = { merge: 'string', similarity: 'string', 'no-prop-attn': 'boolean' } as const;

/**
 * The model to run: the ViT itself, or a CaitModel around it when a schedule
 * applies (--merge, else the config's own `merge`; `--merge none` turns a
 * saved schedule off). Switches: the flags, else those saved with the model.
 */
export function withMerging(vit: VisionTransformer, f: Record<string, unknown>, metadata: Record<string, string> = {}): Trainable {
  const sim = f.similarity as string | undefined;
  if (sim !== undefined && !SIMILARITIES.includes(sim as Similarity)) throw new UsageError(`--similarity must be one of ${SIMILARITIES.join(', ')}, got '${sim}'`);
  const schedule = (f.merge as string | undefined) ?? vit.cfg.merge ?? '';
  let steps;
  try { steps = toSteps(schedule, vit.cfg.depth); } catch (e) { throw new UsageError((e as Error).message); }
  if (!steps.length && (sim !== undefined || f['no-prop-attn'])) throw new UsageError('--similarity and --no-prop-attn need a merge schedule (--merge, or a model saved with one)');
  if (!steps.length && !vit.cfg.merge) return vit;
  const o: Partial<AtmeOptions> = { ...atmeOptionsFromMetadata(metadata) };
  if (sim !== undefined) o.similarity = sim as Similarity;
  if (f['no-prop-attn']) o.propAttn = false;
  return new CaitModel(vit, { ...o, merge: steps });
}

/** A model file, wrapped for merging as `withMerging` says. */
export function openRunner(file: string, preset: string | undefined, f: Record<string, unknown>): Trainable {
  const { model, metadata } = loadModel(file, { preset });
  return withMerging(model, f, metadata);
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
