// ATME (issue #4): schedules, plans on even/odd/degenerate grids, the
// size-weighted merge and its unmerge, gradients, per-image partner choice,
// the wrapper (identity when empty, class token untouched, proportional
// attention, the CDCP extension point), MAC counts, the kernels against their
// spec on both WASM builds, and the CLI.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import type { Backend } from '../src/backend/backend.js';
import { Tensor, scope, setBackend, getBackend, liveTensorCount } from '../src/tensor.js';
import { backward, noGrad, zeroGrad, tapeLength } from '../src/autograd.js';
import {
  parseSchedule, formatSchedule, toSteps, stepGrid, plan, planFromMap, readMap, merge, unmerge, composeMaps,
  initialSizes, keyBias, similarity, featuresOf, keysOf, sourceCount, type Axis, type Grid, type MergePlan,
} from '../src/cait/atme.js';
import { CaitModel } from '../src/cait/wrap.js';
import { countMacs, countParams } from '../src/cait/macs.js';
import { createModel, loadModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { train } from '../src/train/trainer.js';
import { writeSafetensorsFile, readSafetensorsFile } from '../src/io/safetensors-file.js';
import { withMerging } from '../src/cli/common.js';
import { gradcheck } from './gradcheck.js';
import { exec } from './kernels/harness.js';
import { randn, close } from './util.js';
import { cait } from './cait.js';


const ref = new ReferenceBackend();
const simd = loadWasmSync('simd'), relaxed = loadWasmSync('relaxed');
const BACKENDS: Backend[] = [relaxed, ref];

/** [B, N, C] host array. */
const rows = (a: Float32Array, C: number) => (i: number) => a.subarray(i * C, (i + 1) * C);

/** Positions of the destinations a source at (r, c) may join along `axis`. */
function candidates(grid: Grid, axis: Axis, r: number, c: number): number[] {
  const [h, w] = grid, out: number[] = [];
  if (axis === 'h') { out.push(r * w + c - 1); if (c + 1 < w) out.push(r * w + c + 1); }
  else { out.push((r - 1) * w + c); if (r + 1 < h) out.push((r + 1) * w + c); }
  return out;
}
/** New index of a destination (even-line) position. */
function destIndex(grid: Grid, axis: Axis, t: number): number {
  const [, w] = grid, r = Math.floor(t / w), c = t % w, nw = stepGrid(grid, axis)[1];
  return axis === 'h' ? r * nw + c / 2 : (r / 2) * nw + c;
}

// ---------------------------------------------------------------- schedules
{
  const test = suite('atme: schedules');
  test('parse, sort, format; "" and none are empty', () => {
    assert.equal(parseSchedule('h@3,v@6'), [{ axis: 'h', block: 3 }, { axis: 'v', block: 6 }]);
    assert.equal(parseSchedule(' v@6 , h@3 '), [{ axis: 'h', block: 3 }, { axis: 'v', block: 6 }]);
    assert.equal(parseSchedule(''), []);
    assert.equal(parseSchedule('none'), []);
    assert.is(formatSchedule(parseSchedule('v@6,h@3')), 'h@3,v@6');
    assert.equal(toSteps([{ axis: 'v', block: 2 }, { axis: 'h', block: 0 }]), [{ axis: 'h', block: 0 }, { axis: 'v', block: 2 }]);
  });
  test('bad schedules fail with a message naming the part', () => {
    assert.throws(() => parseSchedule('x@3'), /'x@3' is not AXIS@BLOCK/);
    assert.throws(() => parseSchedule('h3'), /'h3'/);
    assert.throws(() => parseSchedule('h@-1'), /'h@-1'/);
    assert.throws(() => parseSchedule('h@3,'), /'' is not/);
    assert.throws(() => parseSchedule('h@3,v@3'), /two steps in block 3/);
    assert.throws(() => toSteps('h@12', { depth: 12, imgSize: 224, patchSize: 16 }), /block 12 does not exist \(the model has 12 blocks/);
    // an 8x8 grid is 1 column wide after three h steps: a fourth has nothing to merge (it ran as a silent no-op)
    const fmnist = { depth: 6, imgSize: 32, patchSize: 4 };
    assert.equal(toSteps('h@0,h@1,h@2', fmnist).length, 3);
    assert.throws(() => toSteps('h@0,h@1,h@2,h@3,h@4', fmnist), /merge schedule 'h@0,h@1,h@2,h@3,h@4': step h@3 on a grid 8x1 has nothing left to merge \(the model's patch grid is 8x8\)/);
  });
  test('grid after a step: ceil on the halved axis', () => {
    assert.equal(stepGrid([14, 14], 'h'), [14, 7]);
    assert.equal(stepGrid([14, 7], 'v'), [7, 7]);
    assert.equal(stepGrid([7, 7], 'h'), [7, 4]);
    assert.equal(stepGrid([5, 3], 'v'), [3, 3]);
    assert.equal(stepGrid([1, 9], 'v'), [1, 9]);
    assert.equal(stepGrid([1, 1], 'h'), [1, 1]);
  });
  test.run();
}

// ---------------------------------------------------------------- plans and merge
{
  const test = suite('atme: plan and merge on even, odd and degenerate grids');
  const GRIDS: Grid[] = [[8, 8], [7, 7], [5, 3], [3, 5], [1, 6], [6, 1], [1, 1], [2, 2], [1, 5]];
  for (const be of BACKENDS) {
    test(`${be.name}: token count, grid, map shape, sizes sum to h*w, prefix untouched, weighted average`, () => {
      setBackend(be);
      let seed = 100;
      for (const grid of GRIDS) for (const axis of ['h', 'v'] as Axis[]) for (const sim of ['features', 'fixed'] as const) for (const prefix of [1, 2]) {
        const B = 2, C = 5, T = grid[0] * grid[1], N = prefix + T, what = `${grid.join('x')} ${axis} ${sim} prefix ${prefix}`;
        const before = liveTensorCount();
        scope(() => {
          const xd = randn(B * N * C, seed++), sd = new Float32Array(B * N).fill(1);
          // non-unit sizes on patch tokens, as after an earlier step
          const sz = randn(B * N, seed++);
          for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) sd[b * N + prefix + t] = 1 + Math.floor(2 * (sz[b * N + prefix + t] + 1));
          const x = Tensor.from(xd, [B, N, C]), sizes = Tensor.from(sd, [B, N]);
          const p = plan({ axis, grid, batch: B, prefix }, sim === 'fixed' ? null : featuresOf(x));
          const ng = stepGrid(grid, axis), T2 = ng[0] * ng[1];
          assert.equal(p.newGrid, ng, what);
          const map = readMap(p);
          assert.is(map.length, B * T, what);
          for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
            const r = Math.floor(t / grid[1]), c = t % grid[1], line = axis === 'h' ? c : r, d = map[b * T + t];
            if (line % 2 === 0) assert.is(d, destIndex(grid, axis, t), `${what}: destination ${t} keeps its place`);
            else {
              const cand = candidates(grid, axis, r, c).map((q) => destIndex(grid, axis, q));
              assert.ok(cand.includes(d), `${what}: source ${t} -> ${d}, candidates ${cand}`);
              if (sim === 'fixed') assert.is(d, cand[0], `${what}: fixed pairing joins the previous destination`);
            }
          }
          const out = merge(x, sizes, p);
          assert.equal(out.x.shape, [B, prefix + T2, C], what);
          assert.equal(out.sizes.shape, [B, prefix + T2], what);
          const y = out.x.toArray(), ys = out.sizes.toArray();
          for (let b = 0; b < B; b++) {
            let total = 0, want = 0;
            for (let d = 0; d < T2; d++) total += ys[b * (prefix + T2) + prefix + d];
            for (let t = 0; t < T; t++) want += sd[b * N + prefix + t];
            assert.is(total, want, `${what}: sizes are conserved`);
            for (let q = 0; q < prefix; q++) {
              assert.is(ys[b * (prefix + T2) + q], 1, `${what}: prefix size`);
              assert.equal(Array.from(rows(y, C)(b * (prefix + T2) + q)), Array.from(rows(xd, C)(b * N + q)), `${what}: prefix row ${q} untouched`);
            }
            // size-weighted average, by hand in float64
            const acc = new Float64Array(T2 * C), tot = new Float64Array(T2);
            for (let t = 0; t < T; t++) {
              const d = map[b * T + t], s = sd[b * N + prefix + t];
              tot[d] += s;
              for (let c = 0; c < C; c++) acc[d * C + c] += s * xd[(b * N + prefix + t) * C + c];
            }
            const got = y.subarray((b * (prefix + T2) + prefix) * C, (b + 1) * (prefix + T2) * C);
            close(got, acc.map((v, i) => v / tot[Math.floor(i / C)]), 1e-6, 1e-6, `${what}: weighted average`);
            close(ys.subarray(b * (prefix + T2) + prefix, (b + 1) * (prefix + T2)), tot, 0, 0, `${what}: sizes`);
          }
        });
        assert.is(liveTensorCount(), before, `${what}: leaked tensors`);
      }
    });
  }
  test('alternating steps down to 1x1: 6x6 -> 6x3 -> 3x3 -> 3x2 -> 2x2 -> 2x1 -> 1x1, and 7x5 -> 7x3 -> 4x3 -> ...', () => {
    setBackend(relaxed);
    for (const [grid0, counts] of [[[6, 6], [18, 9, 6, 4, 2, 1]], [[7, 5], [21, 12, 8, 4, 2, 1]]] as Array<[Grid, number[]]>) {
      scope(() => {
        const B = 3, C = 4, T0 = grid0[0] * grid0[1];
        let x = Tensor.from(randn(B * (1 + T0) * C, 7), [B, 1 + T0, C]), sizes = initialSizes(B, 1 + T0), grid = grid0;
        counts.forEach((n, k) => {
          const axis: Axis = k % 2 ? 'v' : 'h';
          const p = plan({ axis, grid, batch: B, prefix: 1 }, featuresOf(x));
          ({ x, sizes } = merge(x, sizes, p));
          grid = p.newGrid;
          assert.is(grid[0] * grid[1], n, `step ${k} on ${grid0.join('x')}`);
          assert.equal(x.shape, [B, 1 + n, C]);
          const s = sizes.toArray();
          for (let b = 0; b < B; b++) assert.is(s.subarray(b * (1 + n) + 1, (b + 1) * (1 + n)).reduce((a, v) => a + v, 0), T0);
        });
      });
    }
  });
  test('fixed pairing is size-weighted 1x2 pooling (hand-computed, 5x3 grid, both axes)', () => {
    setBackend(relaxed);
    scope(() => {
      // token (r, c) of image 0 holds [10r + c, -(10r + c)]; sizes 1 except (r, 1) = 3 in image 1
      const B = 2, h = 5, w = 3, C = 2, N = 1 + h * w;
      const xd = new Float32Array(B * N * C), sd = new Float32Array(B * N).fill(1);
      for (let b = 0; b < B; b++) {
        xd.set([100 + b, 200 + b], b * N * C);
        for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) xd.set([10 * r + c + b, -(10 * r + c)], (b * N + 1 + r * w + c) * C);
      }
      for (let r = 0; r < h; r++) sd[N + 1 + r * w + 1] = 3;
      const x = Tensor.from(xd, [B, N, C]), sizes = Tensor.from(sd, [B, N]);
      const H = merge(x, sizes, plan({ axis: 'h', grid: [h, w], batch: B, prefix: 1 }, null));
      // image 0: (x[r,0] + x[r,1]) / 2, x[r,2] alone; image 1: (x[r,0] + 3 x[r,1]) / 4
      const wantH: number[] = [], wantHs: number[] = [];
      for (let b = 0; b < B; b++) {
        wantH.push(100 + b, 200 + b); wantHs.push(1);
        for (let r = 0; r < h; r++) {
          const a = 10 * r + b, s1 = b ? 3 : 1;
          wantH.push((a + s1 * (a + 1)) / (1 + s1), -((10 * r) + s1 * (10 * r + 1)) / (1 + s1), a + 2, -(10 * r + 2));
          wantHs.push(1 + s1, 1);
        }
      }
      close(H.x.toArray(), wantH, 1e-5, 0, 'h pooling');
      close(H.sizes.toArray(), wantHs, 0, 0, 'h sizes');
      const V = merge(x, initialSizes(B, N), plan({ axis: 'v', grid: [h, w], batch: B, prefix: 1 }, null));
      const wantV: number[] = [];
      for (let b = 0; b < B; b++) {
        wantV.push(100 + b, 200 + b);
        for (const r of [0, 2]) for (let c = 0; c < w; c++) wantV.push(10 * r + 5 + c + b, -(10 * r + 5 + c));
        for (let c = 0; c < w; c++) wantV.push(40 + c + b, -(40 + c));
      }
      close(V.x.toArray(), wantV, 1e-5, 0, 'v pooling');
      assert.equal(Array.from(V.sizes.toArray().subarray(0, 10)), [1, 2, 2, 2, 2, 2, 2, 1, 1, 1]);
    });
  });
  test('partner choice differs per image in one batch, and a batch merges as its images alone', () => {
    setBackend(relaxed);
    scope(() => {
      // 1x3 grid, source = column 1: like column 0 in image 0, like column 2 in image 1
      const C = 3, e0 = [1, 0, 0], e1 = [0, 1, 0], e2 = [0, 0, 1];
      const xd = Float32Array.from([...e2, ...e0, ...e0, ...e1, /* image 1 */ ...e2, ...e0, ...e1, ...e1]);
      const x = Tensor.from(xd, [2, 4, C]);
      const p = plan({ axis: 'h', grid: [1, 3], batch: 2, prefix: 1 }, featuresOf(x));
      assert.equal(Array.from(readMap(p)), [0, 0, 1, 0, 1, 1]);
      const m = merge(x, initialSizes(2, 4), p);
      assert.equal(Array.from(m.sizes.toArray()), [1, 2, 1, 1, 1, 2]);
      // random 6x6, three images, keys of a 3-head qkv: plans differ, and each image merges as if alone
      const B = 3, H = 3, D = 4, W = H * 3 * D, N = 37;
      const qkv = Tensor.from(randn(B * N * W, 21), [B, N, W]), f = Tensor.from(randn(B * N * 5, 22), [B, N, 5]);
      const pk = plan({ axis: 'v', grid: [6, 6], batch: B, prefix: 1 }, keysOf(qkv, H, D));
      const maps = readMap(pk);
      const per = [0, 1, 2].map((b) => Array.from(maps.subarray(b * 36, (b + 1) * 36)));
      assert.ok(per[0].join() !== per[1].join() || per[1].join() !== per[2].join(), 'random keys gave three identical plans');
      const mb = merge(f, initialSizes(B, N), pk).x.toArray();
      for (let b = 0; b < B; b++) {
        const qb = Tensor.from(qkv.toArray().subarray(b * N * W, (b + 1) * N * W), [1, N, W]);
        const fb = Tensor.from(f.toArray().subarray(b * N * 5, (b + 1) * N * 5), [1, N, 5]);
        const pb = plan({ axis: 'v', grid: [6, 6], batch: 1, prefix: 1 }, keysOf(qb, H, D));
        assert.equal(Array.from(readMap(pb)), per[b], `image ${b} plan alone`);
        assert.equal(Array.from(merge(fb, initialSizes(1, N), pb).x.toArray()), Array.from(mb.subarray(b * 19 * 5, (b + 1) * 19 * 5)), `image ${b} merged alone`);
      }
    });
  });
  test('keys similarity: the head mean of the keys inside qkv, not q or v', () => {
    setBackend(ref);
    scope(() => {
      const B = 1, H = 2, D = 3, Dv = 2, W = H * (2 * D + Dv), N = 1 + 4;
      const q = randn(B * N * W, 31);
      const qkv = Tensor.from(q, [B, N, W]);
      const sim = similarity(keysOf(qkv, H, D), 'h', [2, 2], 1).toArray();
      // by hand: key vector of token n = mean over heads of q[n, H*D + h*D + d]
      const key = (n: number) => [0, 1, 2].map((d) => (q[n * W + H * D + d] + q[n * W + H * D + D + d]) / 2);
      const cos = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0) / Math.hypot(...a) / Math.hypot(...b);
      // sources (0, 1) and (1, 1) = tokens 2 and 4; their only candidates are tokens 1 and 3
      assert.is(sourceCount([2, 2], 'h'), 2);
      close([sim[0], sim[2]], [cos(key(2), key(1)), cos(key(4), key(3))], 1e-6, 0, 'cosines');
      assert.is(sim[1], -Infinity); assert.is(sim[3], -Infinity);
    });
  });
  test.run();
}

