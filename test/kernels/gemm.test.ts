// GEMM: both WASM builds (plain SIMD and relaxed) against the reference backend,
// over all layouts, tails (M, N, K not multiples of the 4x8 tile, N < 8, K = 1),
// strides, batches, alpha/beta/bias, unaligned pointers and the K/N blocking.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend, Ptr } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/index.js';
import { loadWasmSync, relaxedSimdSupported, type WasmVariant } from '../../src/backend/wasm.js';
import { GELU, NN, NP, NT, TN, packedSize } from '../../src/backend/kernels.js';
import { randn, close } from '../util.js';

interface Case {
  layout: number; M: number; N: number; K: number;
  alpha?: number; beta?: number; bias?: boolean; batch?: number;
  /** extra elements per row beyond the row length, for lda/ldb/ldc */
  pad?: number;
  /** explicit strides (elements); default: rows * ld + gap */
  lda?: number; ldb?: number; ldc?: number; sa?: number; sb?: number; sc?: number;
  /** byte offset added to every pointer (4: not 16-byte aligned) */
  offset?: number;
}

/** Marks C elements no kernel may write (row padding, gaps between batches). */
const SENTINEL = 12345;

interface Full extends Required<Case> { aLen: number; bLen: number; cLen: number }

function complete(c: Case): Full {
  const { layout, M, N, K } = c;
  const pad = c.pad ?? 0, batch = c.batch ?? 1;
  const aRows = layout === TN ? K : M, aCols = layout === TN ? M : K;
  const bRows = layout === NT ? N : K, bCols = layout === NT ? K : N;
  const lda = c.lda ?? aCols + pad, ldb = c.ldb ?? bCols + pad, ldc = c.ldc ?? N + pad;
  // gaps between batch items so a kernel that ignores sa/sb/sc reads the wrong data
  const sa = c.sa ?? aRows * lda + 3, sb = c.sb ?? bRows * ldb + 5, sc = c.sc ?? M * ldc + 7;
  const span = (rows: number, ld: number, cols: number, s: number) =>
    rows === 0 || cols === 0 ? 1 : (batch - 1) * s + (rows - 1) * ld + cols;
  return {
    layout, M, N, K, alpha: c.alpha ?? 1, beta: c.beta ?? 0, bias: c.bias ?? false, batch, pad,
    lda, ldb, ldc, sa, sb, sc, offset: c.offset ?? 0,
    aLen: span(aRows, lda, aCols, sa), bLen: span(bRows, ldb, bCols, sb), cLen: span(M, ldc, N, sc),
  };
}

/** Inputs for a case: A, B, bias random; C random (beta != 0) or NaN (beta = 0), sentinel off-matrix. */
function inputs(f: Full, seed: number) {
  const A = randn(f.aLen, seed), B = randn(f.bLen, seed + 1), bias = randn(f.N, seed + 2);
  const C = new Float32Array(f.cLen).fill(SENTINEL);
  const c0 = randn(f.cLen, seed + 3);
  for (let t = 0; t < f.batch; t++)
    for (let i = 0; i < f.M; i++)
      for (let j = 0; j < f.N; j++) {
        const at = t * f.sc + i * f.ldc + j;
        C[at] = f.beta === 0 ? NaN : c0[at];
      }
  return { A, B, C, bias };
}

/** Runs the case on one backend and returns the whole C buffer (padding included). */
function runOn(be: Backend, f: Full, data: ReturnType<typeof inputs>): Float32Array {
  const extra = 1 + (f.offset >> 2);
  const ptrs: Ptr[] = [];
  const put = (x: Float32Array): Ptr => {
    const p = be.alloc(x.length + extra);
    ptrs.push(p);
    be.write(p + f.offset, x);
    return p + f.offset;
  };
  const a = put(data.A), b = put(data.B), c = put(data.C);
  const bias = f.bias ? put(data.bias) : 0;
  be.run('gemm', f.layout, f.M, f.N, f.K, f.alpha, a, f.lda, f.sa, b, f.ldb, f.sb, f.beta, c, f.ldc, f.sc,
    f.batch, bias, be.scratch);
  const out = be.read(c, f.cLen);
  for (const p of ptrs) be.free(p);
  return out;
}

