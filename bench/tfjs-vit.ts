// The ViT / DeiT forward written with TensorFlow.js ops, for bench/vit.ts: the
// peer "tfjs-backend-wasm running the same architecture", on the same weights
// as a caitjs model (read by their timm names, e.g. blocks.0.attn.qkv.weight).
//
// The graph is timm's, in tfjs ops, with the layouts tfjs-backend-wasm is fast
// with (timings measured while writing this, DeiT-Tiny shapes, one thread):
//   patch_embed  NCHW input -> NHWC (transpose), tf.conv2d with the conv weight
//                as HWIO [P, P, C_in, E], stride P, plus bias -> [B, N-1, E]
//   tokens       concat(cls_token tiled over B, patches) + pos_embed
//   block        x + proj(attn(norm1(x))), then x + fc2(gelu(fc1(norm2(x))))
//   linear       tf.fused.matMul on [B*N, in] rows with the bias fused and the
//                weight transposed ONCE at load to [in, out] (tfjs's own Dense
//                layout): with transposeB on torch's [out, in] the wasm
//                kernel re-transposes every call, 19 ms instead of 1.8 ms for
//                the 197x192x576 qkv GEMM.
//   attention    qkv -> q [B, H, N, D] (times scale, as timm scales q first),
//                k^T [B, H, D, N], v [B, H, N, D]; then per (image, head)
//                2-D tf.matMul -> tf.softmax -> tf.matMul (B*H of each): the
//                wasm backend's batched (rank > 2) matMul is far slower, 6-7 ms
//                for DeiT-Tiny's 3 heads' q k^T against 0.8 ms as three 2-D calls.
//   LayerNorm    tf.moments over the last axis, (x - mean) * rsqrt(var + eps) * gamma + beta.
//   GELU         exact, 0.5 x (1 + erf(x / sqrt 2)) with tf.erf: the wasm Erf
//                kernel is within 4.6e-8 of a float64 erf on [-6, 6] (measured);
//                no tanh approximation.
//   norm, head   LayerNorm, class token (row 0), linear head
// bench/vit.ts checks the logits against caitjs before timing.
//
// Dense models only (no per-block widths, no token merging): it stands for
// "the dense graph in another runtime", as the ONNX export does for ORT.
//
// Backend: initTfjsWasm(threads) loads @tensorflow/tfjs-backend-wasm offline
// from node_modules. threads 1: the single-threaded SIMD binary (what a page
// without cross-origin isolation gets). threads > 1: the threaded SIMD binary
// with an XNNPACK pool of that many threads, which tfjs does not offer in Node
// (its WASM_HAS_MULTITHREAD_SUPPORT flag is false there, tfjs issue #3830) and
// caps at (logical cores / 2) everywhere (its C++ assumes two hyper-threads
// per core, so on a 2-core machine it would never pass 1). Three work-arounds
// make it run as it would in an isolated browser page on a machine with more
// cores, each the minimum that gets past one of those gates:
//   1. the flag is set true;
//   2. Emscripten's pthread worker script, which tfjs hands over as a Blob URL
//      (Node's Worker takes only file paths), is written to a temporary file,
//      with its importScripts(blob URL of the factory) pointed at the factory's
//      file in node_modules (the same code as the blob);
//   3. os.cpus() reports max(real, 2 x threads) entries, so the cores/2 cap
//      lets the requested count through.
// 2 and 3 patch globals (URL.createObjectURL, os.cpus), so threads > 1 must
// run in a worker thread of its own (bench/vit-worker.ts), never in a process
// that uses them for anything else. getThreadsCount() is checked afterwards:
// a pool smaller than asked for is an error, never a silently 1-thread row.
import os from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';

export interface TfjsVitConfig {
  imgSize: number; patchSize: number; inChans: number; numClasses: number;
  embedDim: number; depth: number; numHeads: number; eps: number;
}

export type NamedWeights = Map<string, { shape: number[]; data: Float32Array }>;

export interface TfjsInit { binary: string; threads: number; simd: boolean; tfjs: string; workarounds: string[] }

