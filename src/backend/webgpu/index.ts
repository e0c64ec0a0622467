// WebGPU entry points that run anywhere (browsers and Node alike): a backend
// from a `navigator.gpu`-like object. Reading a tensor on any backend
// (readTensor) lives with Tensor in src/tensor.ts; readsAsync with the
// Backend interface.
//
// Browsers: `await createWebGpuBackend()` uses navigator.gpu (headless
// Chromium needs --enable-unsafe-webgpu and a page served over http(s), e.g.
// from 127.0.0.1, not about:blank). Node: ./node.ts (createNodeWebGpu), which
// finds dawn and a software adapter when there is no GPU.
import type { Gpu, GpuRequestAdapterOptions } from './gpu.js';
import { WebGpuBackend, type WebGpuBackendOptions } from './backend.js';

export { WebGpuBackend, type WebGpuBackendOptions } from './backend.js';
export { readsAsync, type AsyncReadable } from '../backend.js';

/** A backend on `gpu` (default: navigator.gpu), or an Error saying why not. */
export async function createWebGpuBackend(o: WebGpuBackendOptions & { gpu?: Gpu; adapter?: GpuRequestAdapterOptions } = {}): Promise<WebGpuBackend> {
  const gpu = o.gpu ?? (globalThis as unknown as { navigator?: { gpu?: Gpu } }).navigator?.gpu;
  if (!gpu) throw new Error("WebGPU is not available here (no navigator.gpu): in a browser without it use the default WASM backend; in Node, load(model, { backend: 'webgpu' }) with the optional package webgpu installed");
  const adapter = await gpu.requestAdapter(o.adapter);
  if (!adapter) throw new Error('WebGPU: requestAdapter() returned null (no suitable GPU; headless Chromium needs --enable-unsafe-webgpu)');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: { maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize },
    label: 'cait',
  });
  const i = adapter.info ?? {};
  return new WebGpuBackend(device, { ...o, info: o.info ?? ([i.description || i.device, i.vendor, i.architecture].filter(Boolean).join(' / ') || 'navigator.gpu') });
}
