// ONNX export: a dependency-free protobuf writer for the few onnx.proto
// messages a model file needs, a small graph builder, and the ViT graph
// (dense, CDCP-compact, and ATME-merged) in opset 17.
//
// Field numbers are onnx/onnx.proto's (identical in onnx.proto3); each writer
// below cites its message. IR version 8 is the one that introduced opset 17
// (ONNX 1.12). Tensors go out as raw_data, fixed-width little-endian.
//
// Layout of the exported graph: tokens travel as a 2-D [B*N, C] matrix so every
// Linear is one Gemm(transB=1) on the timm weight [out, in] itself (no
// transposed copies, parameter names unchanged); N is static at every point
// (ATME's grids are static), so Reshape [-1, N, ...] recovers the batch.
import type { VisionTransformer } from '../nn/vit.js';
import { blockWidths } from '../nn/presets.js';
import { ATME_DEFAULTS, stepGrid, toSteps, type AtmeOptions, type Grid, type MergeStep } from '../cait/atme.js';
import { atmeSources } from '../backend/reference/atme.js';

// ---------------------------------------------------------------- protobuf

/**
 * A message under construction: its encoded parts, concatenated only once at
 * the end, so nesting a message (tag, length, parts) copies no payload.
 */
export class Pb {
  readonly parts: Uint8Array[] = [];
  length = 0;

  private push(b: Uint8Array): void { this.parts.push(b); this.length += b.length; }

  /** Base-128 varint; negative int64 as its 64-bit two's complement (10 bytes), as protobuf encodes int64. */
  static varint(v: number | bigint): Uint8Array {
    let n = typeof v === 'bigint' ? v : BigInt(v);
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`varint: ${v} is not a safe integer`);
    if (n < 0n) n = BigInt.asUintN(64, n);
    const out: number[] = [];
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) byte |= 0x80;
      out.push(byte);
    } while (n > 0n);
    return Uint8Array.from(out);
  }

  private tag(field: number, wire: number): void { this.push(Pb.varint(field * 8 + wire)); }

  /** Wire type 0: int32, int64, enum, bool. */
  int(field: number, v: number | bigint): this { this.tag(field, 0); this.push(Pb.varint(v)); return this; }

  /** Wire type 5: float (fixed32, little-endian). */
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  /** Wire type 2: bytes. */
  bytes(field: number, b: Uint8Array): this { this.tag(field, 2); this.push(Pb.varint(b.length)); this.push(b); return this; }

  string(field: number, s: string): this { return this.bytes(field, new TextEncoder().encode(s)); }

  /** Wire type 2: an embedded message. */
  msg(field: number, m: Pb): this {
    this.tag(field, 2);
    this.push(Pb.varint(m.length));
    for (const p of m.parts) this.push(p);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }
}

// ---------------------------------------------------------------- ONNX IR

/** TensorProto.DataType values. */
export const DTYPE = { float32: 1, bool: 9, int64: 7 } as const;
export type DType = keyof typeof DTYPE;

export interface OnnxTensor {
  name: string;
  dims: number[];
  dtype: DType;
  data: Float32Array | BigInt64Array | Uint8Array;
}

/** AttributeProto values, tagged by kind (AttributeType: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7). */
export type AttrValue = { f: number } | { i: number } | { s: string } | { floats: number[] } | { ints: number[] };

export interface OnnxNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

/** A graph input or output: element type and shape, a string for a symbolic dimension. */
export interface OnnxValueInfo { name: string; dtype: DType; shape: Array<number | string> }

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  opset: number;
  irVersion: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Tensor data as raw_data bytes: fixed width, little-endian, bool one byte per element. */
function rawBytes(t: OnnxTensor): Uint8Array {
  const d = t.data;
  if (d instanceof Uint8Array) return d;
  if (LITTLE_ENDIAN) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  const out = new Uint8Array(d.byteLength), dv = new DataView(out.buffer);
  if (d instanceof Float32Array) d.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  else d.forEach((v, i) => dv.setBigInt64(8 * i, v, true));
  return out;
}

