// Reverse-mode autograd on a tape, in the spirit of micrograd: every op that
// needs a gradient records (output, inputs, backward) as it runs, so the tape
// is already in topological order; `backward` walks it in reverse.
//
// Ownership: gradients of intermediates are freed as soon as they have been
// propagated; gradients of leaves (parameters) are kept across scopes and
// accumulate until `zeroGrad`. Saved activations belong to the caller's scope.
import { Tensor, keep, scope } from './tensor.js';
import { call } from './backend/kernels.js';

/** Given the output gradient, return one gradient (or null) per input. May return `g` itself. */
export type BackwardFn = (g: Tensor) => (Tensor | null)[];

interface Entry { out: Tensor; inputs: Tensor[]; backward: BackwardFn }

let tape: Entry[] = [];
let enabled = true;

export const isGradEnabled = (): boolean => enabled;

export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try { return fn(); } finally { enabled = prev; }
}

/**
 * fn in a scope when no gradient is being recorded: what it makes and does
 * not return is freed as soon as it returns (a block's activations at
 * inference: DeiT-Tiny's forward held about 33 MB per image until its end,
 * past WebGPU's 128 MiB heap on some adapters at batch 3); with the tape on
 * they belong to the backward and stay in the caller's scope.
 */
export function inferenceScope<T>(fn: () => T): T { return enabled ? fn() : scope(fn); }

/** Record an op if grad is on and any input needs a gradient. Returns `out`. */
export function record(out: Tensor, inputs: Tensor[], backward: BackwardFn): Tensor {
  if (enabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.hasNode = true;
    tape.push({ out, inputs, backward });
  }
  return out;
}

export const tapeLength = (): number => tape.length;

function accumulate(t: Tensor, g: Tensor, owned: Set<Tensor>): void {
  if (t.grad) { call(t.backend, 'axpy', { x: g.ptr, y: t.grad.ptr, n: t.size, alpha: 1 }); return; }
  // one gradient tensor may be handed to several inputs (add passes g through): copy when taken
  const mine = owned.has(g) ? copyOf(g) : g;
  owned.add(mine);
  t.grad = t.hasNode ? mine : keep(mine);
}

function copyOf(g: Tensor): Tensor {
  const c = new Tensor(g.shape, g.backend);
  call(g.backend, 'copy2d', { src: g.ptr, sld: g.size, dst: c.ptr, dld: g.size, rows: 1, cols: g.size });
  return c;
}

/**
 * Backpropagate from `loss` (a scalar, or any tensor with `seed` as its
 * gradient). Leaves accumulate into `.grad`; the tape is cleared.
 */
export function backward(loss: Tensor, seed?: Tensor): void {
  const owned = new Set<Tensor>();
  const g0 = seed ?? Tensor.full(loss.shape, 1, loss.backend);
  if (!loss.grad) { loss.grad = g0; owned.add(g0); }
  else call(loss.backend, 'axpy', { x: g0.ptr, y: loss.grad.ptr, n: loss.size, alpha: 1 });
  const entries = tape;
  tape = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const { out, inputs, backward: bw } = entries[i];
    const g = out.grad;
    if (!g) continue;
    out.grad = null;
    owned.delete(g);
    const grads = bw(g);
    for (let j = 0; j < inputs.length; j++) {
      const gi = grads[j];
      if (gi && inputs[j].requiresGrad) accumulate(inputs[j], gi, owned);
    }
    // spent: whatever no input took as its own gradient
    for (const gi of new Set([g, ...grads])) if (gi && !owned.has(gi)) gi.dispose();
  }
}

/** Parameters' gradients back to none (frees them). */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) if (p.grad) { p.grad.dispose(); p.grad = null; }
}
