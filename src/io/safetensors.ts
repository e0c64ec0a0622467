// safetensors reader/writer over plain Float32Array + shape (no tensor-engine
// dependency, so the model loader, the CLI and tests can all use it).
//
// Format (https://huggingface.co/docs/safetensors/index, "Format" section, and
// the reference implementation safetensors/src/tensor.rs):
//   u64 little-endian N | N bytes of UTF-8 JSON header | byte buffer
//   header = { "__metadata__"?: {string: string},
//              name: { "dtype": "F32"|..., "shape": [..], "data_offsets": [begin, end] } }
//   offsets are relative to the start of the byte buffer, little-endian data,
//   row-major. The reference validator requires the entries, sorted by offset,
//   to tile the buffer exactly (no gaps, no overlaps, no trailing bytes) and
//   end - begin == numel * sizeof(dtype); we enforce the same rules so a file
//   we accept is one the Python library accepts too.
//
// Bytes in, bytes out, no node: imports: the browser build parses model files
// with it (webpack refuses node: modules in a browser bundle); reading and
// writing files is ./safetensors-file.ts.
import { FileError } from './errors.js';

export class SafetensorsError extends FileError { override name = 'SafetensorsError'; }

/** checkKeys' error: the lists are kept for callers that want to act on them. */
export class CheckpointMismatchError extends SafetensorsError {
  constructor(file: string, message: string,
    readonly missing: string[], readonly unexpected: string[],
    readonly mismatched: Array<{ name: string; shape: number[]; expected: number[] }>) {
    super(file, message);
    this.name = 'CheckpointMismatchError';
  }
}

export interface SafeTensor { dtype: string; shape: number[]; data: Float32Array }
export interface SafetensorsContents { tensors: Map<string, SafeTensor>; metadata: Record<string, string> }
export interface HeaderEntry { name: string; dtype: string; shape: number[]; begin: number; end: number }
export interface SafetensorsHeader {
  entries: HeaderEntry[];        // in header order
  metadata: Record<string, string>;
  dataStart: number;             // absolute offset of the byte buffer in the file
  dataLength: number;
}
export type TensorInput = { shape: readonly number[]; data: Float32Array };
export type TensorMap = Record<string, TensorInput> | Map<string, TensorInput>;

// Element sizes from the Dtype enum in safetensors/src/tensor.rs. Sub-byte
// types (F4, F6_*) are absent on purpose: we cannot decode them.
const DTYPE_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/** Header limit from the reference implementation (MAX_HEADER_SIZE = 100 MB). */
export const MAX_HEADER_SIZE = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/** The header length of the 8-byte prefix, checked against the limit and the file size. */
export function headerLength(prefix: Uint8Array, fileSize: number, fail: (msg: string) => never): number {
  if (prefix.length < 8) fail(`file is ${prefix.length} bytes, shorter than the 8-byte header length prefix (not a safetensors file, or truncated)`);
  const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (hi !== 0 || n > MAX_HEADER_SIZE) fail(`header length ${n} is absurd (limit ${MAX_HEADER_SIZE} bytes); not a safetensors file?`);
  if (8 + n > fileSize) fail(`header length ${n} exceeds the file size (${fileSize} bytes; file truncated?)`);
  return n;
}