/** TensorProto: dims 1, data_type 2, name 8, raw_data 9. */
function tensorProto(t: OnnxTensor): Pb {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new Error(`onnx: tensor '${t.name}' has ${t.data.length} values for dims [${t.dims}]`);
  const m = new Pb();
  for (const d of t.dims) m.int(1, d);
  m.int(2, DTYPE[t.dtype]).string(8, t.name).bytes(9, rawBytes(t));
  return m;
}

/** AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20. */
function attributeProto(name: string, v: AttrValue): Pb {
  const m = new Pb().string(1, name);
  if ('f' in v) m.float(2, v.f).int(20, 1);
  else if ('i' in v) m.int(3, v.i).int(20, 2);
  else if ('s' in v) m.string(4, v.s).int(20, 3);
  else if ('floats' in v) { for (const x of v.floats) m.float(7, x); m.int(20, 6); }
  else { for (const x of v.ints) m.int(8, x); m.int(20, 7); }
  return m;
}

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5. */
function nodeProto(n: OnnxNode): Pb {
  const m = new Pb();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) m.msg(5, attributeProto(k, v));
  return m;
}

/**
 * ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1; TypeProto.Tensor:
 * elem_type 1, shape 2; TensorShapeProto: dim 1; Dimension: dim_value 1, dim_param 2.
 */
function valueInfoProto(v: OnnxValueInfo): Pb {
  const shape = new Pb();
  for (const d of v.shape) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().string(2, d));
  const tensorType = new Pb().int(1, DTYPE[v.dtype]).msg(2, shape);
  return new Pb().string(1, v.name).msg(2, new Pb().msg(1, tensorType));
}

/** GraphProto: node 1, name 2, initializer 5, input 11, output 12. */
function graphProto(g: OnnxGraph): Pb {
  const m = new Pb();
  for (const n of g.nodes) m.msg(1, nodeProto(n));
  m.string(2, g.name);
  for (const t of g.initializers) m.msg(5, tensorProto(t));
  for (const v of g.inputs) m.msg(11, valueInfoProto(v));
  for (const v of g.outputs) m.msg(12, valueInfoProto(v));
  return m;
}

/**
 * ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6,
 * graph 7, opset_import 8 (OperatorSetIdProto: domain 1, version 2; the empty
 * domain is ai.onnx), metadata_props 14 (StringStringEntryProto: key 1, value 2).
 */
export function encodeModel(model: OnnxModel): Uint8Array {
  const m = new Pb().int(1, model.irVersion);
  if (model.producerName) m.string(2, model.producerName);
  if (model.producerVersion) m.string(3, model.producerVersion);
  if (model.docString) m.string(6, model.docString);
  m.msg(7, graphProto(model.graph));
  m.msg(8, new Pb().string(1, '').int(2, model.opset));
  for (const [k, v] of Object.entries(model.metadata ?? {})) m.msg(14, new Pb().string(1, k).string(2, v));
  return m.finish();
}

