// cait export: a model as an ONNX file (opset 17) for other runtimes.
// Dense, CDCP-compact and ATME-merged models alike (src/cait/onnx.ts); the
// merge schedule is the one the model runs with (--merge, else its saved one).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createModel, loadModel } from '../nn/model.js';
import { getPreset } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import { CaitModel } from '../cait/wrap.js';
import { exportVitOnnx, ONNX_IR_VERSION, ONNX_OPSET } from '../cait/onnx.js';
import { parseArgs, UsageError } from './args.js';
import { MERGE_FLAGS, emitJson, need, withMerging } from './common.js';

export function exportCommand(argv: string[]): void {
  const { flags: f } = parseArgs(argv, { model: 'string', preset: 'string', onnx: 'string', batch: 'string', seed: 'number', json: 'boolean', ...MERGE_FLAGS });
  const out = need(f.onnx as string | undefined, 'onnx');
  const b = (f.batch as string | undefined) ?? 'dynamic';
  let batch: number | 'dynamic' = 'dynamic';
  if (b !== 'dynamic') {
    batch = Number(b);
    if (!/^\d+$/.test(b) || batch < 1) throw new UsageError(`--batch must be a positive integer or 'dynamic', got '${b}'`);
  }
  let vit: VisionTransformer, metadata: Record<string, string> = {};
  if (f.model) ({ model: vit, metadata } = loadModel(f.model as string, { preset: f.preset as string | undefined }));
  else if (f.preset) vit = createModel(getPreset(f.preset as string), (f.seed as number | undefined) ?? 0);   // random weights
  else throw new UsageError('missing --model FILE or --preset NAME');
  const runner = withMerging(vit, f, metadata);
  const cait = runner instanceof CaitModel ? runner : null;
  const r = exportVitOnnx(vit, { batch, merge: cait?.schedule ?? '', atme: cait?.options });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, r.bytes);
  const cfg = vit.cfg, B = batch === 'dynamic' ? 'batch' : batch;
  const g = r.model.graph;
  if (!f.json) {
    console.log(`wrote ${out}: ${cfg.name}${cfg.widths ? ' (compact)' : ''}${r.merge ? `, ATME ${r.merge}` : ''}, opset ${ONNX_OPSET}, ` +
      `${g.nodes.length} nodes, ${(r.bytes.length / 1e6).toFixed(2)} MB; pixel_values [${B}, ${cfg.inChans}, ${cfg.imgSize}, ${cfg.imgSize}] -> logits [${B}, ${cfg.numClasses}]`);
  }
  emitJson({
    onnx: out, bytes: r.bytes.length, model: cfg.name, opset: ONNX_OPSET, ir_version: ONNX_IR_VERSION,
    input: { name: 'pixel_values', shape: [B, cfg.inChans, cfg.imgSize, cfg.imgSize] },
    output: { name: 'logits', shape: [B, cfg.numClasses] },
    nodes: g.nodes.length, initializers: g.initializers.length, params: vit.numParams(),
    compact: !!cfg.widths, merge: r.merge, ...(r.atme ? { similarity: r.atme.similarity, prop_attn: r.atme.propAttn } : {}),
    tokens: r.tokens,
  });
}