const ref = new ReferenceBackend(1 << 24);
const variants: WasmVariant[] = relaxedSimdSupported() ? ['simd', 'relaxed'] : ['simd'];
const wasm = variants.map((v) => loadWasmSync(v));
let seed = 1;

function check(c: Case): void {
  const f = complete(c);
  const data = inputs(f, (seed += 7));
  const want = runOn(ref, f, data);
  const tag = `${['NN', 'NT', 'TN'][f.layout]} M=${f.M} N=${f.N} K=${f.K} a=${f.alpha} b=${f.beta}` +
    `${f.bias ? ' bias' : ''} batch=${f.batch} pad=${f.pad} off=${f.offset}`;
  const inC = (i: number) => want[i] !== SENTINEL;
  for (const be of wasm) {
    const got = runOn(be, f, data);
    // Off-matrix sentinels must come back untouched; C itself within f32
    // rounding of a K-term dot product (the reference accumulates in f64).
    for (let i = 0; i < got.length; i++) {
      if (!inC(i) && got[i] !== SENTINEL) assert.unreachable(`${be.name} ${tag}: wrote outside C at [${i}]`);
    }
    close(got.filter((_, i) => inC(i)), want.filter((_, i) => inC(i)), 1e-6, 1e-5 * Math.max(f.K, 1), `${be.name} ${tag}:`);
  }
}

const G = suite('gemm');
const LAYOUTS = [NN, NT, TN];
const name = (l: number) => ['NN', 'NT', 'TN'][l];

// (M, N, K): K = 1, N < 8 and N not a multiple of 4 or 8, M not a multiple of 4,
// exact tiles, and tall/wide/deep mixes up to ViT-sized 197.
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [1, 8, 1], [3, 5, 1], [5, 3, 8], [8, 8, 8], [4, 16, 3], [17, 1, 5],
  [1, 33, 17], [17, 33, 5], [33, 17, 33], [8, 197, 3], [197, 5, 17], [197, 33, 8],
  [5, 17, 197], [33, 8, 197], [197, 197, 33],
];

for (const layout of LAYOUTS) {
  G(`${name(layout)}: tails over M, N, K`, () => {
    for (const [M, N, K] of SHAPES) check({ layout, M, N, K });
  });
  G(`${name(layout)}: strided leading dims (ld > row length)`, () => {
    check({ layout, M: 17, N: 33, K: 5, pad: 3 });
    check({ layout, M: 5, N: 8, K: 33, pad: 1 });
    check({ layout, M: 33, N: 3, K: 17, pad: 64 });
  });
  G(`${name(layout)}: batched with batch strides`, () => {
    check({ layout, M: 5, N: 17, K: 8, batch: 3 });
    check({ layout, M: 17, N: 8, K: 33, batch: 4, pad: 2 });
  });
  G(`${name(layout)}: beta = 1 accumulates`, () => {
    check({ layout, M: 17, N: 33, K: 5, beta: 1 });
    check({ layout, M: 3, N: 5, K: 197, beta: 1, batch: 2 });
  });
  G(`${name(layout)}: bias, alpha`, () => {
    check({ layout, M: 17, N: 33, K: 17, bias: true });
    check({ layout, M: 5, N: 3, K: 8, bias: true, alpha: -1.25 });
    check({ layout, M: 33, N: 17, K: 5, alpha: 0.125 });
  });
  G(`${name(layout)}: pointers 4 bytes off 16-byte alignment`, () => {
    check({ layout, M: 17, N: 33, K: 17, offset: 4 });
    check({ layout, M: 8, N: 8, K: 8, offset: 4, pad: 1, bias: true });
    check({ layout, M: 5, N: 197, K: 3, offset: 8 });
  });
  G(`${name(layout)}: beta = 0 never reads C (NaN there must not propagate)`, () => {
    // inputs() fills C with NaN whenever beta is 0; this case checks it on
    // full tiles, partial tiles and several K blocks.
    check({ layout, M: 8, N: 16, K: 4 });
    check({ layout, M: 9, N: 13, K: 600 });
  });
  G(`${name(layout)}: everything at once`, () => {
    check({ layout, M: 197, N: 33, K: 65, alpha: 0.5, beta: 1, bias: true, batch: 3, pad: 3, offset: 4 });
    check({ layout, M: 17, N: 9, K: 300, alpha: -2, beta: 1, bias: true, batch: 2, pad: 1, offset: 4 });
  });
  G(`${name(layout)}: larger than one scratch block (K and N blocking)`, () => {
    check({ layout, M: 9, N: 900, K: 700, bias: true });
    check({ layout, M: 5, N: 1300, K: 700, beta: 1, offset: 4 });
    check({ layout, M: 6, N: 1500, K: 200, alpha: 2, bias: true });
    // more rows than one packed A block (256 rows at kc = 256), and N blocks beside them
    check({ layout, M: 261, N: 780, K: 256, beta: 1, bias: true, offset: 4 });
  });
}