/** Nodes and initializers with unique names; small constants are shared. */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();

  /** `base`, or `base_2`, `base_3`, ... whichever is still free. */
  fresh(base: string): string {
    let name = base;
    for (let k = 2; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  /** An initializer under exactly `name` (a parameter's timm name). */
  tensor(name: string, dims: number[], dtype: DType, data: OnnxTensor['data']): string {
    if (this.names.has(name)) throw new Error(`onnx: duplicate value name '${name}'`);
    this.names.add(name);
    return this.push(name, dims, dtype, data);
  }

  private push(name: string, dims: number[], dtype: DType, data: OnnxTensor['data']): string {
    this.initializers.push({ name, dims: [...dims], dtype, data });
    return name;
  }

  private constant(dtype: DType, dims: number[], key: string, make: () => OnnxTensor['data']): string {
    const k = `${dtype}[${dims}]${key}`;
    let name = this.consts.get(k);
    if (!name) {
      name = this.push(this.fresh(`const_${dtype}_${this.consts.size}`), dims, dtype, make());
      this.consts.set(k, name);
    }
    return name;
  }

  i64(values: readonly number[], dims: number[] = [values.length]): string {
    return this.constant('int64', dims, values.join(','), () => BigInt64Array.from(values, (v) => BigInt(v)));
  }

  f32(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const data = Float32Array.from(values as ArrayLike<number>);
    return this.constant('float32', dims, Array.from(data).join(','), () => data);
  }

  bool(values: readonly boolean[], dims: number[] = [values.length]): string {
    return this.constant('bool', dims, values.map(Number).join(''), () => Uint8Array.from(values, Number));
  }

  /** One node with one output, named `out` (made unique). */
  op(op: string, inputs: string[], out: string, attrs?: Record<string, AttrValue>): string {
    const o = this.fresh(out);
    this.nodes.push({ op, name: o, inputs, outputs: [o], ...(attrs ? { attrs } : {}) });
    return o;
  }

  /** A node whose output has a fixed name (a graph output). */
  opNamed(op: string, inputs: string[], out: string, attrs?: Record<string, AttrValue>): string {
    if (this.names.has(out)) throw new Error(`onnx: duplicate value name '${out}'`);
    this.names.add(out);
    this.nodes.push({ op, name: out, inputs, outputs: [out], ...(attrs ? { attrs } : {}) });
    return out;
  }
}

// ---------------------------------------------------------------- ViT graph

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

export interface VitOnnxOptions {
  /** A fixed batch size, or 'dynamic' (a symbolic 'batch' dimension; default). */
  batch?: number | 'dynamic';
  /** ATME schedule (default: none; the config's own `merge` is not implied). */
  merge?: string | readonly MergeStep[];
  /** ATME switches (default: keys similarity, proportional attention). */
  atme?: Partial<AtmeOptions>;
  /** Extra metadata_props. */
  metadata?: Record<string, string>;
}

export interface VitOnnxResult {
  model: OnnxModel;
  merge: string;
  atme: AtmeOptions | null;
  /** Tokens (class token included) each block's attention sees, then the head. */
  tokens: number[];
}

/** torch's exact GELU, 0.5 x (1 + erf(x / sqrt 2)), the engine's gelu. */
function gelu(g: GraphBuilder, x: string, p: string): string {
  const e = g.op('Erf', [g.op('Mul', [x, g.f32([Math.SQRT1_2], [])], `${p}/gelu_scaled`)], `${p}/gelu_erf`);
  const s = g.op('Add', [e, g.f32([1], [])], `${p}/gelu_1p`);
  return g.op('Mul', [g.op('Mul', [x, s], `${p}/gelu_xs`), g.f32([0.5], [])], `${p}/gelu`);
}

function linear(g: GraphBuilder, x: string, weight: string, bias: string | null, p: string): string {
  return g.op('Gemm', bias ? [x, weight, bias] : [x, weight], p, { transB: { i: 1 } });
}

function layerNorm(g: GraphBuilder, x: string, weight: string, bias: string, eps: number, p: string): string {
  return g.op('LayerNormalization', [x, weight, bias], p, { axis: { i: -1 }, epsilon: { f: eps } });
}

function once<T>(f: () => T): () => T {
  let v: { value: T } | null = null;
  return () => (v ??= { value: f() }).value;
}

/** Size-weighted merge of one ATME step, constant when partners are fixed. */
interface MergeState {
  /** Per-image sizes of the patch tokens [B, T, 1], or constants [T] (null: all ones). */
  sizes: string | Float64Array | null;
  /** The key bias for the following blocks' attention, [B, 1, 1, N] or [1, 1, 1, N]; built when first used (a merge in the last block has no user). */
  bias: (() => string) | null;
}

/**
 * ATME in ONNX ops (src/backend/reference/atme.ts is the spec). Partner
 * choice: cosine of each source to its previous and next destination (Gather
 * of static index lists, ReduceSum), Greater (ties and NaN: previous), the
 * destination through Where; the map [B, T] as Where of the sources' choice
 * over the destinations' fixed indices; the merge as a one-hot [B, T2, T]
 * (Equal against 0..T2-1) MatMul of size-weighted tokens, over the summed
 * sizes. Fixed pairing needs none of this: its merge is one constant matrix.
 */
function mergeStep(g: GraphBuilder, x: string, qkv: string, st: MergeState, step: MergeStep, grid: Grid, C: number,
  keys: { H: number; dqk: number; W: number }, o: AtmeOptions, p: string): { x: string; state: MergeState } {
  const [gh, gw] = grid, T = gh * gw, N = 1 + T, axis = step.axis === 'h' ? 0 : 1;
  const [gh2, gw2] = stepGrid(grid, step.axis), T2 = gh2 * gw2, N2 = 1 + T2;
  const dest = (t: number): number => {
    const r = Math.floor(t / gw), c = t % gw;
    return axis === 0 ? r * gw2 + c / 2 : (r / 2) * gw2 + c;
  };
  const isDest = (t: number): boolean => (axis === 0 ? t % gw : Math.floor(t / gw)) % 2 === 0;
  const src = atmeSources(gh, gw, axis), S = src.length;
  if (S === 0) return { x, state: st };   // an axis of length 1: nothing merges, sizes stay
  const x3 = g.op('Reshape', [x, g.i64([-1, N, C])], `${p}/tokens`);
  const cls = g.op('Slice', [x3, g.i64([0]), g.i64([1]), g.i64([1])], `${p}/prefix`);
  const patches = g.op('Slice', [x3, g.i64([1]), g.i64([N]), g.i64([1])], `${p}/patches`);
  let y: string, state: MergeState;

  if (o.similarity === 'fixed') {
    // map and sizes do not depend on the image: y = M patches, M[d, t] = s_t / sum_{map u = d} s_u
    const map = Array.from({ length: T }, (_, t) => (isDest(t) ? dest(t) : dest(src.find((s) => s[0] === t)![1])));
    const s0 = st.sizes;
    if (typeof s0 === 'string') throw new Error('onnx: fixed pairing after an image-dependent merge');
    const sizes = s0 ?? new Float64Array(T).fill(1), tot = new Float64Array(T2);
    for (let t = 0; t < T; t++) tot[map[t]] += sizes[t];
    const M = new Float32Array(T2 * T);
    for (let t = 0; t < T; t++) M[map[t] * T + t] = sizes[t] / tot[map[t]];
    y = g.op('MatMul', [g.f32(M, [T2, T]), patches], `${p}/merged`);
    const bias = new Float32Array(N2);
    for (let d = 0; d < T2; d++) bias[1 + d] = Math.log(tot[d]);
    state = { sizes: tot, bias: o.propAttn ? once(() => g.f32(bias, [1, 1, 1, N2])) : null };
  } else {
    let v: string;
    if (o.similarity === 'keys') {
      const k3 = g.op('Reshape', [qkv, g.i64([-1, N, keys.W])], `${p}/qkv3`);
      const k = g.op('Slice', [k3, g.i64([1, keys.H * keys.dqk]), g.i64([N, 2 * keys.H * keys.dqk]), g.i64([1, 2])], `${p}/keys`);
      const kh = g.op('Reshape', [k, g.i64([-1, T, keys.H, keys.dqk])], `${p}/keys_heads`);
      v = g.op('ReduceSum', [kh, g.i64([2])], `${p}/keys_sum`, { keepdims: { i: 0 } });
    } else v = patches;
    const gather = (idx: number[], name: string) => g.op('Gather', [v, g.i64(idx)], `${p}/${name}`, { axis: { i: 1 } });
    const vs = gather(src.map((s) => s[0]), 'v_src');
    const vp = gather(src.map((s) => s[1]), 'v_prev');
    const vn = gather(src.map((s) => (s[2] < 0 ? s[1] : s[2])), 'v_next');
    const sum2 = (a: string, b: string, name: string) =>
      g.op('ReduceSum', [g.op('Mul', [a, b], `${p}/${name}_prod`), g.i64([2])], `${p}/${name}`, { keepdims: { i: 0 } });
    const norm = (a: string, name: string) => g.op('Sqrt', [sum2(a, a, `${name}_sq`)], `${p}/${name}`);
    const ns = norm(vs, 'n_src');
    // cos(a, b) = a.b / max(|a| |b|, 1e-8), the kernel's epsilon
    const cos = (b: string, name: string) => g.op('Div', [sum2(vs, b, `${name}_dot`),
      g.op('Max', [g.op('Mul', [ns, norm(b, `${name}_n`)], `${p}/${name}_nn`), g.f32([1e-8], [])], `${p}/${name}_den`)], `${p}/${name}`);
    const cp = cos(vp, 'cos_prev'), cn = cos(vn, 'cos_next');
    let next = g.op('Greater', [cn, cp], `${p}/next_closer`);
    if (src.some((s) => s[2] < 0)) next = g.op('And', [next, g.bool(src.map((s) => s[2] >= 0))], `${p}/has_next`);
    const srcDest = g.op('Where', [next, g.i64(src.map((s) => dest(Math.max(s[2], 0)))), g.i64(src.map((s) => dest(s[1])))], `${p}/src_dest`);
    const srcOf = new Array<number>(T).fill(0);
    src.forEach((s, i) => { srcOf[s[0]] = i; });
    const spread = g.op('Gather', [srcDest, g.i64(srcOf)], `${p}/src_dest_t`, { axis: { i: 1 } });
    const map = g.op('Where', [g.bool(Array.from({ length: T }, (_, t) => !isDest(t))), spread,
      g.i64(Array.from({ length: T }, (_, t) => (isDest(t) ? dest(t) : 0)))], `${p}/map`);
    const eq = g.op('Equal', [g.op('Unsqueeze', [map, g.i64([1])], `${p}/map_row`), g.i64(Array.from({ length: T2 }, (_, d) => d), [T2, 1])], `${p}/onehot_b`);
    const A = g.op('Cast', [eq], `${p}/onehot`, { to: { i: DTYPE.float32 } });
    let num: string, tot: string;
    if (st.sizes === null) {
      num = g.op('MatMul', [A, patches], `${p}/sum`);
      tot = g.op('ReduceSum', [A, g.i64([2])], `${p}/sizes`, { keepdims: { i: 1 } });
    } else {
      if (typeof st.sizes !== 'string') throw new Error('onnx: an image-dependent merge after fixed pairing');
      num = g.op('MatMul', [A, g.op('Mul', [patches, st.sizes], `${p}/weighted`)], `${p}/sum`);
      tot = g.op('MatMul', [A, st.sizes], `${p}/sizes`);
    }
    y = g.op('Div', [num, tot], `${p}/merged`);
    // log(size) per key, 0 for the class token: Pad puts the prefix column in front
    const bias = once(() => g.op('Reshape', [g.op('Pad', [g.op('Log', [tot], `${p}/log_sizes`), g.i64([0, 1, 0, 0, 0, 0])], `${p}/log_sizes_prefix`),
      g.i64([0, 1, 1, -1])], `${p}/key_bias`));
    state = { sizes: tot, bias: o.propAttn ? bias : null };
  }
  const out = g.op('Reshape', [g.op('Concat', [cls, y], `${p}/tokens_out`, { axis: { i: 1 } }), g.i64([-1, C])], `${p}/x`);
  return { x: out, state };
}

/**
 * The ONNX graph of `vit`: input `pixel_values` [B, C_in, S, S], output
 * `logits` [B, classes]. Compact widths come from the config; merging from
 * `o.merge` (the caller decides whether cfg.merge applies).
 */
export function vitToOnnx(vit: VisionTransformer, o: VitOnnxOptions = {}): VitOnnxResult {
  const cfg = vit.cfg, g = new GraphBuilder(), params = new Map(vit.namedParameters());
  const batch = o.batch ?? 'dynamic';
  if (batch !== 'dynamic' && !(Number.isInteger(batch) && batch >= 1)) throw new Error(`onnx: batch must be a positive integer or 'dynamic', got ${batch}`);
  const steps = toSteps(o.merge ?? '', cfg.depth);
  const atme: AtmeOptions = { ...ATME_DEFAULTS, ...o.atme };
  const w = (name: string): string => {
    const p = params.get(name);
    if (!p) throw new Error(`onnx: the model has no parameter '${name}'`);
    return g.tensor(name, p.shape, 'float32', p.toArray());
  };
  const C = cfg.embedDim, P = cfg.patchSize, S = cfg.imgSize, H = cfg.numHeads;
  let grid: Grid = vit.grid;
  let N = 1 + grid[0] * grid[1];
  const B: number | string = batch === 'dynamic' ? 'batch' : batch;

  // patch_embed: Conv2d(P, stride P) -> [B, C, gh, gw] -> [B, T, C]
  const conv = g.op('Conv', ['pixel_values', w('patch_embed.proj.weight'), w('patch_embed.proj.bias')], 'patch_embed/conv',
    { kernel_shape: { ints: [P, P] }, strides: { ints: [P, P] } });
  const flat = g.op('Reshape', [conv, g.i64([0, C, N - 1])], 'patch_embed/flat');
  const patches = g.op('Transpose', [flat], 'patch_embed/tokens', { perm: { ints: [0, 2, 1] } });
  const clsShape = batch === 'dynamic'
    ? g.op('Concat', [g.op('Shape', ['pixel_values'], 'batch_size', { start: { i: 0 }, end: { i: 1 } }), g.i64([1, C])], 'cls_shape', { axis: { i: 0 } })
    : g.i64([batch, 1, C]);
  const cls = g.op('Expand', [w('cls_token'), clsShape], 'cls_tokens');
  const tokens = g.op('Concat', [cls, patches], 'tokens', { axis: { i: 1 } });
  let x = g.op('Reshape', [g.op('Add', [tokens, w('pos_embed')], 'embed'), g.i64([-1, C])], 'embed/x');

  const scale = (C / H) ** -0.5;   // the dense model's, also for compact widths
  let state: MergeState = { sizes: null, bias: null };
  const seen: number[] = [];
  let k = 0;
  for (let i = 0; i < cfg.depth; i++) {
    const p = `blocks.${i}`, { qk: dqk, v: dv } = blockWidths(cfg, i), W = H * (2 * dqk + dv);
    const block = vit.blocks[i];
    if (block.attn.dqk !== dqk || block.attn.dv !== dv) throw new Error(`onnx: block ${i} has widths qk ${block.attn.dqk} v ${block.attn.dv}, its config says ${dqk}, ${dv}`);
    seen.push(N);
    const n1 = layerNorm(g, x, w(`${p}.norm1.weight`), w(`${p}.norm1.bias`), cfg.eps, `${p}/norm1`);
    const qkv = linear(g, n1, w(`${p}.attn.qkv.weight`), cfg.qkvBias ? w(`${p}.attn.qkv.bias`) : null, `${p}/attn/qkv`);
    const heads = (from: number, to: number, d: number, perm: number[], name: string) => g.op('Transpose',
      [g.op('Reshape', [g.op('Slice', [qkv, g.i64([from]), g.i64([to]), g.i64([1])], `${p}/attn/${name}_cols`), g.i64([-1, N, H, d])], `${p}/attn/${name}_4d`)],
      `${p}/attn/${name}`, { perm: { ints: perm } });
    const q = heads(0, H * dqk, dqk, [0, 2, 1, 3], 'q');
    const kT = heads(H * dqk, 2 * H * dqk, dqk, [0, 2, 3, 1], 'kT');
    const v = heads(2 * H * dqk, W, dv, [0, 2, 1, 3], 'v');
    let s = g.op('Mul', [g.op('MatMul', [q, kT], `${p}/attn/qk`), g.f32([scale], [])], `${p}/attn/logits`);
    if (state.bias) s = g.op('Add', [s, state.bias()], `${p}/attn/logits_biased`);
    const probs = g.op('Softmax', [s], `${p}/attn/probs`, { axis: { i: -1 } });
    const ctx = g.op('Transpose', [g.op('MatMul', [probs, v], `${p}/attn/pv`)], `${p}/attn/ctx_t`, { perm: { ints: [0, 2, 1, 3] } });
    const o2 = g.op('Reshape', [ctx, g.i64([-1, H * dv])], `${p}/attn/ctx`);
    x = g.op('Add', [x, linear(g, o2, w(`${p}.attn.proj.weight`), w(`${p}.attn.proj.bias`), `${p}/attn/proj`)], `${p}/attn_residual`);
    if (steps[k]?.block === i) {
      const step = steps[k++];
      ({ x, state } = mergeStep(g, x, qkv, state, step, grid, C, { H, dqk, W }, atme, `${p}/merge`));
      grid = stepGrid(grid, step.axis);
      N = 1 + grid[0] * grid[1];
    }
    const n2 = layerNorm(g, x, w(`${p}.norm2.weight`), w(`${p}.norm2.bias`), cfg.eps, `${p}/norm2`);
    const h = gelu(g, linear(g, n2, w(`${p}.mlp.fc1.weight`), w(`${p}.mlp.fc1.bias`), `${p}/mlp/fc1`), `${p}/mlp`);
    x = g.op('Add', [x, linear(g, h, w(`${p}.mlp.fc2.weight`), w(`${p}.mlp.fc2.bias`), `${p}/mlp/fc2`)], `${p}/mlp_residual`);
  }
  seen.push(N);
  const normed = layerNorm(g, x, w('norm.weight'), w('norm.bias'), cfg.eps, 'norm');
  const clsOut = g.op('Gather', [g.op('Reshape', [normed, g.i64([-1, N, C])], 'norm/tokens'), g.i64([0], [])], 'cls_out', { axis: { i: 1 } });
  g.opNamed('Gemm', [clsOut, w('head.weight'), w('head.bias')], 'logits', { transB: { i: 1 } });

  const merge = steps.map((st) => `${st.axis}@${st.block}`).join(',');
  const metadata: Record<string, string> = { config: JSON.stringify({ ...cfg, merge: merge || undefined }), ...o.metadata };
  if (merge) metadata.atme = JSON.stringify(atme);
  return {
    model: {
      irVersion: ONNX_IR_VERSION, opset: ONNX_OPSET, producerName: 'caitjs',
      docString: `${cfg.name}${cfg.widths ? ' (compact)' : ''}${merge ? `, ATME ${merge}` : ''}`,
      metadata,
      graph: {
        name: cfg.name, nodes: g.nodes, initializers: g.initializers,
        inputs: [{ name: 'pixel_values', dtype: 'float32', shape: [B, cfg.inChans, S, S] }],
        outputs: [{ name: 'logits', dtype: 'float32', shape: [B, cfg.numClasses] }],
      },
    },
    merge, atme: merge ? atme : null, tokens: seen,
  };
}

/** The encoded ONNX model file of `vit` (see vitToOnnx). */
export function exportVitOnnx(vit: VisionTransformer, o: VitOnnxOptions = {}): VitOnnxResult & { bytes: Uint8Array } {
  const r = vitToOnnx(vit, o);
  return { ...r, bytes: encodeModel(r.model) };
}
