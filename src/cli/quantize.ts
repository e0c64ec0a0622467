// cait quantize: a model file (or a preset's random weights, for benchmarks)
// as an int8 model file (src/quant/: per-channel int8 weights, activations
// quantized per token at run time). With --data, the test accuracy of the
// float and the int8 model, in the same run (the int8 one through the int8
// kernels, with the model's merge schedule).
import { createModel } from '../nn/model.js';
import { getPreset } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import type { Trainable } from '../train/trainer.js';
import { ATME_METADATA_KEY } from '../cait/wrap.js';
import { getBackend } from '../tensor.js';
import { quantizeModel, hasInt8Kernels, type QuantizedModel, type QuantizeOptions } from '../quant/int8.js';
import { quantScheme, quantizedFileBytes } from '../quant/format.js';
import { isSegmentation } from '../seg/model.js';
import { writeFileAtomic, type NamedInput } from '../io/output.js';
import { BACKEND_FLAGS, MERGE_FLAGS, MODEL_FLAGS, OUTPUT_FLAGS, UsageError, command, type Flags } from './flags.js';
import { checkBatchBytes, checkOutputFlag, emitJson, loadModelFlags, modelInputs, need, needModelForLoadFlags, useBackend, withMerging } from './common.js';
import { FOLDER_FLAGS, checkFolderFlags, isFolder, scoreFolder, testSplitOf } from './folder.js';

/** cait quantize's and compress --quantize's --prefix-weights (quantizeModel's prefixWeights). */
export const PREFIX_WEIGHTS_FLAG = { type: 'enum', choices: ['on', 'off'], default: 'on', help: "the class (and distillation) token's rows through the blocks' Linears and the heads with the weights in two int8 parts, about 15 bits (on: logits about 2x closer to float on random-weight DeiT-Tiny, for those layers' int8 weights twice in the file and 0.4-1.3% of the time), or one (off: the smallest file)" } as const;
export const prefixWeightsOf = (f: { 'prefix-weights'?: 'on' | 'off' }): boolean => f['prefix-weights'] !== 'off';

/** --batch's default: images per forward when --data is scored. */
const DATA_BATCH = 250;

const QUANTIZE_FLAGS = {
  ...MODEL_FLAGS,
  out: { type: 'string', value: 'FILE', help: 'the int8 model file to write (required)' },
  seed: { type: 'int', min: 0, default: 0, help: "seed of the random weights of a --preset without --model, and of --val-split's held-out images (train's --seed)" },
  data: { type: 'string', value: 'NAME|DIR', help: 'report the float and int8 accuracy on this test split: fashion-mnist, mnist, or an image folder (DIR/val/<class>/*, or DIR/<class>/*), as cait eval scores it' },
  limit: { type: 'int', min: 1, help: 'with --data: evaluate this many test images', defaultText: 'all' },
  'val-split': FOLDER_FLAGS['val-split'],
  batch: { type: 'int', min: 1, max: 4096, help: 'with --data: images per forward', defaultText: String(DATA_BATCH) },
  'prefix-weights': PREFIX_WEIGHTS_FLAG,
  ...BACKEND_FLAGS, ...MERGE_FLAGS, ...OUTPUT_FLAGS,
} as const;

export const quantizeCommand = command({
  name: 'quantize',
  summary: 'a model as an int8 model file (per-channel int8 weights, per-token activations at run time)',
  usage: [
    '--model models/fmnist-cait.safetensors --out models/fmnist-cait-int8.safetensors --data fashion-mnist --json',
    '--preset deit_tiny_patch16_224 --seed 0 --out deit-tiny-int8.safetensors',
  ],
  notes: 'The file is safetensors: I8 weights with F32 <layer>.weight_scale, the scheme in __metadata__.quant; ' +
    'cait eval, bench and the library load it and run the int8 kernels (WebGPU: dequantized to float).',
  flags: QUANTIZE_FLAGS,
  run: quantizeRun,
});

/** A difference with its sign ('+0.10', '-2.67'). */
const signed = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;

/** Metadata a quantized file keeps from its source (the rest is rewritten). */
export const CARRIED = (k: string): boolean => k !== 'format' && k !== 'config' && k !== 'quant';

/**
 * Quantize `vit` and write the int8 file `out` (atomically, never over an
 * input); returns the handle and the file size. `runAs`: the wrapper the run
 * used (withMerging), whose config (its schedule, none after --merge none)
 * and ATME switches the file keeps instead of the source's, so the file runs
 * as the accuracy it reports was measured.
 */
