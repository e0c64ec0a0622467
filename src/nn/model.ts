// Creating, saving and loading models. A model file is safetensors (F32, timm
// names) with the config as JSON in __metadata__.config; a timm checkpoint
// without metadata loads with an explicit preset.
import { existsSync, readFileSync } from 'node:fs';
import { writeSafetensorsFile } from '../io/safetensors.js';
import { modelFromBytes, type LoadOptions } from './load-bytes.js';
import { Rng } from '../util/rng.js';
import { VisionTransformer } from './vit.js';
import type { VitConfig } from './presets.js';
import type { Init } from './module.js';

export function rngInit(rng: Rng): Init {
  return { truncNormal: (std) => rng.truncNormal(std), uniform: (lo, hi) => rng.uniform(lo, hi) };
}

export function createModel(cfg: VitConfig, seed = 0): VisionTransformer {
  return new VisionTransformer(cfg, rngInit(new Rng(seed)));
}

export type { LoadOptions } from './load-bytes.js';

export function loadModel(file: string, opts: LoadOptions = {}): { model: VisionTransformer; metadata: Record<string, string> } {
  if (!existsSync(file)) throw new Error(`model file '${file}' not found`);
  return modelFromBytes(readFileSync(file), opts, file);
}

export function saveModel(file: string, model: VisionTransformer, extra: Record<string, string> = {}): void {
  const tensors = new Map(model.namedParameters().map(([n, p]) => [n, { shape: p.shape, data: p.toArray() }]));
  writeSafetensorsFile(file, tensors, { format: 'pt', config: JSON.stringify(model.cfg), ...extra });
}
