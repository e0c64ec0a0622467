// The non-GEMM kernels of assembly/ (softmax, layernorm, gelu, elementwise,
// reduce, adamw, patch) against their spec, src/backend/reference/, on both
// WASM builds; plus finite-difference gradient checks of every backward kernel
// on all three backends.
//
// Every buffer sits 4 bytes past a 64-byte boundary (unaligned for f32x4) and
// is fenced by sentinels (exec in ./harness.ts), outputs start as NaN (so an
// element a kernel forgets to write shows up as a NaN difference), and sizes
// cover 1, the vector width, odd tails and model shapes (197 tokens x 192).
//
// Tolerances: ops that are one f32 rounding in both implementations (add, mul,
// scale, fill, copies, patches) must match exactly. The others are bounded by
// a few f32 ulp of the largest output, because the reference works in float64
// and the kernels in f32 (set OPS_VERBOSE=1 to print the measured worst
// differences; each tolerance is a small multiple of those).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ReferenceBackend } from '../../src/backend/reference/index.js';
import { erf } from '../../src/backend/reference/gelu.js';
import { loadWasmSync } from '../../src/backend/wasm.js';
import type { Backend } from '../../src/backend/backend.js';
import type { KernelName } from '../../src/backend/kernels.js';
import asc from 'assemblyscript/asc';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randn, close } from '../util.js';
import { exec, dot, numericGrad } from './harness.js';

const ref = new ReferenceBackend();
const wasms: Backend[] = [loadWasmSync('simd'), loadWasmSync('relaxed')];
const all: Backend[] = [ref, ...wasms];

const verbose = !!process.env.OPS_VERBOSE;
const worst = new Map<string, number>();
function note(key: string, v: number) { worst.set(key, Math.max(worst.get(key) ?? 0, v)); }

let seed = 1;
const rnd = (n: number, scale = 1, offset = 0) => {
  const a = randn(n, seed++, scale);
  if (offset) for (let i = 0; i < n; i++) a[i] += offset;
  return a;
};
const nan = (n: number) => new Float32Array(n).fill(NaN);

const SIZES = [1, 3, 4, 5, 7, 17, 33, 197, 1000];
const SHAPES: Array<[number, number]> = [[1, 1], [2, 1], [3, 5], [4, 4], [4, 7], [5, 33], [197, 192], [7, 1000]];

/**
 * Runs `kernel` on the reference and on both WASM builds with the same buffers
 * and arguments, and compares buffers `check` ([index, atol, rtol]) and, if
 * `retRtol` is given, the returned scalar.
 */
function against(kernel: KernelName, what: string, bufs: Float32Array[], args: (p: number[]) => number[],
  check: Array<[number, number, number]>, retRtol?: number): void {
  const want = exec(ref, kernel, bufs, args);
  for (const w of wasms) {
    const got = exec(w, kernel, bufs, args);
    for (const [i, atol, rtol] of check) {
      const d = close(got.out[i], want.out[i], atol, rtol, `${w.name} ${kernel} ${what} buffer ${i}:`);
      note(`${kernel}[${i}] ${w.name} (max |diff| / max |want|)`, d.maxRef ? d.maxAbs / d.maxRef : d.maxAbs);
    }
    if (retRtol !== undefined) {
      const e = Math.abs(got.ret - want.ret);
      note(`${kernel} return ${w.name} (rel)`, e / Math.abs(want.ret || 1));
      assert.ok(e <= retRtol * Math.abs(want.ret),
        `${w.name} ${kernel} ${what}: returned ${got.ret}, want ${want.ret}`);
    }
  }
}

