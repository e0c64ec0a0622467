// The int8 model file: safetensors, as a float model file (timm names, the
// config in __metadata__.config) except that each quantized Linear's weight
// is I8 (its own shape, e.g. [E, C, P, P] for the patch embedding) beside an
// F32 `<layer>.weight_scale` [out], and
//   __metadata__.quant = {"scheme":"int8-dynamic","weights":"...","activations":"...","layers":[names]}
// Loading: src/nn/checkpoint.ts calls the decoder registered here for the
// scheme (importing this module registers it); it hands the model the
// dequantized float weights, so any loader and any backend can run the file.
// quantizeLoaded(model, metadata) then gives the model its int8 forwards
// with the file's exact int8 values (remembered per load by the metadata
// object the loader returns). loadQuantized does both for a path or bytes.
import { registerQuantScheme } from '../nn/checkpoint.js';
import { modelFromBytes } from '../nn/load-bytes.js';
import type { LoadOptions } from '../nn/checkpoint.js';
import { SafetensorsError, type SafeTensor } from '../io/safetensors.js';
import type { VisionTransformer } from '../nn/vit.js';
import { INT8_SCHEME, dequantizeWeight, hasInt8Kernels, maxResidualScale, quantizeModel, type Int8Weight, type QuantizedModel, type QuantizeOptions } from './int8.js';
import type { Backend } from '../backend/backend.js';
import { showValue } from '../util/suggest.js';
import { ConfigError } from '../nn/validate.js';

export const SCALE_SUFFIX = '.weight_scale';
/** The prefix rows' second weight part (weightResidual): `<layer>.weight_residual` I8 with `<layer>.weight_residual_scale` F32. */
export const RESIDUAL_SUFFIX = '.weight_residual', RESIDUAL_SCALE_SUFFIX = '.weight_residual_scale';

export interface QuantMetadata { scheme: string; weights: string; activations: string; layers: string[]; prefix_weights?: string[] }

export function quantMetadata(weights: ReadonlyMap<string, Int8Weight>): QuantMetadata {
  const second = [...weights].filter(([, w]) => w.residual).map(([n]) => n);
  return {
    scheme: INT8_SCHEME,
    weights: 'per output channel, symmetric int8 in [-127, 127]: W ~ weight_scale[out] * weight (I8); for the prefix rows of the layers in prefix_weights, W ~ weight_scale[out] * weight + weight_residual_scale[out] * weight_residual (I8)',
    activations: 'per token at run time, asymmetric 7-bit (6-bit into qkv, fc1, fc2 and attention proj, and attention\'s q and P, unless the runtime is told otherwise: SIX_BIT_LAYERS); the prefix tokens\' rows and the heads\' inputs in two 7-bit parts (src/quant/int8.ts, assembly/qgemm.ts)',
    layers: [...weights.keys()],
    ...(second.length > 0 ? { prefix_weights: second } : {}),
  };
}

/** The largest scale whose 127 steps stay a finite f32. */
const MAX_SCALE = 3.4028234663852886e38 / 127;

type Entry = { dtype: 'F32'; shape: readonly number[]; data: Float32Array } | { dtype: 'I8'; shape: readonly number[]; data: Int8Array };

