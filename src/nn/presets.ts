// Model configs as data. Names follow timm; `vit_fmnist` is ours, for 28x28
// datasets padded to 32x32 with 4x4 patches: an 8x8 token grid that ATME can
// halve on both axes twice.
import type { BlockWidths } from './layers.js';

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
   * copy of the token it was merged into. 'residual' (default): every position
   * keeps its own token stream from before each merge and adds the updates its
   * merged token received after it (blocks are residual, x + f(x)).
   */
  segUnmerge?: 'residual' | 'copy';
  /** Segmentation models: the scenes they were trained on (src/data/scenes.ts), so eval and segment rebuild the same test scenes. */
  scenes?: { data: 'fashion-mnist' | 'mnist'; size: number; minItems: number; maxItems: number; threshold: number; seed: number };
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406], IMAGENET_STD = [0.229, 0.224, 0.225];
const deit = (name: string, embedDim: number, numHeads: number): VitConfig => ({
  name, imgSize: 224, patchSize: 16, inChans: 3, numClasses: 1000, embedDim, depth: 12, numHeads,
  mlpRatio: 4, qkvBias: true, eps: 1e-6, mean: IMAGENET_MEAN, std: IMAGENET_STD,
});

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export const PRESETS: Record<string, VitConfig> = {
  deit_tiny_patch16_224: deit('deit_tiny_patch16_224', 192, 3),
  deit_small_patch16_224: deit('deit_small_patch16_224', 384, 6),
  deit_base_patch16_224: deit('deit_base_patch16_224', 768, 12),
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

export function getPreset(name: string): VitConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset '${name}'; known: ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}

/** Widths of block i (dense unless the config carries compact widths). */
export function blockWidths(cfg: VitConfig, i: number): BlockWidths {
  if (cfg.widths) return cfg.widths[i];
  const D = cfg.embedDim / cfg.numHeads;
  return { qk: D, v: D, mlp: Math.round(cfg.embedDim * cfg.mlpRatio) };
}
