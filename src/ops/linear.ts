// linear(x, W, b) = x W^T + b over the last axis (torch.nn.functional.linear).
// Shapes: x [..., in] (R rows), W [out, in] (or [out, ...] flattened, e.g. a conv
// weight [E, C, P, P] on patch rows), b [out] or null -> y [..., out].
// Backward (llm.c's matmul_backward):  dx = dy W (NN),  dW = dy^T x (TN),  db = colsum(dy).
// Without gradients (inference) W^T is pre-packed once into the GEMM's panel
// layout (pack_b, layout NP) and reused while W's version is unchanged: the
// per-call packing of K*N weights is a fixed cost that grows in relative
// terms as token merging shrinks the row count R.
import { Tensor, sameBackend } from '../tensor.js';
import { isGradEnabled, record } from '../autograd.js';
import { GELU, NN, NP, NT, TN, packedSize, call } from '../backend/kernels.js';
import { gelu } from './activation.js';

/** W [out, in] as pack_b panels of op(B) = W^T (in x out), cached on W until its version changes. */
export function packedWeight(w: Tensor): number {
  const out = w.shape[0], inp = w.size / out, be = w.backend;
  if (w.packed && w.packed.version === w.version) return w.packed.ptr;
  if (w.packed) be.free(w.packed.ptr);
  const ptr = be.alloc(packedSize(inp, out));
  call(be, 'pack_b', { layout: NT, K: inp, N: out, b: w.ptr, ldb: inp, dst: ptr });
  w.packed = { version: w.version, ptr };
  return ptr;
}

export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const out = w.shape[0], inp = w.size / out;
  if (x.shape[x.shape.length - 1] !== inp) throw new Error(`linear: input [${x.shape}] does not end in ${inp} (weight [${w.shape}])`);
  sameBackend('linear', x, w, b);
  const be = x.backend, R = x.size / inp;
  const y = new Tensor([...x.shape.slice(0, -1), out], be);
  if (!isGradEnabled()) {
    call(be, 'gemm', { layout: NP, M: R, N: out, K: inp, alpha: 1, a: x.ptr, lda: inp, sa: 0, b: packedWeight(w), ldb: inp, sb: 0, beta: 0, c: y.ptr, ldc: out, sc: 0, batch: 1, bias: b ? b.ptr : 0, scratch: be.scratch });
    return y;
  }
  call(be, 'gemm', { layout: NT, M: R, N: out, K: inp, alpha: 1, a: x.ptr, lda: inp, sa: 0, b: w.ptr, ldb: inp, sb: 0, beta: 0, c: y.ptr, ldc: out, sc: 0, batch: 1, bias: b ? b.ptr : 0, scratch: be.scratch });
  return record(y, b ? [x, w, b] : [x, w], (dy) => {
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = new Tensor(x.shape, be);
      call(be, 'gemm', { layout: NN, M: R, N: inp, K: out, alpha: 1, a: dy.ptr, lda: out, sa: 0, b: w.ptr, ldb: inp, sb: 0, beta: 0, c: dx.ptr, ldc: inp, sc: 0, batch: 1, bias: 0, scratch: be.scratch });
    }
    if (w.requiresGrad) {
      dw = new Tensor(w.shape, be);
      call(be, 'gemm', { layout: TN, M: out, N: inp, K: R, alpha: 1, a: dy.ptr, lda: out, sa: 0, b: x.ptr, ldb: inp, sb: 0, beta: 0, c: dw.ptr, ldc: inp, sc: 0, batch: 1, bias: 0, scratch: be.scratch });
    }
    if (b && b.requiresGrad) {
      db = new Tensor(b.shape, be);
      call(be, 'col_sum', { x: dy.ptr, y: db.ptr, rows: R, cols: out });
    }
    return [dx, dw, db];
  });
}

/**
 * gelu(linear(x, W, b)), the MLP's first half. Without gradients one GEMM
 * applies the GELU as it stores (layout NP | GELU), so the pre-activation is
 * never written; with gradients the two ops, whose backward needs it.
 */
export function linearGelu(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  if (isGradEnabled()) return gelu(linear(x, w, b));
  const out = w.shape[0], inp = w.size / out;
  if (x.shape[x.shape.length - 1] !== inp) throw new Error(`linearGelu: input [${x.shape}] does not end in ${inp} (weight [${w.shape}])`);
  sameBackend('linearGelu', x, w, b);
  const be = x.backend, R = x.size / inp;
  const y = new Tensor([...x.shape.slice(0, -1), out], be);
  call(be, 'gemm', { layout: NP | GELU, M: R, N: out, K: inp, alpha: 1, a: x.ptr, lda: inp, sa: 0, b: packedWeight(w), ldb: inp, sb: 0, beta: 0, c: y.ptr, ldc: out, sc: 0, batch: 1, bias: b ? b.ptr : 0, scratch: be.scratch });
  return y;
}