/** Safetensors bytes with F32 and I8 tensors (F32 first, then by name: the 4-byte data stays aligned). */
export function writeMixedSafetensors(tensors: Map<string, Entry>, metadata: Record<string, string>): Uint8Array {
  const list = [...tensors.entries()].sort(([a, x], [b, y]) => (x.dtype !== y.dtype ? (x.dtype === 'F32' ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of list) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor '${name}': shape [${t.shape}] has ${n} elements, data ${t.data.length}`);
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const h = new TextEncoder().encode(JSON.stringify(header)), padded = Math.ceil(h.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setUint32(0, padded, true);
  out.set(h, 8);
  out.fill(0x20, 8 + h.length, 8 + padded);
  let pos = 8 + padded;
  for (const [, t] of list) { out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos); pos += t.data.byteLength; }
  return out;
}

/**
 * The bytes of an int8 model file for `vit` quantized by `qm`; `extra`
 * metadata (e.g. ATME's switches) rides along. Float parameters must be finite.
 */
export function quantizedFileBytes(vit: VisionTransformer, qm: QuantizedModel, extra: Record<string, string> = {}): Uint8Array {
  const tensors = new Map<string, Entry>();
  for (const [n, p] of vit.namedParameters()) {
    const layer = n.endsWith('.weight') ? n.slice(0, -'.weight'.length) : null;
    const w = layer !== null ? qm.weights.get(layer) : undefined;
    if (w) {
      // a non-finite weight makes its row's scale NaN or Infinity: a file no loader takes (decodeInt8)
      for (let j = 0; j < w.scale.length; j++) if (!(w.scale[j] <= MAX_SCALE)) throw new Error(`parameter '${n}': the int8 scale of output channel ${j} is ${w.scale[j]} (its row holds a non-finite value): not saved`);
      tensors.set(n, { dtype: 'I8', shape: p.shape, data: w.q });
      tensors.set(layer + SCALE_SUFFIX, { dtype: 'F32', shape: [w.scale.length], data: w.scale });
      if (w.residual) {
        for (let j = 0; j < w.residual.scale.length; j++) if (!(w.residual.scale[j] >= 0 && w.residual.scale[j] <= maxResidualScale(w.scale[j]))) throw new Error(`parameter '${n}': the second part's scale of output channel ${j} is ${w.residual.scale[j]}, outside [0, ${maxResidualScale(w.scale[j])}] (the int8 scale ${w.scale[j]} / 254: half a step over 127): not saved`);
        tensors.set(layer + RESIDUAL_SUFFIX, { dtype: 'I8', shape: p.shape, data: w.residual.q });
        tensors.set(layer + RESIDUAL_SCALE_SUFFIX, { dtype: 'F32', shape: [w.residual.scale.length], data: w.residual.scale });
      }
      continue;
    }
    const data = p.toArray();
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new Error(`parameter '${n}' has a non-finite value at ${i}: not saved`);
    tensors.set(n, { dtype: 'F32', shape: p.shape, data });
  }
  return writeMixedSafetensors(tensors, { format: 'pt', config: JSON.stringify(vit.cfg), ...extra, quant: JSON.stringify(quantMetadata(qm.weights)) });
}

/** Exact int8 weights of the files decoded so far (and the file, for errors), by the metadata object their load returned. */
const decoded = new WeakMap<Record<string, string>, { file: string; ints: Map<string, Int8Weight> }>();

/** __metadata__.quant.layers or .prefix_weights (already valid JSON: the loader parsed it), or null where a file has none. */
function listedLayers(metadata: Record<string, string>, file: string, key: 'layers' | 'prefix_weights' = 'layers'): string[] | null {
  const layers = (JSON.parse(metadata.quant) as Record<string, unknown>)[key];
  if (layers === undefined) return null;
  if (!Array.isArray(layers) || !layers.every((l) => typeof l === 'string')) throw new ConfigError(file, `__metadata__.quant.${key}`, `an array of the ${key === 'layers' ? 'int8' : 'two-part'} layers' names`, showValue(layers));
  // a name twice is no file a writer makes (quantMetadata lists each layer once): the list and the tensors would not agree one to one
  const twice = layers.find((l, i) => layers.indexOf(l) !== i);
  if (twice !== undefined) throw new ConfigError(file, `__metadata__.quant.${key}`, 'each layer named once', `'${twice}' twice`);
  return layers as string[];
}

/**
 * A layer's second weight part (weightResidual) if the file has one: I8 of
 * the weight's shape with F32 scales, each within [0, the int8 scale / 254]
 * (maxResidualScale: the part holds what the first left, at most half a step
 * over 127 levels; a scale up to the int8 scale itself loaded before and
 * moved the class token's logits by a third, silently).
 */
