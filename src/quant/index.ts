// int8 inference (browser-safe part): quantize a model by wrapping its
// Linears, save and load int8 files. Node file helpers: ./node.ts.
export { INT8_SCHEME, QLinear, QuantizedModel, quantizeModel, quantizeWeight, weightResidual, dequantizeWeight, hasInt8Kernels, namedModules, prefixTokens, pooledRows, type PrefixRows, type QuantizeOptions, type Int8Weight } from './int8.js';
export { quantizedFileBytes, quantizeLoaded, quantizeForInference, loadQuantizedBytes, quantScheme, quantMetadata, SCALE_SUFFIX, RESIDUAL_SUFFIX, RESIDUAL_SCALE_SUFFIX, LOAD_QUANTIZE, type LoadQuantize, type QuantMetadata } from './format.js';