// ---------------------------------------------------------------- unmerge
{
  const test = suite('atme: unmerge');
  for (const be of BACKENDS) {
    test(`${be.name}: unmerge after 3 steps restores h x w, each position holding the token it was merged into`, () => {
      setBackend(be);
      for (const grid0 of [[7, 6], [4, 4], [1, 5]] as Grid[]) {
        scope(() => {
          const B = 2, C = 6, T0 = grid0[0] * grid0[1], N0 = 1 + T0;
          const xd = randn(B * N0 * C, 41);
          let x = Tensor.from(xd, [B, N0, C]), sizes = initialSizes(B, N0), grid = grid0;
          const plans: MergePlan[] = [];
          for (const axis of ['h', 'v', 'h'] as Axis[]) {
            const p = plan({ axis, grid, batch: B, prefix: 1 }, featuresOf(x));
            ({ x, sizes } = merge(x, sizes, p));
            plans.push(p);
            grid = p.newGrid;
          }
          const T = grid[0] * grid[1], u = unmerge(x, plans);
          assert.equal(u.shape, [B, N0, C]);
          const comp = composeMaps(plans), ud = u.toArray(), md = x.toArray(), s = sizes.toArray();
          for (let b = 0; b < B; b++) {
            assert.equal(Array.from(rows(ud, C)(b * N0)), Array.from(rows(md, C)(b * (1 + T))), 'class token');
            const count = new Float64Array(T), mean = new Float64Array(T * C);
            for (let t = 0; t < T0; t++) {
              const d = comp[b * T0 + t];
              assert.equal(Array.from(rows(ud, C)(b * N0 + 1 + t)), Array.from(rows(md, C)(b * (1 + T) + 1 + d)), `position ${t}`);
              count[d]++;
              for (let c = 0; c < C; c++) mean[d * C + c] += xd[(b * N0 + 1 + t) * C + c];
            }
            // unit sizes at the start: a merged token is the plain mean of the positions it stands for
            close(md.subarray((b * (1 + T) + 1) * C, (b + 1) * (1 + T) * C), mean.map((v, i) => v / count[Math.floor(i / C)]), 2e-6, 0, `${grid0} image ${b}: merged = group mean`);
            close(s.subarray(b * (1 + T) + 1, (b + 1) * (1 + T)), count, 0, 0, 'sizes = group sizes');
          }
          // no plans: a copy
          assert.equal(Array.from(unmerge(x, []).toArray()), Array.from(md));
        });
      }
    });
  }
  test('composeMaps refuses plans that do not follow each other', () => {
    setBackend(relaxed);
    scope(() => {
      const a = plan({ axis: 'h', grid: [4, 4], batch: 1, prefix: 1 }, null), b = plan({ axis: 'h', grid: [4, 4], batch: 1, prefix: 1 }, null);
      assert.throws(() => composeMaps([a, b]), /does not follow/);
      assert.throws(() => planFromMap({ axis: 'h', grid: [2, 2], batch: 1, prefix: 1 }, Int32Array.from([0, 0, 1, 2])), /outside \[0, 2\)/);
    });
  });
  test.run();
}

