// int8 inference by wrapping: every Linear of a VisionTransformer (qkv, proj,
// fc1, fc2, the head, the patch embedding's conv-as-linear) gets a forward
// that runs the int8 kernels (assembly/qgemm.ts); the model's classes are not
// changed. Because the ViT's own forward still runs (the blocks call
// this.qkv.forward, this.mlp.forward), whatever wraps the ViT stacks with it:
// ATME's CaitModel (merging between the residual branches), a CDCP-compact
// model (narrower Linears, same classes), both, and src/plan.ts (the kernels'
// pointer arguments are in the kernel table, so a planned forward replays them).
//
// Scheme "int8-dynamic":
//   weights      per output channel, symmetric: s_j = max|W_j| / 127,
//                w = round(W / s_j) in [-127, 127] (round half away from zero);
//   activations  per token at run time (no calibration): quantize_rows'
//                asymmetric 7-bit (see assembly/qgemm.ts why 7 bits), and
//                6-bit into qkv, fc1, fc2 and attention proj (SIX_BIT_LAYERS;
//                quantizeModel's sixBit: false keeps them 7-bit), where
//                qgemm's composed dot then sums pairs of groups in i16
//                (QGEMM_A6): under Node 20, with every row in 7 bits the
//                DeiT-Tiny int8 forwards take 1.127x (dense) and 1.121x (CAIT
//                structure) the time (batch 1, one thread,
//                bench/results/int8-options.json); what it costs in accuracy:
//                SIX_BIT_LAYERS' note; the prefix tokens' rows (class, distillation) in the blocks,
//                and the heads' inputs, in two 7-bit parts (about 14 bits:
//                quantize_prefix_rows): the logits are read from those rows
//                alone, while the other tokens' rounding reaches them only
//                averaged over the tokens by attention. Cost: a second qgemm
//                over 2 rows per prefix token (qgemm's two-row tile at batch
//                1): the forward with every row in 7 bits takes 0.987x the
//                time (dense DeiT-Tiny, batch 1, one thread) and 0.970x (its
//                CAIT structure) (bench/results/int8-options.json);
//                quantizeModel's prefixRows: false turns it off;
//   prefix weights  for the same rows, the weights in two int8 parts too:
//                w' = round((W - s w) / r) with its own channel scales r
//                (weightResidual; W ~ s w + r w', about 15 bits), the file's
//                <layer>.weight_residual; a third qgemm over the prefix rows'
//                first parts. For the same reason: the weights' rounding on
//                the class token's path lands on the logits unaveraged (the
//                int8 weights alone, float activations, move random-weight
//                DeiT-Tiny's logits 2.16% of the largest, mean of seeds 0-5).
//                Random-weight DeiT-Tiny (test/quant.test.ts, batch 2),
//                max |int8 - float| / max |float| over the logits: seeds 0-5
//                0.71 to 1.50% (mean 1.03%) with the prefix weights, 1.82 to
//                3.07% (mean 2.33%) without; every row in 7 bits and one part,
//                one weight part, 3.33 to 5.24% (mean 4.33%)
//                (bench/results/int8-logits.json). Cost: the blocks' and heads'
//                int8 weights twice in the file and in memory, and 0.4%
//                (dense DeiT-Tiny) and 1.3% (its CAIT structure) of the time
//                (int8-options.json), which qkv's 6-bit rows win back (SIX_BIT_LAYERS); quantizeModel's
//                prefixWeights: false (cait quantize --prefix-weights off)
//                turns it off;
//   attention    its two batched GEMMs (q k^T, p v) in int8 too, both
//                operands quantized per head at run time, q and P in 6 bits
//                with the sixBit option, as those Linears (src/quant/attention.ts;
//                quantizeModel's attention: false keeps them float): with
//                float attention the same forwards take 1.149x (dense) and
//                1.101x (CAIT) the time (int8-options.json), and the logits
//                are about as far from float (seeds 0-5 mean 0.98% float,
//                1.03% int8): random-weight attention is near uniform;
//   float        LayerNorm, the softmax's exp, residual adds; GELU is fused in fc1's
//                int8 GEMM (one pass after it).
// The float parameters are overwritten with the dequantized weights s_j * w,
// so the same model runs on a backend without int8 kernels (WebGPU) with the
// int8 model's weights, as float.
// Gradients: with autograd on, a quantized Linear runs its float (dequantized)
// forward; the int8 path is inference only.
import { Tensor, keep, sameBackend } from '../tensor.js';
import { isGradEnabled } from '../autograd.js';
import type { Backend } from '../backend/backend.js';
import { qPackedBytes, qRowsBytes, call, QGEMM_GELU, qgemmRowFlags } from '../backend/kernels.js';
import { Linear, ConvAsLinear, Mlp, Attention } from '../nn/layers.js';
import { attentionInt8 } from './attention.js';
import { Module } from '../nn/module.js';