// ---------------------------------------------------------------- softmax
{
  const test = suite('kernels: softmax');
  test('softmax_fwd matches the reference (odd, tail, unaligned shapes)', () => {
    seed = 1000;
    for (const [r, c] of SHAPES) {
      for (const scale of [1, 8]) {
        against('softmax_fwd', `${r}x${c} scale ${scale}`, [rnd(r * c, scale), nan(r * c)],
          (p) => [p[0], p[1], r, c], [[1, 1e-7, 1e-6]]);
      }
    }
  });
  test('softmax_fwd: large logits (underflow to 0, no overflow)', () => {
    seed = 2000;
    // logits spread over [-200, 200]: most exp(x - max) underflow
    against('softmax_fwd', '4x33 scale 200', [rnd(4 * 33, 200), nan(4 * 33)], (p) => [p[0], p[1], 4, 33], [[1, 1e-7, 1e-6]]);
    // every probability to a few ulp of itself, however small (rows of 8 and
    // 197, logits spread over [-20, 20] so y spans ~1e-17 .. 1), beyond the
    // f32 rounding of x - max, which shifts exp's argument by up to
    // 2^-24 |x - max| (the reference subtracts in float64)
    for (const [r, c] of [[64, 8], [16, 197]]) {
      const x = rnd(r * c, 20);
      const want = exec(ref, 'softmax_fwd', [x, nan(r * c)], (p) => [p[0], p[1], r, c]).out[1];
      for (const w of wasms) {
        const got = exec(w, 'softmax_fwd', [x, nan(r * c)], (p) => [p[0], p[1], r, c]).out[1];
        let worstRel = 0;
        for (let i = 0; i < got.length; i++) {
          const row = x.subarray(i - (i % c), i - (i % c) + c), m = Math.max(...row);
          const e = Math.abs(got[i] - want[i]) / want[i], sub = 2 ** -24 * (m - x[i]);
          worstRel = Math.max(worstRel, e - sub);
          assert.ok(e <= 5e-7 + sub, `${w.name} softmax ${r}x${c} [${i}]: got ${got[i]}, want ${want[i]}`);
        }
        note(`softmax_fwd per-element rel err ${w.name}`, worstRel);
      }
    }
    // a constant row: exactly uniform
    const got = exec(wasms[0], 'softmax_fwd', [new Float32Array(5).fill(1e30), nan(5)], (p) => [p[0], p[1], 1, 5]).out[1];
    close(got, new Float32Array(5).fill(0.2), 1e-7, 0, 'constant row');
  });
  test('softmax_fwd: NaN anywhere makes its row NaN, all -inf rows NaN, signed zeros and -inf lanes as the reference', () => {
    // the max pass tracks NaN beside pmax (assembly/softmax.ts): a NaN in the
    // 16-wide loop, the 4-wide loop and the scalar tail of a 23-wide row
    const c = 23, rows: number[][] = [];
    for (const at of [0, 5, 17, 21, 22]) { const r = Array.from({ length: c }, (_, i) => Math.sin(i)); r[at] = NaN; rows.push(r); }
    rows.push(new Array(c).fill(-Infinity));
    rows.push(Array.from({ length: c }, (_, i) => (i % 3 ? -Infinity : 0.5 * i)));
    rows.push(Array.from({ length: c }, (_, i) => (i % 2 ? -0 : 0)));
    rows.push(Array.from({ length: c }, (_, i) => (i === 20 ? 0 : -0) - (i < 16 ? 1 : 0)));
    const x = Float32Array.from(rows.flat()), r = rows.length;
    const want = exec(ref, 'softmax_fwd', [x, nan(r * c)], (p) => [p[0], p[1], r, c]).out[1];
    for (const w of wasms) {
      const got = exec(w, 'softmax_fwd', [x, nan(r * c)], (p) => [p[0], p[1], r, c]).out[1];
      for (let i = 0; i < got.length; i++) {
        const row = Math.floor(i / c);
        if (Number.isNaN(want[i])) assert.ok(Number.isNaN(got[i]), `${w.name} row ${row} [${i % c}]: got ${got[i]}, want NaN`);
        else assert.ok(Math.abs(got[i] - want[i]) <= 1e-7 + 1e-6 * want[i], `${w.name} row ${row} [${i % c}]: got ${got[i]}, want ${want[i]}`);
      }
      for (let row = 0; row < 6; row++) assert.ok(Number.isNaN(got[row * c + 1]), `${w.name}: row ${row} (NaN or all -inf) is NaN`);
    }
  });
  test('softmax_fwd in place (y == x)', () => {
    seed = 3000;
    for (const [r, c] of SHAPES) {
      against('softmax_fwd', `${r}x${c} in place`, [rnd(r * c, 4)], (p) => [p[0], p[0], r, c], [[0, 1e-7, 1e-6]]);
    }
  });
  test('softmax_bwd matches the reference, also with dx == dy', () => {
    seed = 4000;
    for (const [r, c] of SHAPES) {
      const y = exec(ref, 'softmax_fwd', [rnd(r * c, 3), nan(r * c)], (p) => [p[0], p[1], r, c]).out[1];
      const dy = rnd(r * c);
      against('softmax_bwd', `${r}x${c}`, [y, dy, nan(r * c)], (p) => [p[0], p[1], p[2], r, c], [[2, 1e-7, 2e-6]]);
      against('softmax_bwd', `${r}x${c} dx == dy`, [y, dy], (p) => [p[0], p[1], p[1], r, c], [[1, 1e-7, 2e-6]]);
    }
  });
  test('softmax_bwd is the gradient of softmax_fwd (central differences)', () => {
    seed = 5000;
    for (const b of all) {
      for (const [r, c] of [[3, 5], [2, 17], [1, 4]] as Array<[number, number]>) {
        const x = rnd(r * c, 2), w = rnd(r * c);
        const fwd = (xx: Float32Array) => exec(b, 'softmax_fwd', [xx, nan(r * c)], (p) => [p[0], p[1], r, c]).out[1];
        const dx = exec(b, 'softmax_bwd', [fwd(x), w, nan(r * c)], (p) => [p[0], p[1], p[2], r, c]).out[2];
        const num = numericGrad((xx) => dot(w, fwd(xx)), x, 1e-3);
        const d = close(dx, num, 1e-4, 1e-2, `${b.name} softmax grad ${r}x${c}:`);
        assert.ok(d.maxRef > 1e-2, 'gradient should not vanish');
        note(`grad softmax ${b.name} (rel)`, d.maxAbs / d.maxRef);
      }
    }
  });
  test.run();
}

