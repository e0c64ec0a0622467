// The ONNX file format: a dependency-free protobuf writer for the few
// onnx.proto messages a model file needs, and a small graph builder. What a
// model's graph holds is built elsewhere (the ViT/ATME graph: src/cait/onnx.ts).
//
// Field numbers are onnx/onnx.proto's (identical in onnx.proto3); each writer
// below cites its message. Tensors go out as raw_data, fixed-width
// little-endian.

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
export const DTYPE = { float32: 1, uint8: 2, int8: 3, bool: 9, int64: 7 } as const;
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

/** Opset 17 (ONNX 1.12) and IR version 8, the IR version that introduced it. */
export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
