// Elementwise ops with trailing-vector broadcasting: b's size must divide a's,
// and b is repeated along a's leading elements (bias rows, position embeddings).
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';

function checkBroadcast(op: string, a: Tensor, b: Tensor): void {
  if (a.size % b.size !== 0) throw new Error(`${op}: cannot broadcast [${b.shape}] over [${a.shape}]`);
}

/** Sum of a broadcast gradient back to b's shape: the rows of dy viewed as [size/m, m]. */
function reduceTo(dy: Tensor, b: Tensor): Tensor {
  const be = dy.backend, db = new Tensor(b.shape, be);
  if (b.size === dy.size) be.run('copy2d', dy.ptr, dy.size, db.ptr, dy.size, 1, dy.size);
  else be.run('col_sum', dy.ptr, db.ptr, dy.size / b.size, b.size);
  return db;
}

export function add(a: Tensor, b: Tensor): Tensor {
  checkBroadcast('add', a, b);
  const be = a.backend, y = new Tensor(a.shape, be);
  be.run('add', a.ptr, b.ptr, y.ptr, a.size, b.size);
  return record(y, [a, b], (dy) => [dy, b.requiresGrad ? (b.size === a.size ? dy : reduceTo(dy, b)) : null]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  checkBroadcast('mul', a, b);
  const be = a.backend, y = new Tensor(a.shape, be);
  be.run('mul', a.ptr, b.ptr, y.ptr, a.size, b.size);
  return record(y, [a, b], (dy) => {
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) { da = new Tensor(a.shape, be); be.run('mul', dy.ptr, b.ptr, da.ptr, a.size, b.size); }
    if (b.requiresGrad) {
      const t = new Tensor(a.shape, be);
      be.run('mul', dy.ptr, a.ptr, t.ptr, a.size, a.size);
      db = b.size === a.size ? t : reduceTo(t, b);
      if (db !== t) t.dispose();
    }
    return [da, db];
  });
}

export function scale(x: Tensor, s: number): Tensor {
  const be = x.backend, y = new Tensor(x.shape, be);
  be.run('scale', x.ptr, y.ptr, x.size, s);
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    be.run('scale', dy.ptr, dx.ptr, x.size, s);
    return [dx];
  });
}

/** Same data, new shape (a copy: tensors never alias, which keeps ownership simple). */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const be = x.backend, y = new Tensor(shape, be);
  if (y.size !== x.size) { y.dispose(); throw new Error(`reshape: [${x.shape}] (${x.size}) to [${shape}]`); }
  be.run('copy2d', x.ptr, x.size, y.ptr, x.size, 1, x.size);
  return record(y, [x], (dy) => {
    const dx = new Tensor(x.shape, be);
    be.run('copy2d', dy.ptr, dy.size, dx.ptr, dy.size, 1, dy.size);
    return [dx];
  });
}