// ---------------------------------------------------------------- layernorm
{
  const test = suite('kernels: layernorm');
  test('layernorm_fwd matches the reference (y, mean, rstd)', () => {
    seed = 6000;
    for (const [r, c] of SHAPES) {
      for (const [offset, eps] of [[0, 1e-5], [3, 1e-6]]) {
        const x = rnd(r * c, 2, offset), g = rnd(c, 1, 1), bt = rnd(c);
        against('layernorm_fwd', `${r}x${c} offset ${offset}`, [x, g, bt, nan(r * c), nan(r), nan(r)],
          (p) => [p[0], p[1], p[2], p[3], p[4], p[5], r, c, eps],
          // cols = 1: var = 0 and rstd = 1/sqrt(eps) ~ 1e3, y = beta; atol covers f32 rounding of y
          [[3, 2e-6, 1e-6], [4, 1e-6, 1e-6], [5, 0, 1e-6]]);
      }
    }
  });
  test('layernorm_fwd in place (y == x)', () => {
    seed = 7000;
    for (const [r, c] of SHAPES) {
      const g = rnd(c, 1, 1), bt = rnd(c);
      against('layernorm_fwd', `${r}x${c} in place`, [rnd(r * c, 2), g, bt, nan(r), nan(r)],
        (p) => [p[0], p[1], p[2], p[0], p[3], p[4], r, c, 1e-5], [[0, 2e-6, 1e-6], [3, 1e-6, 1e-6], [4, 0, 1e-6]]);
    }
  });
  test('layernorm_bwd matches the reference (dx, dgamma and dbeta overwritten)', () => {
    seed = 8000;
    for (const [r, c] of SHAPES) {
      const x = rnd(r * c, 2, 0.5), g = rnd(c, 1, 1), bt = rnd(c);
      const f = exec(ref, 'layernorm_fwd', [x, g, bt, nan(r * c), nan(r), nan(r)],
        (p) => [p[0], p[1], p[2], p[3], p[4], p[5], r, c, 1e-5]).out;
      const dy = rnd(r * c);
      // dgamma / dbeta start as garbage: they must be overwritten, not accumulated
      against('layernorm_bwd', `${r}x${c}`, [x, g, f[4], f[5], dy, nan(r * c), rnd(c, 9), rnd(c, 9)],
        (p) => [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], r, c],
        [[5, 1e-6, 4e-6], [6, 1e-6, 4e-6], [7, 1e-6, 4e-6]]);
    }
  });
  test('layernorm_bwd is the gradient of layernorm_fwd in x, gamma and beta (central differences)', () => {
    seed = 9000;
    for (const b of all) {
      for (const [r, c] of [[3, 5], [2, 17]] as Array<[number, number]>) {
        const x = rnd(r * c, 1), g = rnd(c, 1, 1), bt = rnd(c), w = rnd(r * c);
        const fwd = (xx: Float32Array, gg: Float32Array, bb: Float32Array) =>
          exec(b, 'layernorm_fwd', [xx, gg, bb, nan(r * c), nan(r), nan(r)],
            (p) => [p[0], p[1], p[2], p[3], p[4], p[5], r, c, 1e-5]).out;
        const f = fwd(x, g, bt);
        const [, , , , , dx, dg, db] = exec(b, 'layernorm_bwd', [x, g, f[4], f[5], w, nan(r * c), nan(c), nan(c)],
          (p) => [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], r, c]).out;
        const h = 1e-3;
        const checks: Array<[string, Float32Array, Float64Array]> = [
          ['dx', dx, numericGrad((xx) => dot(w, fwd(xx, g, bt)[3]), x, h)],
          ['dgamma', dg, numericGrad((gg) => dot(w, fwd(x, gg, bt)[3]), g, h)],
          ['dbeta', db, numericGrad((bb) => dot(w, fwd(x, g, bb)[3]), bt, h)],
        ];
        for (const [name, got, num] of checks) {
          const d = close(got, num, 1e-4, 1e-2, `${b.name} layernorm ${name} ${r}x${c}:`);
          assert.ok(d.maxRef > 1e-2, 'gradient should not vanish');
          note(`grad layernorm ${name} ${b.name} (rel)`, d.maxAbs / d.maxRef);
        }
      }
    }
  });
  test.run();
}