export const INT8_SCHEME = 'int8-dynamic';

/**
 * The Linears whose input rows go in 6 bits, and attention's q and P rows
 * (attn.q, attn.p; the rest, and the prefix rows' two parts, in 7), chosen
 * on random-weight DeiT-Tiny, seeds 0-5, max |int8 - float| / max |float| of
 * the logits, mean over the seeds (bench/int8-logits.ts, 6bit-only:* and
 * 6bit:*; the prefix weights in two parts throughout): all 7-bit 0.65%; one
 * kind of row alone in 6 bits: fc1 0.64%, fc2 0.70%, attention proj 0.64%,
 * q 0.61%, P 0.69%, qkv 0.98% (1.28% on seed 1); fc1, fc2, proj, q and P
 * together 0.69%, with qkv too 1.03% (0.71 to 1.50%): qkv is in, as it
 * saves 3% of the time (DeiT-Tiny dense and CAIT, Node 20,
 * bench/results/int8-options.json), which pays for the prefix weights. (Before
 * the prefix weights, qkv's rows took seed 0 from 1.86% to 1.97%, a hair
 * under the 2% of the issue, and stayed 7-bit.) The patch embedding stays
 * 7-bit: 1.08% (1.52% on seed 1) with it, for 0.5% of the time. What it
 * costs on the trained Fashion-MNIST models (bench/results/int8-fidelity.json,
 * 2,000 test images): their int8 logits move 1.41% and 1.77% (dense, CAIT;
 * mean of max |int8 - float| / max |float|) against 0.81% and 0.97% with
 * every row in 7 bits, and the top-1 class differs from float's on 18 and 14
 * images against 8 and 4; test accuracy moves by 0.05 points or less
 * (README). Where the engine has the fused dot (Node 24, Chromium on
 * AVX-VNNI) it buys nothing: the bits are the same on every engine, so a
 * file gives one answer everywhere.
 */
export const SIX_BIT_LAYERS = /(^|\.)(mlp\.fc1|mlp\.fc2|attn\.qkv|attn\.proj|attn\.q|attn\.p)$/;
// (attn.q and attn.p name attention's q rows and P rows, which are no Linears: quantizeModel's sixBitLayers sees them so)

/** v in steps of s: round(|v| / s) with v's sign (half away from zero), within [-127, 127]. */
export const roundInt8 = (v: number, s: number): number => Math.max(-127, Math.min(127, Math.round(Math.abs(v) / s) * Math.sign(v)));

/** Per-channel symmetric int8 of W [out, in]: w = round(W / s), s = max|W_row| / 127 (0 for a zero row). */
export function quantizeWeight(W: Float32Array, out: number): { q: Int8Array; scale: Float32Array } {
  const inp = W.length / out, q = new Int8Array(W.length), scale = new Float32Array(out);
  for (let j = 0; j < out; j++) {
    let m = 0;
    for (let k = 0; k < inp; k++) m = Math.max(m, Math.abs(W[j * inp + k]));
    const s = Math.fround(m / 127);
    scale[j] = s;
    if (s === 0) continue;
    for (let k = 0; k < inp; k++) q[j * inp + k] = roundInt8(W[j * inp + k], s);
  }
  return { q, scale };
}

/**
 * What per-channel int8 leaves of W, W - s_j w[j, k] (at most s_j / 2 per
 * weight), quantized the same way (quantizeWeight): the prefix rows' second
 * weight part, s_j w + r_j w' ~ W to about 15 bits.
 */
