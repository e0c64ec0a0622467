// VisionTransformer / DeiT in timm's reading order (timm/models/vision_transformer.py):
// patch_embed -> prepend cls_token -> + pos_embed -> blocks -> norm -> head(token 0).
// Shapes: x [B, C_in, S, S] -> tokens [B, N, C] with N = prefix + (S/P)^2 -> logits [B, classes].
// A distilled DeiT (timm VisionTransformerDistilled, cfg.distilled) adds the
// distillation token after the class token (prefix 2; pos_embed covers both)
// and head_dist on it; its logits are (head(x[:,0]) + head_dist(x[:,1])) / 2.
// timm returns the two heads separately only under set_distilled_training(True)
// (hard-label distillation from a teacher); its default, and ours in training
// too, is the mean, which is what a distilled checkpoint is fine-tuned with.
import { Tensor } from '../tensor.js';
import { inferenceScope } from '../autograd.js';
import * as ops from '../ops/index.js';
import { Module, type Init } from './module.js';
import { Block, LayerNorm, Linear, PatchEmbed } from './layers.js';
import { blockWidths, numPrefixTokens, type VitConfig } from './presets.js';

class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  push(m: M): void { this.items.push(this.child(String(this.items.length), m)); }
}

export class VisionTransformer extends Module {
  readonly cls_token: Tensor;
  readonly pos_embed: Tensor;
  readonly patch_embed: PatchEmbed;
  readonly blocks: Block[];
  readonly norm: LayerNorm;
  readonly head: Linear;
  /** Distilled DeiT only: the distillation token and its head. */
  readonly dist_token: Tensor | null = null;
  readonly head_dist: Linear | null = null;
  readonly numPrefixTokens: number;

  constructor(readonly cfg: VitConfig, init: Init) {
    super();
    const C = cfg.embedDim, grid = cfg.imgSize / cfg.patchSize;
    if (!Number.isInteger(grid)) throw new Error(`image size ${cfg.imgSize} is not a multiple of patch ${cfg.patchSize}`);
    this.numPrefixTokens = numPrefixTokens(cfg);
    // registration order = timm's state_dict order
    this.cls_token = this.param('cls_token', [1, 1, C], () => init.truncNormal(1e-6));
    this.pos_embed = this.param('pos_embed', [1, this.numPrefixTokens + grid * grid, C], () => init.truncNormal(0.02));
    this.patch_embed = this.child('patch_embed', new PatchEmbed(cfg.imgSize, cfg.patchSize, cfg.inChans, C, init));
    const list = this.child('blocks', new ModuleList<Block>());
    const scale = (C / cfg.numHeads) ** -0.5;
    for (let i = 0; i < cfg.depth; i++) list.push(new Block(C, cfg.numHeads, blockWidths(cfg, i), cfg.eps, init, cfg.qkvBias, scale));
    this.blocks = list.items;
    this.norm = this.child('norm', new LayerNorm(C, cfg.eps));
    this.head = this.child('head', new Linear(C, cfg.numClasses, init));
    if (cfg.distilled) {
      this.dist_token = this.param('dist_token', [1, 1, C], () => init.truncNormal(0.02));
      if (cfg.distillHead !== false) this.head_dist = this.child('head_dist', new Linear(C, cfg.numClasses, init));
    }
  }

  /** Token grid (rows, cols) after patch embedding. */
  get grid(): [number, number] { return this.patch_embed.gridSize; }

  /** Patch embedding, prefix tokens (class, then distillation) and position embedding: [B, C_in, S, S] -> [B, N, C]. */
  embed(x: Tensor): Tensor {
    let t = this.patch_embed.forward(x);
    if (this.dist_token) t = ops.prependToken(t, this.dist_token);
    return ops.add(ops.prependToken(t, this.cls_token), this.pos_embed);
  }

  forwardFeatures(x: Tensor): Tensor {
    let h = this.embed(x);
    for (const b of this.blocks) h = inferenceScope(() => b.forward(h));
    return this.norm.forward(h);
  }

  /** Class-token pooling and the linear head (distilled: mean with head_dist on token 1): [B, N, C] -> [B, classes]. */
  forwardHead(x: Tensor): Tensor {
    const y = this.head.forward(ops.selectToken(x, 0));
    if (!this.head_dist) return y;
    return ops.scale(ops.add(y, this.head_dist.forward(ops.selectToken(x, 1))), 0.5);
  }

  forward(x: Tensor): Tensor { return this.forwardHead(this.forwardFeatures(x)); }
}
