// Checkpoints in the layouts people have, from bytes (no node:fs: browsers use
// this too; ./model.ts reads files and folders and calls it).
//
// Three layouts of the weights, told apart by their tensor names:
// - caitjs / timm: timm's names (`blocks.0.attn.qkv.weight`, distilled DeiT
//   `dist_token`, `head_dist`), as this project saves them.
// - Hugging Face transformers ViTForImageClassification (`vit.` prefix,
//   `classifier`), DeiTForImageClassification (`deit.`, `classifier`, a
//   distillation token in the sequence but one head) and
//   DeiTForImageClassificationWithTeacher (`cls_classifier`,
//   `distillation_classifier`): renamed to timm's names, query/key/value
//   stacked into qkv (rows [q | k | v], each head-major as timm's).
// And four sources of the config, first found wins: opts.config; the file's
// own __metadata__.config (this project's files); a config.json beside the
// weights (transformers: `architectures`/`model_type`, with
// preprocessor_config.json; timm hub: `architecture`, `model_args`,
// `pretrained_cfg`); opts.preset (a timm checkpoint without a config; with
// a config in the file or beside it, a preset is refused, not merged).
//
// Every config passes src/nn/validate.ts (types, ranges, consistency, memory
// estimate) before the model is allocated; weights must be a float dtype and
// finite (allowNonFinite to load them anyway); a load that fails after the
// model was allocated disposes it, so nothing stays behind.
import { readSafetensorsHeader, readSafetensors, checkKeys, SafetensorsError, type SafeTensor } from '../io/safetensors.js';
import { VisionTransformer } from './vit.js';
import { getPreset, isPreset, numPrefixTokens, preprocessOf, PRESETS, type Interpolation, type Preprocess, type VitConfig } from './presets.js';
import { ConfigError, NORM_RANGE, normOk, parameterShapes, parseJsonStrict, validateConfig } from './validate.js';
import { resamplePosEmbed } from './posembed.js';
import { ZERO_INIT } from './module.js';
import { showValue } from '../util/suggest.js';

/** Zero-cost init for models whose weights are loaded right after. */

export interface LoadOptions {
  /** A preset name (src/nn/presets.ts) for weights without a config (refused where the model has one). */
  preset?: string;
  /** The config to use, ignoring any in the files. */
  config?: VitConfig;
  /**
   * Run the model at this input side: the position embedding is resampled
   * bicubically (as timm's resample_abs_pos_embed) with a message on stderr.
   */
  imgSize?: number;
  /** Load weights holding NaN or +-Infinity (for debugging); default: an error naming the tensor. */
  allowNonFinite?: boolean;
  /** Byte limit of the memory estimate (src/nn/validate.ts; default CAIT_MAX_MODEL_BYTES or 2 GiB). */
  maxBytes?: number;
}

/** What a checkpoint is made of: the safetensors bytes and, for model folders, the JSON configs beside them. */
export interface CheckpointFiles {
  weights: Uint8Array;
  /** config.json (transformers or timm hub), as text. */
  config?: string;
  /** preprocessor_config.json (transformers), as text. */
  preprocessorConfig?: string;
  /** Names of the JSON files in messages (default: 'config.json' / 'preprocessor_config.json' beside `name`). */
  configName?: string;
  preprocessorConfigName?: string;
}

export type CheckpointLayout = 'timm' | 'hf';
export interface LoadedModel {
  model: VisionTransformer;
  /** The safetensors __metadata__ (string values). */
  metadata: Record<string, string>;
  /** The tensor-name layout the weights came in. */
  layout: CheckpointLayout;
}

/** Weight dtypes converted to f32 on load. Integer dtypes are refused: F32 bytes relabelled I32 would load as garbage. */
export const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64', 'F8_E4M3', 'F8_E5M2'];

/**
 * Decoders for quantized files (`__metadata__.quant` = JSON with a `scheme`):
 * they turn the file's tensors (integer weights and their scales) into f32
 * tensors under the model's names. Registered by the module that writes the
 * scheme, so this loader stays free of it.
 */
export type QuantDecoder = (tensors: Map<string, SafeTensor>, metadata: Record<string, string>, file: string) => Map<string, SafeTensor>;
const QUANT_DECODERS = new Map<string, QuantDecoder>();
export function registerQuantScheme(scheme: string, decode: QuantDecoder): void { QUANT_DECODERS.set(scheme, decode); }

const sibling = (name: string, file: string): string => {
  const i = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  return i >= 0 ? name.slice(0, i + 1) + file : file;
};