// ---------------------------------------------------------------- exp4 / phi4
// The accuracy figures stated in assembly/math.ts, re-measured: the two
// helpers are compiled alone (with and without relaxed SIMD) into a probe
// module and compared with float64 on the same dense grids as the comments.
async function compileProbe(relaxed: boolean): Promise<Record<string, (...a: number[]) => void> & { memory: WebAssembly.Memory }> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  // the helpers take their constants as loaded from the tables (EXP_K, PHI_K), as the kernels do
  const PROBE = `import { exp4, phi4, kc, EXP_K, PHI_K } from './math';
export function exp_n(x: usize, y: usize, n: i32): void {
  const e = (i: i32): v128 => kc(EXP_K, i);
  for (let i = 0; i < n; i += 4) v128.store(y + (<usize>i << 2), exp4(v128.load(x + (<usize>i << 2)),
    e(0), e(1), e(2), e(3), e(4), e(5), e(6), e(7), e(8), e(9), e(10), e(11), e(12)));
}
export function phi_n(x: usize, y: usize, n: i32): void {
  const e = (i: i32): v128 => kc(EXP_K, i), f = (i: i32): v128 => kc(PHI_K, i);
  for (let i = 0; i < n; i += 4) v128.store(y + (<usize>i << 2), phi4(v128.load(x + (<usize>i << 2)),
    f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13), f(14), f(15), f(16), f(17),
    e(0), e(1), e(2), e(3), e(4), e(5), e(6), e(7), e(8), e(9), e(10), e(11)));
}`;
  let bin: Uint8Array | null = null;
  // the tables' place as the builds have it (asconfig.json's memoryBase)
  const memoryBase = String(JSON.parse(readFileSync(resolve(root, 'asconfig.json'), 'utf8')).options.memoryBase);
  const res = await asc.main(['assembly/__probe.ts', '--baseDir', root, '--runtime', 'stub', '--importMemory', '--memoryBase', memoryBase,
    '--enable', 'simd', ...(relaxed ? ['--enable', 'relaxed-simd'] : []), '-O3', '--noAssert', '-o', 'probe.wasm'], {
    readFile: (f, base) => {
      if (f.endsWith('__probe.ts')) return PROBE;
      try { return readFileSync(resolve(base, f), 'utf8'); } catch { return null; }
    },
    writeFile: (f, c) => { if (f.endsWith('.wasm')) bin = c as Uint8Array; },
    listFiles: () => [],
  });
  assert.ok(!res.error && bin, `probe compile failed: ${res.error} ${res.stderr}`);
  const memory = new WebAssembly.Memory({ initial: 700 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bin!), { env: { memory, abort() { throw new Error('abort'); } } });
  return Object.assign({}, inst.exports as Record<string, (...a: number[]) => void>, { memory });
}
{
  const test = suite('kernels: exp4 / phi4 accuracy (assembly/math.ts)');
  for (const relaxed of [false, true]) {
    const name = relaxed ? 'relaxed' : 'simd';
    test(`${name}: exp4 within 1e-7 relative, phi4 within 8e-8 absolute`, async () => {
      const ex = await compileProbe(relaxed);
      const N = 2_000_000, X = 1024, Y = X + N * 4;
      const f = new Float32Array(ex.memory.buffer), xs = f.subarray(X >> 2, (X >> 2) + N), ys = f.subarray(Y >> 2, (Y >> 2) + N);
      // exp: 1e6 points on [-87.3, 88] and 1e6 on [-1, 1]
      for (let i = 0; i < N / 2; i++) xs[i] = -87.3 + 175.3 * i / (N / 2);
      for (let i = N / 2; i < N; i++) xs[i] = -1 + 2 * (i - N / 2) / (N / 2);
      ex.exp_n(X, Y, N);
      let e1 = 0;
      for (let i = 0; i < N; i++) { const w = Math.exp(xs[i]); e1 = Math.max(e1, Math.abs(ys[i] - w) / w); }
      note(`exp4 max rel err ${name}`, e1);
      assert.ok(e1 <= 1e-7, `exp4 max relative error ${e1}`);
      const edge = [-Infinity, -1000, -87.4, 0, 88, 1000, Infinity, NaN];
      xs.set(edge); ex.exp_n(X, Y, 8);
      assert.equal(Array.from(ys.subarray(0, 8)), [0, 0, 0, 1, Math.fround(Math.exp(88)), Math.fround(Math.exp(88)), Math.fround(Math.exp(88)), NaN],
        'exp4 edge cases');
      // Phi: 2e6 points on [-8, 8]; erf(x / sqrt2) = 2 Phi(x) - 1; left-tail relative error
      for (let i = 0; i < N; i++) xs[i] = -8 + 16 * i / N;
      ex.phi_n(X, Y, N);
      let e2 = 0, e3 = 0;
      for (let i = 0; i < N; i++) {
        const x = xs[i], want = 0.5 * (1 + erf(x / Math.SQRT2));
        e2 = Math.max(e2, Math.abs(ys[i] - want));
        if (x > -5.5 && x < -1) e3 = Math.max(e3, Math.abs(ys[i] - want) / want);
      }
      note(`phi4 max abs err ${name}`, e2);
      note(`phi4 max rel err on (-5.5, -1) ${name}`, e3);
      assert.ok(e2 <= 8e-8, `phi4 max absolute error ${e2}`);
      // the reference's 1 - erfc loses relative digits past x = -5.5; inside, 3e-6 bounds ours
      assert.ok(e3 <= 3e-6, `phi4 max relative error in the left tail ${e3}`);
    });
  }
  test.run();
}