// ---------------------------------------------------------------- gradients
{
  for (const be of BACKENDS) {
    const test = suite(`atme: finite-difference gradients (${be.name})`);
    test.before(() => setBackend(be));
    const B = 2, C = 3, grid: Grid = [3, 5], N = 1 + 15;
    const mk = (axis: Axis, seed: number): MergePlan => scope(() => {
      // a plan from random features: per-image partners, kept fixed while x is nudged
      const f = Tensor.from(randn(B * N * 4, seed), [B, N, 4]);
      return plan({ axis, grid, batch: B, prefix: 1 }, featuresOf(f));
    });
    test('merge: to destinations and sources, weighted by size (sizes 1..3)', () => {
      const p = mk('h', 51), sd = new Float32Array(B * N).fill(1);
      for (let i = 0; i < sd.length; i++) if (i % N) sd[i] = 1 + (i % 3);
      const sizes = scope(() => Tensor.from(sd, [B, N]));
      gradcheck('merge', ([x]) => merge(x, sizes, p).x, [[B, N, C]], { samples: 40 });
      sizes.dispose(); p.map.dispose();
    });
    test('unmerge of two steps, and unmerge(merge(x))', () => {
      const p1 = mk('v', 52);
      const p2 = scope(() => plan({ axis: 'h', grid: p1.newGrid, batch: B, prefix: 1 }, featuresOf(Tensor.from(randn(B * (1 + 10) * 2, 53), [B, 11, 2]))));
      const T2 = p2.newGrid[0] * p2.newGrid[1];
      gradcheck('unmerge', ([x]) => unmerge(x, [p1, p2]), [[B, 1 + T2, C]], { samples: 40 });
      gradcheck('unmerge∘merge', ([x]) => unmerge(merge(x, initialSizes(B, N), p1).x, [p1]), [[B, N, C]], { samples: 40 });
      p1.map.dispose(); p2.map.dispose();
    });
    test.run();
  }
}