/**
 * Build a model from a checkpoint's bytes in any supported layout (see the
 * header comment): the browser-safe core of loadModel. `name` (a path or URL)
 * names the weights in error messages. Throws SafetensorsError (format,
 * dtypes, non-finite values, missing or extra tensors) or ConfigError
 * (config fields), both naming the file.
 */
export function modelFromCheckpoint(files: CheckpointFiles, opts: LoadOptions = {}, name = '<buffer>'): LoadedModel {
  const header = readSafetensorsHeader(files.weights, name);
  const metadata = header.metadata;
  const names = new Set(header.entries.map((e) => e.name));
  // transformers' names: under vit./deit. in the classification models, bare (embeddings., encoder.) from ViTModel/DeiTModel
  const hfPrefix = ['vit.', 'deit.'].find((p) => [...names].some((n) => n.startsWith(p))) ?? (names.has('embeddings.cls_token') ? '' : undefined);
  const layout: CheckpointLayout = hfPrefix !== undefined ? 'hf' : 'timm';
  let quant: string | null = null;
  if (metadata.quant !== undefined) {
    const q = parseJsonStrict(metadata.quant, name, '__metadata__.quant') as { scheme?: unknown } | null;
    if (!q || typeof q.scheme !== 'string') throw new ConfigError(name, '__metadata__.quant.scheme', 'a string naming the quantization scheme', showValue(q));
    if (!QUANT_DECODERS.has(q.scheme)) throw new SafetensorsError(name, `quantized with scheme '${q.scheme}', which this build cannot decode (known: ${[...QUANT_DECODERS.keys()].join(', ') || 'none'})`);
    quant = q.scheme;
  } else {
    for (const e of header.entries) if (!FLOAT_DTYPES.includes(e.dtype)) {
      throw new SafetensorsError(name, `tensor '${e.name}' has dtype ${e.dtype}, expected a float type (${FLOAT_DTYPES.join(', ')}): integer data is not a weight`);
    }
  }

  // ---- the config, validated before anything is allocated
  const fromWeights = { distilled: names.has(hfPrefix !== undefined ? `${hfPrefix}embeddings.distillation_token` : 'dist_token'),
    distillHead: names.has(hfPrefix !== undefined ? 'distillation_classifier.weight' : 'head_dist.weight') };
  let raw: unknown, cfgFile = name, layoutConfig = false, libraryNames: Record<string, string> | null = null;
  // a preset names the architecture of weights that carry none; merged into
  // a file's own config it would silently change the model (a classifier
  // into a segmenter, its preprocessing), and beside a config.json it would
  // be ignored: either way the caller meant something else
  if (opts.preset && !opts.config && (metadata.config !== undefined || files.config !== undefined)) {
    const own = metadata.config !== undefined ? '__metadata__.config' : (files.configName ?? sibling(name, 'config.json'));
    throw new ConfigError(name, '(preset)', `no preset: the model has its own config (${own}), and a preset only names the architecture of weights without one`, `preset '${opts.preset}'`);
  }
  if (opts.config) raw = structuredClone(opts.config);
  else if (metadata.config !== undefined) raw = parseJsonStrict(metadata.config, name, '__metadata__.config');
  else if (files.config !== undefined) {
    cfgFile = files.configName ?? sibling(name, 'config.json');
    const pre = files.preprocessorConfig === undefined ? undefined
      : { file: files.preprocessorConfigName ?? sibling(name, 'preprocessor_config.json'), json: parseJsonStrict(files.preprocessorConfig, files.preprocessorConfigName ?? sibling(name, 'preprocessor_config.json'), 'preprocessor_config') };
    const json = parseJsonStrict(files.config, cfgFile, 'config');
    raw = configFromJson(json, cfgFile, pre);
    libraryNames = isObj(json) && typeof json.architecture === 'string' ? TIMM_FIELDS : HF_FIELDS;
    layoutConfig = true;
  } else if (opts.preset) { raw = getPreset(opts.preset); layoutConfig = true; }
  else throw new SafetensorsError(name, 'no model config: none in __metadata__ and no config.json beside it (a timm checkpoint?): name its architecture (--preset NAME on the command line, { preset: NAME } in load())');
  if (layoutConfig && raw && typeof raw === 'object') {
    // a preset or a library config describes the architecture; whether a distillation token is there, the weights say
    const r = raw as VitConfig;
    if (fromWeights.distilled) { r.distilled = true; if (!fromWeights.distillHead) r.distillHead = false; else delete r.distillHead; }
    else { delete r.distilled; delete r.distillHead; }
  }
  if (opts.imgSize !== undefined && raw && typeof raw === 'object') atInputSize(raw as VitConfig, opts.imgSize);
  let cfg: VitConfig;
  try { cfg = validateConfig(raw, cfgFile, { maxBytes: opts.maxBytes }); } catch (e) {
    // a library config's fields by the library's names (ours in brackets)
    const lib = libraryNames?.[e instanceof ConfigError ? e.field.split(/[.[]/)[0] : ''];
    if (e instanceof ConfigError && lib) throw new ConfigError(e.file, `${lib} [${e.field}]`, e.expected, e.got);
    throw e;
  }

  // ---- tensors: decode, check finite, rename to timm's names
  let tensors = readSafetensors(files.weights, name).tensors;
  if (quant) tensors = QUANT_DECODERS.get(quant)!(tensors, metadata, name);
  if (!opts.allowNonFinite) for (const [n, t] of tensors) checkFinite(name, n, t.data);
  if (hfPrefix !== undefined) tensors = hfToTimm(tensors, hfPrefix, name);

  const prefix = numPrefixTokens(cfg), grid = cfg.imgSize / cfg.patchSize;
  const pos = tensors.get('pos_embed');
  if (pos && pos.shape.length === 3 && pos.shape[2] === cfg.embedDim && pos.shape[1] !== prefix + grid * grid) {
    const side = Math.round(Math.sqrt(pos.shape[1] - prefix));
    if (side >= 1 && side * side === pos.shape[1] - prefix) {
      console.warn(`${name}: position embedding resampled from a ${side}x${side} to a ${grid}x${grid} token grid (bicubic, as timm's resample_abs_pos_embed): the model runs at ${cfg.imgSize}x${cfg.imgSize} input, trained at ${side * cfg.patchSize}x${side * cfg.patchSize}`);
      tensors.set('pos_embed', { dtype: 'F32', shape: [1, prefix + grid * grid, cfg.embedDim],
        data: resamplePosEmbed(pos.data, cfg.embedDim, prefix, [side, side], [grid, grid]) });
    }
  }

  // names and shapes checked before the model is allocated: a small file cannot make us allocate a big model
  checkKeys(name, new Map(parameterShapes(cfg)), tensors);
  const model = new VisionTransformer(cfg, ZERO_INIT);
  try {
    const named = model.namedParameters();
    checkKeys(name, new Map(named.map(([n, p]) => [n, p.shape])), tensors);
    for (const [n, p] of named) p.write(tensors.get(n)!.data);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, metadata, layout };
}

/** First non-finite value of a tensor, as an error naming the tensor. */
function checkFinite(file: string, tensor: string, d: Float32Array): void {
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      let count = 0;
      for (let j = i; j < d.length; j++) if (!Number.isFinite(d[j])) count++;
      throw new SafetensorsError(file, `tensor '${tensor}' holds ${d[i]} at element ${i} (${count} non-finite value(s) in it): weights must be finite (allowNonFinite / --allow-nonfinite loads them anyway)`);
    }
  }
}

