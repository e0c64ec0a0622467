// Creating, saving and loading models. A model file is safetensors (F32, timm
// names) with the config as JSON in __metadata__.config; a timm checkpoint
// without metadata loads with an explicit preset.
import { existsSync } from 'node:fs';
import { readSafetensorsFile, writeSafetensorsFile, checkKeys, SafetensorsError } from '../io/safetensors.js';
import { Rng } from '../util/rng.js';
import { VisionTransformer } from './vit.js';
import { getPreset, type VitConfig } from './presets.js';
import type { Init } from './module.js';

export function rngInit(rng: Rng): Init {
  return { truncNormal: (std) => rng.truncNormal(std), uniform: (lo, hi) => rng.uniform(lo, hi) };
}

export function createModel(cfg: VitConfig, seed = 0): VisionTransformer {
  return new VisionTransformer(cfg, rngInit(new Rng(seed)));
}

/** Zero-cost init for models whose weights are loaded right after. */
const ZERO_INIT: Init = { truncNormal: () => 0, uniform: () => 0 };

export interface LoadOptions { preset?: string; config?: VitConfig }

export function loadModel(file: string, opts: LoadOptions = {}): { model: VisionTransformer; metadata: Record<string, string> } {
  if (!existsSync(file)) throw new Error(`model file '${file}' not found`);
  const { tensors, metadata } = readSafetensorsFile(file);
  let cfg: VitConfig;
  if (opts.config) cfg = opts.config;
  else if (metadata.config) {
    try { cfg = JSON.parse(metadata.config) as VitConfig; } catch (e) {
      throw new SafetensorsError(file, `__metadata__.config is not valid JSON: ${(e as Error).message}`);
    }
    if (opts.preset) cfg = { ...getPreset(opts.preset), ...cfg };
  } else if (opts.preset) cfg = getPreset(opts.preset);
  else throw new SafetensorsError(file, 'no model config in __metadata__ (a timm checkpoint?): pass --preset NAME');
  const model = new VisionTransformer(cfg, ZERO_INIT);
  const named = model.namedParameters();
  checkKeys(file, new Map(named.map(([n, p]) => [n, p.shape])), tensors);
  for (const [n, p] of named) p.write(tensors.get(n)!.data);
  return { model, metadata };
}

export function saveModel(file: string, model: VisionTransformer, extra: Record<string, string> = {}): void {
  const tensors = new Map(model.namedParameters().map(([n, p]) => [n, { shape: p.shape, data: p.toArray() }]));
  writeSafetensorsFile(file, tensors, { format: 'pt', config: JSON.stringify(model.cfg), ...extra });
}
