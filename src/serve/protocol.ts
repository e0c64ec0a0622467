// The Open Inference Protocol (KServe v2; also Triton's and Seldon's HTTP
// API): request and response JSON for /v2/models/{name}/infer, checked field
// by field, plus Triton's binary tensor data extension (a JSON header of
// `Inference-Header-Content-Length` bytes, then raw little-endian tensors),
// which spares the server parsing a 150,528-number JSON array per 224x224
// image.
//
// Request:  { id?, parameters?, inputs: [{ name, shape, datatype, parameters?, data }], outputs?: [{ name, parameters? }] }
// Response: { model_name, id?, outputs: [{ name, shape, datatype, data }] }
// Errors:   { error: "..." } with a 4xx status.
// `data` is row-major, flat or nested as the shape says.

import { showValue } from '../util/suggest.js';

/** An error answered to the client: a status and a message. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message); }
}

export const bad = (msg: string): HttpError => new HttpError(400, msg);

export interface InferRequest {
  id?: string;
  /** n images, NCHW, n * C * S * S values. */
  x: Float32Array;
  n: number;
  /** Answer the output as binary data (binary extension) instead of a JSON array. */
  binaryOutput: boolean;
}

interface Json { [k: string]: unknown }
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A request value in an error message: at most 40 characters, however deep its nesting (util/suggest.ts). */
export const describe = (v: unknown): string => showValue(v, 40);

/** Parse JSON, or a 400 that says where it broke. */
export function parseJson(text: string): unknown {
  try { return JSON.parse(text); } catch (e) { throw bad(`request body is not valid JSON: ${(e as Error).message}`); }
}

/**
 * Flatten `data` (flat, or nested to match `shape`) into `out`; each leaf must
 * be a number (JSON has no NaN or Infinity). The walk recurses at most
 * shape.length deep, whatever the nesting of `data` (a leaf that is an array
 * is an error), and shape was checked against the model's first.
 */
function flatten(data: unknown[], shape: readonly number[], out: Float32Array): void {
  const total = out.length;
  if (data.length === total && !data.some(Array.isArray)) {
    for (let i = 0; i < total; i++) {
      const v = data[i];
      if (typeof v !== 'number') throw bad(`input 'pixel_values': data[${i}] is ${describe(v)}, expected a number`);
      out[i] = v;
    }
    return;
  }
  let k = 0;
  const walk = (a: unknown, d: number, at: string): void => {
    if (d === shape.length) {
      if (typeof a !== 'number') throw bad(`input 'pixel_values': data${at} is ${describe(a)}, expected a number`);
      out[k++] = a;
      return;
    }
    if (!Array.isArray(a)) throw bad(`input 'pixel_values': data${at} is not an array; nested data must follow the shape [${shape}]`);
    if (a.length !== shape[d]) throw bad(`input 'pixel_values': data${at} has ${a.length} entries, the shape [${shape}] says ${shape[d]} (or send data flat, ${total} numbers)`);
    for (let i = 0; i < a.length; i++) walk(a[i], d + 1, `${at}[${i}]`);
  };
  if (!data.every(Array.isArray)) throw bad(`input 'pixel_values': data has ${data.length} numbers, the shape [${shape}] needs ${total}`);
  walk(data, 0, '');
}

/**
 * An infer request for a model taking [N, ...item] FP32 `pixel_values`.
 * `binary` is the bytes after the JSON header when the binary extension is used.
 */
export function parseInferRequest(body: unknown, item: readonly number[], maxImages: number, binary: Uint8Array | null): InferRequest {
  if (!isObj(body)) throw bad('request body must be a JSON object {"inputs": [...]}');
  const id = body.id;
  if (id !== undefined && typeof id !== 'string') throw bad(`'id' must be a string, got ${describe(id)}`);
  const inputs = body.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad("'inputs' must be a non-empty array of tensors");
  if (inputs.length !== 1) throw bad(`the model takes one input, 'pixel_values'; got ${inputs.length} inputs`);
  const t = inputs[0];
  if (!isObj(t)) throw bad("'inputs[0]' must be an object {name, shape, datatype, data}");
  if (t.name !== 'pixel_values') throw bad(`unknown input ${describe(t.name)}; the model's input is 'pixel_values'`);
  if (t.datatype !== 'FP32') throw bad(`input 'pixel_values' has datatype ${describe(t.datatype)}, expected "FP32"`);
  const shape = t.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`input 'pixel_values': 'shape' must be an array of non-negative integers, got ${describe(shape)}`);
  const want = [-1, ...item];
  if (shape.length !== want.length || shape.slice(1).some((d, i) => d !== item[i]) || shape[0] < 1)
    throw bad(`input 'pixel_values' has shape [${shape}], expected [N, ${item}] with N >= 1`);
  const n = shape[0] as number;
  if (n > maxImages) throw new HttpError(413, `input 'pixel_values' holds ${n} images; this server takes at most ${maxImages} per request`);
  const x = new Float32Array(n * item.reduce((a, b) => a * b, 1));
  const params = isObj(t.parameters) ? t.parameters : {};
  if (params.binary_data_size !== undefined) {
    if (!binary) throw bad("input 'pixel_values' declares binary_data_size but the request has no binary part (Inference-Header-Content-Length)");
    if (params.binary_data_size !== x.byteLength || binary.length !== x.byteLength)
      throw bad(`input 'pixel_values': binary data is ${binary.length} bytes (binary_data_size ${describe(params.binary_data_size)}), shape [${shape}] FP32 needs ${x.byteLength}`);
    new Uint8Array(x.buffer).set(binary);   // little-endian, as the extension and every host we run on
  } else {
    if (binary && binary.length) throw bad('the request has a binary part but no input declares binary_data_size');
    if (!Array.isArray(t.data)) throw bad("input 'pixel_values': 'data' must be an array of numbers (flat or nested as the shape)");
    flatten(t.data, shape as number[], x);
  }
  // NaN from the binary part; Infinity from JSON's 1e999, or a number past FP32's range (1e39)
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) throw bad(`input 'pixel_values': value ${i} is ${x[i]} as FP32, expected a finite FP32 number`);
  let binaryOutput = isObj(body.parameters) && body.parameters.binary_data_output === true;
  const outputs = body.outputs;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw bad("'outputs' must be an array of {name}");
    for (const o of outputs) {
      if (!isObj(o) || o.name !== 'logits') throw bad(`unknown output ${describe(isObj(o) ? o.name : o)}; the model's output is 'logits'`);
      if (isObj(o.parameters) && typeof o.parameters.binary_data === 'boolean') binaryOutput = o.parameters.binary_data;
    }
  }
  return { id, x, n, binaryOutput };
}

/** Split a binary-extension body into its JSON header and the tensor bytes. */
export function splitBinaryBody(body: Buffer, headerLength: string): { json: string; rest: Uint8Array } {
  const h = Number(headerLength);
  if (!Number.isInteger(h) || h < 0 || h > body.length) throw bad(`Inference-Header-Content-Length is ${JSON.stringify(headerLength)}, the body has ${body.length} bytes`);
  return { json: body.subarray(0, h).toString('utf8'), rest: body.subarray(h) };
}

/** Metadata of one model (GET /v2/models/{name}). */
export function modelMetadata(name: string, item: readonly number[], out: readonly number[]): Json {
  return {
    name,
    versions: ['1'],
    platform: 'caitjs',
    inputs: [{ name: 'pixel_values', datatype: 'FP32', shape: [-1, ...item] }],
    outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, ...out] }],
  };
}
