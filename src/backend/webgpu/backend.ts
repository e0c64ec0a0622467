// The WebGPU backend: the same Backend interface as the WASM and reference backends,
// over one GPU storage buffer, in Node (dawn, the `webgpu` package; see
// ./node.ts) and in browsers (navigator.gpu; see ./index.ts).
//
// Heap. One storage buffer is the whole heap, managed by the shared
// HeapAllocator, so pointers are byte offsets exactly as on the other backends
// and ops keep their pointer arithmetic (attention's per-head offsets into the
// qkv buffer included). It grows like WASM memory: a bigger buffer, the old
// contents copied on the GPU. Its ceiling is the device's largest storage
// binding (maxStorageBufferBindingSize; 128 MiB on the OpenGL ES route, 1 GiB
// on SwiftShader, more on real GPUs). Like WASM memory it is not shrunk when
// models are disposed: the allocator reuses the freed blocks (destroy() gives
// the whole buffer back).
//
// Kernels. Each kernel name of src/backend/kernels.ts is a WGSL compute
// shader (./kernels/, files named like assembly/) taking the same numeric
// arguments through a uniform (./shader.ts describes the convention). `run`
// only ENCODES: dispatches go into one command encoder, and their arguments
// into a ring of 256-byte uniform slots addressed by dynamic offset; the
// encoder is submitted lazily (when a host read or write needs it, or the ring
// is full). Weights are uploaded once (`write`), activations stay on the GPU,
// and only what the caller reads comes back.
//
// Reads. WebGPU cannot copy GPU memory to the host synchronously, so `read`
// and `readI32` throw; use `readAsync` / `readI32Async` (or readTensor in
// src/tensor.ts). The copy is encoded at the call, so the snapshot is the
// tensor's contents at that point of the program even if it is freed or
// overwritten before the promise settles.
//
// Unsupported: `sum_sq` (a host scalar; training's gradient clipping). Every
// other kernel, backward ones included, runs. `logf` is an extra for ops that
// would otherwise compute on the host (ATME's key bias, see src/cait/atme.ts).
import type { Backend, Ptr } from '../backend.js';
import { KERNEL_ARGS, KERNEL_TABLE, parseKernelArgs, type KernelArg, type KernelName } from '../kernels.js';
import { HeapAllocator } from '../memory.js';
import {
  BUFFER_COPY_DST, BUFFER_COPY_SRC, BUFFER_MAP_READ, BUFFER_STORAGE, BUFFER_UNIFORM, MAP_READ, SHADER_STAGE_COMPUTE,
  type GpuBindGroup, type GpuBindGroupLayout, type GpuBuffer, type GpuCommandEncoder, type GpuComputePass, type GpuDevice,
  type GpuPipeline, type GpuPipelineLayout, type GpuShaderModule,
} from './gpu.js';
import { kernelSource, type KernelSpec } from './shader.js';
import { EXTRA_KERNELS, UNSUPPORTED, WGSL_KERNELS } from './kernels/index.js';

export interface WebGpuBackendOptions {
  /** Initial heap bytes (default 16 MiB, as the WASM memory's start). */
  initialBytes?: number;
  /** Heap ceiling in bytes (default and maximum: the device's largest storage binding). */
  maxBytes?: number;
  /** Uniform slots per submission (default 1024). */
  slots?: number;
  /** A description of the adapter and route, for reports (`info`). */
  info?: string;
}

interface Compiled {
  name: string;
  spec: KernelSpec;
  args: readonly KernelArg[];
  module: GpuShaderModule;
  pipelines: GpuPipeline[];
}

