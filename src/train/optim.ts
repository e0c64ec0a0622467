// AdamW with timm's parameter groups: no weight decay on 1-D parameters
// (norms, biases) and on the position embedding and class token.
// Moments live beside the parameters in the backend heap; the update is one
// kernel per tensor (assembly/adamw.ts).
import { Tensor, keep } from '../tensor.js';
import { call } from '../backend/kernels.js';

export function decays(name: string, p: Tensor): boolean {
  return p.shape.length > 1 && !/(^|\.)(pos_embed|cls_token|dist_token)$/.test(name) && !name.endsWith('.bias');
}

export interface AdamWOptions { lr: number; betas?: [number, number]; eps?: number; weightDecay?: number }

export class AdamW {
  readonly b1: number;
  readonly b2: number;
  readonly eps: number;
  readonly weightDecay: number;
  step = 0;
  readonly m = new Map<string, Tensor>();
  readonly v = new Map<string, Tensor>();

  constructor(readonly params: Array<[string, Tensor]>, o: AdamWOptions) {
    [this.b1, this.b2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.05;
    for (const [n, p] of params) {
      this.m.set(n, keep(Tensor.zeros(p.shape, p.backend)));
      this.v.set(n, keep(Tensor.zeros(p.shape, p.backend)));
    }
  }

  /** One update at learning rate lr; parameters without a gradient are skipped. */
  update(lr: number): void {
    this.step++;
    const bc1 = 1 - this.b1 ** this.step, bc2 = 1 - this.b2 ** this.step;
    for (const [n, p] of this.params) {
      if (!p.grad) continue;
      const wd = decays(n, p) ? this.weightDecay : 0;
      call(p.backend, 'adamw', { p: p.ptr, g: p.grad.ptr, m: this.m.get(n)!.ptr, v: this.v.get(n)!.ptr, n: p.size, lr, b1: this.b1, b2: this.b2, eps: this.eps, wd, bc1, bc2 });
      p.version++;
    }
  }

  dispose(): void { for (const t of [...this.m.values(), ...this.v.values()]) t.dispose(); }
}

/** Scale all gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) if (p.grad) sq += call(p.backend, 'sum_sq', { x: p.grad.ptr, n: p.grad.size });
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad) call(p.backend, 'scale', { x: p.grad.ptr, y: p.grad.ptr, n: p.grad.size, s });
  }
  return norm;
}

/** Linear warmup then cosine decay to minLr, per step. */
export function cosineLr(step: number, total: number, warmup: number, base: number, minLr = 0): number {
  if (step < warmup) return (base * (step + 1)) / warmup;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return minLr + 0.5 * (base - minLr) * (1 + Math.cos(Math.PI * t));
}
