// cait convert: whatever loadModel reads (this project's file, a transformers
// or timm hub model folder, a bare timm checkpoint with --preset) saved back
// as this project's one-file safetensors (config, labels and preprocessing in
// __metadata__, so every later command needs only that file), and/or in the
// transformers layout (saveHf: config.json, preprocessor_config.json,
// model.safetensors). The weights are written as loaded: a model run at
// another size with --img-size is saved at that size, its position embedding
// resampled.
import { join } from 'node:path';
import { makeFolder, outputTarget } from '../io/output.js';
import { ATME_METADATA_KEY } from '../cait/wrap.js';
import { checkpointPaths, saveHf, saveModel } from '../nn/model.js';
import { quantScheme } from '../quant/format.js';
import { LOAD_FLAGS, JSON_FLAG, PRESET_NAMES, UsageError, command, type Flags } from './flags.js';
import { checkOutputFlag, emitJson, loadModelFlags, modelInputs, need } from './common.js';

const CONVERT_FLAGS = {
  model: { type: 'string', value: 'SRC', help: 'the model to convert: a .safetensors file or a model folder (transformers or timm hub layout) (required)' },
  preset: { type: 'enum', choices: PRESET_NAMES, value: 'NAME', help: 'the architecture of a bare timm checkpoint (no config in it or beside it)' },
  out: { type: 'string', value: 'FILE.safetensors', help: "this project's file: weights with the config, labels and preprocessing in __metadata__" },
  hf: { type: 'string', value: 'DIR', help: 'a folder in the Hugging Face transformers layout (dense classification models)' },
  ...LOAD_FLAGS, ...JSON_FLAG,
} as const;

export const convertCommand = command({
  name: 'convert',
  summary: "a model in any layout loadModel reads saved as this project's one file (or in the transformers layout)",
  usage: ['--model ./deit-folder --out deit.safetensors', '--model deit_tiny.safetensors --preset deit_tiny_patch16_224 --out deit.safetensors --hf deit-hf --json'],
  notes: 'At least one of --out and --hf. Neither may be an input (the source file, or the config files beside it).',
  flags: CONVERT_FLAGS,
  run: convertRun,
});

function convertRun(f: Flags<typeof CONVERT_FLAGS>): void {
  const src = need(f.model, 'model');
  if (f.out === undefined && f.hf === undefined) throw new UsageError('give --out FILE.safetensors, --hf DIR, or both');
  // every file the source stands for is an input no output may replace
  const paths = checkpointPaths(src), inputs = modelInputs(src);
  if (f.out !== undefined) checkOutputFlag('out', f.out, inputs);
  if (f.hf !== undefined) {
    const hfFiles = ['model.safetensors', 'config.json', 'preprocessor_config.json'].map((name) => join(f.hf!, name));
    for (const file of hfFiles) checkOutputFlag('hf', file, inputs);
    // one output never replaces the other
    if (f.out !== undefined && [f.hf, ...hfFiles].some((h) => outputTarget(h) === outputTarget(f.out!))) {
      throw new UsageError(`--out ${f.out} is --hf ${f.hf} or a file it writes; choose another --out`);
    }
  }
  const { model, metadata, layout } = loadModelFlags(src, f.preset, f);
  try {
    const cfg = model.cfg, q = quantScheme(metadata);
    // an int8 file is already this project's one file; converting would silently dequantize it
    if (q !== null) throw new Error(`${paths.weights} is quantized (${q}): it is already this project's file; cait convert writes float models`);
    // checked before anything is written, so --out is not left alone when --hf cannot be written
    if (f.hf !== undefined && cfg.widths) throw new Error(`${src}: a CDCP-compact model (per-block widths) has no transformers layout; --out only`);
    if (f.hf !== undefined && cfg.task === 'segment') throw new Error(`${src}: a segmentation model has no transformers layout; --out only`);
    // ATME switches saved with a schedule ride along
    const extra: Record<string, string> = metadata[ATME_METADATA_KEY] !== undefined ? { [ATME_METADATA_KEY]: metadata[ATME_METADATA_KEY] } : {};
    // the --hf folder is made first: where it cannot be (a bad path, no permission), --out is not written either
    if (f.hf !== undefined) makeFolder(f.hf);
    if (f.out !== undefined) saveModel(f.out, model, extra);
    if (f.hf !== undefined) saveHf(f.hf, model);
    if (!f.json) {
      console.log(`${src} (${layout} layout): ${cfg.name}, ${(model.numParams() / 1e6).toFixed(2)} M parameters, ${cfg.numClasses} classes${cfg.classes ? ' (labelled)' : ''}` +
        `${cfg.distilled ? ', distilled' : ''}, ${cfg.imgSize}x${cfg.imgSize} input, preprocessing ${cfg.preprocess?.kind ?? 'the project default'}`);
      if (f.out !== undefined) console.log(`wrote ${f.out}`);
      if (f.hf !== undefined) console.log(`wrote ${f.hf}/ (transformers layout)`);
    }
    emitJson(f, {
      model: src, layout, name: cfg.name, params: model.numParams(), classes: cfg.numClasses, labels: !!cfg.classes,
      distilled: !!cfg.distilled, img_size: cfg.imgSize, preprocess: cfg.preprocess?.kind ?? null, merge: cfg.merge ?? '',
      out: f.out ?? null, hf: f.hf ?? null,
    });
  } finally { model.dispose(); }
}
