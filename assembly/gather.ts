// Channel gather/scatter for CDCP's masked compute. Spec (and argument
// lists): src/backend/reference/gather.ts.
//
// Shapes: x is a matrix with row stride ldx (elements); idx points to k int32
// indices; y is compact and contiguous:
//   gather_rows  y [k, cols]    y[r, j] = x[idx[r], j]       (q/k/v rows of W_qkv and its bias, fc1 rows and bias)
//   gather_cols  y [rows, k]    y[r, j] = x[r, idx[j]]       (W_proj and fc2 input columns)
//   scatter_rows / scatter_cols are their adjoints and ACCUMULATE into x (x += ...),
//   so a weight gradient is scattered straight into zeros or into an existing sum.
// Indices are trusted (CDCP builds them); a repeated index accumulates in the
// reference's order (r, then j). y must not overlap x. No alignment needed.
//
// Rows are contiguous runs: whole f32x4 copies / adds with a scalar tail. A
// column gather reads k scattered floats per row (WebAssembly has no gather
// instruction): four scalar loads build one vector, whose store is whole; the
// column scatter is its mirror, four lanes added one by one. Both stay cheap
// because they only ever touch weights, never activations.

// d[0..n) = s[0..n)  (add = false)  or  d[0..n) += s[0..n)  (add = true)
// @ts-ignore: decorator
@inline function run(add: bool, d: usize, s: usize, n: i32): void {
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(s + o);
    v128.store(d + o, add ? f32x4.add(v128.load(d + o), v) : v);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(s + o);
    store<f32>(d + o, add ? load<f32>(d + o) + v : v);
  }
}

export function gather_rows(x: usize, ldx: i32, idx: usize, k: i32, cols: i32, y: usize): void {
  const row = <usize>cols << 2;
  for (let r = 0; r < k; r++) {
    run(false, y + <usize>r * row, x + (<usize>(load<i32>(idx + (<usize>r << 2)) * ldx) << 2), cols);
  }
}

export function scatter_rows(y: usize, idx: usize, k: i32, cols: i32, x: usize, ldx: i32): void {
  const row = <usize>cols << 2;
  for (let r = 0; r < k; r++) {
    run(true, x + (<usize>(load<i32>(idx + (<usize>r << 2)) * ldx) << 2), y + <usize>r * row, cols);
  }
}

export function gather_cols(x: usize, ldx: i32, rows: i32, idx: usize, k: i32, y: usize): void {
  const k4 = k & ~3;
  for (let r = 0; r < rows; r++) {
    const X = x + (<usize>(r * ldx) << 2), Y = y + (<usize>(r * k) << 2);
    let j = 0;
    for (; j < k4; j += 4) {
      const ij = i32x4.shl(v128.load(idx + (<usize>j << 2)), 2);
      let v = f32x4.splat(load<f32>(X + <usize>i32x4.extract_lane(ij, 0)));
      v = f32x4.replace_lane(v, 1, load<f32>(X + <usize>i32x4.extract_lane(ij, 1)));
      v = f32x4.replace_lane(v, 2, load<f32>(X + <usize>i32x4.extract_lane(ij, 2)));
      v = f32x4.replace_lane(v, 3, load<f32>(X + <usize>i32x4.extract_lane(ij, 3)));
      v128.store(Y + (<usize>j << 2), v);
    }
    for (; j < k; j++) store<f32>(Y + (<usize>j << 2), load<f32>(X + (<usize>load<i32>(idx + (<usize>j << 2)) << 2)));
  }
}

export function scatter_cols(y: usize, rows: i32, idx: usize, k: i32, x: usize, ldx: i32): void {
  const k4 = k & ~3;
  for (let r = 0; r < rows; r++) {
    const X = x + (<usize>(r * ldx) << 2), Y = y + (<usize>(r * k) << 2);
    let j = 0;
    for (; j < k4; j += 4) {
      const ij = i32x4.shl(v128.load(idx + (<usize>j << 2)), 2);
      const v = v128.load(Y + (<usize>j << 2));
      let p = X + <usize>i32x4.extract_lane(ij, 0); store<f32>(p, load<f32>(p) + f32x4.extract_lane(v, 0));
      p = X + <usize>i32x4.extract_lane(ij, 1); store<f32>(p, load<f32>(p) + f32x4.extract_lane(v, 1));
      p = X + <usize>i32x4.extract_lane(ij, 2); store<f32>(p, load<f32>(p) + f32x4.extract_lane(v, 2));
      p = X + <usize>i32x4.extract_lane(ij, 3); store<f32>(p, load<f32>(p) + f32x4.extract_lane(v, 3));
    }
    for (; j < k; j++) {
      const p = X + (<usize>load<i32>(idx + (<usize>j << 2)) << 2);
      store<f32>(p, load<f32>(p) + load<f32>(Y + (<usize>j << 2)));
    }
  }
}