// ---------------------------------------------------------------- gelu
{
  const test = suite('kernels: gelu');
  test('gelu_fwd / gelu_bwd match the reference (odd, tail, unaligned sizes, in place)', () => {
    seed = 10000;
    for (const n of SIZES) {
      const x = rnd(n, 6), dy = rnd(n);
      against('gelu_fwd', `n=${n}`, [x, nan(n)], (p) => [p[0], p[1], n], [[1, 5e-7, 0]]);
      against('gelu_fwd', `n=${n} in place`, [x], (p) => [p[0], p[0], n], [[0, 5e-7, 0]]);
      against('gelu_bwd', `n=${n}`, [x, dy, nan(n)], (p) => [p[0], p[1], p[2], n], [[2, 5e-7, 0]]);
      against('gelu_bwd', `n=${n} dx == dy`, [x, dy], (p) => [p[0], p[1], p[1], n], [[1, 5e-7, 0]]);
    }
  });
  test('gelu accuracy on a dense grid over [-12, 12], and extreme inputs', () => {
    seed = 11000;
    // per element: |error| <= 1e-7 * (1 + |x|) + 1 ulp of the result
    const n = 240001, x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = -12 + 24 * i / (n - 1);
    const ones = new Float32Array(n).fill(1);
    for (const w of wasms) {
      const y = exec(w, 'gelu_fwd', [x, nan(n)], (p) => [p[0], p[1], n]).out[1];
      const dx = exec(w, 'gelu_bwd', [x, ones, nan(n)], (p) => [p[0], p[1], p[2], n]).out[2];
      let ef = 0, eb = 0;
      for (let i = 0; i < n; i++) {
        const v = x[i], cdf = 0.5 * (1 + erf(v / Math.SQRT2));
        const want = v * cdf, dwant = cdf + v * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
        const e1 = Math.abs(y[i] - want), e2 = Math.abs(dx[i] - dwant);
        ef = Math.max(ef, e1); eb = Math.max(eb, e2);
        assert.ok(e1 <= 1e-7 * (1 + Math.abs(v)) + Math.abs(want) * 2 ** -23,
          `${w.name} gelu(${v}) = ${y[i]}, want ${want}`);
        assert.ok(e2 <= 1e-7 * (1 + Math.abs(v)) + Math.abs(dwant) * 2 ** -23,
          `${w.name} gelu'(${v}) = ${dx[i]}, want ${dwant}`);
      }
      note(`gelu grid |err| ${w.name}`, ef);
      note(`gelu' grid |err| ${w.name}`, eb);
      const ext = new Float32Array([0, -0, 1e-30, -1e-30, 100, -100, 3e38, -3e38, Infinity, -Infinity]);
      const ye = exec(w, 'gelu_fwd', [ext, nan(ext.length)], (p) => [p[0], p[1], ext.length]).out[1];
      assert.equal(Array.from(ye), [0, -0, 5e-31, -5e-31, 100, -0, 3e38, -0, Infinity, NaN].map(Math.fround),
        `${w.name} gelu at extreme inputs`);
      const de = exec(w, 'gelu_bwd', [ext.slice(0, 8), new Float32Array(8).fill(1), nan(8)], (p) => [p[0], p[1], p[2], 8]).out[2];
      close(de, [0.5, 0.5, 0.5, 0.5, 1, 0, 1, 0], 1e-7, 0, `${w.name} gelu' at extreme inputs`);
    }
  });
  test('gelu_bwd is the derivative of gelu_fwd (central differences)', () => {
    seed = 12000;
    // points across both branches of Phi (|x| < 1 and beyond) and the tails
    const x = new Float32Array(97);
    for (let i = 0; i < x.length; i++) x[i] = -7 + 14 * i / (x.length - 1) + 0.01;
    const w = rnd(x.length, 1, 1.5);
    for (const b of all) {
      const n = x.length;
      const fwd = (xx: Float32Array) => exec(b, 'gelu_fwd', [xx, nan(n)], (p) => [p[0], p[1], n]).out[1];
      const dx = exec(b, 'gelu_bwd', [x, w, nan(n)], (p) => [p[0], p[1], p[2], n]).out[2];
      const num = numericGrad((xx) => dot(w, fwd(xx)), x, 1e-3);
      const d = close(dx, num, 1e-4, 1e-2, `${b.name} gelu grad:`);
      assert.ok(d.maxRef > 1, 'gradient should not vanish');
      note(`grad gelu ${b.name} (rel)`, d.maxAbs / d.maxRef);
    }
  });
  test.run();
}

