// caitjs public API in browsers (the package's `browser` export condition):
// what src/index.ts exports, less what needs Node (files, the CLI's training
// loop, Node's WebGPU adapter). Bundlers drop what a page does not use.
export { load } from './api/browser.js';
export { Model, type ImageReader } from './api/model.js';
export type { BackendName, BlobLike, ClassifyOptions, DrawableLike, ImageInput, LoadOptions, ModelInfo, ModelSource, Prediction, RgbaLike, Segmentation } from './api/types.js';
export { runnerFor, type Runner, type RunnerOptions } from './api/runner.js';
export { scope } from './api/scope.js';
export { InferencePlan, CaptureError } from './plan.js';
export { Tensor, keep, setBackend, getBackend, setBackendFactory, liveTensorCount } from './tensor.js';
export type { Backend, Ptr } from './backend/backend.js';
export { KERNELS, KERNEL_TABLE, call, type KernelName, type KernelArgs } from './backend/kernels.js';
export { WasmBackend, loadWasm, relaxedSimdSupported } from './backend/wasm.js';
export { ReferenceBackend } from './backend/reference/index.js';
export { backward, noGrad, zeroGrad, record } from './autograd.js';
export * as ops from './ops/index.js';
export { VisionTransformer } from './nn/vit.js';
export { PRESETS, getPreset, type VitConfig } from './nn/presets.js';
export { modelFromBytes } from './nn/load-bytes.js';
export { modelFromCheckpoint, type CheckpointFiles, type CheckpointLayout, type LoadedModel, type LoadOptions as CheckpointLoadOptions } from './nn/checkpoint.js';
export { ConfigError, validateConfig, estimateBytes, maxModelBytes } from './nn/validate.js';
export { readSafetensors, writeSafetensors, SafetensorsError } from './io/safetensors.js';
export { type RgbaImage } from './io/image.js';
export { imageToInput } from './data/preprocess.js';
export { Rng } from './util/rng.js';
export * as atme from './cait/atme.js';
export { CaitModel, atmeOptionsFromMetadata } from './cait/wrap.js';
export { countMacs, countParams } from './cait/macs.js';