/** Set the input side a config runs at (and its preprocessing's output side). */
function atInputSize(cfg: VitConfig, size: number): void {
  const old = cfg.imgSize;
  cfg.imgSize = size;
  const p = cfg.preprocess;
  if (p && typeof p === 'object' && typeof old === 'number' && old > 0) {
    p.size = size;
    if (p.kind === 'hf' && p.resize) {
      const r = p.resize as Record<string, number>;
      for (const k of Object.keys(r)) r[k] = Math.round(r[k] * size / old);
    }
  }
}

// ---------------------------------------------------------------- Hugging Face names

/** transformers ViT/DeiT parameter names -> timm's; q/k/v stacked into qkv. Unknown names pass through (checkKeys reports them). */
function hfToTimm(src: Map<string, SafeTensor>, p: string, file: string): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  const fixed: Record<string, string> = {
    [`${p}embeddings.cls_token`]: 'cls_token',
    [`${p}embeddings.distillation_token`]: 'dist_token',
    [`${p}embeddings.position_embeddings`]: 'pos_embed',
    [`${p}embeddings.patch_embeddings.projection.weight`]: 'patch_embed.proj.weight',
    [`${p}embeddings.patch_embeddings.projection.bias`]: 'patch_embed.proj.bias',
    [`${p}layernorm.weight`]: 'norm.weight',
    [`${p}layernorm.bias`]: 'norm.bias',
    'classifier.weight': 'head.weight', 'classifier.bias': 'head.bias',
    'cls_classifier.weight': 'head.weight', 'cls_classifier.bias': 'head.bias',
    'distillation_classifier.weight': 'head_dist.weight', 'distillation_classifier.bias': 'head_dist.bias',
  };
  const layer: Record<string, string> = {
    'layernorm_before': 'norm1', 'layernorm_after': 'norm2', 'attention.output.dense': 'attn.proj',
    'intermediate.dense': 'mlp.fc1', 'output.dense': 'mlp.fc2',
  };
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', SafeTensor>>>();
  const re = new RegExp(`^${p.replace('.', '\\.')}encoder\\.layer\\.(\\d+)\\.(.+)\\.(weight|bias)$`);
  for (const [n, t] of src) {
    if (n in fixed) { out.set(fixed[n], t); continue; }
    if (n.startsWith(`${p}pooler.`)) continue; // ViTModel's pooler: unused by the classification models
    const m = re.exec(n);
    if (m) {
      const [, i, part, kind] = m;
      const a = /^attention\.attention\.(query|key|value)$/.exec(part);
      if (a) {
        const k = `blocks.${i}.attn.qkv.${kind}`;
        const e = qkv.get(k) ?? {};
        e[a[1] as 'query' | 'key' | 'value'] = t;
        qkv.set(k, e);
        continue;
      }
      if (part in layer) { out.set(`blocks.${i}.${layer[part]}.${kind}`, t); continue; }
    }
    out.set(n, t);
  }
  for (const [k, e] of qkv) {
    const parts = [e.query, e.key, e.value];
    const miss = ['query', 'key', 'value'].filter((_, j) => !parts[j]);
    if (miss.length) throw new SafetensorsError(file, `'${k}' needs query, key and value; missing ${miss.join(', ')}`);
    const shapes = parts.map((t) => t!.shape);
    if (shapes.some((s) => s.length !== shapes[0].length || s.slice(1).some((d, j) => d !== shapes[0][j + 1]))) {
      throw new SafetensorsError(file, `query/key/value of '${k}' have shapes ${shapes.map((s) => `[${s}]`).join(', ')}, which do not stack`);
    }
    const rows = shapes.reduce((s, x) => s + x[0], 0), data = new Float32Array(parts.reduce((s, t) => s + t!.data.length, 0));
    let off = 0;
    for (const t of parts) { data.set(t!.data, off); off += t!.data.length; }
    out.set(k, { dtype: 'F32', shape: [rows, ...shapes[0].slice(1)], data });
  }
  return out;
}