G('attention-style strides: heads of an interleaved [T, 3, H, D] buffer', () => {
  // Q*K^T per head: rows are tokens with stride 3*H*D, heads are D apart.
  const T = 17, H = 3, D = 8, row = 3 * H * D;
  check({ layout: NT, M: T, N: T, K: D, lda: row, sa: D, ldb: row, sb: D, ldc: T, sc: T * T, batch: H, alpha: 1 / Math.sqrt(D) });
  // P*V per head, written into a [T, H, D] buffer.
  check({ layout: NN, M: T, N: D, K: T, lda: T, sa: T * T, ldb: row, sb: D, ldc: H * D, sc: D, batch: H });
});

G('K = 0 gives beta*C + bias', () => {
  for (const layout of LAYOUTS) {
    check({ layout, M: 5, N: 9, K: 0, bias: true });
    check({ layout, M: 5, N: 9, K: 0, beta: 1 });
  }
});

// Layout NP: B pre-packed by pack_b (from a row-major or a transposed
// source, with a padded ld), then gemm layout 3. pack_b must equal the
// reference's bit for bit (it is a copy); the product, the reference's plain
// NN/NT product of the same operands.
function checkPacked(src: number, M: number, N: number, K: number, o: { batch?: number; bias?: boolean; beta?: number; offset?: number; gelu?: boolean } = {}): void {
  const act = o.gelu ? GELU : 0;
  const batch = o.batch ?? 1, off = o.offset ?? 0, ldb = (src === NT ? K : N) + 3, bRows = src === NT ? N : K;
  const P = packedSize(K, N), A = randn(batch * M * K + 1, (seed += 7)), Bm = randn(bRows * ldb, seed + 1), bias = randn(N, seed + 2);
  const C0 = randn(batch * M * N, seed + 3);
  const tag = `NP${o.gelu ? '|GELU' : ''} from ${name(src)} M=${M} N=${N} K=${K} batch=${batch}${o.bias ? ' bias' : ''} beta=${o.beta ?? 0} off=${off}`;
  const runBoth = (be: Backend, packed: boolean) => {
    const ptrs: Ptr[] = [];
    const put = (x: Float32Array): Ptr => { const p = be.alloc(x.length + 1 + (off >> 2)); ptrs.push(p); be.write(p + off, x); return p + off; };
    const a = put(A), b = put(Bm), c = put(o.beta ? C0 : new Float32Array(C0.length).fill(NaN)), bi = o.bias ? put(bias) : 0;
    let pk: Float32Array | null = null;
    if (packed) {
      const dst = put(new Float32Array(P).fill(NaN));
      be.run('pack_b', src, K, N, b, ldb, dst);
      pk = be.read(dst, P);
      be.run('gemm', NP | act, M, N, K, 1, a, K, M * K, dst, 0, 0, o.beta ?? 0, c, N, M * N, batch, bi, be.scratch);
    } else {
      be.run('gemm', src | act, M, N, K, 1, a, K, M * K, b, ldb, 0, o.beta ?? 0, c, N, M * N, batch, bi, be.scratch);
    }
    const out = be.read(c, C0.length);
    for (const p of ptrs) be.free(p);
    return { out, pk };
  };
  const want = runBoth(ref, false).out, refPacked = runBoth(ref, true);
  close(refPacked.out, want, 1e-6, 1e-5 * Math.max(K, 1), `reference ${tag}:`);
  for (const be of wasm) {
    const got = runBoth(be, true);
    for (let i = 0; i < P; i++) if (!Object.is(got.pk![i], refPacked.pk![i])) assert.unreachable(`${be.name} ${tag}: pack_b[${i}] = ${got.pk![i]}, reference ${refPacked.pk![i]}`);
    close(got.out, want, 1e-6, 1e-5 * Math.max(K, 1), `${be.name} ${tag}:`);
  }
}