export function weightResidual(W: Float32Array, { q, scale }: Int8Weight): { q: Int8Array; scale: Float32Array } {
  const out = scale.length, inp = q.length / out, e = new Float32Array(W.length);
  for (let j = 0; j < out; j++) for (let k = 0; k < inp; k++) e[j * inp + k] = W[j * inp + k] - q[j * inp + k] * scale[j];
  return quantizeWeight(e, out);
}

/**
 * The largest second-part scale r_j that weightResidual gives for an int8
 * scale s_j: what the first part leaves is at most half a step, |W - s_j w|
 * <= s_j / 2, so r_j = max |W - s_j w| / 127 <= s_j / 254 (f32 rounding adds
 * an ulp or so; subnormal scales less than one smallest subnormal: the two
 * terms of slack). A larger r_j (a file's) would move the prefix rows'
 * weights by up to 127 r_j, far past what the first part left.
 */
export const maxResidualScale = (s: number): number => (s === 0 ? 0 : (s / 254) * (1 + 2 ** -20) + 2 ** -148);

/** s_j * w[j, k] in f32. */
export function dequantizeWeight(q: Int8Array, scale: Float32Array): Float32Array {
  const out = scale.length, inp = q.length / out, w = new Float32Array(q.length);
  for (let j = 0; j < out; j++) for (let k = 0; k < inp; k++) w[j * inp + k] = q[j * inp + k] * scale[j];
  return w;
}

/** True where the int8 kernels can run (the CPU backends; WebGPU runs the dequantized weights). */
export function hasInt8Kernels(be: Backend): boolean {
  return be.name === 'reference' || be.name.startsWith('wasm');
}

/**
 * Which rows of an input of this shape are quantized in two parts, as
 * [B, T, P]: the first P rows of each of B sequences of T rows; null: none.
 */
export type PrefixRows = (shape: readonly number[]) => [number, number, number] | null;
/** The first `tokens` rows of each sequence of a [B, T, K] input (a block's Linears). */
export const prefixTokens = (tokens: number): PrefixRows => (shape) => (tokens > 0 && shape.length === 3 && shape[1] >= tokens ? [shape[0], shape[1], tokens] : null);
/** Every row of a [B, K] input (a head on the pooled prefix token). */
export const pooledRows: PrefixRows = (shape) => (shape.length === 2 ? [shape[0], 1, 1] : null);

/** int8 weights w [N, K] as qgemm's packed panels + column sums (pack_qb), on `be`. */
function packWeights(be: Backend, q: Int8Array, N: number, K: number): Tensor {
  const raw = new Int32Array(Math.ceil((N * K) / 4));
  new Int8Array(raw.buffer).set(q);
  const tmp = be.alloc(raw.length);
  try {
    be.write(tmp, raw);
    const packed = keep(new Tensor([qPackedBytes(K, N) / 4], be));
    call(be, 'pack_qb', { K, N, w: tmp, ldw: K, dst: packed.ptr });
    return packed;
  } finally { be.free(tmp); }
}

/** A Linear's int8 weights on its backend: packed panels + column sums, and the channel scales. */
export class QLinear {
  readonly packed: Tensor;
  readonly scale: Tensor;
  /** The second weight part's packed panels and channel scales (prefix weights), or null. */
  readonly residual: Tensor | null = null;
  readonly residualScale: Tensor | null = null;
  constructor(readonly q: Int8Array, scaleData: Float32Array, readonly N: number, readonly K: number, readonly bias: Tensor | null, readonly backend: Backend,
    /** Rows in two 7-bit parts (see the header); default none. */
    readonly prefix: PrefixRows = () => null,
    /** The other rows' quantization levels: 127 (7 bits) or 63 (6 bits: qgemm's paired loop; see the header). */
    readonly levels: 127 | 63 = 127,
    /** The prefix rows' second weight part (weightResidual; see the header); default none. */
    residual?: { q: Int8Array; scale: Float32Array }) {
    this.packed = packWeights(backend, q, N, K);
    this.scale = keep(Tensor.from(scaleData, [N], backend));
    if (residual) {
      this.residual = packWeights(backend, residual.q, N, K);
      this.residualScale = keep(Tensor.from(residual.scale, [N], backend));
    }
  }