// ---------------------------------------------------------------- elementwise
{
  const test = suite('kernels: elementwise');
  // [n, m]: same shape, scalar, bias row, position embedding, m < 4, partial last chunk
  const BCAST: Array<[number, number]> = [
    ...SIZES.map((n): [number, number] => [n, n]),
    [1, 1], [7, 1], [12, 1], [15, 5], [21, 3], [10, 4], [1000, 250], [197 * 192, 192], [2 * 197 * 192, 197 * 192], [35, 17],
  ];
  test('add / mul (broadcast b[i % m]) match the reference exactly', () => {
    seed = 13000;
    for (const k of ['add', 'mul'] as const) {
      for (const [n, m] of BCAST) {
        const a = rnd(n, 3), b = rnd(m, 3);
        against(k, `n=${n} m=${m}`, [a, b, nan(n)], (p) => [p[0], p[1], p[2], n, m], [[2, 0, 0]]);
        against(k, `n=${n} m=${m} y == a`, [a, b], (p) => [p[0], p[1], p[0], n, m], [[0, 0, 0]]);
        if (m === n) against(k, `n=${n} y == b`, [a, b], (p) => [p[0], p[1], p[1], n, m], [[1, 0, 0]]);
      }
    }
  });
  test('scale / fill match the reference exactly, axpy to one rounding', () => {
    seed = 14000;
    for (const n of SIZES) {
      const x = rnd(n, 3), y = rnd(n, 3);
      against('scale', `n=${n}`, [x, nan(n)], (p) => [p[0], p[1], n, -1.7], [[1, 0, 0]]);
      against('scale', `n=${n} in place`, [x], (p) => [p[0], p[0], n, 0.3], [[0, 0, 0]]);
      // the reference rounds y + alpha x once (float64 then f32); the simd build twice
      against('axpy', `n=${n}`, [x, y], (p) => [p[0], p[1], n, 0.37], [[1, 0, 2.4e-7]]);
      against('fill', `n=${n}`, [nan(n)], (p) => [p[0], n, 3.25], [[0, 0, 0]]);
    }
  });
  test('copy2d matches the reference exactly (strided, contiguous, gaps untouched)', () => {
    seed = 15000;
    const cases: Array<[number, number, number, number]> = [
      [1, 1, 1, 1], [3, 5, 5, 5], [3, 5, 7, 9], [4, 7, 4 * 7, 7], [197, 192, 3 * 192, 192], [197, 64, 192, 64], [7, 1000, 1003, 1001], [0, 5, 5, 5], [3, 0, 5, 5],
    ];
    for (const [rows, cols, sld, dld] of cases) {
      const src = rnd(Math.max(1, rows * sld)), dst = rnd(Math.max(1, rows * dld)); // dst gaps must survive
      against('copy2d', `${rows}x${cols} sld ${sld} dld ${dld}`, [src, dst],
        (p) => [p[0], sld, p[1], dld, rows, cols], [[1, 0, 0]]);
    }
  });
  test.run();
}

