// A model from the bytes of a safetensors file: what loadModel (./model.ts)
// does after reading the file, without node:fs, so that browsers (web/) can
// build a VisionTransformer from a fetched file. The config comes from
// __metadata__.config (or an explicit preset / config); keys and shapes are
// checked with checkKeys, one error listing every problem.
import { readSafetensors, checkKeys, SafetensorsError } from '../io/safetensors.js';
import { VisionTransformer } from './vit.js';
import { getPreset, type VitConfig } from './presets.js';
import type { Init } from './module.js';

/** Zero-cost init for models whose weights are loaded right after. */
const ZERO_INIT: Init = { truncNormal: () => 0, uniform: () => 0 };

export interface LoadOptions { preset?: string; config?: VitConfig }

/**
 * Parse `bytes` (a whole safetensors file) into a model on the current
 * backend; `file` names the source in error messages (a path or a URL).
 */
export function modelFromBytes(bytes: Uint8Array, opts: LoadOptions = {}, file = '<buffer>'): { model: VisionTransformer; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(bytes, file);
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