  /** y = x W^T + b through the int8 kernels; gelu: GELU fused in the store. */
  forward(x: Tensor, gelu = false): Tensor {
    const { N, K } = this, be = x.backend;
    if (x.shape[x.shape.length - 1] !== K) throw new Error(`int8 linear: input [${x.shape}] does not end in ${K}`);
    sameBackend('int8 linear', x, this.packed);
    const R = x.size / K, fine = this.prefix(x.shape);
    const y = new Tensor([...x.shape.slice(0, -1), N], be);
    const bias = this.bias ? this.bias.ptr : 0, flags = gelu ? QGEMM_GELU : 0, levels = this.levels;
    if (!fine || fine[0] * fine[2] < R) {   // (the prefix rows are overwritten below)
      // one sequence (batch 1, the latency case): its prefix rows lead, so the GEMM starts after them
      // (197 rows of DeiT-Tiny become 196: 49 full 4-row tiles and no 2-row tail); with more, every row
      const skip = fine && fine[0] === 1 ? fine[2] : 0, M = R - skip;
      const qa = new Tensor([Math.max(1, qRowsBytes(M, K) / 4)], be), rowp = new Tensor([Math.max(1, 2 * M)], be);
      call(be, 'quantize_rows', { x: x.ptr + skip * K * 4, ldx: K, M, K, qa: qa.ptr, rowp: rowp.ptr, levels });
      call(be, 'qgemm', { M, N, K, qa: qa.ptr, rowp: rowp.ptr, wp: this.packed.ptr, wscale: this.scale.ptr, bias, c: y.ptr + skip * N * 4, ldc: N, flags: flags | qgemmRowFlags(levels) });
      qa.dispose(); rowp.dispose();
    }
    if (fine) {
      const [B, T, P] = fine, E = B * P, M = 2 * E, two = this.residual !== null && this.residualScale !== null;
      // z: the M rows' products, then (prefix weights) the first E rows' products with the second weight part
      const tmp = new Tensor([M * K], be), qa = new Tensor([qRowsBytes(M, K) / 4], be), rowp = new Tensor([2 * M], be), z = new Tensor([(two ? M + E : M) * N], be);
      call(be, 'quantize_prefix_rows', { x: x.ptr, ldx: K, B, T, P, K, tmp: tmp.ptr, qa: qa.ptr, rowp: rowp.ptr });
      call(be, 'qgemm', { M, N, K, qa: qa.ptr, rowp: rowp.ptr, wp: this.packed.ptr, wscale: this.scale.ptr, bias: 0, c: z.ptr, ldc: N, flags: 0 });
      if (two) {
        const z2 = z.ptr + M * N * 4;
        call(be, 'qgemm', { M: E, N, K, qa: qa.ptr, rowp: rowp.ptr, wp: this.residual!.ptr, wscale: this.residualScale!.ptr, bias: 0, c: z2, ldc: N, flags: 0 });
        call(be, 'add', { a: z.ptr, b: z2, y: z.ptr, n: E * N, m: E * N });
      }
      call(be, 'add_prefix_rows', { z: z.ptr, N, B, T, P, bias, y: y.ptr, ldy: N, flags });
      tmp.dispose(); qa.dispose(); rowp.dispose(); z.dispose();
    }
    return y;
  }

  dispose(): void { this.packed.dispose(); this.scale.dispose(); this.residual?.dispose(); this.residualScale?.dispose(); }
}

type AnyLinear = Linear | ConvAsLinear;
/** The modules quantizeModel quantizes: Linear and the patch embedding's ConvAsLinear. */
export const isLinear = (m: Module): m is AnyLinear => m instanceof Linear || m instanceof ConvAsLinear;

/** Every module under `root` with its dotted name (timm's), depth first. */
export function namedModules(root: Module, prefix = ''): Array<[string, Module]> {
  const out: Array<[string, Module]> = [[prefix.replace(/\.$/, ''), root]];
  const children = (root as unknown as { _children: Map<string, Module> })._children;
  for (const [n, c] of children) out.push(...namedModules(c, `${prefix}${n}.`));
  return out;
}

