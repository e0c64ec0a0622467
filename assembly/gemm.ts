// GEMM: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] + bias, for b < batch.
// Spec (and argument list): src/backend/reference/gemm.ts.
//
// Shapes: op(A) is M x K, op(B) is K x N, C is M x N, bias is N floats (or 0).
//   layout 0 NN: A[i,k] = a[i*lda + k]   B[k,j] = b[k*ldb + j]
//   layout 1 NT: A[i,k] = a[i*lda + k]   B[k,j] = b[j*ldb + k]
//   layout 2 TN: A[i,k] = a[k*lda + i]   B[k,j] = b[k*ldb + j]
//   layout 3 NP: A as NN, B pre-packed by pack_b (below; ldb unused):
//                B[k,j] = b[(j>>3)*K*8 + k*8 + (j&7)]
//   layout | 4 (GELU): C = gelu(alpha*op(A)*op(B) + beta*C + bias), GELU
//                applied to each tile right after the last K block stores it
//                (gelu.ts geluTile; inference fc1: saves writing and re-reading
//                the hidden activations).
//   C[i,j] = c[i*ldc + j]. lda/ldb/ldc are row strides, sa/sb/sc batch strides,
//   all in elements; pointers are bytes and need no alignment (v128.load does
//   not require it). beta 0 means C is write-only (it may hold NaN).
//
// Blocking (GotoBLAS/BLIS order, sized for one core's L1/L2):
//   for each N block of nc columns, for each K block of kc rows:
//     pack B[kc, nc] into `scratch` as 8-column panels, k-major (panel[k*8 + j]),
//       whatever B's layout, zero-padding the last panel: the micro-kernel then
//       always reads two contiguous v128 per k and never looks at the layout
//       (NP: the weight was packed so once, by pack_b);
//     for each block of up to mcMax rows of A: pack it as 4-row strips,
//       strip[k*4 + r] (zero rows past M), so the micro-kernel reads A from one
//       pointer whatever the layout;
//       for each B panel: for each strip: 4x8 micro-kernel over kc, then
//       alpha/beta/bias and store.
//   kc <= KC (K is split into equal blocks), so the B panel (kc*32 bytes) stays
//   in L1 while the strips (at most A_BYTES, in L2) pass under it. Packing B
//   costs K*N copies against 2*M*K*N flops, so it is amortized over all of M.
//   Later K blocks accumulate into C (beta = 1, no bias): alpha distributes.
//
// Prefetch by hand. An inference weight is cold at every call (DeiT-Tiny's
// 21 MB do not stay in L2 from one forward to the next), and WebAssembly has
// no prefetch instruction, so while the strips run over panel j the loop also
// loads panel j+1, a few cache lines before each strip (`touch`; the values
// are OR-ed into a sink stored to scratch so no load is dead code). The next
// panel then arrives while this one computes instead of stalling its first
// strip. Against the build before it (one run, DeiT-Tiny shapes, cold
// weights, one thread): 50 -> 54.5 GFLOP/s at 99 rows, 52 -> 54 at 197; the
// dense planned forward 56.1 -> 54.2 ms, its 1.7x CAIT structure 34.2 -> 32.1
// ms. bench/profile.ts keeps timing hot against cold weights. Touching two
// panels ahead, or the whole next panel in the first half of the strips,
// measured slower in the same experiment.
//
// Why 4x8: the tile holds 8 f32x4 accumulators + 2 B vectors + 4 broadcast A
// values = 14 of the 15 xmm registers V8 allocates on x64 (xmm15 is its scratch),
// the 15th holding the product before the add. A 6x8 tile needs 12 accumulators
// and spills. Per k step: 2 B loads + 4 load32_splat (vbroadcastss: load ports
// only, no shuffles) for 8 multiply-adds.
// Why the k loop is not unrolled: TurboFan schedules every load of the loop body
// first (loads are ordered on the effect chain, the arithmetic floats after
// them), so unrolling by 2 keeps 12 loaded vectors live beside the 8 accumulators
// and spills; unrolled by 2 or 4 measured 13-20% slower than this plain loop.
//
// No static data and no allocation: the module may run in several workers over
// one shared memory, each with its own scratch.
import { fma4 } from './simd';
import { geluTile } from './gelu';

