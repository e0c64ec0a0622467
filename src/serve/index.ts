// cait serve from code: createServer({ models: ['models/fmnist-cait.safetensors'], port: 0 }).
export { createServer, SERVE_DEFAULTS, SERVE_RANGES, type CaitServer, type ServeOptions, type ServeLimits, type LogFormat } from './server.js';
export { ServedModel, parseModelSpec, type ModelSpec } from './model.js';
export { HttpError } from './protocol.js';
