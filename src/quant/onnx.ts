// ONNX export of an int8 model in the form onnxruntime's quantize_dynamic
// writes (per-channel weights): each quantized Linear's Gemm becomes
//   DynamicQuantizeLinear(x) -> x_q (uint8), x_scale, x_zero_point
//   MatMulInteger(x_q, W^T int8 [in, out], x_zero_point) -> int32
//   Cast(float) * (x_scale * weight_scale[out]) + bias
// so onnxruntime (web and node) runs the same int8 weights through its own
// int8 kernels (it fuses the chain into DynamicQuantizeMatMul). The rest of the
// graph is src/cait/onnx.ts's float graph (dense, compact, merged), with the
// dequantized weights where a layer is not rewritten (the patch embedding's
// Conv stays a float Conv: ConvInteger lacks int8 weights on ORT's CPU EP).
// Activations differ from this engine's: ORT quantizes a whole tensor to 8
// bits (min/max over the batch), caitjs each token to 7 (assembly/qgemm.ts)
// and the prefix tokens' rows to about 14 (src/quant/int8.ts), so the two int8
// models agree to quantization noise, not bit for bit.
import type { VisionTransformer } from '../nn/vit.js';
import { vitToOnnx, type VitOnnxOptions, type VitOnnxResult } from '../cait/onnx.js';
import { encodeModel, type OnnxNode, type OnnxTensor } from '../io/onnx.js';
import type { QuantizedModel } from './int8.js';
import { INT8_SCHEME } from './int8.js';

/** TensorProto.DataType FLOAT, for Cast's `to`. */
const FLOAT = 1;

export interface Int8OnnxResult extends VitOnnxResult { bytes: Uint8Array; rewritten: string[] }

/** The int8 graph of `vit` quantized by `qm` (see the header); options as vitToOnnx's. */
export function exportInt8Onnx(vit: VisionTransformer, qm: QuantizedModel, o: VitOnnxOptions = {}): Int8OnnxResult {
  const r = vitToOnnx(vit, { ...o, metadata: { ...o.metadata, quant: INT8_SCHEME } });
  const g = r.model.graph;
  const init = new Map(g.initializers.map((t) => [t.name, t]));
  const nodes: OnnxNode[] = [], added: OnnxTensor[] = [], drop = new Set<string>(), rewritten: string[] = [];
  for (const n of g.nodes) {
    const wName = n.inputs[1] ?? '';
    const layer = n.op === 'Gemm' && wName.endsWith('.weight') ? wName.slice(0, -'.weight'.length) : null;
    const w = layer !== null ? qm.weights.get(layer) : undefined;
    const t = init.get(wName);
    if (!w || !t || layer === null) { nodes.push(n); continue; }
    const [N, K] = t.dims;
    const wt = new Int8Array(K * N);
    for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) wt[k * N + j] = w.q[j * K + k];
    const wq = `${layer}.weight_quantized`, ws = `${layer}.weight_scale`;
    added.push({ name: wq, dims: [K, N], dtype: 'int8', data: new Uint8Array(wt.buffer) });
    added.push({ name: ws, dims: [N], dtype: 'float32', data: Float32Array.from(w.scale) });
    drop.add(wName);
    const p = n.name, x = n.inputs[0];
    const q = [`${p}/x_q`, `${p}/x_scale`, `${p}/x_zero_point`];
    nodes.push({ op: 'DynamicQuantizeLinear', name: `${p}/quant`, inputs: [x], outputs: q });
    nodes.push({ op: 'MatMulInteger', name: `${p}/matmul_int`, inputs: [q[0], wq, q[2]], outputs: [`${p}/acc`] });
    nodes.push({ op: 'Cast', name: `${p}/cast`, inputs: [`${p}/acc`], outputs: [`${p}/acc_f`], attrs: { to: { i: FLOAT } } });
    nodes.push({ op: 'Mul', name: `${p}/scale`, inputs: [q[1], ws], outputs: [`${p}/scales`] });
    const bias = n.inputs[2];
    nodes.push({ op: 'Mul', name: `${p}/dequant`, inputs: [`${p}/acc_f`, `${p}/scales`], outputs: [bias ? `${p}/deq` : n.outputs[0]] });
    if (bias) nodes.push({ op: 'Add', name: `${p}/bias`, inputs: [`${p}/deq`, bias], outputs: [n.outputs[0]] });
    rewritten.push(layer);
  }
  g.nodes.splice(0, g.nodes.length, ...nodes);
  g.initializers.splice(0, g.initializers.length, ...g.initializers.filter((t) => !drop.has(t.name)), ...added);
  return { ...r, bytes: encodeModel(r.model), rewritten };
}