/** Largest K block: 256 * (32 + 16) bytes of panel + strip = 12 KiB, well inside L1
 *  (128..512 measured within 2% of each other). */
const KC: i32 = 256;
/** Bytes of scratch (src/backend/kernels.ts GEMM_SCRATCH_BYTES). */
const SCRATCH: i32 = 1 << 20;
/** Bytes of scratch for the packed A block (the rest holds a packed B block). */
const A_BYTES: i32 = 256 << 10;

export function gemm(layout: i32, M: i32, N: i32, K: i32, alpha: f32, a: usize, lda: i32, sa: i32,
  b: usize, ldb: i32, sb: i32, beta: f32, c: usize, ldc: i32, sc: i32, batch: i32,
  bias: usize, scratch: usize): void {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  const gelu = (layout & 4) != 0;
  layout &= 3;
  // K split into equal blocks (a multiple of 4 except the last) rather than
  // KC + small remainder, so no block runs a short, overhead-dominated k loop.
  const kBlocks = K > KC ? (K + KC - 1) / KC : 1;
  let kcMax = (K + kBlocks - 1) / kBlocks;
  if (kBlocks > 1) kcMax = (kcMax + 3) & ~3;
  // Rows of A packed per block (multiple of 4): the packed A block
  // (mcMax * kcMax floats, at most A_BYTES) stays in L2 while each B panel is
  // swept down all of its strips from L1.
  let mcMax = (M + 3) & ~3;
  const mcCap = kcMax > 0 ? ((A_BYTES >> 2) / kcMax) & ~3 : mcMax;
  if (mcMax > mcCap) mcMax = mcCap;
  const strips = scratch;                                  // mcMax * kcMax floats
  const packB = scratch + (<usize>(mcMax * kcMax) << 2);   // kcMax * nc floats
  const roomB = (SCRATCH >> 2) - mcMax * kcMax;
  const nPad = (N + 7) & ~7;
  let ncMax = kcMax > 0 ? (roomB / kcMax) & ~7 : nPad;
  if (ncMax > nPad) ncMax = nPad;
  const stripBytes = <usize>kcMax << 4, rowStep = <usize>ldc << 4;
  let sink = f32x4.splat(0);

  for (let t = 0; t < batch; t++) {
    const A = a + (<usize>(t * sa) << 2);
    const B = b + (<usize>(t * sb) << 2);
    const C = c + (<usize>(t * sc) << 2);
    for (let j0 = 0; j0 < N; j0 += ncMax) {
      const nc = min(ncMax, N - j0);
      let k0 = 0;
      do {
        const kc = min(kcMax, K - k0);
        const first = k0 == 0, act = gelu && k0 + kc >= K;
        const bt = first ? beta : 1;
        // NP: the panels already exist, K rows each; otherwise pack this block.
        let panels = packB, panelStride = <usize>kc << 5;
        if (layout == 3) { panels = B + (<usize>((j0 >> 3) * K + k0) << 5); panelStride = <usize>K << 5; }
        else packPanels(layout, B, ldb, k0, kc, j0, nc, packB);
        for (let i0 = 0; i0 < M; i0 += mcMax) {
          const mc = min(mcMax, M - i0);
          for (let r = 0; r < mc; r += 4) packStrip(layout, A, lda, i0 + r, min(4, mc - r), k0, kc, strips + <usize>(r >> 2) * stripBytes);
          // BLIS order: each B panel (kc x 8, from memory the first time)
          // is reused by every strip from L1, so a weight streams in once per
          // call while M rows of work hide it; the strips come from L2.
          let bp = panels;
          let cj = C + (<usize>(i0 * ldc + j0) << 2);
          const panelBytes = <usize>kc << 5, nStrips = (mc + 3) >> 2;
          const linesPer = (<i32>(panelBytes >> 6) + nStrips - 1) / nStrips;
          for (let jj = 0; jj < nc; jj += 8) {
            const biasp = first && bias != 0 ? bias + (<usize>(j0 + jj) << 2) : 0;
            const nr = min(8, nc - jj);
            let ap = strips, cp = cj;
            let tp = bp + panelStride;
            const tEnd = jj + 8 < nc ? tp + panelBytes : tp;
            for (let r = 0; r < mc; r += 4) {
              for (let q = 0; q < linesPer && tp < tEnd; q++) { sink = v128.or(sink, v128.load(tp)); tp += 64; }
              tile(ap, bp, kc, cp, ldc, min(4, mc - r), nr, alpha, bt, biasp);
              if (act) geluTile(cp, ldc, min(4, mc - r), nr);
              ap += stripBytes;
              cp += rowStep;
            }
            cj += 32;
            bp += panelStride;
          }
        }
        k0 += kc;
      } while (k0 < K);
    }
  }
  v128.store(scratch, sink);
}