// ---------------------------------------------------------------- kernels vs reference
{
  const test = suite('atme: SIMD kernels vs the reference (odd, tail, unaligned sizes; outputs pre-filled with NaN)');
  const GRIDS: Grid[] = [[1, 1], [1, 2], [2, 1], [3, 3], [5, 3], [4, 7], [7, 7], [2, 8]];
  const WIDTHS: Array<[heads: number, dim: number]> = [[1, 1], [1, 5], [3, 4], [2, 9], [3, 17]];
  const SHAPES: Array<[B: number, prefix: number]> = [[1, 1], [2, 0], [3, 2]];
  const nan = (n: number) => new Float32Array(n).fill(NaN);
  const asF32 = (a: Int32Array) => new Float32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  const asI32 = (f: Float32Array) => new Int32Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
  const finite = (a: Float32Array) => a.map((v) => (v === -Infinity ? -7 : v));
  test('atme_similarity, atme_plan, atme_merge_fwd/bwd, atme_unmerge_fwd/bwd', () => {
    let seed = 1000, cases = 0;
    for (const grid of GRIDS) for (const axis of [0, 1]) for (const [B, prefix] of SHAPES) for (const [heads, dim] of WIDTHS) {
      const [gh, gw] = grid, T = gh * gw, N = prefix + T, what = `${gh}x${gw} axis ${axis} B ${B} prefix ${prefix} ${heads}x${dim}`;
      const S = sourceCount(grid, axis ? 'v' : 'h'), ng = stepGrid(grid, axis ? 'v' : 'h'), T2 = ng[0] * ng[1], N2 = prefix + T2;
      // keys inside a qkv row: ld = heads * (2 dim + 3), offset heads * dim
      const ld = heads * (2 * dim + 3), off = heads * dim, x = randn(B * N * ld, seed++);
      const simArgs = (p: number[]) => [p[0] + off * 4, ld, heads, dim, B, prefix, gh, gw, axis, p[1]];
      const simRef = exec(ref, 'atme_similarity', [x, nan(2 * B * S)], simArgs).out[1];
      const mapArgs = (fixed: boolean) => (p: number[]) => [fixed ? 0 : p[0], B, gh, gw, axis, p[1]];
      const mapRef = exec(ref, 'atme_plan', [simRef, nan(B * T)], mapArgs(false)).out[1];
      const fixRef = exec(ref, 'atme_plan', [simRef, nan(B * T)], mapArgs(true)).out[1];
      // merge inputs: C from the widths list, sizes 1..4 (prefix 1)
      const C = heads * dim, xm = randn(B * N * C, seed++), sizes = new Float32Array(B * N).fill(1), rs = randn(B * N, seed++);
      for (let i = 0; i < sizes.length; i++) if (i % N >= prefix) sizes[i] = 1 + Math.floor(2 * (rs[i] + 1));
      const mergeArgs = (p: number[]) => [p[0], p[1], p[2], B, prefix, T, T2, C, p[3], p[4]];
      const mRef = exec(ref, 'atme_merge_fwd', [xm, sizes, mapRef, nan(B * N2 * C), nan(B * N2)], mergeArgs).out;
      const dy = randn(B * N2 * C, seed++);
      const bwdArgs = (p: number[]) => [p[0], p[1], p[2], p[3], B, prefix, T, T2, C, p[4]];
      const bRef = exec(ref, 'atme_merge_bwd', [dy, sizes, mRef[4], mapRef, nan(B * N * C)], bwdArgs).out[4];
      // unmerge with an arbitrary many-to-one map (as composed maps are)
      const anyMap = asF32(Int32Array.from(randn(B * T, seed++), (v) => Math.min(T2 - 1, Math.floor((v + 1) / 2 * T2))));
      const xu = randn(B * N2 * C, seed++), du = randn(B * N * C, seed++);
      const unArgs = (p: number[]) => [p[0], p[1], B, prefix, T, T2, C, p[2]];
      const uRef = exec(ref, 'atme_unmerge_fwd', [xu, anyMap, nan(B * N * C)], unArgs).out[2];
      const ubRef = exec(ref, 'atme_unmerge_bwd', [du, anyMap, nan(B * N2 * C)], unArgs).out[2];
      for (const w of [simd, relaxed]) {
        const sim = exec(w, 'atme_similarity', [x, nan(2 * B * S)], simArgs).out[1];
        assert.equal(Array.from(sim, (v) => v === -Infinity), Array.from(simRef, (v) => v === -Infinity), `${w.name} ${what}: -inf where no next`);
        close(finite(sim), finite(simRef), 1e-6, 0, `${w.name} similarity ${what}:`);
        assert.equal(Array.from(asI32(exec(w, 'atme_plan', [simRef, nan(B * T)], mapArgs(false)).out[1])), Array.from(asI32(mapRef)), `${w.name} plan ${what}`);
        assert.equal(Array.from(asI32(exec(w, 'atme_plan', [simRef, nan(B * T)], mapArgs(true)).out[1])), Array.from(asI32(fixRef)), `${w.name} fixed plan ${what}`);
        const m = exec(w, 'atme_merge_fwd', [xm, sizes, mapRef, nan(B * N2 * C), nan(B * N2)], mergeArgs).out;
        close(m[3], mRef[3], 1e-6, 1e-6, `${w.name} merge_fwd y ${what}:`);
        close(m[4], mRef[4], 0, 0, `${w.name} merge_fwd sizes ${what}:`);
        close(exec(w, 'atme_merge_bwd', [dy, sizes, mRef[4], mapRef, nan(B * N * C)], bwdArgs).out[4], bRef, 1e-6, 1e-6, `${w.name} merge_bwd ${what}:`);
        close(exec(w, 'atme_unmerge_fwd', [xu, anyMap, nan(B * N * C)], unArgs).out[2], uRef, 0, 0, `${w.name} unmerge_fwd ${what}:`);
        close(exec(w, 'atme_unmerge_bwd', [du, anyMap, nan(B * N2 * C)], unArgs).out[2], ubRef, 1e-6, 1e-6, `${w.name} unmerge_bwd ${what}:`);
        cases++;
      }
    }
    assert.is(cases, GRIDS.length * 2 * SHAPES.length * WIDTHS.length * 2);
  });
  test('fixed pairing maps are the plan of a similarity that always prefers prev', () => {
    // a 4x7 grid, axis 0: sources at odd columns, every one to (c-1)/2
    const map = asI32(exec(ref, 'atme_plan', [nan(2 * 4 * 3), nan(28)], (p) => [0, 1, 4, 7, 0, p[1]]).out[1]);
    assert.equal(Array.from(map.subarray(0, 7)), [0, 0, 1, 1, 2, 2, 3]);
    assert.equal(Array.from(map.subarray(21, 28)), [12, 12, 13, 13, 14, 14, 15]);
  });
  test.run();
}

