// caitjs public API (Node entry; browsers get src/browser.ts through the
// package's `browser` export condition).
//
// High level: load(source, options) -> Model (classify, segment, forward,
// preprocess, info, dispose), src/api/. Low level: tensors, ops, models,
// compression and backends, for people who build models.
import { setBackendFactory } from './tensor.js';
import { loadWasmSync } from './backend/wasm.js';

// the low-level API's default backend: the fastest WASM build, made on first use
setBackendFactory(() => loadWasmSync('auto'));

export { load } from './api/node.js';
export { Model, type ImageReader } from './api/model.js';
export type { BackendName, BlobLike, ClassifyOptions, DrawableLike, ImageInput, LoadOptions, ModelInfo, ModelSource, Prediction, RgbaLike, Segmentation } from './api/types.js';
export { runnerFor, type Runner, type RunnerOptions } from './api/runner.js';
export { scope } from './api/scope.js';
export { InferencePlan, CaptureError } from './plan.js';
export { Tensor, keep, setBackend, getBackend, setBackendFactory, liveTensorCount, readTensor } from './tensor.js';
export type { Backend, Ptr } from './backend/backend.js';
export { KERNELS, KERNEL_TABLE, call, type KernelName, type KernelArgs } from './backend/kernels.js';
export { WasmBackend, loadWasm, loadWasmSync, relaxedSimdSupported } from './backend/wasm.js';
export { ReferenceBackend } from './backend/reference/index.js';
export { WebGpuBackend, createWebGpuBackend } from './backend/webgpu/index.js';
export { createNodeWebGpu, NoWebGpuError } from './backend/webgpu/node.js';
export { backward, noGrad, zeroGrad, record } from './autograd.js';
export * as ops from './ops/index.js';
export { VisionTransformer } from './nn/vit.js';
export { PRESETS, getPreset, type VitConfig } from './nn/presets.js';
export { createModel, loadModel, saveModel, saveHf } from './nn/model.js';
// the checkpoint layer under load(): bytes in any supported layout -> a VisionTransformer (nn's LoadOptions, not the API's)
export { modelFromCheckpoint, type CheckpointFiles, type CheckpointLayout, type LoadedModel, type LoadOptions as CheckpointLoadOptions } from './nn/checkpoint.js';
export { ConfigError, validateConfig, estimateBytes, maxModelBytes } from './nn/validate.js';
export { readSafetensors, writeSafetensors, SafetensorsError } from './io/safetensors.js';
export { readSafetensorsFile, writeSafetensorsFile } from './io/safetensors-file.js';
export { decodeImage, encodePng, readImageFile, type RgbaImage } from './io/image.js';
export { imageToInput } from './data/preprocess.js';
export { AdamW, clipGradNorm, cosineLr } from './train/optim.js';
export { train, evaluate } from './train/trainer.js';
export { Rng } from './util/rng.js';
export * as atme from './cait/atme.js';
export { CaitModel, atmeOptionsFromMetadata } from './cait/wrap.js';
export { countMacs, countParams } from './cait/macs.js';
export { compress } from './cait/compress.js';
// int8 inference (importing it registers the int8 file decoder with the loaders)
export { quantizeModel, quantizeLoaded, loadQuantizedBytes, quantizedFileBytes, QuantizedModel, INT8_SCHEME } from './quant/index.js';
export { loadQuantized, saveQuantized } from './quant/node.js';
// ONNX export (opset 17): the float graph (dense, compact, ATME-merged), and an int8 model's in quantize_dynamic's form
export { exportVitOnnx, vitToOnnx, ONNX_OPSET, ONNX_IR_VERSION, type VitOnnxOptions, type VitOnnxResult } from './cait/onnx.js';
export { exportInt8Onnx, type Int8OnnxResult } from './quant/onnx.js';