/** Parse and validate the header without converting any data. */
export function readSafetensorsHeader(bytes: Uint8Array, file = '<buffer>'): SafetensorsHeader {
  const fail = (msg: string): never => { throw new SafetensorsError(file, msg); };
  const n = headerLength(bytes.subarray(0, 8), bytes.length, fail);

  let text: string;
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)); }
  catch { return fail(`header (${n} bytes) is not valid UTF-8`); }
  let header: unknown;
  try { header = JSON.parse(text); }
  catch (e) { return fail(`header is not valid JSON: ${(e as Error).message}`); }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail(`header is not a JSON object`);
  // JSON.parse keeps the last of duplicate keys; the reference (serde) rejects them
  const dup = findDuplicateKey(text);
  if (dup !== null) fail(`header has the key '${dup}' twice`);

  const dataStart = 8 + n, dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`__metadata__ is not an object`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__['${k}'] is ${JSON.stringify(v)}, not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = `tensor '${name}'`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${t}: entry is not an object`);
    const { dtype, shape, data_offsets: off } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') fail(`${t}: missing or non-string dtype`);
    const size = DTYPE_SIZE[dtype as string];
    if (size === undefined) fail(`${t}: unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${t}: bad shape ${JSON.stringify(shape)} (need an array of non-negative integers)`);
    }
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${t}: bad data_offsets ${JSON.stringify(off)} (need [begin, end], non-negative integers)`);
    }
    const dims = shape as number[];
    const [begin, end] = off as number[];
    let numel = 1;
    for (const d of dims) {
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) fail(`${t}: shape ${fmtShape(dims)} has too many elements`);
    }
    if (begin > end) fail(`${t}: data_offsets [${begin},${end}] have begin > end`);
    if (end - begin !== numel * size) {
      fail(`${t}: data_offsets [${begin},${end}] span ${end - begin} bytes but shape ${fmtShape(dims)} of ${dtype} needs ${numel} x ${size} = ${numel * size} bytes`);
    }
    if (end > dataLength) {
      fail(`${t}: data_offsets [${begin},${end}] extend past the end of the data buffer (${dataLength} bytes; file truncated?)`);
    }
    entries.push({ name, dtype: dtype as string, shape: dims.slice(), begin, end });
  }

  // Entries sorted by offset must tile [0, dataLength) exactly (reference: validate()).
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0, prev: HeaderEntry | null = null;
  for (const e of sorted) {
    if (e.begin < pos) {
      fail(`tensor '${e.name}' data_offsets [${e.begin},${e.end}] overlap tensor '${prev!.name}' [${prev!.begin},${prev!.end}]`);
    }
    if (e.begin > pos) {
      fail(`gap in the data buffer: bytes [${pos},${e.begin}) before tensor '${e.name}' belong to no tensor`);
    }
    pos = e.end;
    if (e.end > e.begin) prev = e;
  }
  if (pos !== dataLength) fail(`data buffer is ${dataLength} bytes but the tensors cover only [0,${pos}) (${dataLength - pos} trailing bytes)`);
  return { entries, metadata, dataStart, dataLength };
}

/** Read every tensor, converting to Float32Array. Integer and 64-bit types are converted with rounding to f32. */
export function readSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsContents {
  const h = readSafetensorsHeader(bytes, file);
  const tensors = new Map<string, SafeTensor>();
  for (const e of h.entries) {
    const raw = bytes.subarray(h.dataStart + e.begin, h.dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: toFloat32(raw, e.dtype) });
  }
  return { tensors, metadata: h.metadata };
}

/**
 * The first duplicate object key in a JSON text that JSON.parse accepted, as a
 * path ('a.b'), or null. A linear scan over the tokens: strings (with escapes)
 * are skipped whole, a string right after '{' or ',' inside an object is a key.
 */
export function findDuplicateKey(text: string): string | null {
  type Frame = { keys: Set<string> | null; expectKey: boolean; path: string; last: string };
  const stack: Frame[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) { // '"'
      let j = i + 1;
      while (j < n && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && top.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const path = top.path ? `${top.path}.${key}` : key;
        if (top.keys.has(key)) return path;
        top.keys.add(key);
        top.expectKey = false;
        top.last = path;
      }
      i = j + 1;
      continue;
    }
    if (ch === 0x7b || ch === 0x5b) { // '{' '['
      const top = stack[stack.length - 1];
      const path = top ? (top.keys ? top.last : top.path) : '';
      stack.push({ keys: ch === 0x7b ? new Set() : null, expectKey: ch === 0x7b, path, last: '' });
    } else if (ch === 0x7d || ch === 0x5d) stack.pop();
    else if (ch === 0x2c) { const top = stack[stack.length - 1]; if (top?.keys) top.expectKey = true; }
    i++;
  }
  return null;
}

let f16Table: Float32Array | null = null;
/** IEEE 754 binary16 -> number, including subnormals (e = 0), inf and NaN (e = 31). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}
/** float8 e4m3fn (torch.float8_e4m3fn, OCP FP8 spec): bias 7, no infinities, S.1111.111 is NaN. */
function f8e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 0xf, m = b & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * m * 2 ** -9;
  return sign * (8 + m) * 2 ** (e - 10);
}