// ---------------------------------------------------------------- the wrapper
{
  const test = suite('atme: CaitModel');
  test.before(() => setBackend(relaxed));
  // micro: 32x32 input, patch 8 -> a 4x4 grid, 2 blocks; odd: 20x20 -> 5x5
  const micro = getPreset('micro');
  const odd: VitConfig = { ...micro, name: 'odd', imgSize: 20, patchSize: 4, depth: 3 };
  const input = (cfg: VitConfig, B: number, seed: number) => Tensor.from(randn(B * cfg.inChans * cfg.imgSize ** 2, seed), [B, cfg.inChans, cfg.imgSize, cfg.imgSize]);

  test('an empty schedule is exactly the identity (bitwise-equal logits and tokens)', () => {
    for (const cfg of [micro, odd]) {
      const vit = createModel(cfg, 3);
      noGrad(() => scope(() => {
        const x = input(cfg, 3, 5), want = vit.forward(x).toArray();
        for (const m of ['', 'none']) {
          const cm = new CaitModel(vit, { merge: m });
          assert.equal(cm.schedule, []);
          assert.equal(Array.from(cm.forward(x).toArray()), Array.from(want), `merge '${m}' logits`);
          const out = cm.forwardTokens(x);
          assert.equal(Array.from(out.tokens.toArray()), Array.from(vit.forwardFeatures(x).toArray()), 'tokens');
          assert.equal(out.plans, []);
          assert.is(out.sizes, null);
        }
      }));
      vit.dispose();
    }
  });
  test('config, parameters, token counts per block and the final grid', () => {
    const vit = createModel(odd, 4);
    const cm = new CaitModel(vit, { merge: 'v@2,h@0' });
    assert.is(cm.cfg.merge, 'h@0,v@2');
    assert.is(vit.cfg.merge, undefined, 'the ViT is not edited');
    assert.equal(cm.namedParameters().map(([n]) => n), vit.namedParameters().map(([n]) => n));
    assert.ok(cm.namedParameters().every(([n, p]) => p === new Map(vit.namedParameters()).get(n)), 'parameters are shared');
    assert.throws(() => new CaitModel(vit, { merge: 'h@3' }), /block 3 does not exist/);
    assert.throws(() => new CaitModel(vit, { merge: 'h@0', similarity: 'cosine' as never }), /similarity 'cosine'/);
    noGrad(() => scope(() => {
      const out = cm.forwardTokens(input(odd, 2, 6));
      assert.equal(out.tokens.shape, [2, 1 + 3 * 3, odd.embedDim]);   // 5x5 -> 5x3 -> 3x3
      assert.equal(out.grid, [3, 3]);
      assert.equal(out.plans.map((p) => [p.axis, p.grid, p.newGrid]), [['h', [5, 5], [5, 3]], ['v', [5, 3], [3, 3]]]);
      assert.equal(countMacs(cm.cfg).tokens, [26, 16, 16]);
      const s = out.sizes!.toArray();
      for (let b = 0; b < 2; b++) {
        assert.is(s[b * 10], 1, 'class token size');
        assert.is(s.subarray(b * 10 + 1, b * 10 + 10).reduce((a, v) => a + v, 0), 25);
      }
      assert.equal(unmerge(out.tokens, out.plans).shape, [2, 26, odd.embedDim]);
    }));
    vit.dispose();
  });
  test('class token never merged; attnStep / mlpStep are the extension point', () => {
    const vit = createModel(odd, 5);
    const seen: string[] = [];
    class Spy extends CaitModel {
      attnOut: Float32Array[] = []; mlpIn: Float32Array[] = [];
      override attnStep(i: number, x: Tensor, kb: Tensor | null, onQkv?: (qkv: Tensor) => void): Tensor {
        seen.push(`attn${i}:${x.shape[1]}:${kb ? 'bias' : '-'}`);
        const y = super.attnStep(i, x, kb, onQkv);
        this.attnOut.push(y.toArray());
        return y;
      }
      override mlpStep(i: number, x: Tensor): Tensor {
        seen.push(`mlp${i}:${x.shape[1]}`);
        this.mlpIn.push(x.toArray());
        return super.mlpStep(i, x);
      }
    }
    for (const similarity of ['keys', 'features', 'fixed'] as const) {
      seen.length = 0;
      const spy = new Spy(vit, { merge: 'h@1', similarity });
      noGrad(() => scope(() => spy.forward(input(odd, 2, 7))));
      assert.equal(seen, ['attn0:26:-', 'mlp0:26', 'attn1:26:-', 'mlp1:16', 'attn2:16:bias', 'mlp2:16'], similarity);
      const C = odd.embedDim, a = spy.attnOut[1], m = spy.mlpIn[1];
      for (let b = 0; b < 2; b++) assert.equal(Array.from(m.subarray(b * 16 * C, b * 16 * C + C)), Array.from(a.subarray(b * 26 * C, b * 26 * C + C)), `${similarity}: class token of image ${b} passes the merge untouched`);
    }
    vit.dispose();
  });
  test('distilled DeiT (class + distillation token): both prefix tokens pass every merge untouched, sizes 1, logits the mean of the two heads', () => {
    const dcfg: VitConfig = { ...odd, name: 'odd-distilled', distilled: true };
    const vit = createModel(dcfg, 9);
    assert.is(vit.numPrefixTokens, 2);
    const C = dcfg.embedDim;
    class Spy extends CaitModel {
      attnOut = new Map<number, Float32Array>(); mlpIn = new Map<number, Float32Array>();
      override attnStep(i: number, x: Tensor, kb: Tensor | null, onQkv?: (qkv: Tensor) => void): Tensor {
        const y = super.attnStep(i, x, kb, onQkv);
        this.attnOut.set(i, y.toArray());
        return y;
      }
      override mlpStep(i: number, x: Tensor): Tensor { this.mlpIn.set(i, x.toArray()); return super.mlpStep(i, x); }
    }
    for (const similarity of ['keys', 'features', 'fixed'] as const) {
      const spy = new Spy(vit, { merge: 'h@0,v@1', similarity });
      noGrad(() => scope(() => {
        const x = input(dcfg, 2, 11), out = spy.forwardTokens(x);
        // 5x5 -> 5x3 -> 3x3, plus 2 prefix tokens
        assert.equal(out.tokens.shape, [2, 2 + 9, C], similarity);
        assert.equal(out.plans.map((p) => p.prefix), [2, 2]);
        const s = out.sizes!.toArray();
        for (let b = 0; b < 2; b++) {
          assert.equal([s[b * 11], s[b * 11 + 1]], [1, 1], `${similarity}: prefix sizes`);
          assert.is(s.subarray(b * 11 + 2, b * 11 + 11).reduce((a, v) => a + v, 0), 25, `${similarity}: patch sizes sum to the grid`);
        }
        for (const [blk, nIn, nOut] of [[0, 27, 17], [1, 17, 11]] as const) {
          const a = spy.attnOut.get(blk)!, m = spy.mlpIn.get(blk)!;
          for (let b = 0; b < 2; b++) for (let q = 0; q < 2; q++)
            assert.equal(Array.from(m.subarray((b * nOut + q) * C, (b * nOut + q + 1) * C)), Array.from(a.subarray((b * nIn + q) * C, (b * nIn + q + 1) * C)),
              `${similarity}: prefix token ${q} of image ${b} passes merge ${blk} untouched`);
        }
        // the head: mean of head(class token) and head_dist(distillation token)
        const t = out.tokens.toArray(), logits = spy.vit.forwardHead(out.tokens).toArray();
        const hw = vit.head.weight.toArray(), hb = vit.head.bias!.toArray(), dw = vit.head_dist!.weight.toArray(), db = vit.head_dist!.bias!.toArray();
        const K = dcfg.numClasses, want = new Float32Array(2 * K);
        for (let b = 0; b < 2; b++) for (let k = 0; k < K; k++) {
          let z0 = hb[k], z1 = db[k];
          for (let c = 0; c < C; c++) { z0 += hw[k * C + c] * t[(b * 11) * C + c]; z1 += dw[k * C + c] * t[(b * 11 + 1) * C + c]; }
          want[b * K + k] = (z0 + z1) / 2;
        }
        close(logits, want, 1e-5, 1e-5, `${similarity}: logits`);
      }));
    }
    vit.dispose();
  });
  test('proportional attention changes outputs only when sizes differ', () => {
    const vit = createModel(odd, 6);
    noGrad(() => scope(() => {
      const x = input(odd, 2, 8);
      const run = (merge: string, propAttn: boolean) => Array.from(new CaitModel(vit, { merge, propAttn }).forward(x).toArray());
      // merging in the last block: every attention saw unit sizes, the switch cannot matter
      assert.equal(run('h@2', true), run('h@2', false));
      // merging earlier: later attention sees sizes 1 (class) and 1..2 (patches)
      const on = run('h@0', true), off = run('h@0', false);
      assert.ok(on.some((v, i) => v !== off[i]), 'proportional attention had no effect after a merge');
      // the bias is log(size): 0 for the class token
      const kb = keyBias(Tensor.from([1, 2, 3, 1], [2, 2])).toArray();
      close(kb, [0, Math.log(2), Math.log(3), 0], 1e-7);
    }));
    vit.dispose();
  });
  test('gradients reach every parameter through merging; finite differences agree (fixed pairing)', () => {
    const vit = createModel(odd, 7);
    const cm = new CaitModel(vit, { merge: 'h@0,v@1', similarity: 'fixed' });
    const x = scope(() => input(odd, 2, 9)), w = randn(2 * odd.numClasses, 10);
    const before = liveTensorCount();
    scope(() => { backward(cm.forward(x), Tensor.from(w, [2, odd.numClasses])); });
    assert.is(tapeLength(), 0);
    for (const [n, p] of cm.namedParameters()) assert.ok(p.grad, `no gradient reached ${n}`);
    const named = new Map(cm.namedParameters());
    const loss = () => noGrad(() => scope(() => { const y = cm.forward(x).toArray(); return y.reduce((s, v, i) => s + v * w[i], 0); }));
    for (const [name, idx] of [['blocks.0.attn.qkv.weight', [3, 500]], ['blocks.2.mlp.fc1.weight', [7]], ['pos_embed', [48 * 3 + 1, 48 * 20 + 5]]] as Array<[string, number[]]>) {
      const p = named.get(name)!, g = p.grad!.toArray(), data = p.toArray();
      for (const j of idx) {
        const h = 1e-2, orig = data[j];
        data[j] = orig + h; p.write(data); const lp = loss();
        data[j] = orig - h; p.write(data); const lm = loss();
        data[j] = orig; p.write(data);
        const num = (lp - lm) / (2 * h);
        assert.ok(Math.abs(num - g[j]) <= 2e-3 + 2e-2 * Math.abs(g[j]), `${name}[${j}]: analytic ${g[j]} vs numeric ${num}`);
      }
    }
    zeroGrad(cm.parameters());
    assert.is(liveTensorCount(), before, 'forward/backward with merging leaked tensors');
    x.dispose(); vit.dispose();
  });
  test('training with merging: no leaks; the saved model records cfg.merge and the switches, and the CLI wraps it', async () => {
    const cfg: VitConfig = { ...getPreset('vit_fmnist'), name: 'tiny', imgSize: 16, patchSize: 4, embedDim: 8, depth: 2, numHeads: 2, dataSize: 12, mean: [0.5], std: [0.25] };
    const n = 24, images = new Uint8Array(n * 144), labels = new Uint8Array(n);
    const noise = randn(n * 144, 11);
    for (let i = 0; i < n; i++) { labels[i] = i % 3; for (let p = 0; p < 144; p++) images[i * 144 + p] = Math.round(127 + 100 * noise[i * 144 + p]); }
    const vit = createModel(cfg, 1), cm = new CaitModel(vit, { merge: 'h@0,v@1', similarity: 'features', propAttn: false });
    const dir = mkdtempSync(join(tmpdir(), 'cait-atme-'));
    const live = liveTensorCount(), bytes = getBackend().stats().bytesInUse;
    train(cm, { images, labels, n, h: 12, w: 12 }, { epochs: 2, batchSize: 8, lr: 1e-3, minLr: 1e-5, weightDecay: 0.05, warmupEpochs: 0, smoothing: 0.1, clip: 1, seed: 1, cropPad: 1, flip: true, mean: 0.5, std: 0.25, outDir: dir, quiet: true });
    assert.is(liveTensorCount(), live, 'tensors leaked by training with merging');
    assert.is(getBackend().stats().bytesInUse, bytes, 'heap bytes leaked by training with merging');
    const file = join(dir, 'model.safetensors');
    const { model, metadata } = loadModel(file);
    assert.is(model.cfg.merge, 'h@0,v@1');
    const runner = withMerging(model, {}, metadata);
    assert.ok(runner instanceof CaitModel, 'a saved schedule is wrapped');
    assert.equal((runner as CaitModel).options, { similarity: 'features', propAttn: false });
    const off = withMerging(model, { merge: 'none' }, metadata);
    assert.ok(!(off instanceof CaitModel) || off.schedule.length === 0, '--merge none turns it off');
    assert.is(off.cfg.merge, undefined);
    const x = input(cfg, 2, 12);
    noGrad(() => scope(() => {
      assert.equal(Array.from(runner.forward(x).toArray()), Array.from(cm.forward(x).toArray()), 'loaded = trained');
    }));
    // the CLI: forward on the saved file merges by itself; --merge none does not
    // (in-process and awaited, so outside the synchronous scope above)
    const inp = join(dir, 'in.safetensors'), out1 = join(dir, 'o1.safetensors'), out2 = join(dir, 'o2.safetensors');
    writeSafetensorsFile(inp, { pixel_values: { shape: x.shape, data: x.toArray() } });
    assert.is((await cait('forward', '--model', file, '--input', inp, '--out', out1, '--json')).code, 0);
    assert.is((await cait('forward', '--model', file, '--input', inp, '--out', out2, '--merge', 'none', '--json')).code, 0);
    const l1 = readSafetensorsFile(out1).tensors.get('logits')!.data, l2 = readSafetensorsFile(out2).tensors.get('logits')!.data;
    noGrad(() => scope(() => {
      close(l1, cm.forward(x).toArray(), 1e-5, 0, 'cait forward of a merged model');
      close(l2, vit.forward(x).toArray(), 1e-5, 0, 'cait forward --merge none');
    }));
    assert.ok(l1.some((v, i) => Math.abs(v - l2[i]) > 1e-6), 'merging changed nothing');
    x.dispose(); model.dispose(); vit.dispose();
  });
  test.run();
}

