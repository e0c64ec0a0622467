// Module: a tree of named parameters whose dotted names are timm's
// (`blocks.0.attn.qkv.weight`), so timm checkpoints load by name.
import { Tensor, keep } from '../tensor.js';

export interface Init {
  /** timm's trunc_normal_(std) with bounds +-2 (absolute). */
  truncNormal(std: number): number;
  uniform(lo: number, hi: number): number;
}

/** Every parameter zero: for models whose weights are written right after (loading, extraction, copies). */
export const ZERO_INIT: Init = { truncNormal: () => 0, uniform: () => 0 };

export abstract class Module {
  private readonly _params = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  protected param(name: string, shape: number[], fill: number | ((i: number) => number)): Tensor {
    const t = keep(new Tensor(shape));
    const data = new Float32Array(t.size);
    if (typeof fill === 'number') data.fill(fill);
    else for (let i = 0; i < data.length; i++) data[i] = fill(i);
    t.write(data);
    t.requiresGrad = true;
    t.name = name;
    this._params.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] { return this.namedParameters().map(([, p]) => p); }

  /** Replace a parameter's values (shape must match). */
  setParam(name: string, data: Float32Array): void {
    const p = new Map(this.namedParameters()).get(name);
    if (!p) throw new Error(`no parameter '${name}'`);
    p.write(data);
  }

  dispose(): void { for (const p of this.parameters()) p.dispose(); }
  /** Free the inference caches derived from the weights (pre-packed GEMM operands); they are rebuilt on next use. */
  releaseCaches(): void {
    for (const p of this.parameters()) if (p.packed) { p.backend.free(p.packed.ptr); p.packed = null; }
  }

  numParams(): number { return this.parameters().reduce((s, p) => s + p.size, 0); }
}