/**
 * Pre-pack op(B) (K x N; layout 1: stored transposed, else row-major) for
 * layout 3: 8-column panels of K rows, k-major, the last zero-padded, i.e.
 * ceil(N/8)*8*K floats at dst. Weights are packed once for inference, so
 * their GEMMs skip the per-call packing (K*N copies, 5-15% of a GEMM with
 * M < 200 rows, as after token merging).
 */
export function pack_b(layout: i32, K: i32, N: i32, b: usize, ldb: i32, dst: usize): void {
  if (K <= 0 || N <= 0) return;
  packPanels(layout, b, ldb, 0, K, 0, N, dst);
}

/** Pack B[k0:k0+kc, j0:j0+nc] into 8-wide k-major panels at `dst`, zero-padding the last panel. */
function packPanels(layout: i32, B: usize, ldb: i32, k0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  const zero = f32x4.splat(0);
  for (let jj = 0; jj < nc; jj += 8) {
    const nr = min(8, nc - jj);
    const j = j0 + jj;
    if (layout != 1) {
      // B rows are contiguous in j: copy 8 floats per k.
      let src = B + (<usize>(k0 * ldb + j) << 2);
      const step = <usize>ldb << 2;
      if (nr == 8) {
        for (let k = 0; k < kc; k++) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          src += step; dst += 32;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          v128.store(dst, zero);
          v128.store(dst, zero, 16);
          for (let q = 0; q < nr; q++) store<f32>(dst + (<usize>q << 2), load<f32>(src + (<usize>q << 2)));
          src += step; dst += 32;
        }
      }
    } else {
      // NT: column j of B is row j of b, contiguous in k.
      const src = B + (<usize>(j * ldb + k0) << 2);
      const step = <usize>ldb << 2;
      if (nr < 8) {
        for (let k = 0; k < kc; k++) {
          v128.store(dst + (<usize>k << 5), zero);
          v128.store(dst + (<usize>k << 5), zero, 16);
        }
      }
      for (let q = 0; q < nr; q++) {
        let s = src + <usize>q * step;
        let d = dst + (<usize>q << 2);
        for (let k = 0; k < kc; k++) {
          store<f32>(d, load<f32>(s));
          s += 4; d += 32;
        }
      }
      dst += <usize>kc << 5;
    }
  }
}

/** Pack rows i0..i0+mr of op(A), columns k0..k0+kc, as dst[k*4 + r]; rows past mr are zero. */
function packStrip(layout: i32, A: usize, lda: i32, i0: i32, mr: i32, k0: i32, kc: i32, dst: usize): void {
  if (layout == 2) {
    // TN: the 4 rows of one k are contiguous.
    let src = A + (<usize>(k0 * lda + i0) << 2);
    const step = <usize>lda << 2;
    if (mr == 4) {
      for (let k = 0; k < kc; k++) {
        v128.store(dst, v128.load(src));
        src += step; dst += 16;
      }
    } else {
      for (let k = 0; k < kc; k++) {
        v128.store(dst, f32x4.splat(0));
        for (let r = 0; r < mr; r++) store<f32>(dst + (<usize>r << 2), load<f32>(src + (<usize>r << 2)));
        src += step; dst += 16;
      }
    }
  } else {
    if (mr < 4) for (let k = 0; k < kc; k++) v128.store(dst + (<usize>k << 4), f32x4.splat(0));
    for (let r = 0; r < mr; r++) {
      let s = A + (<usize>((i0 + r) * lda + k0) << 2);
      let d = dst + (<usize>r << 2);
      for (let k = 0; k < kc; k++) {
        store<f32>(d, load<f32>(s));
        s += 4; d += 16;
      }
    }
  }
}