// ---------------------------------------------------------------- MACs and CLI
{
  const test = suite('atme: MAC counts and the CLI');
  const deit = getPreset('deit_tiny_patch16_224');
  test('DeiT-Tiny: 1.25 G dense, 0.79 G with h@3, 0.65 G with h@3,v@6 (within 1%)', () => {
    for (const [s, g] of [['', 1.25], ['h@3', 0.79], ['h@3,v@6', 0.65]] as Array<[string, number]>) {
      const r = countMacs(deit, s);
      assert.ok(Math.abs(r.total / 1e9 - g) <= 0.01 * g, `${s || 'dense'}: ${r.total / 1e9} G, want ${g} G`);
    }
    assert.equal(countMacs(deit, 'h@3,v@6').tokens, [197, 197, 197, 197, 99, 99, 99, 50, 50, 50, 50, 50]);
    const b3 = countMacs(deit, 'h@3').blocks[3];
    assert.equal([b3.attnTokens, b3.mlpTokens], [197, 99], 'the merging block: attention before, MLP after');
  });
  test('formula per block, compact widths, and parameters equal the model', () => {
    const cfg: VitConfig = { ...getPreset('micro'), widths: [{ qk: 8, v: 12, mlp: 100 }, { qk: 16, v: 16, mlp: 192 }] };
    const r = countMacs(cfg, 'h@0');
    const C = 48, H = 3, n0 = 17, n1 = 9;
    assert.is(r.blocks[0].total, n0 * C * H * (16 + 12) + n0 * n0 * H * 20 + n0 * H * 12 * C + 2 * n1 * C * 100);
    assert.is(r.blocks[1].total, n1 * C * H * 48 + n1 * n1 * H * 32 + n1 * H * 16 * C + 2 * n1 * C * 192);
    assert.is(r.patchEmbed, 16 * 3 * 64 * C);
    assert.is(r.total, r.patchEmbed + r.head + r.blocks[0].total + r.blocks[1].total);
    for (const c of [getPreset('micro'), getPreset('vit_fmnist'), cfg]) {
      const m = createModel(c, 0);
      assert.is(countParams(c), m.numParams(), c.name);
      m.dispose();
    }
    assert.is(countParams(deit), 5717416);
  });
  test('cait macs --json', async () => {
    const r = await cait('macs', '--preset', 'deit_tiny_patch16_224', '--merge', 'h@3,v@6', '--json');
    assert.is(r.code, 0, r.stderr);
    assert.ok(Math.abs(r.json.gmacs - 0.65) < 0.0065, `gmacs ${r.json.gmacs}`);
    assert.is(r.json.params, 5717416);
    assert.equal(r.json.tokens, [197, 197, 197, 197, 99, 99, 99, 50, 50, 50, 50, 50]);
    const bad = await cait('macs', '--preset', 'deit_tiny_patch16_224', '--merge', 'h@12');
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /block 12 does not exist/);
  });
  test('cait bench --compare --json; --threads 2 runs a pool, --threads 0 is refused', async () => {
    const r = await cait('bench', '--preset', 'micro', '--merge', 'h@0,v@1', '--compare', '--runs', '3', '--warmup', '1', '--batch', '2', '--json');
    assert.is(r.code, 0, r.stderr);
    for (const k of ['median_ms', 'min_ms', 'p90_ms', 'max_ms', 'mad_ms', 'runs', 'batch', 'threads', 'macs', 'speedup']) assert.ok(k in r.json, `no ${k}`);
    assert.is(r.json.runs, 3); assert.is(r.json.batch, 2); assert.is(r.json.threads, 1); assert.is(r.json.merge, 'h@0,v@1');
    assert.ok(r.json.dense.median_ms > 0 && r.json.median_ms > 0);
    for (const k of ['node', 'v8', 'cpu', 'date']) assert.ok(r.json.env[k], `env.${k}`);
    const t = await cait('bench', '--preset', 'micro', '--threads', '0');
    assert.is(t.code, 2);
    assert.match(t.stderr, /--threads must be an integer in 1\.\.64/);
    const t2 = await cait('bench', '--preset', 'micro', '--threads', '2', '--runs', '2', '--warmup', '0', '--json');
    assert.is(t2.code, 0, t2.stderr);
    assert.is(t2.json.threads, 2);
    const s = await cait('bench', '--preset', 'micro', '--merge', 'h@0', '--similarity', 'cosine');
    assert.is(s.code, 2);
    assert.match(s.stderr, /--similarity must be one of keys, features, fixed/);
  });
  test.run();
}
