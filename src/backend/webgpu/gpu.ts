// The slice of the WebGPU API this backend uses, typed structurally so that
// the build needs neither @webgpu/types nor the optional `webgpu` package:
// dawn.node's objects (Node) and `navigator.gpu`'s (browsers) both fit.
// Constants are the spec's numeric values, so no GPUBufferUsage global is needed.

export const BUFFER_MAP_READ = 0x0001;
export const BUFFER_COPY_SRC = 0x0004;
export const BUFFER_COPY_DST = 0x0008;
export const BUFFER_UNIFORM = 0x0040;
export const BUFFER_STORAGE = 0x0080;
export const MAP_READ = 0x0001;
export const SHADER_STAGE_COMPUTE = 0x4;

export interface GpuBuffer {
  readonly size: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

export interface GpuComputePass {
  setPipeline(p: GpuPipeline): void;
  setBindGroup(index: number, group: GpuBindGroup, dynamicOffsets?: number[]): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}

export interface GpuCommandEncoder {
  beginComputePass(desc?: { label?: string }): GpuComputePass;
  copyBufferToBuffer(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, size: number): void;
  finish(): GpuCommandBuffer;
}

// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface GpuCommandBuffer { readonly label?: string }
export interface GpuPipeline { readonly label?: string }
export interface GpuBindGroup { readonly label?: string }
export interface GpuBindGroupLayout { readonly label?: string }
export interface GpuPipelineLayout { readonly label?: string }

export interface GpuCompilationMessage { type: string; message: string; lineNum: number; linePos: number }
export interface GpuShaderModule { getCompilationInfo(): Promise<{ messages: readonly GpuCompilationMessage[] }> }

export interface GpuQueue {
  submit(buffers: GpuCommandBuffer[]): void;
  writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void;
  onSubmittedWorkDone(): Promise<void>;
}

export interface GpuLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly minUniformBufferOffsetAlignment: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly [k: string]: unknown;
}

export interface GpuError { readonly message: string }

export interface GpuDevice {
  readonly limits: GpuLimits;
  readonly queue: GpuQueue;
  readonly lost: Promise<{ reason: string; message: string }>;
  createBuffer(desc: { size: number; usage: number; label?: string; mappedAtCreation?: boolean }): GpuBuffer;
  createShaderModule(desc: { code: string; label?: string }): GpuShaderModule;
  createBindGroupLayout(desc: { entries: Array<Record<string, unknown>>; label?: string }): GpuBindGroupLayout;
  createPipelineLayout(desc: { bindGroupLayouts: GpuBindGroupLayout[]; label?: string }): GpuPipelineLayout;
  createComputePipeline(desc: { layout: GpuPipelineLayout; compute: { module: GpuShaderModule; entryPoint: string }; label?: string }): GpuPipeline;
  createBindGroup(desc: { layout: GpuBindGroupLayout; entries: Array<{ binding: number; resource: { buffer: GpuBuffer; offset?: number; size?: number } }>; label?: string }): GpuBindGroup;
  createCommandEncoder(desc?: { label?: string }): GpuCommandEncoder;
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<GpuError | null>;
  destroy(): void;
  onuncapturederror?: ((ev: { error: GpuError }) => void) | null;
}

export interface GpuAdapterInfo { vendor?: string; architecture?: string; device?: string; description?: string }

export interface GpuAdapter {
  readonly limits: GpuLimits;
  readonly features: { has(f: string): boolean; readonly size: number };
  readonly info?: GpuAdapterInfo;
  readonly isFallbackAdapter?: boolean;
  requestDevice(desc?: { requiredLimits?: Record<string, number>; requiredFeatures?: string[]; label?: string }): Promise<GpuDevice>;
}

export interface GpuRequestAdapterOptions { powerPreference?: 'low-power' | 'high-performance'; featureLevel?: 'core' | 'compatibility'; forceFallbackAdapter?: boolean }

export interface Gpu { requestAdapter(o?: GpuRequestAdapterOptions): Promise<GpuAdapter | null> }
