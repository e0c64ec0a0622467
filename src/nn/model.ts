// Creating, saving and loading models. A model file is safetensors (F32, timm
// names) with the config as JSON in __metadata__.config (labels in
// config.classes, the image pipeline in config.preprocess), so one file is
// all a later command needs. loadModel also reads the layouts other libraries
// write (./checkpoint.ts): a model folder or a .safetensors file with a
// config.json beside it, from Hugging Face transformers or the timm hub, and
// a bare timm checkpoint with an explicit preset. saveHf writes the
// transformers layout back.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SafetensorsError } from '../io/safetensors.js';
import { readSafetensorsBytes, writeSafetensorsFile } from '../io/safetensors-file.js';
import { readInputText, statInput } from '../io/input.js';
import { makeFolder, writeFileAtomic, type NamedInput } from '../io/output.js';
import { hfProcessorConfig, modelFromCheckpoint, type LoadedModel, type LoadOptions } from './checkpoint.js';
import { maxModelBytes } from './validate.js';
import { Rng } from '../util/rng.js';
import { VisionTransformer } from './vit.js';
import type { VitConfig } from './presets.js';
import type { Init } from './module.js';

export function rngInit(rng: Rng): Init {
  return { truncNormal: (std) => rng.truncNormal(std), uniform: (lo, hi) => rng.uniform(lo, hi) };
}

export function createModel(cfg: VitConfig, seed = 0): VisionTransformer {
  return new VisionTransformer(cfg, rngInit(new Rng(seed)));
}

/** The classifier's parameters: the head, and a distilled DeiT's head_dist (the distillation token stays). */
const isHead = (name: string): boolean => name.startsWith('head.') || name.startsWith('head_dist.');

/**
 * `model` with a new classifier for `classes` (timm's reset_classifier, as a
 * fine-tune on other classes starts): the heads initialised as createModel's
 * are (seeded, so a resumed run rebuilds the same start), every other
 * parameter copied. `model` is disposed.
 */
export function withNewHead(model: VisionTransformer, classes: string[], seed = 0): VisionTransformer {
  const cfg: VitConfig = { ...structuredClone(model.cfg), classes: [...classes], numClasses: classes.length };
  const fresh = createModel(cfg, seed), old = new Map(model.namedParameters());
  for (const [n, p] of fresh.namedParameters()) if (!isHead(n)) p.write(old.get(n)!.toArray());
  model.dispose();
  return fresh;
}

export type { LoadOptions, LoadedModel, CheckpointFiles, CheckpointLayout } from './checkpoint.js';

/** The files a model source stands for: the weights and the JSON configs beside them, if any. */
export function checkpointPaths(source: string): { weights: string; config?: string; preprocessorConfig?: string } {
  if (!existsSync(source)) throw new SafetensorsError(source, 'model file or folder not found');
  let weights = source;
  if (statSync(source).isDirectory()) {
    const st = readdirSync(source).filter((f) => f.endsWith('.safetensors'));
    const pick = st.includes('model.safetensors') ? 'model.safetensors' : st.length === 1 ? st[0] : null;
    if (!pick) {
      throw new SafetensorsError(source, st.length === 0
        ? 'model folder holds no .safetensors file (pytorch_model.bin and other pickles are not read: convert with safetensors)'
        : `model folder holds ${st.length} .safetensors files and no model.safetensors: ${st.join(', ')}`);
    }
    weights = join(source, pick);
  }
  const dir = dirname(weights), cfg = join(dir, 'config.json'), pre = join(dir, 'preprocessor_config.json');
  return { weights, ...(existsSync(cfg) ? { config: cfg } : {}), ...(existsSync(pre) ? { preprocessorConfig: pre } : {}) };
}

/**
 * Load a model from `source`: this project's .safetensors file, a model folder
 * (model.safetensors + config.json [+ preprocessor_config.json], Hugging Face
 * transformers or timm hub layout), or a .safetensors file with a config.json
 * beside it. Errors (SafetensorsError, ConfigError) name the file and field.
 * A file over the byte limit (LoadOptions.maxBytes / CAIT_MAX_MODEL_BYTES) is
 * refused before it is read.
 */
export function loadModel(source: string, opts: LoadOptions = {}): LoadedModel {
  const p = checkpointPaths(source);
  const size = statInput(p.weights, 'model weights').size, limit = maxModelBytes(opts.maxBytes);
  if (size > limit) throw new SafetensorsError(p.weights, `file is ${size} bytes, over the model byte limit ${limit} (CAIT_MAX_MODEL_BYTES)`);
  const text = (f: string | undefined): string | undefined => (f === undefined ? undefined : readInputText(f, 'model config', 16 * 2 ** 20));
  return modelFromCheckpoint({
    weights: readSafetensorsBytes(p.weights, 'model weights', limit), config: text(p.config), preprocessorConfig: text(p.preprocessorConfig),
    configName: p.config, preprocessorConfigName: p.preprocessorConfig,
  }, opts, p.weights);
}

/** First non-finite parameter value, as an error: a checkpoint is never written with NaN or Infinity in it. */
function assertFinite(file: string, named: Array<[string, { toArray(): Float32Array }]>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [n, p] of named) {
    const d = p.toArray();
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) throw new SafetensorsError(file, `not written: parameter '${n}' holds ${d[i]} at element ${i}`);
    out.set(n, d);
  }
  return out;
}

/**
 * Save as this project's safetensors: timm names, config (with labels and
 * preprocessing) in __metadata__.config, `extra` metadata beside it. Written
 * atomically; refuses non-finite weights.
 */