// ---------------------------------------------------------------- configs of other libraries

/** VitConfig fields by the name a transformers config.json / a timm hub config.json gives them (for errors). */
const HF_FIELDS: Record<string, string> = {
  imgSize: 'image_size', patchSize: 'patch_size', inChans: 'num_channels', numClasses: 'id2label', classes: 'id2label',
  embedDim: 'hidden_size', depth: 'num_hidden_layers', numHeads: 'num_attention_heads', mlpRatio: 'intermediate_size',
  qkvBias: 'qkv_bias', eps: 'layer_norm_eps', mean: 'image_mean', std: 'image_std', preprocess: 'preprocessor_config.json', merge: 'caitjs.merge', dataSize: 'caitjs.dataSize',
};
const TIMM_FIELDS: Record<string, string> = {
  imgSize: 'model_args.img_size', patchSize: 'model_args.patch_size', inChans: 'model_args.in_chans', numClasses: 'num_classes', classes: 'label_names',
  embedDim: 'model_args.embed_dim', depth: 'model_args.depth', numHeads: 'model_args.num_heads', mlpRatio: 'model_args.mlp_ratio',
  qkvBias: 'model_args.qkv_bias', mean: 'pretrained_cfg.mean', std: 'pretrained_cfg.std', preprocess: 'pretrained_cfg',
};

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Pillow's resample codes (PIL.Image.Resampling) as transformers stores them. */
const PIL_RESAMPLE: Record<number, Interpolation> = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };

/**
 * A VitConfig (unvalidated) from a library's config.json: transformers
 * (`model_type` vit/deit or `architectures`) or timm hub (`architecture`).
 */
export function configFromJson(j: unknown, file: string, pre?: { file: string; json: unknown }): VitConfig {
  if (!isObj(j)) throw new ConfigError(file, '(config)', 'a JSON object', showValue(j));
  if (typeof j.architecture === 'string') return timmHubConfig(j, file);
  if (typeof j.model_type === 'string' || Array.isArray(j.architectures)) return hfConfig(j, file, pre);
  throw new ConfigError(file, 'architecture / model_type', "a timm hub config ('architecture') or a transformers config ('model_type', 'architectures')", Object.keys(j).slice(0, 8).join(', '));
}