/**
 * The 4x8 micro-kernel: acc = strip(4 x kc) * panel(kc x 8), then
 * C[0:mr, 0:nr] = alpha*acc + beta*C + bias (beta 0: C not read); GELU, when
 * set, is applied after by the caller (gelu.ts geluTile, the same per value).
 */
function tile(ap: usize, bp: usize, kc: i32, cp: usize, ldc: i32, mr: i32, nr: i32,
  alpha: f32, beta: f32, biasp: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let k = kc;
  while (k > 0) {
    const b0 = v128.load(bp, 0), b1 = v128.load(bp, 16);
    let x = v128.load32_splat(ap, 0); c00 = fma4(x, b0, c00); c01 = fma4(x, b1, c01);
    x = v128.load32_splat(ap, 4); c10 = fma4(x, b0, c10); c11 = fma4(x, b1, c11);
    x = v128.load32_splat(ap, 8); c20 = fma4(x, b0, c20); c21 = fma4(x, b1, c21);
    x = v128.load32_splat(ap, 12); c30 = fma4(x, b0, c30); c31 = fma4(x, b1, c31);
    ap += 16; bp += 32; k--;
  }
  const rs = <usize>ldc << 2;
  if (nr == 8) {
    // Bias is not folded into the accumulators' start: alpha scales only the
    // product, and later K blocks (biasp 0) must not add it again.
    const va = f32x4.splat(alpha);
    let z0 = f32x4.splat(0), z1 = f32x4.splat(0);
    if (biasp) { z0 = v128.load(biasp); z1 = v128.load(biasp, 16); }
    storeRow(cp, c00, c01, va, beta, z0, z1);
    if (mr > 1) storeRow(cp + rs, c10, c11, va, beta, z0, z1);
    if (mr > 2) storeRow(cp + rs * 2, c20, c21, va, beta, z0, z1);
    if (mr > 3) storeRow(cp + rs * 3, c30, c31, va, beta, z0, z1);
  } else {
    storePartial(cp, c00, c01, nr, alpha, beta, biasp);
    if (mr > 1) storePartial(cp + rs, c10, c11, nr, alpha, beta, biasp);
    if (mr > 2) storePartial(cp + rs * 2, c20, c21, nr, alpha, beta, biasp);
    if (mr > 3) storePartial(cp + rs * 3, c30, c31, nr, alpha, beta, biasp);
  }
}

// @ts-ignore: decorator
@inline function storeRow(p: usize, x0: v128, x1: v128, va: v128, beta: f32, z0: v128, z1: v128): void {
  let r0 = f32x4.add(f32x4.mul(x0, va), z0);
  let r1 = f32x4.add(f32x4.mul(x1, va), z1);
  if (beta != 0) {
    let o0 = v128.load(p), o1 = v128.load(p, 16);
    if (beta != 1) { o0 = f32x4.mul(o0, f32x4.splat(beta)); o1 = f32x4.mul(o1, f32x4.splat(beta)); }
    r0 = f32x4.add(r0, o0);
    r1 = f32x4.add(r1, o1);
  }
  v128.store(p, r0);
  v128.store(p, r1, 16);
}

/** Edge tile (nr < 8): element by element; columns past nr are neither read nor written. */
function storePartial(p: usize, x0: v128, x1: v128, nr: i32, alpha: f32, beta: f32, biasp: usize): void {
  for (let j = 0; j < nr; j++) {
    let r = alpha * lane(j < 4 ? x0 : x1, j & 3);
    const q = p + (<usize>j << 2);
    if (beta != 0) r += beta * load<f32>(q);
    if (biasp) r += load<f32>(biasp + (<usize>j << 2));
    store<f32>(q, r);
  }
}

// @ts-ignore: decorator
@inline function lane(v: v128, i: i32): f32 {
  if (i == 0) return f32x4.extract_lane(v, 0);
  if (i == 1) return f32x4.extract_lane(v, 1);
  if (i == 2) return f32x4.extract_lane(v, 2);
  return f32x4.extract_lane(v, 3);
}