/** Initialises the wasm backend with `threads` XNNPACK threads (see the header). Once per thread. */
export async function initTfjsWasm(threads: number): Promise<TfjsInit> {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const workarounds: string[] = [];
  let binary: string;
  if (threads === 1) {
    // only the single-threaded SIMD binary gets a real path: if tfjs decided
    // otherwise (no SIMD, or threads), initialisation fails instead of
    // silently benchmarking another build (as bench/gemm.ts does)
    binary = 'tfjs-backend-wasm-simd.wasm';
    setWasmPaths({
      'tfjs-backend-wasm-simd.wasm': join(pkg, 'dist', binary),
      'tfjs-backend-wasm.wasm': '/nonexistent/tfjs-backend-wasm.wasm',
      'tfjs-backend-wasm-threaded-simd.wasm': '/nonexistent/tfjs-backend-wasm-threaded-simd.wasm',
    });
  } else {
    if (isMainThread) throw new Error('tfjs-wasm with threads > 1 patches URL.createObjectURL and os.cpus: run it in a worker thread');
    binary = 'tfjs-backend-wasm-threaded-simd.wasm';
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    workarounds.push('WASM_HAS_MULTITHREAD_SUPPORT forced true (tfjs turns threads off in Node)');
    const factory = join(pkg, 'wasm-out/tfjs-backend-wasm-threaded-simd.js');
    const { wasmWorkerContents } = require(join(pkg, 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
    // tfjs escapes newlines the same way before making its Blob
    const escaped = wasmWorkerContents.replace(/\n/g, '\\n');
    const script = escaped.replace('importScripts(objectUrl)', `importScripts(${JSON.stringify(factory)})`);
    if (script === escaped) throw new Error('tfjs pthread worker script: patch point importScripts(objectUrl) not found (tfjs-backend-wasm version changed?)');
    const file = join(mkdtempSync(join(os.tmpdir(), 'tfjs-pthread-')), 'worker.cjs');
    writeFileSync(file, script);
    const createObjectURL = URL.createObjectURL;
    URL.createObjectURL = (b: Blob) => (b.type === 'application/javascript' ? file : createObjectURL(b));
    workarounds.push('Emscripten pthread worker script written to a file (Node workers take no Blob URLs)');
    const cpus = os.cpus;
    (os as { cpus: typeof os.cpus }).cpus = () => {
      const c = cpus();
      return Array.from({ length: Math.max(c.length, 2 * threads) }, (_, i) => c[i % c.length]);
    };
    workarounds.push(`os.cpus() padded to ${Math.max(os.cpus().length, 2 * threads)} entries in this worker (tfjs caps threads at logical cores / 2)`);
    setWasmPaths(join(pkg, 'dist') + '/');
  }
  setThreadsCount(threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialize');
  await tf.ready();
  if (tf.getBackend() !== 'wasm') throw new Error(`tfjs backend is ${tf.getBackend()}, not wasm`);
  const simd = !!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  if (!simd) throw new Error('tfjs reports no WASM SIMD');
  if (getThreadsCount() !== threads) throw new Error(`tfjs XNNPACK pool has ${getThreadsCount()} threads, asked for ${threads}`);
  return { binary, threads: getThreadsCount(), simd, tfjs: tf.version_core, workarounds };
}

/** The model's variables (tf.Tensor, kept until dispose) and its forward. */
export class TfjsVit {
  private readonly w = new Map<string, tf.Tensor>();

  constructor(readonly cfg: TfjsVitConfig, weights: NamedWeights) {
    const get = (n: string) => {
      const p = weights.get(n);
      if (!p) throw new Error(`tfjs ViT: no weight '${n}'`);
      return p;
    };
    const keep = (n: string, t: tf.Tensor) => { this.w.set(n, tf.keep(t)); };
    tf.tidy(() => {
      // conv weight [E, C, P, P] -> HWIO [P, P, C, E], once
      const pw = get('patch_embed.proj.weight');
      keep('patch_embed.proj.weight', tf.transpose(tf.tensor(pw.data, pw.shape), [2, 3, 1, 0]));
      for (const [n, p] of weights) {
        if (n === 'patch_embed.proj.weight') continue;
        const t = tf.tensor(p.data, p.shape);
        // Linear weights [out, in] -> [in, out], once (see the header)
        keep(n, n.endsWith('.weight') && p.shape.length === 2 ? tf.transpose(t) : t);
      }
    });
    const C = cfg.embedDim;
    for (const [n, shape] of [['cls_token', [1, 1, C]], ['pos_embed', [1, 1 + (cfg.imgSize / cfg.patchSize) ** 2, C]], ['head.weight', [C, cfg.numClasses]]] as const) {
      const s = this.p(n).shape;
      if (s.join() !== shape.join()) throw new Error(`tfjs ViT: '${n}' is [${s}], expected [${shape}] (dense models only)`);
    }
  }

  private p(n: string): tf.Tensor {
    const t = this.w.get(n);
    if (!t) throw new Error(`tfjs ViT: no weight '${n}'`);
    return t;
  }

  /** x [rows..., in] -> [rows..., out]: one fused matMul (weight [in, out], bias) on the flattened rows. */
  private linear(x: tf.Tensor, name: string): tf.Tensor {
    const w = this.p(`${name}.weight`), inF = x.shape[x.shape.length - 1];
    const y = tf.fused.matMul({ a: tf.reshape(x, [-1, inF]) as tf.Tensor2D, b: w as tf.Tensor2D, bias: this.w.get(`${name}.bias`) });
    return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]!]);
  }

  private layerNorm(x: tf.Tensor, name: string): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.cfg.eps))), this.p(`${name}.weight`)), this.p(`${name}.bias`));
  }

  private gelu(x: tf.Tensor): tf.Tensor {
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  }

  private attention(x: tf.Tensor, p: string): tf.Tensor {
    const [B, N, C] = x.shape, H = this.cfg.numHeads, D = C / H;
    const [q, k, v] = tf.split(this.linear(x, `${p}.qkv`), 3, -1).map((t) => tf.reshape(t, [B, N, H, D]));   // from [B, N, 3C]
    const heads = (t: tf.Tensor, perm: number[]) => tf.unstack(tf.reshape(tf.transpose(t, perm), [B * H, ...perm.slice(2).map((a) => t.shape[a])]));
    const qs = heads(tf.mul(q, D ** -0.5), [0, 2, 1, 3]);                     // B*H x [N, D]
    const kts = heads(k, [0, 2, 3, 1]);                                       // B*H x [D, N]
    const vs = heads(v, [0, 2, 1, 3]);                                        // B*H x [N, D]
    const o = tf.stack(qs.map((qi, i) => tf.matMul(tf.softmax(tf.matMul(qi, kts[i]), -1), vs[i])));   // [B*H, N, D]
    return this.linear(tf.reshape(tf.transpose(tf.reshape(o, [B, H, N, D]), [0, 2, 1, 3]), [B, N, C]), `${p}.proj`);
  }

  /** [B, C_in, S, S] logits [B, classes], as a Float32Array (read back from the wasm heap). */
  forward(x: Float32Array, shape: number[]): Float32Array {
    const { cfg } = this, P = cfg.patchSize, E = cfg.embedDim;
    const out = tf.tidy(() => {
      const B = shape[0];
      const img = tf.transpose(tf.tensor4d(x, shape as [number, number, number, number]), [0, 2, 3, 1]);   // NHWC
      const patches = tf.add(tf.conv2d(img as tf.Tensor4D, this.p('patch_embed.proj.weight') as tf.Tensor4D, P, 'valid'), this.p('patch_embed.proj.bias'));
      const grid = patches.shape[1]! * patches.shape[2]!;
      let h: tf.Tensor = tf.concat([tf.tile(this.p('cls_token'), [B, 1, 1]), tf.reshape(patches, [B, grid, E])], 1);
      h = tf.add(h, this.p('pos_embed'));
      for (let i = 0; i < cfg.depth; i++) {
        const p = `blocks.${i}`;
        h = tf.add(h, this.attention(this.layerNorm(h, `${p}.norm1`), `${p}.attn`));
        h = tf.add(h, this.linear(this.gelu(this.linear(this.layerNorm(h, `${p}.norm2`), `${p}.mlp.fc1`)), `${p}.mlp.fc2`));
      }
      h = this.layerNorm(h, 'norm');
      return this.linear(tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, E]), [B, E]), 'head');
    });
    const data = out.dataSync() as Float32Array;
    out.dispose();
    return data;
  }

  dispose(): void { for (const t of this.w.values()) t.dispose(); this.w.clear(); }
}
