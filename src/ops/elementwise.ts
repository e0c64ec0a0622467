// Elementwise ops with trailing-vector broadcasting: b's size must divide a's,
// and b is repeated along a's leading elements (bias rows, position embeddings).
import { Tensor, sameBackend } from '../tensor.js';
import { record } from '../autograd.js';
import { call } from '../backend/kernels.js';

function checkBroadcast(op: string, a: Tensor, b: Tensor): void {
  if (a.size % b.size !== 0) throw new Error(`${op}: cannot broadcast [${b.shape}] over [${a.shape}]`);
}

/** Sum of a broadcast gradient back to b's shape: the rows of dy viewed as [size/m, m]. */
function reduceTo(dy: Tensor, b: Tensor): Tensor {
  const be = dy.backend, db = new Tensor(b.shape, be);
  if (b.size === dy.size) call(be, 'copy2d', { src: dy.ptr, sld: dy.size, dst: db.ptr, dld: dy.size, rows: 1, cols: dy.size });
  else call(be, 'col_sum', { x: dy.ptr, y: db.ptr, rows: dy.size / b.size, cols: b.size });
  return db;
}

export function add(a: Tensor, b: Tensor): Tensor {
  checkBroadcast('add', a, b);
  sameBackend('add', a, b);
  const be = a.backend, y = new Tensor(a.shape, be);
  call(be, 'add', { a: a.ptr, b: b.ptr, y: y.ptr, n: a.size, m: b.size });
  return record(y, [a, b], (dy) => [dy, b.requiresGrad ? (b.size === a.size ? dy : reduceTo(dy, b)) : null]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  checkBroadcast('mul', a, b);
  sameBackend('mul', a, b);
  const be = a.backend, y = new Tensor(a.shape, be);
  call(be, 'mul', { a: a.ptr, b: b.ptr, y: y.ptr, n: a.size, m: b.size });
  return record(y, [a, b], (dy) => {
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) { da = new Tensor(a.shape, be); call(be, 'mul', { a: dy.ptr, b: b.ptr, y: da.ptr, n: a.size, m: b.size }); }
    if (b.requiresGrad) {
      const t = new Tensor(a.shape, be);
      call(be, 'mul', { a: dy.ptr, b: a.ptr, y: t.ptr, n: a.size, m: a.size });
      db = b.size === a.size ? t : reduceTo(t, b);
      if (db !== t) t.dispose();
    }
    return [da, db];
  });
}

export function scale(x: Tensor, s: number): Tensor {
  const be = x.backend, y = new Tensor(x.shape, be);
  call(be, 'scale', { x: x.ptr, y: y.ptr, n: x.size, s });
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    call(be, 'scale', { x: dy.ptr, y: dx.ptr, n: x.size, s });
    return [dx];
  });
}

/** Same data, new shape (a copy: tensors never alias, which keeps ownership simple). */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const be = x.backend, y = new Tensor(shape, be);
  if (y.size !== x.size) { y.dispose(); throw new Error(`reshape: [${x.shape}] (${x.size}) to [${shape}]`); }
  call(be, 'copy2d', { src: x.ptr, sld: x.size, dst: y.ptr, dld: x.size, rows: 1, cols: x.size });
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    call(be, 'copy2d', { src: dy.ptr, sld: dy.size, dst: dx.ptr, dld: dy.size, rows: 1, cols: dy.size });
    return [dx];
  });
}
