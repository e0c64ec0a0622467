// Row and column gathers of a weight by an index list (kernels:
// assembly/gather.ts), as differentiable ops: CDCP slices the kept channels of
// a weight per step, runs the dense GEMM on the compact matrix, and the
// backward scatters the compact gradient back into the full weight's shape.
// Shapes: w [O, ...rest] viewed as [O, I] (I = size / O); idx k int32 indices.
//   gatherRows(w, idx) -> [k, ...rest]   (w 1-D: a bias, [O] -> [k])
//   gatherCols(w, idx) -> [O, k]         (w 2-D)
// Backward: scatter_rows / scatter_cols of dy into zeros of w's shape.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

/** An index list in the backend heap; a Tensor so that scopes free it like any intermediate. */
export function indexTensor(idx: Int32Array, like: Tensor): Tensor {
  const t = new Tensor([idx.length], like.backend);
  like.backend.write(t.ptr, idx);
  return t;
}

function checkIdx(op: string, idx: Int32Array, n: number): void {
  for (const i of idx) if (!(i >= 0 && i < n)) throw new RangeError(`${op}: index ${i} out of range [0, ${n})`);
}

export function gatherRows(w: Tensor, idx: Int32Array): Tensor {
  const O = w.shape[0], I = w.size / O, k = idx.length, be = w.backend;
  checkIdx('gatherRows', idx, O);
  const it = indexTensor(idx, w), y = new Tensor([k, ...w.shape.slice(1)], be);
  call(be, 'gather_rows', { x: w.ptr, ldx: I, idx: it.ptr, k, cols: I, y: y.ptr });
  return record(y, [w], (dy) => {
    const dw = Tensor.zeros(w.shape, be);
    call(be, 'scatter_rows', { y: dy.ptr, idx: it.ptr, k, cols: I, x: dw.ptr, ldx: I });
    return [dw];
  });
}

export function gatherCols(w: Tensor, idx: Int32Array): Tensor {
  if (w.shape.length !== 2) throw new Error(`gatherCols: weight [${w.shape}] is not 2-D`);
  const [O, I] = w.shape, k = idx.length, be = w.backend;
  checkIdx('gatherCols', idx, I);
  const it = indexTensor(idx, w), y = new Tensor([O, k], be);
  call(be, 'gather_cols', { x: w.ptr, ldx: I, rows: O, idx: it.ptr, k, y: y.ptr });
  return record(y, [w], (dy) => {
    const dw = Tensor.zeros(w.shape, be);
    call(be, 'scatter_cols', { y: dy.ptr, rows: O, idx: it.ptr, k, x: dw.ptr, ldx: I });
    return [dw];
  });
}
