// Model configs as data. Names follow timm; `vit_fmnist` is ours, for 28x28
// datasets padded to 32x32 with 4x4 patches: an 8x8 token grid that ATME can
// halve on both axes twice.
import type { BlockWidths } from './layers.js';

/** How a merged segmentation model's tokens return to the full grid (VitConfig.segUnmerge; the first is the default). */
export const SEG_UNMERGES = ['residual', 'copy', 'bilinear'] as const;
export type SegUnmerge = (typeof SEG_UNMERGES)[number];

export interface VitConfig {
  name: string;
  imgSize: number;
  patchSize: number;
  inChans: number;
  numClasses: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  qkvBias: boolean;
  eps: number;
  /** Side of the source images when smaller than imgSize (28 for MNIST-like data, centred and zero-padded). */
  dataSize?: number;
  /** Input normalisation the model was trained with, per channel. */
  mean: number[];
  std: number[];
  /** Class names, if known (index = class id). */
  classes?: string[];
  /** Per-block widths of a CDCP-compact model; absent = dense. */
  widths?: BlockWidths[];
  /** ATME schedule the model runs with by default, e.g. "h@3,v@6"; absent or "" = none. */
  merge?: string;
  /** What the model predicts: one label per image (default), or one per pixel (numClasses then counts background, id 0). */
  task?: 'classify' | 'segment';
  /** Segmentation models: the dense head on the final tokens (src/seg/model.ts); 'linear' = the `head` Linear applied to every patch token. */
  segHead?: 'linear';
  /**
   * Segmentation models with merging: how the final tokens return to the full
   * grid (src/seg/model.ts). 'copy': the method's unmerge, every position a
   * copy of the token it was merged into. 'bilinear': the method's alternative,
   * the reduced grid's logits upsampled bilinearly to h x w and on to the
   * pixels. 'residual' (default): every position keeps its own token stream
   * from before each merge and adds the updates its merged token received
   * after it (blocks are residual, x + f(x)).
   */
  segUnmerge?: SegUnmerge;
  /** Segmentation models: the scenes they were trained on (src/data/scenes.ts), so eval and segment rebuild the same test scenes. */
  scenes?: { data: 'fashion-mnist' | 'mnist'; size: number; minItems: number; maxItems: number; threshold: number; seed: number };
  /**
   * Distilled DeiT (timm VisionTransformerDistilled, transformers
   * DeiTForImageClassificationWithTeacher): a distillation token after the
   * class token (2 prefix tokens, never merged) and a second head `head_dist`
   * on it; logits are the mean of the two heads. Absent = false.
   */
  distilled?: boolean;
  /**
   * Distilled models only: false for transformers' DeiTForImageClassification,
   * whose sequence holds the distillation token but whose logits are the
   * class head's alone (no head_dist). Absent = true.
   */
  distillHead?: boolean;
  /**
   * How an image file becomes this model's input, as the checkpoint's own
   * library does it (src/io/image.ts implements the pipelines). Absent: the
   * project's own datasets' rule (dataSize centred and zero-padded for
   * MNIST-like data, else a plain resize to imgSize).
   */
  preprocess?: Preprocess;
}

/** Pillow resampling filters by name (PIL.Image.Resampling: NEAREST 0, BILINEAR 2, BICUBIC 3). */
export type Interpolation = 'nearest' | 'bilinear' | 'bicubic';

/**
 * An image pipeline, after decoding and Pillow's convert('RGB') (or 'L' for
 * inChans 1), always ending in /255 then (x - mean[c]) / std[c]:
 * - 'timm': timm's eval transform (timm.data.transforms_factory
 *   transforms_imagenet_eval): crop_mode 'center' resizes the shorter side to
 *   floor(size / cropPct) (long side int(scaled * long / short)) then
 *   centre-crops size x size (offset int(round((L - size) / 2))); 'squash'
 *   resizes both sides to floor(size / cropPct) then centre-crops; 'border'
 *   resizes the longer side to floor(size / cropPct), pads with zeros, crops.
 * - 'hf': transformers' ViTImageProcessor / DeiTImageProcessor: resize to
 *   resize.height x resize.width (aspect ignored) or the shorter side to
 *   resize.shortestEdge, then, if crop, centre-crop size x size (offset
 *   (L - size) // 2).
 * - 'fixed': resize straight to size x size (aspect ignored), no crop.
 * size is the model input side (= imgSize, checked by src/nn/validate.ts);
 * mean/std equal the config's own mean/std (also checked), copied here so a
 * pipeline needs nothing else.
 */
export interface Preprocess {
  kind: 'timm' | 'hf' | 'fixed';
  size: number;
  interpolation: Interpolation;
  /** timm: crop_pct in (0, 1]. */
  cropPct?: number;
  /** timm: crop_mode (default 'center'). */
  cropMode?: 'center' | 'squash' | 'border';
  /** hf: the resize before the crop. */
  resize?: { height: number; width: number } | { shortestEdge: number };
  /** hf: centre-crop to size after the resize (do_center_crop). */
  crop?: boolean;
  mean: number[];
  std: number[];
}

/**
 * The pipeline images go through for cfg: its `preprocess`, else a plain
 * resize to imgSize (Pillow's antialiased bilinear, in uint8) with cfg's
 * mean/std. Grey models without one use imageToInput's own rule instead
 * (dataSize centred on the canvas); for the rest, this is the one definition
 * the folder views, cait predict, the library and saveHf's processor share.
 */
