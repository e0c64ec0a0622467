// Differentiable ops: each records its backward beside its forward (see autograd.ts).
export { linear, linearGelu } from './linear.js';
export { layerNorm } from './norm.js';
export { gelu } from './activation.js';
export { add, mul, scale, reshape } from './elementwise.js';
export { prependToken, selectToken, meanTokens } from './tokens.js';
export { attention, type AttentionOpts } from './attention.js';
export { patchify } from './patch.js';
export { crossEntropy, distillKL, weightedSum } from './loss.js';
export { gatherRows, gatherCols } from './gather.js';