export function saveModel(file: string, model: VisionTransformer, extra: Record<string, string> = {}, inputs: readonly NamedInput[] = []): void {
  const named = model.namedParameters();
  const data = assertFinite(file, named);
  const tensors = new Map(named.map(([n, p]) => [n, { shape: p.shape, data: data.get(n)! }]));
  writeSafetensorsFile(file, tensors, { format: 'pt', config: JSON.stringify(model.cfg), ...extra }, inputs);
}

/**
 * Save in the Hugging Face transformers layout, into folder `dir` (created if
 * needed): config.json, preprocessor_config.json and model.safetensors with
 * transformers' names (ViTForImageClassification; distilled:
 * DeiTForImageClassificationWithTeacher, or DeiTForImageClassification
 * without head_dist). Dense models only (transformers has no per-block
 * widths). config.json also holds this project's config under `caitjs`
 * (transformers ignores the key), which loadModel prefers while the folder
 * is unchanged, so the round trip is exact: the Fashion-MNIST models' 28x28
 * images centred in 32x32 (dataSize, which no transformers processor can
 * express: preprocessor_config.json says a resize to 32x32), the timm
 * pipeline, the merge schedule (src/nn/checkpoint.ts ownConfig).
 */
export function saveHf(dir: string, model: VisionTransformer): void {
  const cfg = model.cfg;
  if (cfg.widths) throw new SafetensorsError(dir, 'a CDCP-compact model (per-block widths) has no transformers layout: save it with saveModel');
  if (cfg.task === 'segment') throw new SafetensorsError(dir, 'a segmentation model has no transformers layout: save it with saveModel');
  const distilled = !!cfg.distilled, withTeacher = distilled && cfg.distillHead !== false;
  const p = distilled ? 'deit.' : 'vit.';
  const named = new Map(model.namedParameters());
  const data = assertFinite(join(dir, 'model.safetensors'), [...named]);
  const C = cfg.embedDim, tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const put = (hf: string, timm: string): void => { tensors.set(hf, { shape: named.get(timm)!.shape, data: data.get(timm)! }); };
  put(`${p}embeddings.cls_token`, 'cls_token');
  if (distilled) put(`${p}embeddings.distillation_token`, 'dist_token');
  put(`${p}embeddings.position_embeddings`, 'pos_embed');
  put(`${p}embeddings.patch_embeddings.projection.weight`, 'patch_embed.proj.weight');
  put(`${p}embeddings.patch_embeddings.projection.bias`, 'patch_embed.proj.bias');
  put(`${p}layernorm.weight`, 'norm.weight');
  put(`${p}layernorm.bias`, 'norm.bias');
  const head = withTeacher ? 'cls_classifier' : 'classifier';
  put(`${head}.weight`, 'head.weight');
  put(`${head}.bias`, 'head.bias');
  if (withTeacher) { put('distillation_classifier.weight', 'head_dist.weight'); put('distillation_classifier.bias', 'head_dist.bias'); }
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}.`, l = `${p}encoder.layer.${i}.`;
    for (const [hf, timm] of [['layernorm_before', 'norm1'], ['layernorm_after', 'norm2'], ['attention.output.dense', 'attn.proj'], ['intermediate.dense', 'mlp.fc1'], ['output.dense', 'mlp.fc2']])
      for (const k of ['weight', 'bias']) put(`${l}${hf}.${k}`, `${b}${timm}.${k}`);
    const w = data.get(`${b}attn.qkv.weight`)!, bias = cfg.qkvBias ? data.get(`${b}attn.qkv.bias`)! : null;
    ['query', 'key', 'value'].forEach((n, j) => {
      tensors.set(`${l}attention.attention.${n}.weight`, { shape: [C, C], data: w.slice(j * C * C, (j + 1) * C * C) });
      if (bias) tensors.set(`${l}attention.attention.${n}.bias`, { shape: [C], data: bias.slice(j * C, (j + 1) * C) });
    });
  }
  const classes = cfg.classes ?? Array.from({ length: cfg.numClasses }, (_, i) => `LABEL_${i}`);
  const config: Record<string, unknown> = {
    _name_or_path: cfg.name,
    architectures: [distilled ? (withTeacher ? 'DeiTForImageClassificationWithTeacher' : 'DeiTForImageClassification') : 'ViTForImageClassification'],
    model_type: distilled ? 'deit' : 'vit',
    hidden_size: C, num_hidden_layers: cfg.depth, num_attention_heads: cfg.numHeads, intermediate_size: Math.round(C * cfg.mlpRatio),
    hidden_act: 'gelu', hidden_dropout_prob: 0, attention_probs_dropout_prob: 0, initializer_range: 0.02,
    layer_norm_eps: cfg.eps, image_size: cfg.imgSize, patch_size: cfg.patchSize, num_channels: cfg.inChans, qkv_bias: cfg.qkvBias,
    encoder_stride: cfg.patchSize,
    id2label: Object.fromEntries(classes.map((c, i) => [String(i), c])),
    label2id: Object.fromEntries(classes.map((c, i) => [c, i])),
    torch_dtype: 'float32',
    caitjs: cfg,
  };
  makeFolder(dir);
  const text = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');
  writeFileAtomic(join(dir, 'config.json'), text(config));
  writeFileAtomic(join(dir, 'preprocessor_config.json'), text(hfProcessorConfig(cfg)));
  writeSafetensorsFile(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}