export function preprocessOf(cfg: Pick<VitConfig, 'preprocess' | 'imgSize' | 'mean' | 'std'>): Preprocess {
  return cfg.preprocess ?? { kind: 'fixed', size: cfg.imgSize, interpolation: 'bilinear', mean: cfg.mean, std: cfg.std };
}

/** Prefix tokens before the patch tokens: the class token, and the distillation token if any. */
export function numPrefixTokens(cfg: Pick<VitConfig, 'distilled'>): number { return cfg.distilled ? 2 : 1; }

const IMAGENET_MEAN = [0.485, 0.456, 0.406], IMAGENET_STD = [0.229, 0.224, 0.225];
/** timm's pretrained_cfg for these models: bicubic, crop_pct 0.875 (DeiT) or 0.9 (augreg ViT). */
const timmEval = (cropPct: number, mean: number[], std: number[]): Preprocess => ({ kind: 'timm', size: 224, interpolation: 'bicubic', cropPct, cropMode: 'center', mean, std });
const deit = (name: string, embedDim: number, numHeads: number, distilled = false): VitConfig => ({
  name, imgSize: 224, patchSize: 16, inChans: 3, numClasses: 1000, embedDim, depth: 12, numHeads,
  mlpRatio: 4, qkvBias: true, eps: 1e-6, mean: IMAGENET_MEAN, std: IMAGENET_STD,
  ...(distilled ? { distilled: true } : {}), preprocess: timmEval(0.875, IMAGENET_MEAN, IMAGENET_STD),
});
/** timm's vit_*_patch16_224 (augreg weights): mean/std 0.5, crop_pct 0.9. */
const vit = (name: string, embedDim: number, numHeads: number): VitConfig => ({
  name, imgSize: 224, patchSize: 16, inChans: 3, numClasses: 1000, embedDim, depth: 12, numHeads,
  mlpRatio: 4, qkvBias: true, eps: 1e-6, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5],
  preprocess: timmEval(0.9, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
});

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export const PRESETS: Record<string, VitConfig> = {
  deit_tiny_patch16_224: deit('deit_tiny_patch16_224', 192, 3),
  deit_small_patch16_224: deit('deit_small_patch16_224', 384, 6),
  deit_base_patch16_224: deit('deit_base_patch16_224', 768, 12),
  deit_tiny_distilled_patch16_224: deit('deit_tiny_distilled_patch16_224', 192, 3, true),
  deit_small_distilled_patch16_224: deit('deit_small_distilled_patch16_224', 384, 6, true),
  deit_base_distilled_patch16_224: deit('deit_base_distilled_patch16_224', 768, 12, true),
  vit_tiny_patch16_224: vit('vit_tiny_patch16_224', 192, 3),
  vit_small_patch16_224: vit('vit_small_patch16_224', 384, 6),
  vit_base_patch16_224: vit('vit_base_patch16_224', 768, 12),
  vit_fmnist: {
    name: 'vit_fmnist', imgSize: 32, patchSize: 4, inChans: 1, numClasses: 10, embedDim: 64, depth: 6, numHeads: 4,
    mlpRatio: 4, qkvBias: true, eps: 1e-6, dataSize: 28, mean: [0.2860], std: [0.3528], classes: FASHION_MNIST_CLASSES,
  },
  // 64x64 segmentation scenes (src/data/scenes.ts): 8x8 patches give an 8x8
  // grid that ATME can halve twice per axis; 11 pixel classes = background + 10
  // item classes. mean/std: Fashion-MNIST scenes' pixel/255 over the first
  // 1,000 training scenes (0.1630, 0.3018); `cait train --task segment`
  // measures them for the scenes it trains on.
  vit_seg64: {
    name: 'vit_seg64', imgSize: 64, patchSize: 8, inChans: 1, numClasses: 11, embedDim: 64, depth: 6, numHeads: 4,
    mlpRatio: 4, qkvBias: true, eps: 1e-6, mean: [0.1630], std: [0.3018], classes: ['background', ...FASHION_MNIST_CLASSES],
    task: 'segment', segHead: 'linear',
  },
  // the parity fixture's model (../shared/fixtures/micro-vit/meta.json)
  micro: {
    name: 'micro', imgSize: 32, patchSize: 8, inChans: 3, numClasses: 10, embedDim: 48, depth: 2, numHeads: 3,
    mlpRatio: 4, qkvBias: true, eps: 1e-6, mean: [0, 0, 0], std: [1, 1, 1],
  },
};

/** Whether `name` is a preset's name (own keys only: 'constructor' or 'toString' found Object's, and structuredClone threw a DOMException on them). */
export function isPreset(name: unknown): name is string {
  return typeof name === 'string' && Object.hasOwn(PRESETS, name);
}

export function getPreset(name: string): VitConfig {
  const p = isPreset(name) ? PRESETS[name] : undefined;
  if (!p) throw new Error(`unknown preset '${name}'; known: ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}

/** Widths of block i (dense unless the config carries compact widths). */
export function blockWidths(cfg: VitConfig, i: number): BlockWidths {
  if (cfg.widths) return cfg.widths[i];
  const D = cfg.embedDim / cfg.numHeads;
  return { qk: D, v: D, mlp: Math.round(cfg.embedDim * cfg.mlpRatio) };
}
