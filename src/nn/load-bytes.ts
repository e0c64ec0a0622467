// A model from the bytes of a safetensors file: what loadModel (./model.ts)
// does after reading the file, without node:fs, so that browsers (web/) can
// build a VisionTransformer from a fetched file. The work is
// modelFromCheckpoint's (./checkpoint.ts: layouts, config validation, weight
// checks); this is its one-file form.
import { modelFromCheckpoint, type LoadOptions } from './checkpoint.js';
import type { VisionTransformer } from './vit.js';

export type { LoadOptions } from './checkpoint.js';

/**
 * Parse `bytes` (a whole safetensors file) into a model on the current
 * backend; `file` names the source in error messages (a path or a URL).
 */
export function modelFromBytes(bytes: Uint8Array, opts: LoadOptions = {}, file = '<buffer>'): { model: VisionTransformer; metadata: Record<string, string> } {
  const { model, metadata } = modelFromCheckpoint({ weights: bytes }, opts, file);
  return { model, metadata };
}
