// int8 model files on disk (Node): loadQuantized reads any model file and,
// for an int8 one, returns the model running int8; saveQuantized writes one
// atomically, refusing to overwrite an input of the command.
import { readSafetensorsBytes } from '../io/safetensors-file.js';
import { maxModelBytes } from '../nn/validate.js';
import { writeFileAtomic, type NamedInput } from '../io/output.js';
import type { LoadOptions } from '../nn/checkpoint.js';
import type { VisionTransformer } from '../nn/vit.js';
import type { QuantizedModel } from './int8.js';
import { loadQuantizedBytes, quantizedFileBytes } from './format.js';

export function loadQuantized(file: string, opts: LoadOptions = {}): ReturnType<typeof loadQuantizedBytes> {
  return loadQuantizedBytes(readSafetensorsBytes(file, 'model file', maxModelBytes(opts.maxBytes)), opts, file);
}

export function saveQuantized(file: string, vit: VisionTransformer, qm: QuantizedModel, extra: Record<string, string> = {}, inputs: readonly NamedInput[] = []): void {
  writeFileAtomic(file, quantizedFileBytes(vit, qm, extra), inputs);
}