export interface QuantizeOptions {
  /** Layers (dotted names, e.g. 'head') left in float; default none. */
  skip?: (name: string) => boolean;
  /** The prefix tokens' rows and the heads' inputs in two 7-bit parts (see the header); default true. */
  prefixRows?: boolean;
  /** Attention's two batched GEMMs in int8 too (src/quant/attention.ts); default true. */
  attention?: boolean;
  /** fc1's, fc2's and attention proj's inputs, and attention's q and P rows, in 6 bits (SIX_BIT_LAYERS; see the header); default true. false: 7 bits. */
  sixBit?: boolean;
  /**
   * Which rows go in 6 bits when sixBit is on, by name: a Linear's
   * ('blocks.0.mlp.fc1'), or attention's q and P rows ('blocks.0.attn.q',
   * 'blocks.0.attn.p'); default SIX_BIT_LAYERS. For experiments
   * (bench/int8-logits.ts). A file records none of the activation options:
   * they are chosen where it runs (load's int8SixBit, --int8-six-bit).
   */
  sixBitLayers?: (name: string) => boolean;
  /**
   * The prefix rows' weights in two int8 parts (weightResidual; see the
   * header), for the Linears with prefix rows; default true. A function:
   * which of them, by name (bench/int8-logits.ts's experiments). Given
   * weights (a file) bring their own second part or none.
   */
  prefixWeights?: boolean | ((name: string) => boolean);
  /** Int8 weights and scales to use as they are (a loaded file), by layer name; others are quantized from the float weights. */
  given?: ReadonlyMap<string, Int8Weight>;
}

/** What quantizeModel did: the layers, and how to undo it. */
export interface Int8Weight {
  q: Int8Array; scale: Float32Array;
  /** The prefix rows' second weight part (weightResidual), where the layer has one. */
  residual?: { q: Int8Array; scale: Float32Array };
}

export class QuantizedModel {
  constructor(
    /** The int8 weights and scales by layer name (what a file stores), whatever the backend. */
    readonly weights: ReadonlyMap<string, Int8Weight>,
    /** The layers running the int8 kernels (none on a backend without them). */
    readonly layers: ReadonlyMap<string, QLinear>,
    private readonly restore: Array<() => void>) {}
  /** The scheme whose int8 kernels run (INT8_SCHEME), or null on a backend without them (its Linears run the dequantized weights in float). */
  get kernels(): string | null { return this.layers.size > 0 ? INT8_SCHEME : null; }
  /** Restores the float forwards (the float weights stay dequantized) and frees the int8 weights; disposing the model does this too. */
  dispose(): void {
    for (const r of this.restore.splice(0)) r();
    for (const l of this.layers.values()) l.dispose();
  }
}

const QUANTIZED = Symbol('int8');

/**
 * Quantize `model`'s Linears in place (see the header). The model keeps
 * working on any backend: where int8 kernels exist its Linears run them.
 * Quantizing twice is an error (undo with the returned handle's dispose).
 */