function secondPart(tensors: Map<string, SafeTensor>, layer: string, scale: Float32Array, file: string): { residual?: { q: Int8Array; scale: Float32Array } } {
  const rn = layer + RESIDUAL_SUFFIX, sn = layer + RESIDUAL_SCALE_SUFFIX, r = tensors.get(rn), s = tensors.get(sn), w = tensors.get(`${layer}.weight`)!;
  if (!r && !s) return {};
  if (!r || !s) throw new SafetensorsError(file, `'${r ? rn : sn}' is there but '${r ? sn : rn}' is missing: a second weight part is both`);
  if (r.dtype !== 'I8' || r.shape.length !== w.shape.length || r.shape.some((d, i) => d !== w.shape[i]))
    throw new SafetensorsError(file, `'${rn}': expected I8 [${w.shape}] (the shape of '${layer}.weight'), got ${r.dtype} [${r.shape}]`);
  if (s.dtype !== 'F32' || s.shape.length !== 1 || s.shape[0] !== scale.length)
    throw new SafetensorsError(file, `'${sn}': expected F32 [${scale.length}] (one scale per output channel), got ${s.dtype} [${s.shape}]`);
  const rq = Int8Array.from(r.data), rs = Float32Array.from(s.data), row = rq.length / rs.length;
  for (let j = 0; j < rs.length; j++) {
    if (!(rs[j] >= 0 && rs[j] <= maxResidualScale(scale[j]))) throw new SafetensorsError(file, `'${sn}'[${j}] is ${rs[j]}: expected a finite scale in [0, ${maxResidualScale(scale[j])}] ('${layer}${SCALE_SUFFIX}'[${j}] ${scale[j]} / 254: the second part holds what the first left, at most half a step)`);
    if (rs[j] === 0 && rq.subarray(j * row, (j + 1) * row).some((v) => v !== 0))
      throw new SafetensorsError(file, `'${sn}'[${j}] is 0 but row ${j} of '${rn}' holds nonzero values: expected a scale > 0 (0 is for a row of zeros)`);
  }
  return { residual: { q: rq, scale: rs } };
}