function toFloat32(raw: Uint8Array, dtype: string): Float32Array {
  const size = DTYPE_SIZE[dtype];
  const n = raw.length / size;
  const out = new Float32Array(n);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F16': {
      if (!f16Table) { f16Table = new Float32Array(65536); for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i); }
      const t = f16Table;
      for (let i = 0; i < n; i++) out[i] = t[raw[2 * i] | (raw[2 * i + 1] << 8)];
      break;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place. The
      // u32 and f32 views share host byte order, so this is endian-neutral.
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = (raw[2 * i] | (raw[2 * i + 1] << 8)) << 16;
      break;
    }
    case 'F64': for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true); break;
    case 'F8_E5M2': for (let i = 0; i < n; i++) out[i] = f16ToF32(raw[i] << 8); break; // e5m2 is the high byte of a binary16
    case 'F8_E4M3': for (let i = 0; i < n; i++) out[i] = f8e4m3ToF32(raw[i]); break;
    case 'BOOL': for (let i = 0; i < n; i++) out[i] = raw[i] ? 1 : 0; break;
    case 'U8': for (let i = 0; i < n; i++) out[i] = raw[i]; break;
    case 'I8': for (let i = 0; i < n; i++) out[i] = dv.getInt8(i); break;
    case 'I16': for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true); break;
    case 'U16': for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true); break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true); break;
    case 'U32': for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true); break;
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true)); break;
    case 'U64': for (let i = 0; i < n; i++) out[i] = Number(dv.getBigUint64(8 * i, true)); break;
    default: throw new Error(`unreachable dtype ${dtype}`);
  }
  return out;
}

function entriesOf(tensors: TensorMap): Array<[string, TensorInput]> {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

/**
 * Serialize tensors as F32. Keys are sorted (the reference sorts by dtype
 * alignment, then name; with a single dtype that is name order) so the output
 * is byte-for-byte deterministic. All validation happens before any byte is
 * produced, so a bad tensor never yields a partial file.
 */
export function writeSafetensors(tensors: TensorMap, metadata?: Record<string, string>, file = '<buffer>'): Uint8Array {
  const fail = (msg: string): never => { throw new SafetensorsError(file, msg); };
  const list = entriesOf(tensors).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(`metadata['${k}'] is ${typeof v}, must be a string`);
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__' || name.length === 0) fail(`invalid tensor name ${JSON.stringify(name)}`);
    if (!t || !(t.data instanceof Float32Array)) fail(`tensor '${name}': data must be a Float32Array`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}': bad shape ${JSON.stringify(t.shape)}`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) fail(`tensor '${name}': shape ${fmtShape(t.shape)} has ${numel} elements but data has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * numel] };
    offset += 4 * numel;
  }
  const hbytes = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces to a multiple of 8 so the buffer starts aligned (reference: serialize()).
  const padded = Math.ceil(hbytes.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, padded, true);
  dv.setUint32(4, 0, true);
  out.set(hbytes, 8);
  out.fill(0x20, 8 + hbytes.length, 8 + padded);
  let pos = 8 + padded;
  for (const [, t] of list) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    else for (let i = 0; i < t.data.length; i++) dv.setFloat32(pos + 4 * i, t.data[i], true);
    pos += t.data.byteLength;
  }
  return out;
}

export interface CheckKeysOptions { allowMissing?: boolean; allowUnexpected?: boolean }

/**
 * Compare a checkpoint's tensors with what a model expects and throw ONE error
 * listing every missing key, unexpected key and shape mismatch. Shape
 * mismatches are always errors; missing/unexpected can be allowed.
 */
export function checkKeys(
  file: string,
  expected: Map<string, readonly number[]> | Record<string, readonly number[]>,
  got: Map<string, { shape: readonly number[] }> | Record<string, { shape: readonly number[] }>,
  opts: CheckKeysOptions = {},
): void {
  const exp = expected instanceof Map ? expected : new Map(Object.entries(expected));
  const have = got instanceof Map ? got : new Map(Object.entries(got));
  const missing: string[] = [], unexpected: string[] = [];
  const mismatched: Array<{ name: string; shape: number[]; expected: number[] }> = [];
  for (const [name, shape] of exp) {
    const g = have.get(name);
    if (!g) missing.push(name);
    else if (g.shape.length !== shape.length || g.shape.some((d, i) => d !== shape[i])) {
      mismatched.push({ name, shape: [...g.shape], expected: [...shape] });
    }
  }
  for (const name of have.keys()) if (!exp.has(name)) unexpected.push(name);
  const lines: string[] = [];
  if (missing.length && !opts.allowMissing) lines.push(`missing ${missing.length} tensor(s): ${missing.map((k) => `'${k}'`).join(', ')}`);
  if (unexpected.length && !opts.allowUnexpected) lines.push(`unexpected ${unexpected.length} tensor(s): ${unexpected.map((k) => `'${k}'`).join(', ')}`);
  for (const m of mismatched) lines.push(`tensor '${m.name}' has shape ${fmtShape(m.shape)}, expected ${fmtShape(m.expected)}`);
  if (lines.length) {
    throw new CheckpointMismatchError(file, `checkpoint does not match the model:\n  ${lines.join('\n  ')}`, missing, unexpected, mismatched);
  }
}