function hfConfig(j: Json, file: string, pre?: { file: string; json: unknown }): VitConfig {
  const bad = (f: string, e: string, g: unknown): never => { throw new ConfigError(file, f, e, showValue(g)); };
  // model_type when given, else architectures: [] was read as a ViT named 'undefined', model_type 'bert'
  // beside ViT architectures as a ViT, and a DeiT without model_type got ViT's processor defaults
  if (j.model_type !== undefined && j.model_type !== 'vit' && j.model_type !== 'deit')
    bad('model_type', "'vit' or 'deit' (ViTForImageClassification, DeiTForImageClassification[WithTeacher])", j.model_type);
  const archs = Array.isArray(j.architectures) && j.architectures.length > 0 && j.architectures.every((a) => typeof a === 'string' && /^(ViT|DeiT)ForImageClassification(WithTeacher)?$/.test(a)) ? j.architectures as string[] : null;
  if (j.model_type === undefined && !archs)
    bad('architectures', "ViTForImageClassification, DeiTForImageClassification or DeiTForImageClassificationWithTeacher (or model_type 'vit' or 'deit')", j.architectures);
  const type = (j.model_type as 'vit' | 'deit' | undefined) ?? (archs![0].startsWith('DeiT') ? 'deit' : 'vit');
  const act = j.hidden_act ?? 'gelu';
  if (act !== 'gelu') bad('hidden_act', "'gelu' (exact erf GELU, the only activation this project runs)", act);
  const num = (k: string, dflt: number): number => {
    const v = j[k] === undefined ? dflt : j[k];
    if (typeof v !== 'number') bad(k, 'a number', v);
    return v as number;
  };
  if (j.qkv_bias !== undefined && typeof j.qkv_bias !== 'boolean') bad('qkv_bias', 'true or false', j.qkv_bias);
  const C = num('hidden_size', 768);
  let classes: string[] | undefined, numClasses: number;
  if (isObj(j.id2label)) {
    const ids = Object.keys(j.id2label);
    numClasses = ids.length;
    classes = [];
    for (let i = 0; i < numClasses; i++) {
      const v = (j.id2label as Json)[String(i)];
      if (typeof v !== 'string') bad(`id2label.${i}`, `a label for every class id 0..${numClasses - 1}`, v);
      classes.push(v as string);
    }
    if (j.num_labels !== undefined && j.num_labels !== numClasses) bad('num_labels', `${numClasses} (the length of id2label)`, j.num_labels);
    if (classes.every((c, i) => c === `LABEL_${i}`)) classes = undefined; // transformers' placeholder names
  } else numClasses = num('num_labels', 2);
  const mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5];
  const cfg: VitConfig = {
    name: typeof j._name_or_path === 'string' && j._name_or_path ? j._name_or_path : archs?.[0] ?? type,
    imgSize: num('image_size', 224), patchSize: num('patch_size', 16), inChans: num('num_channels', 3),
    numClasses, embedDim: C, depth: num('num_hidden_layers', 12), numHeads: num('num_attention_heads', 12),
    mlpRatio: num('intermediate_size', 4 * C) / C, qkvBias: j.qkv_bias === undefined ? true : (j.qkv_bias as boolean),
    eps: num('layer_norm_eps', 1e-12), mean, std, ...(classes ? { classes } : {}),
  };
  if (pre) cfg.preprocess = hfPreprocess(pre.json, pre.file, cfg);
  else {
    // transformers' processor defaults: ViTImageProcessor (bilinear to the size, 0.5/0.5); DeiTImageProcessor (bicubic to 256/224 of it, centre crop, ImageNet mean/std)
    const S = cfg.imgSize;
    if (type === 'deit') { cfg.mean = [0.485, 0.456, 0.406]; cfg.std = [0.229, 0.224, 0.225]; }
    cfg.preprocess = type === 'deit'
      ? { kind: 'hf', size: S, interpolation: 'bicubic', resize: { height: Math.round(S * 256 / 224), width: Math.round(S * 256 / 224) }, crop: true, mean: cfg.mean, std: cfg.std }
      : { kind: 'hf', size: S, interpolation: 'bilinear', resize: { height: S, width: S }, crop: false, mean: cfg.mean, std: cfg.std };
  }
  return j.caitjs === undefined ? cfg : ownConfig(j.caitjs, cfg, file, pre);
}