export function quantizeModel(model: Module, o: QuantizeOptions = {}): QuantizedModel {
  const tagged = model as unknown as Record<symbol, unknown>;
  if (tagged[QUANTIZED]) throw new Error('quantizeModel: the model is already quantized');
  const layers = new Map<string, QLinear>(), weights = new Map<string, Int8Weight>(), restore: Array<() => void> = [];
  const all = namedModules(model);
  const six = o.sixBit === false ? () => false : o.sixBitLayers ?? ((name: string) => SIX_BIT_LAYERS.test(name));
  const levelsOf = (name: string): 127 | 63 => (six(name) ? 63 : 127);
  // given int8 weights that no Linear takes would be silently ignored (a file's I8 tensor for another layer)
  const linears = all.filter(([, m]) => isLinear(m)).map(([n]) => n), isOne = new Set(linears);
  for (const n of o.given?.keys() ?? []) if (!isOne.has(n)) throw new Error(`int8 weights for '${n}', which is no Linear of the model (expected one of ${linears.slice(0, 4).join(', ')}, ...)`);
  const tokens = o.prefixRows === false ? 0 : (model as { numPrefixTokens?: number }).numPrefixTokens ?? 0;
  const isHead = (name: string): boolean => name === 'head' || name === 'head_dist';
  const prefixOf = (name: string): PrefixRows | undefined =>
    tokens === 0 ? undefined : isHead(name) ? pooledRows : name.startsWith('blocks.') ? prefixTokens(tokens) : undefined;
  // a segmentation model's head runs on every token ([B, T, C]: pooledRows finds no prefix rows), so a
  // second weight part there would never be read: none is made (a file that has one still loads, unused)
  const segmentation = (model as { cfg?: { task?: string } }).cfg?.task === 'segment';
  for (const [name, m] of all) {
    if (!isLinear(m) || o.skip?.(name)) continue;
    const w = m.weight, N = w.shape[0], K = w.size / N;
    const given = o.given?.get(name);
    let int8: Int8Weight;
    if (given) {
      int8 = given;
      if (given.residual && !prefixOf(name) && o.prefixRows !== false) throw new Error(`'${name}.weight_residual': expected none, got a second weight part for a layer without prefix rows (only the blocks' Linears and the heads of a model with a class token have them)`);
      if (given.residual && (given.residual.q.length !== given.q.length || given.residual.scale.length !== given.scale.length)) throw new Error(`quantizeModel: ${name}: second weight part of ${given.residual.q.length} values / ${given.residual.scale.length} scales for int8 weights of ${given.q.length} / ${given.scale.length}`);
    } else {
      const W = w.toArray(), first = quantizeWeight(W, N), wanted = typeof o.prefixWeights === 'function' ? o.prefixWeights(name) : o.prefixWeights !== false;
      int8 = wanted && prefixOf(name) && !(segmentation && isHead(name)) ? { ...first, residual: weightResidual(W, first) } : first;
    }
    const { q, scale } = int8;
    if (q.length !== w.size || scale.length !== N) throw new Error(`quantizeModel: ${name}: int8 weight of ${q.length} values / ${scale.length} scales for a weight [${w.shape}]`);
    w.write(dequantizeWeight(q, scale));
    weights.set(name, int8);
    if (!hasInt8Kernels(w.backend)) continue;
    const ql = new QLinear(q, scale, N, K, m.bias, w.backend, prefixOf(name), levelsOf(name), int8.residual);
    layers.set(name, ql);
    const own = Object.prototype.hasOwnProperty.call(m, 'forward') ? m.forward : undefined;
    const float = m.forward.bind(m);
    m.forward = (x: Tensor) => (isGradEnabled() ? float(x) : ql.forward(x));
    restore.push(() => { if (own) m.forward = own; else delete (m as Partial<AnyLinear>).forward; });
  }
  // the MLP's first Linear with its GELU fused into the int8 store (ops.linearGelu does this in float)
  for (const [name, m] of all) {
    if (!(m instanceof Mlp)) continue;
    const fc1 = layers.get(`${name}.fc1`);
    if (!fc1) continue;
    const float = m.forward.bind(m);
    m.forward = (x: Tensor) => (isGradEnabled() ? float(x) : m.fc2.forward(fc1.forward(x, true)));
    restore.push(() => { delete (m as Partial<Mlp>).forward; });
  }
  // attention's batched GEMMs (only where the int8 kernels run: a model on WebGPU keeps its float attention)
  for (const [name, m] of all) {
    if (o.attention === false || !(m instanceof Attention) || !hasInt8Kernels(m.qkv.weight.backend)) continue;
    const own = Object.prototype.hasOwnProperty.call(m, 'forward') ? m.forward : undefined;
    const float = m.forward.bind(m);
    m.forward = (x: Tensor, keyBias: Tensor | null = null, onQkv?: (qkv: Tensor) => void) => {
      if (isGradEnabled()) return float(x, keyBias, onQkv);
      const qkv = m.qkv.forward(x);
      onQkv?.(qkv);
      return m.proj.forward(attentionInt8(qkv, { heads: m.numHeads, scale: m.scale, keyBias, headDimQK: m.dqk, headDimV: m.dv }, levelsOf(`${name}.q`), levelsOf(`${name}.p`)));
    };
    restore.push(() => { if (own) m.forward = own; else delete (m as Partial<Attention>).forward; });
  }
  tagged[QUANTIZED] = true;
  restore.push(() => { delete tagged[QUANTIZED]; });
  const qm = new QuantizedModel(weights, layers, restore);
  // disposing the model frees its int8 weights too (a library Model only knows the ViT)
  const ownDispose = Object.prototype.hasOwnProperty.call(model, 'dispose') ? model.dispose : undefined;
  const floatDispose = model.dispose.bind(model);
  model.dispose = () => { qm.dispose(); floatDispose(); };
  restore.push(() => { if (ownDispose) model.dispose = ownDispose; else delete (model as Partial<Module>).dispose; });
  return qm;
}