G('NP (pre-packed B): tails, both sources, batch, bias, beta, K/N blocking, unaligned', () => {
  for (const src of [NN, NT]) {
    for (const [M, N, K] of SHAPES) checkPacked(src, M, N, K);
    checkPacked(src, 17, 33, 17, { bias: true, offset: 4 });
    checkPacked(src, 5, 17, 8, { batch: 3, beta: 1 });
    checkPacked(src, 9, 900, 700, { bias: true });
    checkPacked(src, 99, 61, 300, { bias: true, beta: 1, offset: 4 });
    checkPacked(src, 261, 780, 256, { bias: true });
  }
});

// GELU store: with K split in blocks (K > 256) it must act once, after the
// last block; the error adds the GELU kernel's (assembly/gelu.ts, < 4e-7) to
// the product's.
G('GELU flag: NP and plain layouts, tails, K blocking, beta, bias', () => {
  for (const src of [NN, NT]) {
    checkPacked(src, 17, 33, 17, { gelu: true, bias: true });
    checkPacked(src, 5, 13, 600, { gelu: true, bias: true, beta: 1 });
    checkPacked(src, 99, 61, 300, { gelu: true, offset: 4 });
    checkPacked(src, 261, 20, 512, { gelu: true, bias: true }); // two A blocks x two K blocks
  }
  const be = wasm[0], M = 9, N = 11, K = 700;
  const A = randn(M * K, 91), B = randn(N * K, 92), bias = randn(N, 93);
  const run = (b: Backend, layout: number) => {
    const pa = b.alloc(M * K), pb = b.alloc(N * K), pc = b.alloc(M * N), pz = b.alloc(N);
    b.write(pa, A); b.write(pb, B); b.write(pz, bias);
    b.run('gemm', layout, M, N, K, 0.5, pa, K, 0, pb, K, 0, 0, pc, N, 0, 1, pz, b.scratch);
    const out = b.read(pc, M * N);
    for (const p of [pa, pb, pc, pz]) b.free(p);
    return out;
  };
  close(run(be, NT | GELU), run(ref, NT | GELU), 1e-6, 1e-5 * K, 'NT|GELU, K blocked, alpha 0.5:');
  // GELU runs over each stored tile (gelu.ts geluTile): a row stride past N
  // and a batch stride, with the columns and rows in between left as they were
  const M2 = 11, N2 = 21, K2 = 30, ldc = N2 + 5, sc = (M2 + 1) * ldc, batch = 2;
  const A2 = randn(batch * M2 * K2, 94), B2 = randn(batch * K2 * N2, 95), bias2 = randn(N2, 96);
  const C2 = new Float32Array(batch * sc).fill(7);
  const runStrided = (b: Backend) => {
    const pa = b.alloc(A2.length), pb = b.alloc(B2.length), pc = b.alloc(C2.length), pz = b.alloc(N2);
    b.write(pa, A2); b.write(pb, B2); b.write(pc, C2); b.write(pz, bias2);
    b.run('gemm', NN | GELU, M2, N2, K2, 1, pa, K2, M2 * K2, pb, N2, K2 * N2, 0, pc, ldc, sc, batch, pz, b.scratch);
    const out = b.read(pc, C2.length);
    for (const p of [pa, pb, pc, pz]) b.free(p);
    return out;
  };
  const want2 = runStrided(ref);
  for (let i = 0; i < want2.length; i++) {
    const j = i % sc, inside = Math.floor(j / ldc) < M2 && j % ldc < N2;
    if (!inside) assert.is(want2[i], 7, `reference wrote outside C at ${i}`);
  }
  for (const b of wasm) close(runStrided(b), want2, 1e-6, 1e-5 * K2, `${b.name} NN|GELU ldc ${ldc} batch ${batch}:`);
});

G.run();
