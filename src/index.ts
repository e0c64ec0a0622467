// caitjs public API.
export { Tensor, scope, keep, setBackend, getBackend, setBackendFactory, liveTensorCount } from './tensor.js';
export type { Backend, Ptr } from './backend/backend.js';
export { KERNELS, type KernelName } from './backend/kernels.js';
export { WasmBackend, loadWasm, loadWasmSync, relaxedSimdSupported } from './backend/wasm.js';
export { ReferenceBackend } from './backend/reference/index.js';
export { backward, noGrad, zeroGrad, record } from './autograd.js';
export * as ops from './ops/index.js';
export { VisionTransformer } from './nn/vit.js';
export { PRESETS, getPreset, type VitConfig } from './nn/presets.js';
export { createModel, loadModel, saveModel } from './nn/model.js';
export { readSafetensors, readSafetensorsFile, writeSafetensors, writeSafetensorsFile, SafetensorsError } from './io/safetensors.js';
export { decodeImage, encodePng, readImageFile } from './io/image.js';
export { AdamW, clipGradNorm, cosineLr } from './train/optim.js';
export { train, evaluate } from './train/trainer.js';
export { Rng } from './util/rng.js';
export * as atme from './cait/atme.js';
export { CaitModel } from './cait/wrap.js';
export { countMacs } from './cait/macs.js';
