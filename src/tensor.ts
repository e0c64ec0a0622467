// Tensor: a float32 array in a backend's heap, plus its shape and autograd slots.
//
// Memory is explicit: `dispose()` frees it. `scope(fn)` frees every tensor
// created inside fn except those it returns (and those `keep()` releases from
// tracking), so a training loop does not leak. Parameters are created outside
// any scope, or kept.
import { readsAsync, type Backend, type Ptr } from './backend/backend.js';
import { ReferenceBackend } from './backend/reference/index.js';
import { call } from './backend/kernels.js';

let defaultBackend: Backend | null = null;
let backendFactory: (() => Backend) | null = null;

/** A tensor's values on any backend: a synchronous copy on WASM/reference, an awaited read-back on WebGPU. */
export async function readTensor(t: Tensor): Promise<Float32Array> {
  t.check();
  const be = t.backend;
  return readsAsync(be) ? be.readAsync(t.ptr, t.size) : t.toArray();
}

export function setBackend(b: Backend): void { defaultBackend = b; }
/** Register how to make the default backend lazily (the Node entry sets WASM). */
export function setBackendFactory(f: () => Backend): void { backendFactory = f; }
export function getBackend(): Backend {
  if (!defaultBackend) defaultBackend = backendFactory ? backendFactory() : new ReferenceBackend();
  return defaultBackend;
}

/**
 * Throws unless every tensor given lives on `x`'s backend: a kernel reads all
 * its pointers in one heap, so a tensor of another backend (another WASM
 * instance included: load() makes its own and leaves it the default) would be
 * read as whatever that heap holds there, without an error.
 */
export function sameBackend(op: string, x: Tensor, ...others: Array<Tensor | null | undefined>): void {
  for (const t of others) {
    if (t && t.backend !== x.backend) {
      const same = t.backend.name === x.backend.name ? ` (two instances of ${x.backend.name})` : ` (${x.backend.name} and ${t.backend.name})`;
      throw new Error(`${op}: tensors on two backends${same}: make them on one (setBackend before creating them, or Tensor.from(data, shape, backend))`);
    }
  }
}

export type Shape = readonly number[];
export const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);

let liveTensors = 0;
export const liveTensorCount = (): number => liveTensors;

const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly shape: number[];
  readonly size: number;
  readonly backend: Backend;
  ptr: Ptr;
  /** Set for parameters and for anything computed from them while grad is on. */
  requiresGrad = false;
  grad: Tensor | null = null;
  /** Autograd: true for tensors created by a recorded op (not leaves). */
  hasNode = false;
  name?: string;
  /**
   * Bumped by every write through this object (Tensor.write, the optimizer's
   * step), so caches derived from the values (linear's pre-packed weights)
   * know when they are stale. Raw backend writes to `ptr` bypass it.
   */
  version = 0;
  /** The pre-packed copy of a weight for inference GEMMs (src/ops/linear.ts), freed with the tensor. */
  packed: { version: number; ptr: Ptr } | null = null;
  private disposed = false;

  constructor(shape: Shape, backend: Backend = getBackend(), ptr?: Ptr) {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new RangeError(`bad shape [${shape}]`);
    this.shape = [...shape];
    this.size = numel(shape);
    this.backend = backend;
    this.ptr = ptr ?? backend.alloc(this.size);
    liveTensors++;
    scopes[scopes.length - 1]?.add(this);
  }

  get isDisposed(): boolean { return this.disposed; }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.free(this.ptr);
    if (this.packed) { this.backend.free(this.packed.ptr); this.packed = null; }
    liveTensors--;
    for (const s of scopes) s.delete(this);
    if (this.grad && !this.grad.disposed) this.grad.dispose();
  }

  toArray(): Float32Array { this.check(); return this.backend.read(this.ptr, this.size); }
  item(): number { return this.toArray()[0]; }
  write(data: ArrayLike<number>): this {
    this.check();
    if (data.length !== this.size) throw new RangeError(`write: ${data.length} values into a tensor of shape [${this.shape}] (${this.size})`);
    this.backend.write(this.ptr, data instanceof Float32Array ? data : Float32Array.from(data));
    this.version++;
    return this;
  }

  /** Same memory, new shape (no copy, no grad link: use ops.reshape for that). */
  check(): void { if (this.disposed) throw new Error(`use of disposed tensor${this.name ? ` '${this.name}'` : ''} [${this.shape}]`); }

  toString(): string { return `Tensor[${this.shape}]${this.name ? ` ${this.name}` : ''}`; }

  static zeros(shape: Shape, backend: Backend = getBackend()): Tensor {
    const t = new Tensor(shape, backend);
    call(backend, 'fill', { y: t.ptr, n: t.size, v: 0 });
    return t;
  }
  static full(shape: Shape, v: number, backend: Backend = getBackend()): Tensor {
    const t = new Tensor(shape, backend);
    call(backend, 'fill', { y: t.ptr, n: t.size, v });
    return t;
  }
  static from(data: ArrayLike<number>, shape: Shape, backend: Backend = getBackend()): Tensor {
    return new Tensor(shape, backend).write(data);
  }
}

type Tree = Tensor | null | undefined | number | string | boolean | Tree[] | { [k: string]: Tree };
function collect(x: unknown, out: Set<Tensor>): void {
  if (x instanceof Tensor) { out.add(x); if (x.grad) out.add(x.grad); }
  else if (Array.isArray(x)) for (const v of x) collect(v, out);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) collect(v, out);
}

/**
 * Run fn; dispose every tensor it created except those reachable from its
 * result (tensors, arrays and plain objects are searched), which move to the
 * enclosing scope. If fn throws, every tensor it created is disposed.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Set<Tensor>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // nothing is returned: every tensor fn made is garbage (a forward that ran
    // out of heap half-way would otherwise keep its activations for good)
    scopes.pop();
    for (const t of mine) t.dispose();
    throw e;
  }
  scopes.pop();
  const survivors = new Set<Tensor>();
  collect(result as Tree, survivors);
  for (const t of mine) if (!survivors.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of survivors) if (mine.has(t)) parent.add(t);
  return result;
}

/** Untrack a tensor from every scope: it lives until disposed by hand. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}