// ---------------------------------------------------------------- reduce
{
  const test = suite('kernels: reduce');
  test('row_sum / col_sum match the float64 reference to one f32 rounding', () => {
    seed = 16000;
    for (const [r, c] of [...SHAPES, [3, 16], [5, 35], [12608, 192]] as Array<[number, number]>) {
      const x = rnd(r * c, 2, 0.1);
      against('row_sum', `${r}x${c}`, [x, nan(r)], (p) => [p[0], p[1], r, c], [[1, 0, 2.4e-7]]);
      against('col_sum', `${r}x${c}`, [x, nan(c)], (p) => [p[0], p[1], r, c], [[1, 0, 2.4e-7]]);
    }
  });
  test('sum_sq returns the float64 sum of squares', () => {
    seed = 17000;
    for (const n of [...SIZES, 0, 100003]) {
      const x = rnd(n, 3);
      if (n === 0) {
        for (const w of wasms) assert.is(exec(w, 'sum_sq', [x], (p) => [p[0], n]).ret, 0);
        continue;
      }
      against('sum_sq', `n=${n}`, [x], (p) => [p[0], n], [], 1e-12);
    }
  });
  test.run();
}

// ---------------------------------------------------------------- adamw
{
  const test = suite('kernels: adamw');
  test('adamw matches the reference (p, m, v)', () => {
    seed = 18000;
    const configs = [
      { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.05, t: 3 },
      { lr: 5e-4, b1: 0.9, b2: 0.98, eps: 1e-6, wd: 0, t: 1 },
      { lr: 1e-2, b1: 0.8, b2: 0.99, eps: 1e-8, wd: 0.3, t: 1000 },
    ];
    for (const n of SIZES) {
      for (const { lr, b1, b2, eps, wd, t } of configs) {
        const p = rnd(n), g = rnd(n, 0.1), m = rnd(n, 0.01), v = rnd(n, 1e-3).map(Math.abs);
        const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
        against('adamw', `n=${n} t=${t}`, [p, g, m, v],
          (q) => [q[0], q[1], q[2], q[3], n, lr, b1, b2, eps, wd, bc1, bc2],
          // p ~ 1 moves by ~lr: 1e-6 is a few ulp of p. m and v are sums of two
          // terms (|b1 m| + |(1-b1) g| <= 0.03, |b2 v| + |(1-b2) g^2| <= 3e-3) that may
          // cancel, so their bound is a few ulp of the terms, not of the result.
          [[0, 1e-6, 0], [2, 1e-8, 0], [3, 1e-9, 0]]);
      }
    }
  });
  test('adamw decays before the update (a zero gradient only decays p)', () => {
    seed = 19000;
    const n = 5, p = rnd(n), zero = new Float32Array(n);
    for (const w of wasms) {
      const got = exec(w, 'adamw', [p, zero, zero, zero], (q) => [q[0], q[1], q[2], q[3], n, 0.1, 0.9, 0.999, 1e-8, 0.5, 0.1, 0.001]).out[0];
      close(got, p.map((x) => x * (1 - 0.1 * 0.5)), 1e-7, 0, `${w.name} decay only`);
    }
  });
  test.run();
}

