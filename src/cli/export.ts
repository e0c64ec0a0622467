// cait export: a model as an ONNX file (opset 17) for other runtimes.
// Dense, CDCP-compact and ATME-merged models alike (src/cait/onnx.ts); the
// merge schedule is the one the model runs with (--merge, else its saved one).
import { createModel } from '../nn/model.js';
import { getPreset } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import { CaitModel } from '../cait/wrap.js';
import { exportVitOnnx, ONNX_IR_VERSION, ONNX_OPSET } from '../cait/onnx.js';
import { INT8_FLAGS, JSON_FLAG, MERGE_FLAGS, MODEL_FLAGS, UsageError, command, flagsSet, type Flags } from './flags.js';
import { isSegmentation } from '../seg/model.js';
import { checkOutputFlag, emitJson, loadModelFlags, modelInputs, need, needModelForLoadFlags, withMerging } from './common.js';
import { writeFileAtomic } from '../io/output.js';
import { quantizeForInference } from '../quant/format.js';
import { exportInt8Onnx } from '../quant/onnx.js';

const EXPORT_FLAGS = {
  ...MODEL_FLAGS,
  onnx: { type: 'string', value: 'OUT.onnx', help: 'the ONNX file to write (required)' },
  batch: {
    type: 'string', value: 'B|dynamic', default: 'dynamic', help: 'a fixed batch size, or a dynamic batch dimension',
    check: (b: string) => b === 'dynamic' || (/^\d+$/.test(b) && +b >= 1 && +b <= 65536) ? undefined : `must be a positive integer or 'dynamic', got '${b}'`,
  },
  seed: { type: 'int', min: 0, default: 0, help: 'seed of the random weights of a --preset without --model' },
  quantize: { ...INT8_FLAGS.quantize, help: "write the int8 graph (quantize_dynamic's form) of a float model quantized as it loads: the weights cait quantize would write; an int8 file is int8 already" },
  ...MERGE_FLAGS, ...JSON_FLAG,
} as const;

export const exportCommand = command({
  name: 'export',
  summary: 'a model (dense, compact or ATME-merged) as an ONNX file (opset 17) for other runtimes',
  usage: ['--model models/fmnist-dense.safetensors --onnx model.onnx', '--preset deit_tiny_patch16_224 --merge h@3,v@6 --batch 1 --onnx deit.onnx --json'],
  flags: EXPORT_FLAGS,
  run: exportRun,
});

function exportRun(f: Flags<typeof EXPORT_FLAGS>): void {
  const out = need(f.onnx, 'onnx');
  const inputs = modelInputs(f.model);
  checkOutputFlag('onnx', out, inputs);
  const batch: number | 'dynamic' = f.batch === 'dynamic' ? 'dynamic' : Number(f.batch);
  let vit: VisionTransformer, metadata: Record<string, string> = {};
  needModelForLoadFlags(f);
  if (f.model && flagsSet(f, EXPORT_FLAGS, ['seed']).length) throw new UsageError('--seed seeds the random weights of a --preset without --model: a --model has its own weights');
  if (f.model) ({ model: vit, metadata } = loadModelFlags(f.model, f.preset, f));
  else if (f.preset) vit = createModel(getPreset(f.preset), f.seed);   // random weights
  else throw new UsageError('missing --model FILE or --preset NAME');
  // the ONNX graph is the classifier's (class token -> logits); a segmentation model's per-token head is not in it
  if (isSegmentation(vit.cfg)) { vit.dispose(); throw new UsageError(`${f.model ?? f.preset} is a segmentation model: export writes classifier graphs (logits [B, classes]); its per-pixel head has no ONNX export`); }
  const runner = withMerging(vit, f, metadata);
  const cait = runner instanceof CaitModel ? runner : null;
  // an int8 file (or a float one with --quantize int8) exports as onnxruntime's dynamic quantization (src/quant/onnx.ts)
  const qm = quantizeForInference(vit, metadata, { quantize: f.quantize }), eo = { batch, merge: cait?.schedule ?? '', atme: cait?.options };
  const r = qm ? exportInt8Onnx(vit, qm, eo) : exportVitOnnx(vit, eo);
  writeFileAtomic(out, r.bytes, inputs);
  const cfg = vit.cfg, B = batch === 'dynamic' ? 'batch' : batch;
  const g = r.model.graph;
  if (!f.json) {
    console.log(`wrote ${out}: ${cfg.name}${cfg.widths ? ' (compact)' : ''}${r.merge ? `, ATME ${r.merge}` : ''}${qm ? ', int8 (quantize_dynamic form)' : ''}, opset ${ONNX_OPSET}, ` +
      `${g.nodes.length} nodes, ${(r.bytes.length / 1e6).toFixed(2)} MB; pixel_values [${B}, ${cfg.inChans}, ${cfg.imgSize}, ${cfg.imgSize}] -> logits [${B}, ${cfg.numClasses}]`);
  }
  emitJson(f, {
    onnx: out, bytes: r.bytes.length, model: cfg.name, opset: ONNX_OPSET, ir_version: ONNX_IR_VERSION,
    input: { name: 'pixel_values', shape: [B, cfg.inChans, cfg.imgSize, cfg.imgSize] },
    output: { name: 'logits', shape: [B, cfg.numClasses] },
    nodes: g.nodes.length, initializers: g.initializers.length, params: vit.numParams(),
    compact: !!cfg.widths, merge: r.merge, ...(qm ? { quant: 'int8-dynamic' } : {}), ...(r.atme ? { similarity: r.atme.similarity, prop_attn: r.atme.propAttn } : {}),
    tokens: r.tokens,
  });
}