export function writeQuantized(vit: VisionTransformer, out: string, metadata: Record<string, string>, inputs: readonly NamedInput[],
  runAs?: Pick<Trainable, 'cfg' | 'saveExtras'>, o: Pick<QuantizeOptions, 'prefixWeights'> = {}): { qm: QuantizedModel; bytes: number } {
  const qm = quantizeModel(vit, o);
  const extra = Object.fromEntries(Object.entries(metadata).filter(([k]) => CARRIED(k)));
  if (runAs) {
    delete extra[ATME_METADATA_KEY];
    Object.assign(extra, runAs.saveExtras?.().metadata ?? {}, { config: JSON.stringify(runAs.cfg) });
  }
  const bytes = quantizedFileBytes(vit, qm, extra);
  writeFileAtomic(out, bytes, inputs);
  return { qm, bytes: bytes.length };
}

async function quantizeRun(f: Flags<typeof QUANTIZE_FLAGS>): Promise<void> {
  useBackend(f.backend, f.threads);
  const out = need(f.out, 'out'), inputs = modelInputs(f.model);
  checkOutputFlag('out', out, inputs);
  // the flags that only shape --data's scoring would be silently ignored without it
  if (f.data === undefined) for (const k of ['val-split', 'limit', 'batch'] as const) if (f[k] !== undefined) throw new UsageError(`--${k} applies to the accuracy on --data's test split: give --data`);
  if (f.data && !hasInt8Kernels(getBackend())) throw new UsageError(`--data needs a backend with int8 kernels (wasm, reference), got --backend ${f.backend}`);
  let vit: VisionTransformer, metadata: Record<string, string> = {};
  needModelForLoadFlags(f);
  if (f.model) {
    ({ model: vit, metadata } = loadModelFlags(f.model, f.preset, f));
    if (quantScheme(metadata) !== null) throw new Error(`${f.model} is already quantized (__metadata__.quant scheme ${quantScheme(metadata)})`);
  } else if (f.preset) vit = createModel(getPreset(f.preset), f.seed);
  else throw new UsageError('missing --model FILE or --preset NAME');
  if (f.data && isSegmentation(vit.cfg)) { vit.dispose(); throw new UsageError(`${f.model ?? f.preset} is a segmentation model: --data scores classifiers; quantize without it, then cait eval --task segment --model OUT`); }
  const batch = f.batch ?? DATA_BATCH;
  if (f.data) checkBatchBytes(vit.cfg, batch, '--batch');
  const runner = withMerging(vit, f, metadata);
  const cfg = runner.cfg, floatBytes = 4 * vit.numParams(), quiet = f.quiet || f.json;
  // the split is read once (a folder decoded once) and scored as cait eval scores it, float then int8
  if (f.data !== undefined && !isFolder(f.data)) checkFolderFlags(f, `the built-in dataset ${f.data}`);
  const test = f.data ? testSplitOf(f.data, cfg, { quiet: f.quiet, json: f.json, limit: f.limit, 'val-split': f['val-split'], seed: f.seed }) : null;
  const acc = async () => (test ? scoreFolder(runner, test.split, { batchSize: batch, limit: f.limit, classes: test.classes, quiet }).then((r) => ({ accuracy: r.top1, n: r.n })) : null);
  const floatAcc = await acc();
  const { qm, bytes } = writeQuantized(vit, out, metadata, inputs, runner, { prefixWeights: prefixWeightsOf(f) });
  const int8Acc = await acc();
  const layers = qm.weights.size, twoPart = [...qm.weights.values()].filter((w) => w.residual).length;
  if (!f.json) {
    console.log(`wrote ${out}: ${cfg.name}${cfg.widths ? ' (compact)' : ''}${cfg.merge ? `, ATME ${cfg.merge}` : ''}, ${layers} int8 layers${twoPart ? ` (${twoPart} with two weight parts for the prefix rows)` : ''}, ` +
      `${(bytes / 1e6).toFixed(3)} MB (float ${(floatBytes / 1e6).toFixed(3)} MB)`);
    if (floatAcc && int8Acc) console.log(`accuracy on ${int8Acc.n} of the ${test!.what}: float ${(100 * floatAcc.accuracy).toFixed(2)}%, int8 ${(100 * int8Acc.accuracy).toFixed(2)}% (${signed(100 * (int8Acc.accuracy - floatAcc.accuracy))} points)`);
  }
  emitJson(f, {
    out, bytes, float_bytes: floatBytes, model: cfg.name, scheme: 'int8-dynamic', layers, prefix_weights: twoPart, compact: !!cfg.widths, merge: cfg.merge ?? '',
    ...(floatAcc && int8Acc ? { data: f.data, n: int8Acc.n, accuracy_float: floatAcc.accuracy, accuracy_int8: int8Acc.accuracy, delta_points: +(100 * (int8Acc.accuracy - floatAcc.accuracy)).toFixed(2) } : {}),
  });
  qm.dispose();
}