// ---------------------------------------------------------------- patch
{
  const test = suite('kernels: patch');
  // [B, C, H, W, P]; the last two leave rows/columns outside every patch
  const CFG: Array<[number, number, number, number, number]> = [
    [1, 1, 1, 1, 1], [1, 1, 4, 4, 2], [2, 3, 8, 8, 4], [2, 3, 32, 32, 16], [1, 2, 12, 12, 3], [2, 3, 32, 32, 8], [1, 3, 7, 9, 2], [1, 2, 10, 17, 5],
  ];
  const sizes = (B: number, C: number, H: number, W: number, P: number) =>
    [B * C * H * W, B * Math.floor(H / P) * Math.floor(W / P) * C * P * P];
  test('patchify / unpatchify match the reference exactly', () => {
    seed = 20000;
    for (const [B, C, H, W, P] of CFG) {
      const [nx, ny] = sizes(B, C, H, W, P);
      against('patchify', `${[B, C, H, W, P]}`, [rnd(nx), nan(ny)], (p) => [p[0], p[1], B, C, H, W, P], [[1, 0, 0]]);
      against('unpatchify', `${[B, C, H, W, P]}`, [rnd(ny), nan(nx)], (p) => [p[0], p[1], B, C, H, W, P], [[1, 0, 0]]);
    }
  });
  test('unpatchify is the adjoint of patchify: <patchify(x), y> == <x, unpatchify(y)>', () => {
    seed = 21000;
    for (const b of all) {
      for (const [B, C, H, W, P] of CFG) {
        const [nx, ny] = sizes(B, C, H, W, P);
        const x = rnd(nx), y = rnd(ny);
        const px = exec(b, 'patchify', [x, nan(ny)], (p) => [p[0], p[1], B, C, H, W, P]).out[1];
        const uy = exec(b, 'unpatchify', [y, nan(nx)], (p) => [p[0], p[1], B, C, H, W, P]).out[1];
        const lhs = dot(px, y), rhs = dot(x, uy);
        assert.ok(Math.abs(lhs - rhs) <= 1e-12 * Math.sqrt(nx) * (1 + Math.abs(lhs)) && lhs !== 0,
          `${b.name} ${[B, C, H, W, P]}: <patchify x, y> = ${lhs}, <x, unpatchify y> = ${rhs}`);
      }
    }
  });
  test.run();
}

if (verbose) {
  const t = suite('kernels: measured worst differences');
  t('report', () => {
    for (const [k, v] of [...worst].sort()) console.log(`  ${k.padEnd(70)} ${v.toExponential(2)}`);
    assert.ok(worst.size > 0);
  });
  t.run();
}
