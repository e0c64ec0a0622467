// The ViT's building blocks in timm's reading order and parameter names.
// Shapes: B batch, N tokens, C embed dim, H heads, D = C / H, M MLP hidden.
import { Tensor } from '../tensor.js';
import * as ops from '../ops/index.js';
import { Module, type Init } from './module.js';

/** torch.nn.Linear: weight [out, in], bias [out]; timm init trunc_normal(.02), zero bias. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, init: Init, bias = true) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures], () => init.truncNormal(0.02));
    this.bias = bias ? this.param('bias', [outFeatures], 0) : null;
  }
  forward(x: Tensor): Tensor { return ops.linear(x, this.weight, this.bias); }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', [dim], 1);
    this.bias = this.param('bias', [dim], 0);
  }
  forward(x: Tensor): Tensor { return ops.layerNorm(x, this.weight, this.bias, this.eps); }
}

/** timm Mlp: fc1 -> GELU -> fc2. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dim: number, hidden: number, init: Init) {
    super();
    this.fc1 = this.child('fc1', new Linear(dim, hidden, init));
    this.fc2 = this.child('fc2', new Linear(hidden, dim, init));
  }
  forward(x: Tensor): Tensor { return this.fc2.forward(ops.linearGelu(x, this.fc1.weight, this.fc1.bias)); }
}

/**
 * timm Attention: qkv Linear(C, 3C) -> per-head softmax(q k^T * scale) v -> proj.
 * A CDCP-compact model keeps fewer channels per head: q and k have dqk, v has
 * dv (all heads alike), and the scale stays the dense model's D^-0.5.
 * `keyBias` ([B, N], optional) is added to the logits: ATME's proportional attention.
 * `onQkv`, if given, sees the qkv activations so a wrapper can read the keys
 * (ATME's similarity) without the model knowing about merging.
 */
export class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(readonly dim: number, readonly numHeads: number, init: Init, qkvBias: boolean,
    readonly dqk: number, readonly dv: number, readonly scale: number) {
    super();
    this.qkv = this.child('qkv', new Linear(dim, numHeads * (2 * dqk + dv), init, qkvBias));
    this.proj = this.child('proj', new Linear(numHeads * dv, dim, init));
  }
  forward(x: Tensor, keyBias: Tensor | null = null, onQkv?: (qkv: Tensor) => void): Tensor {
    const qkv = this.qkv.forward(x);
    onQkv?.(qkv);
    const o = ops.attention(qkv, { heads: this.numHeads, scale: this.scale, keyBias, headDimQK: this.dqk, headDimV: this.dv });
    return this.proj.forward(o);
  }
}

/** Per-block widths: head dims of q/k and v, MLP hidden. A dense block has qk = v = C/H. */
export interface BlockWidths { qk: number; v: number; mlp: number }

/** Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)). */
export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  constructor(dim: number, heads: number, w: BlockWidths, eps: number, init: Init, qkvBias: boolean, scale: number) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim, eps));
    this.attn = this.child('attn', new Attention(dim, heads, init, qkvBias, w.qk, w.v, scale));
    this.norm2 = this.child('norm2', new LayerNorm(dim, eps));
    this.mlp = this.child('mlp', new Mlp(dim, w.mlp, init));
  }
  /** The two residual branches are separate so that a wrapper (ATME) can act between them. */
  attnResidual(x: Tensor, keyBias: Tensor | null = null, onQkv?: (qkv: Tensor) => void): Tensor {
    return ops.add(x, this.attn.forward(this.norm1.forward(x), keyBias, onQkv));
  }
  mlpResidual(x: Tensor): Tensor { return ops.add(x, this.mlp.forward(this.norm2.forward(x))); }
  forward(x: Tensor): Tensor { return this.mlpResidual(this.attnResidual(x)); }
}

/** timm PatchEmbed: Conv2d(C_in, E, P, stride P) as patchify + GEMM; weight [E, C_in, P, P]. */
export class PatchEmbed extends Module {
  readonly proj: ConvAsLinear;
  readonly gridSize: [number, number];
  constructor(readonly imgSize: number, readonly patchSize: number, readonly inChans: number, readonly embedDim: number, init: Init) {
    super();
    this.gridSize = [imgSize / patchSize, imgSize / patchSize];
    const fanIn = inChans * patchSize * patchSize, bound = 1 / Math.sqrt(fanIn);
    // torch Conv2d default init: kaiming_uniform(a=sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias likewise
    this.proj = this.child('proj', new ConvAsLinear(embedDim, inChans, patchSize, init, bound));
  }
  forward(x: Tensor): Tensor {
    const [, C, H, W] = x.shape;
    if (C !== this.inChans || H !== this.imgSize || W !== this.imgSize)
      throw new Error(`PatchEmbed: input [${x.shape}], expected [B, ${this.inChans}, ${this.imgSize}, ${this.imgSize}]`);
    return this.proj.forward(ops.patchify(x, this.patchSize));
  }
}

/** A conv weight [E, C, P, P] applied to patch rows of C*P*P values (linear() flattens trailing weight dims). */
export class ConvAsLinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(out: number, inChans: number, p: number, init: Init, bound: number) {
    super();
    this.weight = this.param('weight', [out, inChans, p, p], () => init.uniform(-bound, bound));
    this.bias = this.param('bias', [out], () => init.uniform(-bound, bound));
  }
  forward(x: Tensor): Tensor { return ops.linear(x, this.weight, this.bias); }
}
