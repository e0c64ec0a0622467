// The ViT graph in ONNX opset 17 (dense, CDCP-compact, and ATME-merged),
// written by the format writer of src/io/onnx.ts.
//
// Layout of the exported graph: tokens travel as a 2-D [B*N, C] matrix so every
// Linear is one Gemm(transB=1) on the timm weight [out, in] itself (no
// transposed copies, parameter names unchanged); N is static at every point
// (ATME's grids are static), so Reshape [-1, N, ...] recovers the batch.
// N counts the prefix tokens: the class token, and a distilled DeiT's
// distillation token after it (src/nn/vit.ts); merging never touches them,
// and a distilled model's logits are the mean of head (token 0) and head_dist
// (token 1), as the engine's forwardHead.
import type { VisionTransformer } from '../nn/vit.js';
import { blockWidths } from '../nn/presets.js';
import { ATME_DEFAULTS, stepGrid, toSteps, type AtmeOptions, type Grid, type MergeStep } from './atme.js';
import { atmeDest, atmeIsDest, atmeSources } from '../backend/reference/atme.js';
import { DTYPE, GraphBuilder, encodeModel, ONNX_IR_VERSION, ONNX_OPSET, type OnnxModel } from '../io/onnx.js';

export { ONNX_IR_VERSION, ONNX_OPSET };

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
  /** Tokens (prefix tokens included) each block's attention sees, then the head. */
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
function mergeStep(g: GraphBuilder, x: string, qkv: string, st: MergeState, step: MergeStep, grid: Grid, C: number, prefix: number,
  keys: { H: number; dqk: number; W: number }, o: AtmeOptions, p: string): { x: string; state: MergeState } {
  const [gh, gw] = grid, T = gh * gw, N = prefix + T, axis = step.axis === 'h' ? 0 : 1;
  const [gh2, gw2] = stepGrid(grid, step.axis), T2 = gh2 * gw2, N2 = prefix + T2;
  // the partner rule is the reference kernel's (atme_plan)
  const dest = (t: number): number => atmeDest(t, gw, axis);
  const isDest = (t: number): boolean => atmeIsDest(t, gw, axis);
  const src = atmeSources(gh, gw, axis), S = src.length;
  if (S === 0) return { x, state: st };   // an axis of length 1: nothing merges, sizes stay
  const x3 = g.op('Reshape', [x, g.i64([-1, N, C])], `${p}/tokens`);
  const cls = g.op('Slice', [x3, g.i64([0]), g.i64([prefix]), g.i64([1])], `${p}/prefix`);
  const patches = g.op('Slice', [x3, g.i64([prefix]), g.i64([N]), g.i64([1])], `${p}/patches`);
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
    for (let d = 0; d < T2; d++) bias[prefix + d] = Math.log(tot[d]);
    state = { sizes: tot, bias: o.propAttn ? once(() => g.f32(bias, [1, 1, 1, N2])) : null };
  } else {
    let v: string;
    if (o.similarity === 'keys') {
      const k3 = g.op('Reshape', [qkv, g.i64([-1, N, keys.W])], `${p}/qkv3`);
      const k = g.op('Slice', [k3, g.i64([prefix, keys.H * keys.dqk]), g.i64([N, 2 * keys.H * keys.dqk]), g.i64([1, 2])], `${p}/keys`);
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
    // log(size) per key, 0 for the prefix tokens: Pad puts their columns in front
    const bias = once(() => g.op('Reshape', [g.op('Pad', [g.op('Log', [tot], `${p}/log_sizes`), g.i64([0, prefix, 0, 0, 0, 0])], `${p}/log_sizes_prefix`),
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
  const steps = toSteps(o.merge ?? '', cfg);
  const atme: AtmeOptions = { ...ATME_DEFAULTS, ...o.atme };
  const w = (name: string): string => {
    const p = params.get(name);
    if (!p) throw new Error(`onnx: the model has no parameter '${name}'`);
    return g.tensor(name, p.shape, 'float32', p.toArray());
  };
  const C = cfg.embedDim, P = cfg.patchSize, S = cfg.imgSize, H = cfg.numHeads;
  const prefix = vit.numPrefixTokens;
  if (cfg.distilled && !vit.dist_token) throw new Error('onnx: a distilled config without a dist_token parameter');
  let grid: Grid = vit.grid;
  let N = prefix + grid[0] * grid[1];
  const B: number | string = batch === 'dynamic' ? 'batch' : batch;

  // patch_embed: Conv2d(P, stride P) -> [B, C, gh, gw] -> [B, T, C]
  const conv = g.op('Conv', ['pixel_values', w('patch_embed.proj.weight'), w('patch_embed.proj.bias')], 'patch_embed/conv',
    { kernel_shape: { ints: [P, P] }, strides: { ints: [P, P] } });
  const flat = g.op('Reshape', [conv, g.i64([0, C, N - prefix])], 'patch_embed/flat');
  const patches = g.op('Transpose', [flat], 'patch_embed/tokens', { perm: { ints: [0, 2, 1] } });
  const clsShape = batch === 'dynamic'
    ? g.op('Concat', [g.op('Shape', ['pixel_values'], 'batch_size', { start: { i: 0 }, end: { i: 1 } }), g.i64([1, C])], 'cls_shape', { axis: { i: 0 } })
    : g.i64([batch, 1, C]);
  const cls = g.op('Expand', [w('cls_token'), clsShape], 'cls_tokens');
  // class token, then the distillation token (timm VisionTransformerDistilled), then the patches
  const dist = vit.dist_token ? [g.op('Expand', [w('dist_token'), clsShape], 'dist_tokens')] : [];
  const tokens = g.op('Concat', [cls, ...dist, patches], 'tokens', { axis: { i: 1 } });
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
      ({ x, state } = mergeStep(g, x, qkv, state, step, grid, C, prefix, { H, dqk, W }, atme, `${p}/merge`));
      grid = stepGrid(grid, step.axis);
      N = prefix + grid[0] * grid[1];
    }
    const n2 = layerNorm(g, x, w(`${p}.norm2.weight`), w(`${p}.norm2.bias`), cfg.eps, `${p}/norm2`);
    const h = gelu(g, linear(g, n2, w(`${p}.mlp.fc1.weight`), w(`${p}.mlp.fc1.bias`), `${p}/mlp/fc1`), `${p}/mlp`);
    x = g.op('Add', [x, linear(g, h, w(`${p}.mlp.fc2.weight`), w(`${p}.mlp.fc2.bias`), `${p}/mlp/fc2`)], `${p}/mlp_residual`);
  }
  seen.push(N);
  const normed = layerNorm(g, x, w('norm.weight'), w('norm.bias'), cfg.eps, 'norm');
  const final = g.op('Reshape', [normed, g.i64([-1, N, C])], 'norm/tokens');
  const clsOut = g.op('Gather', [final, g.i64([0], [])], 'cls_out', { axis: { i: 1 } });
  if (vit.head_dist) {
    // (head(x[:, 0]) + head_dist(x[:, 1])) / 2, the engine's forwardHead
    const distOut = g.op('Gather', [final, g.i64([1], [])], 'dist_out', { axis: { i: 1 } });
    const sum = g.op('Add', [linear(g, clsOut, w('head.weight'), w('head.bias'), 'head'),
      linear(g, distOut, w('head_dist.weight'), w('head_dist.bias'), 'head_dist')], 'heads_sum');
    g.opNamed('Mul', [sum, g.f32([0.5], [])], 'logits');
  } else g.opNamed('Gemm', [clsOut, w('head.weight'), w('head.bias')], 'logits', { transB: { i: 1 } });

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