function decodeInt8(tensors: Map<string, SafeTensor>, metadata: Record<string, string>, file: string): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>(), ints = new Map<string, Int8Weight>();
  for (const [name, t] of tensors) {
    if (name.endsWith(SCALE_SUFFIX) || name.endsWith(RESIDUAL_SUFFIX) || name.endsWith(RESIDUAL_SCALE_SUFFIX)) continue;
    const layer = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : null;
    const s = layer !== null ? tensors.get(layer + SCALE_SUFFIX) : undefined;
    if (t.dtype === 'I8') {
      // only a Linear's weight is int8: [out, in], the patch embedding's [out, C, P, P]
      if (layer === null || t.shape.length < 2)
        throw new SafetensorsError(file, `tensor '${name}' is I8 [${t.shape}]: only a Linear's '<layer>.weight' ([out, in], or the patch embedding's [out, C, P, P]) is int8, expected F32`);
      if (!s) throw new SafetensorsError(file, `tensor '${name}' is I8 but '${layer ?? name}${SCALE_SUFFIX}' (its F32 scales) is missing`);
      if (s.dtype !== 'F32' || s.shape.length !== 1 || s.shape[0] !== t.shape[0])
        throw new SafetensorsError(file, `'${layer}${SCALE_SUFFIX}': expected F32 [${t.shape[0]}] (one scale per output channel of [${t.shape}]), got ${s.dtype} [${s.shape}]`);
      for (let i = 0; i < s.data.length; i++) if (!(s.data[i] >= 0 && s.data[i] <= MAX_SCALE))
        throw new SafetensorsError(file, `'${layer}${SCALE_SUFFIX}'[${i}] is ${s.data[i]}: scales must be finite, >= 0 and at most ${MAX_SCALE} (so that 127 x scale is a finite f32)`);
      const q = Int8Array.from(t.data), scale = Float32Array.from(s.data), row = q.length / scale.length;
      // a zero scale is a zero row's (quantizeWeight); with nonzero weights it would silently zero an output channel
      for (let j = 0; j < scale.length; j++) if (scale[j] === 0 && q.subarray(j * row, (j + 1) * row).some((v) => v !== 0))
        throw new SafetensorsError(file, `'${layer}${SCALE_SUFFIX}'[${j}] is 0 but row ${j} of '${name}' holds nonzero weights: expected a scale > 0 (0 is for a row of zeros)`);
      ints.set(layer!, { q, scale, ...secondPart(tensors, layer!, scale, file) });
      out.set(name, { dtype: 'F32', shape: t.shape, data: dequantizeWeight(q, scale) });
    } else {
      if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw new SafetensorsError(file, `tensor '${name}' has dtype ${t.dtype}: an int8 file holds I8 weights and float everything else`);
      out.set(name, t);
    }
  }
  for (const name of tensors.keys()) if (name.endsWith(SCALE_SUFFIX) && !ints.has(name.slice(0, -SCALE_SUFFIX.length)))
    throw new SafetensorsError(file, `'${name}' scales no I8 weight`);
  for (const suffix of [RESIDUAL_SUFFIX, RESIDUAL_SCALE_SUFFIX]) for (const name of tensors.keys()) if (name.endsWith(suffix) && !ints.has(name.slice(0, -suffix.length)))
    throw new SafetensorsError(file, `'${name}' is the second weight part of '${name.slice(0, -suffix.length)}.weight', which is no I8 weight`);
  // the layers the metadata says are int8 are exactly those with I8 weights: none runs float unsaid
  const listed = listedLayers(metadata, file);
  if (listed) {
    for (const l of listed) if (!ints.has(l)) {
      const w = tensors.get(`${l}.weight`);
      throw new SafetensorsError(file, `__metadata__.quant.layers lists '${l}': expected '${l}.weight' I8 with '${l}${SCALE_SUFFIX}', got ${w ? `${w.dtype} [${w.shape}]` : 'no such tensor'}`);
    }
    const set = new Set(listed);
    for (const l of ints.keys()) if (!set.has(l)) throw new SafetensorsError(file, `tensor '${l}.weight' is I8, but __metadata__.quant.layers does not list '${l}'`);
  }
  // the layers with a second weight part are exactly those __metadata__.quant.prefix_weights lists
  const second = listedLayers(metadata, file, 'prefix_weights') ?? [], seconds = new Set(second);
  for (const l of second) if (!ints.get(l)?.residual) throw new SafetensorsError(file, `__metadata__.quant.prefix_weights lists '${l}': expected '${l}${RESIDUAL_SUFFIX}' I8 with '${l}${RESIDUAL_SCALE_SUFFIX}', got none`);
  for (const [l, w] of ints) if (w.residual && !seconds.has(l)) throw new SafetensorsError(file, `'${l}${RESIDUAL_SUFFIX}' is there, but __metadata__.quant.prefix_weights does not list '${l}'`);
  decoded.set(metadata, { file, ints });
  return out;
}
registerQuantScheme(INT8_SCHEME, decodeInt8);