const ALIGN4 = (n: number) => Math.ceil(n / 4) * 4;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  /** The GEMM packing buffer of the CPU backends: not needed here (pointer 0). */
  readonly scratch: Ptr = 0;
  readonly info: string;
  /** Counters: kernel calls, dispatches, submissions, heap growths. */
  readonly counters = { runs: 0, dispatches: 0, submits: 0, grows: 0, reads: 0, writes: 0 };

  private heap: GpuBuffer;
  private capacity: number;
  private readonly maxBytes: number;
  private readonly mem: HeapAllocator;
  private readonly bgl: GpuBindGroupLayout;
  private readonly layout: GpuPipelineLayout;
  private bindGroup: GpuBindGroup;
  private readonly argBuf: GpuBuffer;
  private readonly argHost: ArrayBuffer;
  private readonly argU32: Uint32Array;
  private readonly argF32: Float32Array;
  private readonly slotBytes: number;
  private readonly slots: number;
  private used = 0;
  private encoder: GpuCommandEncoder | null = null;
  private pass: GpuComputePass | null = null;
  private readonly compiled = new Map<string, Compiled>();
  private readonly maxGroups: number;
  private destroyed = false;
  private firstError: string | null = null;

  constructor(readonly device: GpuDevice, o: WebGpuBackendOptions = {}) {
    const lim = device.limits;
    this.info = o.info ?? 'webgpu';
    this.maxBytes = Math.floor(Math.min(o.maxBytes ?? Infinity, lim.maxStorageBufferBindingSize, lim.maxBufferSize) / 256) * 256;
    this.maxGroups = lim.maxComputeWorkgroupsPerDimension || 65535;
    this.capacity = Math.min(ALIGN4(o.initialBytes ?? 16 << 20), this.maxBytes);
    this.heap = this.newHeap(this.capacity);
    this.slotBytes = Math.max(256, lim.minUniformBufferOffsetAlignment || 256);
    this.slots = o.slots ?? 1024;
    this.argHost = new ArrayBuffer(this.slotBytes * this.slots);
    this.argU32 = new Uint32Array(this.argHost);
    this.argF32 = new Float32Array(this.argHost);
    this.argBuf = device.createBuffer({ size: this.argHost.byteLength, usage: BUFFER_UNIFORM | BUFFER_COPY_DST, label: 'cait args' });
    this.bgl = device.createBindGroupLayout({
      label: 'cait heap+args',
      entries: [
        { binding: 0, visibility: SHADER_STAGE_COMPUTE, buffer: { type: 'storage' } },
        { binding: 1, visibility: SHADER_STAGE_COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
      ],
    });
    this.layout = device.createPipelineLayout({ bindGroupLayouts: [this.bgl], label: 'cait' });
    this.bindGroup = this.makeBindGroup();
    device.onuncapturederror = (ev) => {
      const msg = ev.error?.message ?? String(ev);
      if (!this.firstError) this.firstError = msg;
    };
    this.mem = new HeapAllocator(this.capacity, (need) => this.grow(need));
  }

  // ------------------------------------------------------------ Backend

  alloc(n: number): Ptr { this.live(); return this.mem.alloc(n * 4); }
  free(p: Ptr): void { this.mem.free(p); }

  read(_p: Ptr, _n: number): Float32Array {
    throw new Error('webgpu backend: the host cannot read GPU memory synchronously; use `await backend.readAsync(ptr, n)` (readTensor in src/tensor.ts)');
  }
  readI32(_p: Ptr, _n: number): Int32Array {
    throw new Error('webgpu backend: the host cannot read GPU memory synchronously; use `await backend.readI32Async(ptr, n)`');
  }

  write(p: Ptr, data: Float32Array | Int32Array): void {
    this.live();
    if (p % 4) throw new RangeError(`webgpu write: pointer ${p} is not 4-byte aligned`);
    if (!data.byteLength) return;
    // earlier dispatches must run before the bytes land: submit them first
    if (this.encoder) this.flush();
    this.device.queue.writeBuffer(this.heap, p, data);
    this.counters.writes++;
  }

  run(kernel: KernelName, ...args: number[]): number {
    this.dispatch(this.kernel(kernel), args);
    return 0;
  }

  stats() { return { bytesInUse: this.mem.bytesInUse, peakBytes: this.mem.peakBytes, liveBlocks: this.mem.liveCount }; }

  // ------------------------------------------------------------ extras

  /** Copy `n` float32 values out of the heap (resolves once the GPU got there). */
  async readAsync(p: Ptr, n: number): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(p, n * 4));
  }
  async readI32Async(p: Ptr, n: number): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(p, n * 4));
  }

  /** y[i] = ln x[i] on the device (ATME's proportional-attention key bias). */
  logf(x: Ptr, y: Ptr, n: number): void {
    this.dispatch(this.extra('log'), [x, y, n]);
  }

  /** Submit whatever is encoded. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.used) this.device.queue.writeBuffer(this.argBuf, 0, this.argHost, 0, this.used * this.slotBytes);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.used = 0;
    this.counters.submits++;
  }

  /** Resolves when everything run so far has executed; rejects with the first GPU validation error, if any. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.raise();
  }

  /** The first uncaptured GPU error so far (validation, out of memory), or null. */
  get error(): string | null { return this.firstError; }

  /** Heap bytes now reserved on the device, and the ceiling. */
  get heapBytes(): { capacity: number; max: number } { return { capacity: this.capacity, max: this.maxBytes }; }

  /**
   * Compile every kernel's shader and report WGSL errors (name: message), for
   * tests and diagnostics; pipelines are otherwise created at first use.
   */
  async checkShaders(): Promise<string[]> {
    const errors: string[] = [];
    const names = [...Object.keys(WGSL_KERNELS).filter((k) => WGSL_KERNELS[k as KernelName]), ...Object.keys(EXTRA_KERNELS)];
    for (const name of names) {
      const spec = (WGSL_KERNELS as Record<string, KernelSpec | null>)[name] ?? (EXTRA_KERNELS as Record<string, KernelSpec>)[name];
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code: kernelSource(spec, this.argsOf(name)), label: name });
      const info = await module.getCompilationInfo();
      await this.device.popErrorScope();   // reported below, not as an uncaptured error
      for (const m of info.messages) if (m.type === 'error') errors.push(`${name}:${m.lineNum}:${m.linePos}: ${m.message}`);
    }
    return errors;
  }

  /** Release the heap and the device. The backend is unusable afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    try { this.flush(); } catch { /* device may be lost */ }
    this.destroyed = true;
    this.heap.destroy();
    this.argBuf.destroy();
    // the handler closes over this backend, and dawn.node keeps a device's
    // handler alive after destroy(): without unhooking it no backend was ever
    // collected (its pipelines, about 20 MB, with it)
    this.device.onuncapturederror = null;
    this.device.destroy();
    this.compiled.clear();
  }

  // ------------------------------------------------------------ internals

  /** Throw (once) the first GPU error reported since the last check. */
  private raise(): void {
    const e = this.firstError;
    if (e) { this.firstError = null; throw new Error(`webgpu: ${e}`); }
  }

  private live(): void { if (this.destroyed) throw new Error('webgpu backend: used after destroy()'); }

  private newHeap(bytes: number): GpuBuffer {
    return this.device.createBuffer({ size: bytes, usage: BUFFER_STORAGE | BUFFER_COPY_SRC | BUFFER_COPY_DST, label: 'cait heap' });
  }

  private makeBindGroup(): GpuBindGroup {
    return this.device.createBindGroup({
      layout: this.bgl, label: 'cait heap+args',
      entries: [
        { binding: 0, resource: { buffer: this.heap } },
        { binding: 1, resource: { buffer: this.argBuf, offset: 0, size: this.slotBytes } },
      ],
    });
  }

  private grow(need: number): number {
    if (need > this.maxBytes)
      throw new RangeError(`webgpu heap: ${need} bytes needed, but this device binds at most ${this.maxBytes} bytes as one storage buffer (maxStorageBufferBindingSize); use a smaller batch`);
    const bytes = Math.min(this.maxBytes, Math.max(ALIGN4(need), this.capacity * 2));
    const next = this.newHeap(bytes);
    const enc = this.beginEncoder();
    this.endPass();
    enc.copyBufferToBuffer(this.heap, 0, next, 0, this.capacity);
    this.flush();
    this.heap.destroy();   // freed by the implementation once the submitted work is done
    this.heap = next;
    this.capacity = bytes;
    this.bindGroup = this.makeBindGroup();
    this.counters.grows++;
    return bytes;
  }

  private beginEncoder(): GpuCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'cait' });
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) { this.pass.end(); this.pass = null; }
  }

  private async readBytes(p: Ptr, bytes: number): Promise<ArrayBuffer> {
    this.live();
    if (p % 4) throw new RangeError(`webgpu read: pointer ${p} is not 4-byte aligned`);
    if (bytes <= 0) return new ArrayBuffer(0);
    if (p + bytes > this.capacity) throw new RangeError(`webgpu read: [${p}, ${p + bytes}) outside the heap (${this.capacity} bytes)`);
    const size = ALIGN4(bytes);
    const staging = this.device.createBuffer({ size, usage: BUFFER_MAP_READ | BUFFER_COPY_DST, label: 'cait readback' });
    const enc = this.beginEncoder();
    this.endPass();
    enc.copyBufferToBuffer(this.heap, p, staging, 0, size);
    this.flush();
    this.counters.reads++;
    try {
      await staging.mapAsync(MAP_READ);
      const out = staging.getMappedRange().slice(0, bytes);
      staging.unmap();
      this.raise();
      return out;
    } finally {
      staging.destroy();
    }
  }

  private kernel(name: string): Compiled {
    const have = this.compiled.get(name);
    if (have) return have;
    if (!(name in WGSL_KERNELS)) throw new Error(`webgpu backend: unknown kernel '${name}'`);
    const spec = WGSL_KERNELS[name as KernelName];
    if (!spec) throw new Error(`webgpu backend: kernel '${name}' is not supported: ${UNSUPPORTED[name as KernelName] ?? 'no WGSL version'}`);
    return this.compile(name, spec, KERNEL_ARGS[name as KernelName]);
  }

  /** A kernel's arguments: the kernel table's, or an extra's own list. */
  private argsOf(name: string): readonly KernelArg[] {
    return name in KERNEL_ARGS ? KERNEL_ARGS[name as KernelName] : parseKernelArgs(EXTRA_KERNELS[name as keyof typeof EXTRA_KERNELS].args);
  }

  private extra(name: keyof typeof EXTRA_KERNELS): Compiled {
    return this.compiled.get(`extra:${name}`) ?? this.compile(`extra:${name}`, EXTRA_KERNELS[name], parseKernelArgs(EXTRA_KERNELS[name].args));
  }

  private compile(name: string, spec: KernelSpec, args: readonly KernelArg[]): Compiled {
    this.live();
    const module = this.device.createShaderModule({ code: kernelSource(spec, args), label: name });
    const pipelines = spec.stages.map((s) => this.device.createComputePipeline({
      layout: this.layout, compute: { module, entryPoint: s.entry }, label: `${name}.${s.entry}`,
    }));
    const c: Compiled = { name, spec, args, module, pipelines };
    this.compiled.set(name, c);
    return c;
  }

  private dispatch(k: Compiled, args: number[]): void {
    this.live();
    const spec = k.args;
    if (args.length !== spec.length) throw new Error(`webgpu ${k.name}: ${args.length} arguments, expected ${spec.length} (${(KERNEL_TABLE as Record<string, string>)[k.name] ?? k.args.map((a) => `${a.name}:${a.kind}`).join(' ')})`);
    if (this.used === this.slots) this.flush();
    const base = (this.used * this.slotBytes) >> 2;
    const v: Record<string, number> = {};
    for (let i = 0; i < spec.length; i++) {
      const { name, kind } = spec[i];
      let x = args[i];
      if (kind === 'f') { this.argF32[base + i] = x; v[name] = x; continue; }
      if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new RangeError(`webgpu ${k.name}: argument ${name} = ${x} is not a non-negative integer`);
      if (kind === 'p') {
        if (x % 4) throw new RangeError(`webgpu ${k.name}: pointer ${name} = ${x} is not 4-byte aligned`);
        x = x / 4;
      }
      this.argU32[base + i] = x;
      v[name] = x;
    }
    let any = false;
    for (let s = 0; s < k.spec.stages.length; s++) {
      const g = k.spec.stages[s].groups(v);
      let x: number, y = 1, z = 1;
      if (Array.isArray(g)) {
        [x, y, z] = g;
        if (!(x > 0 && y > 0 && z > 0)) continue;
        if (x > this.maxGroups || y > this.maxGroups || z > this.maxGroups)
          throw new RangeError(`webgpu ${k.name}: ${x} x ${y} x ${z} workgroups exceed the device's ${this.maxGroups} per dimension`);
      } else {
        if (!(g > 0)) continue;
        // a 1-D launch spread over x and y; shaders flatten it (wgid) and bound-check
        y = Math.ceil(g / this.maxGroups);
        x = Math.ceil(g / y);
        if (y > this.maxGroups) throw new RangeError(`webgpu ${k.name}: ${g} workgroups exceed the device's limits`);
      }
      if (!this.pass) this.pass = this.beginEncoder().beginComputePass({ label: 'cait' });
      this.pass.setPipeline(k.pipelines[s]);
      this.pass.setBindGroup(0, this.bindGroup, [this.used * this.slotBytes]);
      this.pass.dispatchWorkgroups(x, y, z);
      this.counters.dispatches++;
      any = true;
    }
    this.counters.runs++;
    if (any) this.used++;
  }
}