/**
 * The `caitjs` key saveHf writes into config.json: this project's own config,
 * for what transformers has no field for (dataSize padding with no
 * `preprocess`, i.e. the Fashion-MNIST models' 28x28 centred in 32x32; the
 * exact pipeline; the merge schedule; the name). Used in place of the
 * transformers fields when it describes the same model: every field both
 * hold agrees, and preprocessor_config.json is the one saveHf writes for it.
 * A folder edited since (transformers keeps unknown keys when it re-saves a
 * fine-tuned model) follows its transformers fields, with a warning.
 */
function ownConfig(own: unknown, lib: VitConfig, file: string, pre?: { file: string; json: unknown }): VitConfig {
  let cfg: VitConfig;
  try { cfg = validateConfig(structuredClone(own), file, { maxBytes: Infinity }); } catch (e) { // memory: checked on the config used, by the caller
    if (e instanceof ConfigError) throw new ConfigError(file, `caitjs.${e.field}`, e.expected, e.got);
    throw e;
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const differ: string[] = [];
  for (const k of ['imgSize', 'patchSize', 'inChans', 'numClasses', 'embedDim', 'depth', 'numHeads', 'qkvBias', 'eps'] as const)
    if (cfg[k] !== lib[k]) differ.push(`${HF_FIELDS[k]} ${JSON.stringify(lib[k])} vs caitjs.${k} ${JSON.stringify(cfg[k])}`);
  if (Math.round(cfg.embedDim * cfg.mlpRatio) !== Math.round(lib.embedDim * lib.mlpRatio)) differ.push(`intermediate_size vs caitjs.mlpRatio ${cfg.mlpRatio}`);
  // id2label's placeholder names (LABEL_i) read as no labels
  if (lib.classes && !same(cfg.classes, lib.classes)) differ.push('id2label vs caitjs.classes');
  if (pre) {
    // the processor saveHf writes for the caitjs config, read back as the file's is
    const want = hfPreprocess(hfProcessorConfig(cfg), pre.file, { ...cfg });
    if (!same(lib.preprocess, want)) differ.push(`preprocessor_config.json (not the processor saveHf writes for caitjs.preprocess)`);
  }
  if (differ.length) {
    console.warn(`${file}: the caitjs config (written by caitjs) disagrees with the transformers fields (${differ.join('; ')}): the folder was changed since; using the transformers fields`);
    return lib;
  }
  return cfg;
}

/**
 * A transformers image-processor config (preprocessor_config.json) for cfg's
 * pipeline; without a `preprocess`, a plain bilinear resize to imgSize. What
 * transformers cannot say is lost here (dataSize padding: the Fashion-MNIST
 * models get a resize of the whole image to 32x32; timm's aspect-keeping
 * resize: a square resize to floor(size / crop_pct), the same for square
 * images) and kept exactly in config.json's `caitjs` key (ownConfig above).
 */
export function hfProcessorConfig(cfg: VitConfig): Record<string, unknown> {
  const pre = preprocessOf(cfg);
  const code = { nearest: 0, bilinear: 2, bicubic: 3 }[pre.interpolation];
  const common = { do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: cfg.mean, image_std: cfg.std };
  if (pre.kind === 'hf' && pre.resize) {
    const size = 'shortestEdge' in pre.resize ? { shortest_edge: pre.resize.shortestEdge } : { height: pre.resize.height, width: pre.resize.width };
    return pre.crop
      ? { image_processor_type: 'DeiTImageProcessor', do_resize: true, size, resample: code, do_center_crop: true, crop_size: { height: pre.size, width: pre.size }, ...common }
      : { image_processor_type: 'ViTImageProcessor', do_resize: true, size, resample: code, ...common };
  }
  if (pre.kind === 'timm') {
    const r = Math.floor(pre.size / (pre.cropPct ?? 1));
    return { image_processor_type: 'DeiTImageProcessor', do_resize: true, size: { height: r, width: r }, resample: code, do_center_crop: true, crop_size: { height: pre.size, width: pre.size }, ...common };
  }
  return { image_processor_type: 'ViTImageProcessor', do_resize: true, size: { height: pre.size, width: pre.size }, resample: code, ...common };
}

/** preprocessor_config.json (ViTImageProcessor / DeiTImageProcessor) as a Preprocess; sets cfg.mean/std. */
function hfPreprocess(p: unknown, file: string, cfg: VitConfig): Preprocess {
  const bad = (f: string, e: string, g: unknown): never => { throw new ConfigError(file, f, e, showValue(g)); };
  if (!isObj(p)) return bad('(preprocessor config)', 'a JSON object', p);
  for (const k of ['do_resize', 'do_rescale', 'do_normalize', 'do_center_crop'])
    if (p[k] !== undefined && typeof p[k] !== 'boolean') bad(k, 'true or false', p[k]);
  if (p.rescale_factor !== undefined && typeof p.rescale_factor !== 'number') bad('rescale_factor', 'a number (1/255)', p.rescale_factor);
  if (p.do_resize === false) bad('do_resize', 'true (a pipeline without a resize only fits images already at the model size)', p.do_resize);
  if (p.do_rescale !== false && p.rescale_factor !== undefined && Math.abs((p.rescale_factor as number) - 1 / 255) > 1e-9) bad('rescale_factor', '1/255', p.rescale_factor);
  if (p.do_rescale === false) bad('do_rescale', 'true (pixels /255)', p.do_rescale);
  const resample = p.resample ?? 2;
  // (a string '2' found PIL_RESAMPLE's key; Pillow takes the number only)
  const interpolation = typeof resample === 'number' ? PIL_RESAMPLE[resample] : undefined;
  if (!interpolation) bad('resample', '0 (nearest), 2 (bilinear) or 3 (bicubic)', resample);
  const size = p.size;
  let resize: Preprocess['resize'];
  if (typeof size === 'number') resize = { height: size, width: size };
  else if (isObj(size) && typeof size.height === 'number' && typeof size.width === 'number') resize = { height: size.height, width: size.width };
  else if (isObj(size) && typeof size.shortest_edge === 'number') resize = { shortestEdge: size.shortest_edge };
  else return bad('size', '{height, width}, {shortest_edge} or a number', size);
  const crop = p.do_center_crop === true;
  let out = 'height' in resize ? resize.height : resize.shortestEdge;
  if (crop) {
    const cs = p.crop_size;
    const h = typeof cs === 'number' ? cs : isObj(cs) ? cs.height : undefined, w = typeof cs === 'number' ? cs : isObj(cs) ? cs.width : undefined;
    if (typeof h !== 'number' || h !== w) bad('crop_size', 'a square {height, width}', cs);
    out = h as number;
  } else if ('height' in resize && resize.height !== resize.width) bad('size', 'a square size without a centre crop', size);
  if (out !== cfg.imgSize) bad(crop ? 'crop_size' : 'size', `the model's image_size ${cfg.imgSize}`, crop ? p.crop_size : size);
  if (p.do_normalize === false) { cfg.mean = Array(cfg.inChans).fill(0); cfg.std = Array(cfg.inChans).fill(1); }
  else {
    // checked here so the error names preprocessor_config.json (the validator checks them again as mean/std)
    for (const [k, ours] of [['image_mean', 'mean'], ['image_std', 'std']] as const) {
      const v = p[k];
      if (v === undefined) continue;
      if (!Array.isArray(v) || v.length !== cfg.inChans || !v.every((x) => normOk(ours, x)))
        bad(k, `${cfg.inChans} number(s), each ${NORM_RANGE[ours]} (num_channels ${cfg.inChans})`, v);
      cfg[ours] = v as number[];
    }
  }
  return { kind: 'hf', size: cfg.imgSize, interpolation: interpolation!, resize, crop, mean: cfg.mean, std: cfg.std };
}

/** timm model names this project can build without model_args: {vit,deit}_{tiny,small,base,large}[_distilled]_patch{P}_{S}[.tag]. */
const TIMM_SIZES: Record<string, { embedDim: number; numHeads: number; depth: number }> = {
  tiny: { embedDim: 192, numHeads: 3, depth: 12 }, small: { embedDim: 384, numHeads: 6, depth: 12 },
  base: { embedDim: 768, numHeads: 12, depth: 12 }, large: { embedDim: 1024, numHeads: 16, depth: 24 },
};

function timmHubConfig(j: Json, file: string): VitConfig {
  const bad = (f: string, e: string, g: unknown): never => { throw new ConfigError(file, f, e, showValue(g)); };
  const arch = (j.architecture as string).split('.')[0];
  let cfg: VitConfig;
  if (isPreset(arch)) cfg = getPreset(arch);
  else {
    const m = /^(vit|deit)_(tiny|small|base|large)(_distilled)?_patch(\d+)_(\d+)$/.exec(arch);
    if (!m) return bad('architecture', `a ViT/DeiT timm architecture ({vit,deit}_{tiny,small,base,large}[_distilled]_patch16_224, ...; presets: ${Object.keys(PRESETS).join(', ')})`, j.architecture);
    const s = TIMM_SIZES[m[2]];
    cfg = { name: arch, imgSize: Number(m[5]), patchSize: Number(m[4]), inChans: 3, numClasses: 1000, ...s, mlpRatio: 4, qkvBias: true, eps: 1e-6,
      mean: m[1] === 'vit' ? [0.5, 0.5, 0.5] : [0.485, 0.456, 0.406], std: m[1] === 'vit' ? [0.5, 0.5, 0.5] : [0.229, 0.224, 0.225] };
    if (m[3]) cfg.distilled = true;
  }
  cfg.name = arch;
  if (j.global_pool !== undefined && j.global_pool !== 'token') bad('global_pool', "'token' (class-token pooling, the only pooling this project runs)", j.global_pool);
  const a = j.model_args === undefined ? {} : j.model_args;
  if (!isObj(a)) return bad('model_args', 'an object', a);
  const map: Record<string, keyof VitConfig> = { img_size: 'imgSize', patch_size: 'patchSize', in_chans: 'inChans', num_classes: 'numClasses', embed_dim: 'embedDim', depth: 'depth', num_heads: 'numHeads', mlp_ratio: 'mlpRatio', qkv_bias: 'qkvBias' };
  for (const [k, v] of Object.entries(a)) {
    if (k in map) {
      let val = v;
      if (k === 'img_size' && Array.isArray(v)) { if (v.length !== 2 || v[0] !== v[1]) bad('model_args.img_size', 'a square size', v); val = v[0]; }
      (cfg as unknown as Json)[map[k]] = val;
    } else if (k === 'global_pool') { if (v !== 'token') bad('model_args.global_pool', "'token' (class-token pooling)", v); }
    else if (k === 'class_token') { if (v !== true) bad('model_args.class_token', 'true', v); }
    else if (k === 'no_embed_class' || k === 'reg_tokens' || k === 'fc_norm' || k === 'act_layer' || k === 'norm_layer' || k === 'pos_embed' || k === 'qk_norm' || k === 'init_values') {
      const neutral: Record<string, unknown> = { no_embed_class: false, reg_tokens: 0, fc_norm: null, qk_norm: false, init_values: null };
      if (!(k in neutral) || v !== neutral[k]) bad(`model_args.${k}`, k in neutral ? JSON.stringify(neutral[k]) : 'absent (timm\'s default)', v);
    }
  }
  if (j.num_classes !== undefined) cfg.numClasses = j.num_classes as number;
  if (j.label_names !== undefined) {
    if (!Array.isArray(j.label_names)) bad('label_names', 'an array of class names', j.label_names);
    cfg.classes = j.label_names as string[];
  } else delete cfg.classes;
  const pc = j.pretrained_cfg;
  if (pc !== undefined) {
    if (!isObj(pc)) return bad('pretrained_cfg', 'an object', pc);
    if (pc.mean !== undefined) cfg.mean = pc.mean as number[];
    if (pc.std !== undefined) cfg.std = pc.std as number[];
    const inSize = pc.input_size;
    if (inSize !== undefined) {
      if (!Array.isArray(inSize) || inSize.length !== 3 || inSize[1] !== inSize[2]) bad('pretrained_cfg.input_size', '[channels, size, size]', inSize);
      if ((inSize as number[])[0] !== cfg.inChans) bad('pretrained_cfg.input_size[0]', `${cfg.inChans} (in_chans)`, (inSize as number[])[0]);
      if ((inSize as number[])[1] !== cfg.imgSize) bad('pretrained_cfg.input_size', `the model's img_size ${cfg.imgSize}`, inSize);
    }
    const interp = pc.interpolation ?? 'bicubic';
    if (interp !== 'bicubic' && interp !== 'bilinear' && interp !== 'nearest') bad('pretrained_cfg.interpolation', "'bicubic', 'bilinear' or 'nearest'", interp);
    const cropMode = pc.crop_mode ?? 'center';
    if (cropMode !== 'center' && cropMode !== 'squash' && cropMode !== 'border') bad('pretrained_cfg.crop_mode', "'center', 'squash' or 'border'", cropMode);
    cfg.preprocess = { kind: 'timm', size: cfg.imgSize, interpolation: interp as Interpolation, cropPct: (pc.crop_pct ?? 0.875) as number,
      cropMode: cropMode as 'center', mean: cfg.mean, std: cfg.std };
  } else if (cfg.preprocess) cfg.preprocess = { ...cfg.preprocess, size: cfg.imgSize, mean: cfg.mean, std: cfg.std };
  return cfg;
}