/** The int8Attention and int8SixBit options (load(), createServer()): undefined (default: true) or a boolean; `who` names the caller in the error. */
export function checkInt8Options(o: { int8Attention?: unknown; int8SixBit?: unknown }, who: string): void {
  for (const k of ['int8Attention', 'int8SixBit'] as const) {
    const v = o[k];
    if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${who}${k} must be true or false, got ${showValue(v)}`);
  }
}

/** The scheme a file's metadata declares, or null for a float file. */
export function quantScheme(metadata: Record<string, string>): string | null {
  if (metadata.quant === undefined) return null;
  try { return (JSON.parse(metadata.quant) as { scheme?: string }).scheme ?? null; } catch { return null; }
}

/**
 * Give a model loaded from an int8 file (any loader: loadModel, modelFromBytes,
 * the library's load) its int8 forwards, with the file's int8 values when this
 * process decoded it, else re-quantized from the dequantized weights (the same
 * int8 values, scales within an ulp, but without the file's second weight
 * parts). Returns null for a float file.
 */
export function quantizeLoaded(model: VisionTransformer, metadata: Record<string, string>, o: Pick<QuantizeOptions, 'attention' | 'sixBit'> = {}): QuantizedModel | null {
  const scheme = quantScheme(metadata);
  if (scheme === null) return null;
  if (scheme !== INT8_SCHEME) throw new Error(`quantized with scheme '${scheme}', expected '${INT8_SCHEME}'`);
  const file = decoded.get(metadata)?.file, given = decoded.get(metadata)?.ints;
  let layers: string[] = [];
  try { layers = (JSON.parse(metadata.quant) as QuantMetadata).layers ?? []; } catch { /* checked by the loader */ }
  const keep = new Set(given ? given.keys() : layers);
  try {
    // (re-quantized from the dequantized weights, a second part would be zeros: the file's is lost then)
    return quantizeModel(model, { given, skip: (n) => !keep.has(n), attention: o.attention, sixBit: o.sixBit, prefixWeights: given !== undefined });
  } catch (e) {
    // the file's int8 weights do not fit the model: name the file
    throw file !== undefined ? new SafetensorsError(file, (e as Error).message, { cause: e }) : e;
  }
}

/** What a float model can be quantized to as it loads (LoadOptions.quantize, the inference commands' --quantize). */
export const LOAD_QUANTIZE = ['int8'] as const;
export type LoadQuantize = (typeof LOAD_QUANTIZE)[number];

export function checkQuantize(v: unknown, who: string): void {
  if (v !== undefined && !(LOAD_QUANTIZE as readonly unknown[]).includes(v)) throw new TypeError(`${who}quantize must be ${LOAD_QUANTIZE.map((q) => `'${q}'`).join(' or ')}, got ${showValue(v)}`);
}

/**
 * Why a float model cannot be quantized as it loads on `be`, or null: that
 * takes int8 kernels (quantizeModel also reads the weights back, which the
 * host cannot do on WebGPU); an int8 file runs there as float instead.
 */
export function quantizeRefusal(quantize: LoadQuantize | undefined, be: Backend): string | null {
  return quantize && !hasInt8Kernels(be)
    ? `quantize '${quantize}' needs int8 kernels (the WASM or reference backend), not ${be.name}: write the int8 file with cait quantize and load that (${be.name} runs its dequantized weights in float)`
    : null;
}

/**
 * A loaded model's int8 forwards for inference: an int8 file's own
 * (quantizeLoaded), or, with quantize 'int8', a float model quantized now
 * with quantizeModel's defaults, which is what `cait quantize` writes (so the
 * same values as loading that file; refused where quantizeRefusal says).
 * Null: the model stays float.
 */
export function quantizeForInference(model: VisionTransformer, metadata: Record<string, string>, o: { attention?: boolean; sixBit?: boolean; quantize?: LoadQuantize } = {}): QuantizedModel | null {
  if (quantScheme(metadata) !== null) return quantizeLoaded(model, metadata, o);
  const why = quantizeRefusal(o.quantize, model.parameters()[0].backend);
  if (why) throw new Error(why);
  return o.quantize === 'int8' ? quantizeModel(model, { attention: o.attention, sixBit: o.sixBit }) : null;
}

/** An int8 model file (bytes) as a model running int8 (float files load as float: quant is then null). */
export function loadQuantizedBytes(bytes: Uint8Array, opts: LoadOptions = {}, file = '<buffer>'): { model: VisionTransformer; metadata: Record<string, string>; quant: QuantizedModel | null } {
  const { model, metadata } = modelFromBytes(bytes, opts, file);
  return { model, metadata, quant: quantizeLoaded(model, metadata) };
}
