// Whole-model latency (issue #6): DeiT-Tiny and DeiT-Small, batch 1 and 8,
// one and N (= 2) threads, every runtime in one run, on the same weights:
//   caitjs         this engine (planned forward, src/plan.ts), WASM SIMD (relaxed where supported): 1 thread,
//                  or a pool of N threads over one shared memory
//                  (src/backend/threads.ts), which must give the 1-thread
//                  logits bit for bit (else abort)
//   caitjs-cait    this engine running a CAIT-compressed model: by default the
//                  structure `cait compress --structure-only` chose (an ATME
//                  schedule plus CDCP widths at a MAC target, 1.7x for
//                  DeiT-Tiny and 1.9x for DeiT-Small, bench/structure.ts,
//                  bench/results/compress-structure.json), or a real
//                  compressed model given with --compressed PRESET=FILE
//   ort-web        onnxruntime-web, wasm EP, env.wasm.numThreads = 1 or N
//   ort-node       onnxruntime-node, native CPU EP, intraOpNumThreads = 1 or N
//   tfjs-wasm      @tensorflow/tfjs-backend-wasm (XNNPACK) running the same
//                  architecture written in tfjs ops (bench/tfjs-vit.ts), 1 or N threads
//   caitjs-int8, caitjs-cait-int8   the dense and the CAIT model quantized
//                  (src/quant/: int8 weights, per-token activations), planned;
//                  their own model instances, so the float rows keep float weights
//   ort-web-int8, ort-node-int8     onnxruntime on the dense int8 model's
//                  ONNX graph as quantize_dynamic writes it (src/quant/onnx.ts)
//   int8 logits are checked against caitjs-int8 x1: its other thread counts
//   bit for bit, onnxruntime's within 10% of the largest logit (the engines
//   quantize activations differently), and caitjs-int8 against float (10%).
// Dense weights are createModel(cfg, 0) (latency does not depend on them);
// ORT gets them through src/cait/onnx.ts's export (dynamic batch), tfjs by their
// timm names. Before timing, every dense runtime's logits are checked against
// caitjs's (max |diff| <= 1e-4, else abort). ort-web and tfjs-wasm run in
// worker threads of their own (bench/vit-worker.ts says why; their time is
// measured inside the worker, the message round trip reported apart).
//
// Timing: per (model, batch), each round runs every runtime and thread count
// once, the order rotating, after discarded warm-up rounds, so a busy spell on
// a shared machine lands on all of them; medians are reported with their
// spread (median absolute deviation / median), each over caitjs dense at the
// same thread count (time_vs_caitjs < 1: faster than this engine), and the
// compressed rows over ort-web dense (time_vs_ort_web). A timed run is one
// forward of one batch, input from a Float32Array, logits read back into JS.
//
// Checks (issue #6), with pass/fail in the JSON's `checks`:
//   dense DeiT-Tiny, batch 1, 1 thread: caitjs time <= 0.75x ort-web's
//   batch 8, N threads: caitjs dense throughput >= 1.7x its 1-thread throughput
//   CAIT DeiT-Tiny (>= 1.7x fewer MACs), batch 1, 1 thread: time <= 0.45x dense ort-web's
//
// Usage: node --import tsx bench/vit.ts [--models tiny,small] [--batches 1,8] [--threads 2]
//          [--runs 15] [--warmup 3] [--runtimes caitjs,caitjs-cait,ort-web,ort-node,tfjs-wasm]
//          [--compressed tiny=FILE[,small=FILE]] [--out bench/results/vit.json] [--svg docs/vit-bench.svg]
//          [--cpu K|none]   (with --threads 1 the run is pinned to CPU K, 0 by
//          default, so every runner shares one core: bench/pin.ts says why)
//   (npm run bench:vit). The default run takes about 10 minutes on 2 cores; a
//   quick check: --models tiny --batches 1 --runs 3 --warmup 1 --out /tmp/vit.json --svg /tmp/vit.svg
//   The chart is redrawn from the JSON alone by bench/vit-chart.ts.
import os from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Ort from 'onnxruntime-node';
import { Tensor, scope, setBackend } from '../src/tensor.js';
import type { Backend } from '../src/backend/backend.js';
import { noGrad } from '../src/autograd.js';
import { InferencePlan, CaptureError } from '../src/plan.js';
import { createModel, loadModel } from '../src/nn/model.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import type { VisionTransformer } from '../src/nn/vit.js';
import { CaitModel, atmeOptionsFromMetadata } from '../src/cait/wrap.js';
import type { AtmeOptions } from '../src/cait/atme.js';
import { chosenStructure } from './structure.js';
import { countMacs } from '../src/cait/macs.js';
import { Rng } from '../src/util/rng.js';
import { exportVitOnnx, ONNX_OPSET } from '../src/cait/onnx.js';
import { quantizeModel } from '../src/quant/int8.js';
import { exportInt8Onnx } from '../src/quant/onnx.js';
import { environment, latencyStats } from '../src/cli/bench.js';
import { scriptArgs } from './args.js';
import { loadWasmSync, relaxedSimdSupported } from '../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../src/backend/threads.js';
import { startPeer, type Peer } from './vit-worker.js';
import { vitChartSvg, type VitBenchJson } from './vit-chart.js';
import { pinToOneCpu } from './pin.js';

const MODELS: Record<string, { preset: string; target: number }> = {
  tiny: { preset: 'deit_tiny_patch16_224', target: 1.7 },
  small: { preset: 'deit_small_patch16_224', target: 1.9 },
};
const RUNTIMES = ['caitjs', 'caitjs-cait', 'ort-web', 'ort-node', 'tfjs-wasm', 'caitjs-int8', 'caitjs-cait-int8', 'ort-web-int8', 'ort-node-int8'] as const;
// int8 logits against caitjs int8 (and caitjs int8 against float): random-weight
// DeiT logits move 3-4% of the largest under either engine's int8 (test/quant.test.ts),
// and the engines quantize activations differently, so 10% of the largest logit
const INT8_TOL = 0.1;
type RuntimeName = typeof RUNTIMES[number];
const TOL = 1e-4;
const LIMITS = { dense_vs_ort_web: 0.75, thread_scaling: 1.7, cait_vs_ort_web: 0.45, cait_mac_ratio: 1.7, int8_vs_ort_web_int8: 0.6, int8_cait_vs_ort_node_float: 1 };

const here = dirname(fileURLToPath(import.meta.url));
const USAGE = `node --import tsx bench/vit.ts [--models tiny,small] [--batches 1,8] [--threads 2] [--runs 15] [--warmup 3]
         [--runtimes ${RUNTIMES.join(',')}] [--compressed tiny=FILE[,small=FILE]]
         [--out bench/results/vit.json] [--svg docs/vit-bench.svg] [--cpu K|none]   (npm run bench:vit)
  Writes --out and --svg (by default over the committed bench/results/vit.json and docs/vit-bench.svg).
  A quick try: --models tiny --batches 1 --runs 3 --warmup 1 --out /tmp/vit.json --svg /tmp/vit.svg`;
const cli = scriptArgs(process.argv.slice(2), {
  models: 'string', batches: 'string', threads: 'number', runs: 'number', warmup: 'number',
  runtimes: 'string', compressed: 'string', out: 'string', svg: 'string', cpu: 'string',
}, USAGE);
const { flags } = cli;
const list = (s: string) => s.split(',').map((v) => v.trim()).filter(Boolean);
const modelKeys = cli.list('models', ['tiny', 'small'], Object.keys(MODELS));
const batches = cli.list('batches', ['1', '8']).map(Number);
if (batches.some((b) => !(Number.isInteger(b) && b >= 1))) cli.fail(`--batches: positive integers, got '${flags.batches}'`);
const N = cli.int('threads', 2, 1), runs = cli.int('runs', 15, 1), warmup = cli.int('warmup', 3, 0);
const THREADS = N > 1 ? [1, N] : [1];
const pinning = cli.check(() => pinToOneCpu(flags.cpu as string | undefined, N));
const runtimes = cli.list('runtimes', RUNTIMES, RUNTIMES) as RuntimeName[];
if (!runtimes.includes('caitjs')) runtimes.unshift('caitjs'); // the reference
const compressedFiles = new Map(list((flags.compressed as string | undefined) ?? '').map((kv) => {
  const [k, f] = kv.split('=');
  if (!MODELS[k] || !f) cli.fail(`--compressed: expected MODEL=FILE with MODEL in ${Object.keys(MODELS).join(', ')}, got '${kv}'`);
  return [k, resolve(f)] as const;
}));
const outJson = resolve((flags.out as string | undefined) ?? `${here}/results/vit.json`);
const outSvg = resolve((flags.svg as string | undefined) ?? `${here}/../docs/vit-bench.svg`);

// ------------------------------------------------------------------ runtimes

interface Runner {
  runtime: RuntimeName; model: 'dense' | 'cait'; threads: number;
  setInput(x: Float32Array, shape: number[]): Promise<void>;
  /** One timed forward; `ms` is the time to report, `rtt_ms` the round trip where it differs (workers). */
  run(): Promise<{ ms: number; rtt_ms?: number; logits: Float32Array }>;
}
const label = (r: { runtime: string; threads: number }) => `${r.runtime} x${r.threads}`;

/** A main-thread runner timed around `f`. */
function local(runtime: RuntimeName, model: 'dense' | 'cait', threads: number, f: (x: Float32Array, shape: number[]) => Promise<Float32Array> | Float32Array): Runner {
  let x: Float32Array = new Float32Array(0), shape: number[] = [];
  return {
    runtime, model, threads,
    setInput: async (x1, s) => { x = x1; shape = s; },
    run: async () => {
      const t0 = performance.now();
      const logits = await f(x, shape);
      return { ms: performance.now() - t0, logits };
    },
  };
}

function peerRunner(p: Peer, runtime: RuntimeName): Runner {
  return { runtime, model: 'dense', threads: p.threads, setInput: (x, s) => p.setInput(x, s), run: () => p.run() };
}

// caitjs runs its planned forward (src/plan.ts: captured once per input shape,
// replayed from one arena), as `cait bench` does; op by op only if a forward
// cannot be planned.
const caitForward = (m: { forward(x: Tensor): Tensor }, be: Backend) => {
  const plans = new Map<string, InferencePlan | null>();
  return (x: Float32Array, shape: number[]): Float32Array => {
    const key = shape.join('x');
    if (!plans.has(key)) {
      try { plans.set(key, InferencePlan.capture(be, x, shape, (t) => m.forward(t))); }
      catch (e) { if (!(e instanceof CaptureError)) throw e; plans.set(key, null); }
    }
    const p = plans.get(key);
    return p ? p.run(x) : noGrad(() => scope(() => m.forward(Tensor.from(x, shape, be)).toArray()));
  };
};

const single = loadWasmSync('auto');
setBackend(single);
// DeiT-Small at batch 8 holds ~0.8 GB of activations (a forward's scope frees
// them at its end) beside the dense and compressed weights: past the pool's
// default 1 GiB cap, so 2 GiB (reserved, committed only as used)
const pool = N > 1 ? loadThreadedWasmSync({ threads: N, variant: single.variant, maxMemoryPages: 32768 }) : null;
await pool?.ready();

const notes: string[] = [];
// onnxruntime-node (native) is loaded only when asked for; where it cannot be
// (no binary for this platform), its rows are left out and the reason kept
let ort: typeof Ort | null = null;
if (runtimes.some((r) => r.startsWith('ort-node'))) {
  try { const m = await import('onnxruntime-node'); ort = ((m as { default?: typeof Ort }).default ?? m) as typeof Ort; } catch (e) {
    const msg = `ort-node could not run here: onnxruntime-node did not load (${(e as Error).message.split('\n')[0]})`;
    notes.push(msg);
    console.warn(msg);
    for (const r of ['ort-node', 'ort-node-int8'] as const) if (runtimes.includes(r)) runtimes.splice(runtimes.indexOf(r), 1);
  }
}
const peers = new Map<string, Peer>();
for (const runtime of ['ort-web', 'tfjs-wasm', 'ort-web-int8'] as const) {
  if (!runtimes.includes(runtime)) continue;
  for (const t of THREADS) {
    try {
      peers.set(label({ runtime, threads: t }), await startPeer(runtime === 'tfjs-wasm' ? 'tfjs' : 'ort-web', t));
    } catch (e) {
      // recorded, not faked: the row is left out and the reason kept
      const msg = `${runtime} x${t} could not run here: ${(e as Error).message.split('\n')[0]}`;
      notes.push(msg);
      console.warn(msg);
    }
  }
}
const tfjsInfo = [...peers.values()].filter((p) => p.kind === 'tfjs').map((p) => ({ ...p.info, threads: p.threads }) as Record<string, unknown> & { threads: number; workarounds: string[] });
for (const i of tfjsInfo) if (i.workarounds.length) notes.push(`tfjs-wasm x${i.threads}: ${i.workarounds.join('; ')}`);

const env: Record<string, unknown> = {
  ...environment(), platform: `${os.platform()}-${os.arch()}`, relaxedSimd: relaxedSimdSupported(), caitjs_backend: single.name, caitjs_int8_dot: single.int8Dot ?? null,
  pinned_cpu: pinning.cpu, pinning: pinning.why,
  caitjs_pool: pool ? `${pool.name}, ${N} threads` : null,
  onnxruntime_node: ort ? ort.env.versions.node ?? ort.env.versions.common : null,
  onnxruntime_web: [...peers.values()].find((p) => p.kind === 'ort-web')?.info.onnxruntime_web ?? null,
  tfjs: tfjsInfo[0]?.tfjs ?? null, tfjs_binaries: Object.fromEntries(tfjsInfo.map((i) => [`x${i.threads}`, i.binary])),
};
console.log(`node ${env.node}, ${env.cpu} (${env.cores} cores, load ${env.loadavg}; ${pinning.why}), caitjs ${single.name}${pool ? ` + pool x${N}` : ''}; ` +
  `models ${modelKeys.join(', ')}, batches ${batches.join(', ')}, threads ${THREADS.join(' and ')}; ${runs} rounds after ${warmup} warm-up`);
if ((env.loadavg as number) > 0.5) console.warn(`load average ${env.loadavg}: other work is running, absolute times will be inflated`);

const models: Record<string, unknown> = {};
const verify: Array<Record<string, unknown>> = [];
const results: Array<Record<string, unknown>> = [];
const samples: Record<string, number[]> = {};

for (const key of modelKeys) {
  const { preset, target } = MODELS[key];
  const cfg = getPreset(preset);
  // dense: the same weights on both caitjs backends
  const dense1 = createModel(cfg, 0);
  setBackend(pool ?? single); const denseN = pool ? createModel(cfg, 0) : null; setBackend(single);
  // compressed: structure-only (random weights, like `cait compress --structure-only`) or a real model
  let cait1: VisionTransformer | null = null, caitN: VisionTransformer | null = null, caitInfo: Record<string, unknown> | null = null;
  let atme: Partial<AtmeOptions> = {};   // a saved model's ATME switches (similarity, proportional attention)
  let makeCait: (() => VisionTransformer) | null = null;   // another instance of the compressed model (the int8 rows quantize their own)
  if (runtimes.includes('caitjs-cait') || runtimes.includes('caitjs-cait-int8')) {
    const file = compressedFiles.get(key);
    let ccfg: VitConfig;
    if (file) {
      const loaded = loadModel(file);
      cait1 = loaded.model;
      ccfg = cait1.cfg;
      atme = atmeOptionsFromMetadata(loaded.metadata);
      for (const k of ['imgSize', 'patchSize', 'embedDim', 'depth', 'numHeads', 'numClasses'] as const)
        if (ccfg[k] !== cfg[k]) throw new Error(`--compressed ${key}=${file}: ${k} ${ccfg[k]} differs from ${preset}'s ${cfg[k]}`);
      if (pool) { setBackend(pool); caitN = loadModel(file).model; setBackend(single); }
      makeCait = () => loadModel(file).model;
      const macs = countMacs(ccfg, ccfg.merge ?? '').total, dense = countMacs(cfg, '').total;
      caitInfo = { source: file, merge: ccfg.merge ?? '', atme, widths_block0: ccfg.widths?.[0] ?? null, macs, dense_macs: dense, mac_ratio: +(dense / macs).toFixed(4) };
    } else {
      const s = chosenStructure(cfg, target);
      ccfg = { ...cfg, widths: s.widths, merge: s.merge };
      cait1 = createModel(ccfg, 0);
      if (pool) { setBackend(pool); caitN = createModel(ccfg, 0); setBackend(single); }
      makeCait = () => createModel(ccfg, 0);
      caitInfo = {
        source: `structure-only (${s.source}, target ${target}x, random weights)`, target, merge: s.merge, prune: s.prune, keep: +s.keep.toFixed(4),
        widths_block0: s.widths[0], macs: s.macs, dense_macs: s.denseMacs, mac_ratio: +s.ratio.toFixed(4),
      };
    }
  }
  const onnx = runtimes.includes('ort-web') || runtimes.includes('ort-node') ? exportVitOnnx(dense1, { batch: 'dynamic' }) : null;
  // int8: quantized copies on each caitjs backend (same int8 weights: quantization is deterministic)
  const int8Copy = (make: () => VisionTransformer, be: Backend) => { setBackend(be); const vit = make(); const qm = quantizeModel(vit); setBackend(single); return { vit, qm }; };
  const wantInt8 = (r: RuntimeName) => runtimes.includes(r);
  const dq = new Map<number, ReturnType<typeof int8Copy>>(), cq = new Map<number, ReturnType<typeof int8Copy>>();
  for (const t of THREADS) {
    const be = t === 1 ? single : pool!;
    if (wantInt8('caitjs-int8') || wantInt8('ort-web-int8') || wantInt8('ort-node-int8')) dq.set(t, int8Copy(() => createModel(cfg, 0), be));
    if (wantInt8('caitjs-cait-int8') && makeCait) cq.set(t, int8Copy(makeCait, be));
  }
  const onnx8 = wantInt8('ort-web-int8') || wantInt8('ort-node-int8') ? exportInt8Onnx(dq.get(1)!.vit, dq.get(1)!.qm, { batch: 'dynamic' }) : null;
  const weights = runtimes.includes('tfjs-wasm') ? new Map(dense1.namedParameters().map(([n, p]) => [n, { shape: p.shape, data: p.toArray() }])) : null;
  models[key] = {
    preset, dense_macs: countMacs(cfg, '').total, weights: 'random, createModel(cfg, 0)',
    onnx: onnx ? { opset: ONNX_OPSET, bytes: onnx.bytes.length, nodes: onnx.model.graph.nodes.length, batch: 'dynamic' } : null,
    onnx_int8: onnx8 ? { opset: ONNX_OPSET, bytes: onnx8.bytes.length, nodes: onnx8.model.graph.nodes.length, int8_layers: onnx8.rewritten.length, batch: 'dynamic' } : null,
    cait: caitInfo,
  };
  if (caitInfo) console.log(`${preset}: CAIT ${caitInfo.source}: merge ${caitInfo.merge || 'none'}, ${((caitInfo.macs as number) / 1e9).toFixed(3)} GMACs (${caitInfo.mac_ratio}x fewer)`);

  const runners: Runner[] = [];
  for (const t of THREADS) {
    const be = t === 1 ? single : pool!;
    runners.push(local('caitjs', 'dense', t, caitForward(t === 1 ? dense1 : denseN!, be)));
    if (cait1) {
      const m = t === 1 ? cait1 : caitN!;
      runners.push(local('caitjs-cait', 'cait', t, caitForward(m.cfg.merge ? new CaitModel(m, { ...atme, merge: m.cfg.merge }) : m, be)));
    }
    const d8 = dq.get(t), c8 = cq.get(t);
    if (d8 && wantInt8('caitjs-int8')) runners.push(local('caitjs-int8', 'dense', t, caitForward(d8.vit, be)));
    if (c8) runners.push(local('caitjs-cait-int8', 'cait', t, caitForward(c8.vit.cfg.merge ? new CaitModel(c8.vit, { ...atme, merge: c8.vit.cfg.merge }) : c8.vit, be)));
  }
  const ortSessions: Ort.InferenceSession[] = [];
  for (const runtime of ['ort-web', 'ort-node', 'tfjs-wasm', 'ort-web-int8', 'ort-node-int8'] as const) {
    if (!runtimes.includes(runtime)) continue;
    const graph = runtime.endsWith('-int8') ? onnx8! : onnx!;
    for (const t of THREADS) {
      if (runtime === 'ort-node' || runtime === 'ort-node-int8') {
        const ortNode = ort!;
        const s = await ortNode.InferenceSession.create(graph.bytes, { intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
        ortSessions.push(s);
        runners.push(local(runtime, 'dense', t, async (x, shape) => (await s.run({ pixel_values: new ortNode.Tensor('float32', x, shape) })).logits.data as Float32Array));
        continue;
      }
      const p = peers.get(label({ runtime, threads: t }));
      if (!p) continue;
      await p.load(runtime === 'tfjs-wasm' ? { cfg, weights } : { onnx: graph.bytes });
      runners.push(peerRunner(p, runtime));
    }
  }

  for (const B of batches) {
    const shape = [B, cfg.inChans, cfg.imgSize, cfg.imgSize], rng = new Rng(1 + B);
    const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    for (const r of runners) await r.setInput(x, shape);
    // ---- verification: dense against caitjs x1; caitjs xN bit for bit against x1
    const first = new Map<Runner, Float32Array>();
    for (const r of runners) first.set(r, (await r.run()).logits);
    const ref = first.get(runners[0])!, caitRef = runners.find((r) => r.runtime === 'caitjs-cait' && r.threads === 1);
    const maxLogit = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const int8Ref = runners.find((r) => r.runtime === 'caitjs-int8' && r.threads === 1), cait8Ref = runners.find((r) => r.runtime === 'caitjs-cait-int8' && r.threads === 1);
    for (const r of runners.slice(1)) {
      if (r.runtime.endsWith('-int8')) {
        // int8: caitjs-int8 x1 against float, its pools bit for bit, onnxruntime's int8 against caitjs-int8 (INT8_TOL of the largest logit)
        const got = first.get(r)!, isCait = r.model === 'cait', base = isCait ? cait8Ref : int8Ref;
        if (got.length !== B * cfg.numClasses || !got.every(Number.isFinite)) throw new Error(`${label(r)}, batch ${B}: ${got.length} logits, or not finite`);
        const against = r === base ? (isCait ? (caitRef ? first.get(caitRef)! : null) : ref) : base ? first.get(base)! : ref;
        if (!against) continue;
        let d = 0;
        for (let i = 0; i < against.length; i++) d = Math.max(d, Math.abs(got[i] - against[i]));
        const m = against.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        if (r.runtime.startsWith('caitjs') && r !== base) {
          if (got.some((v, i) => !Object.is(v, against[i]))) throw new Error(`${label(r)}, batch ${B}: int8 logits not bit-identical to 1 thread (max |diff| ${d})`);
        } else if (!(d <= INT8_TOL * m)) throw new Error(`${label(r)}, ${preset} batch ${B}: int8 logits differ by ${d} (> ${INT8_TOL} x max |logit| ${m})`);
        verify.push({ model: key, batch: B, runtime: r.runtime, threads: r.threads, against: r === base ? `float ${isCait ? 'caitjs-cait' : 'caitjs'} x1` : base ? `${base.runtime} x1` : 'caitjs x1', max_abs_diff: d, max_abs_logit: m, relative: +(d / m).toFixed(5) });
        continue;
      }
      const want = r.model === 'cait' ? first.get(caitRef!)! : ref, got = first.get(r)!;
      if (r === caitRef) {
        if (got.length !== B * cfg.numClasses || !got.every(Number.isFinite)) throw new Error(`${label(r)} (cait), batch ${B}: ${got.length} logits, or not finite`);
        continue;
      }
      let d = 0;
      for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
      if (!(d <= TOL) || got.length !== want.length) throw new Error(`${label(r)}, ${preset} batch ${B}: logits differ from caitjs by ${d} (> ${TOL})`);
      if (r.runtime.startsWith('caitjs') && got.some((v, i) => !Object.is(v, want[i]))) throw new Error(`${label(r)}, batch ${B}: logits not bit-identical to 1 thread (max |diff| ${d})`);
      verify.push({ model: key, batch: B, runtime: r.runtime, threads: r.threads, against: r.model === 'cait' ? 'caitjs-cait x1' : 'caitjs x1', max_abs_diff: d, max_abs_logit: maxLogit });
    }
    const worst = Math.max(...verify.filter((v) => v.model === key && v.batch === B && !String(v.runtime).startsWith('caitjs') && !String(v.runtime).endsWith('-int8')).map((v) => v.max_abs_diff as number), 0);
    console.log(`${preset} batch ${B}: logits agree (largest |diff| vs caitjs among other runtimes ${worst.toExponential(2)}, max |logit| ${maxLogit.toExponential(2)}); timing ${runners.length} runners`);
    // ---- timing: interleaved rounds, rotating order
    const times = runners.map(() => [] as number[]), rtts = runners.map(() => [] as number[]);
    for (let round = 0; round < warmup + runs; round++) {
      for (let j = 0; j < runners.length; j++) {
        const k = (j + round) % runners.length;
        const { ms, rtt_ms } = await runners[k].run();
        if (round >= warmup) { times[k].push(ms); if (rtt_ms !== undefined) rtts[k].push(rtt_ms); }
      }
      process.stdout.write(`  round ${round + 1}/${warmup + runs}${round < warmup ? ' (warm-up)' : ''}\r`);
    }
    const rows = runners.map((r, k) => {
      const s = latencyStats(times[k]);
      samples[`${key} b${B} ${label(r)}`] = times[k].map((t) => +t.toFixed(3));
      return {
        model: key, preset, batch: B, threads: r.threads, runtime: r.runtime, variant: r.model, ...s,
        images_per_sec: +(1000 * B / s.median_ms).toFixed(2),
        ...(rtts[k].length ? { round_trip_median_ms: latencyStats(rtts[k]).median_ms } : {}),
      } as Record<string, unknown>;
    });
    for (const row of rows) {
      const base = rows.find((q) => q.runtime === 'caitjs' && q.threads === row.threads)!, web = rows.find((q) => q.runtime === 'ort-web' && q.threads === row.threads);
      row.time_vs_caitjs = +((row.median_ms as number) / (base.median_ms as number)).toFixed(3);
      if (row.variant === 'cait' && web) row.time_vs_ort_web = +((row.median_ms as number) / (web.median_ms as number)).toFixed(3);
      if (row.threads !== 1) {
        const one = rows.find((q) => q.runtime === row.runtime && q.threads === 1);
        if (one) row.throughput_vs_1_thread = +((one.median_ms as number) / (row.median_ms as number)).toFixed(3);
      }
      results.push(row);
    }
    console.log('');
    for (const row of rows)
      console.log(`  ${label(row as { runtime: string; threads: number }).padEnd(16)} median ${(row.median_ms as number).toFixed(2).padStart(8)} ms  (spread ${((row.spread as number) * 100).toFixed(1)}%)  ` +
        `${(row.images_per_sec as number).toFixed(1).padStart(7)} img/s  x${(row.time_vs_caitjs as number).toFixed(2)} of caitjs time` +
        (row.time_vs_ort_web !== undefined ? `, x${(row.time_vs_ort_web as number).toFixed(2)} of ort-web's` : '') +
        (row.throughput_vs_1_thread !== undefined ? `, ${(row.throughput_vs_1_thread as number).toFixed(2)}x 1-thread throughput` : ''));
  }
  for (const s of ortSessions) await s.release();
  for (const p of peers.values()) await p.unload();
  for (const m of [dense1, denseN, cait1, caitN]) m?.dispose();
  for (const q of [...dq.values(), ...cq.values()]) { q.qm.dispose(); q.vit.dispose(); }
}

// -------------------------------------------------------------------- checks

const find = (model: string, batch: number, threads: number, runtime: string) =>
  results.find((r) => r.model === model && r.batch === batch && r.threads === threads && r.runtime === runtime) as Record<string, number> | undefined;
const missing = (what: string) => ({ pass: null, reason: `not measured in this run (${what})` });
const checks: Record<string, unknown> = {};
{
  const c = find('tiny', 1, 1, 'caitjs'), w = find('tiny', 1, 1, 'ort-web');
  checks.dense_tiny_b1_1thread_vs_ort_web = c && w
    ? { what: 'dense DeiT-Tiny, batch 1, 1 thread: caitjs time / ort-web time', ratio: +(c.median_ms / w.median_ms).toFixed(3), limit: `<= ${LIMITS.dense_vs_ort_web}`, caitjs_ms: c.median_ms, ort_web_ms: w.median_ms, pass: c.median_ms / w.median_ms <= LIMITS.dense_vs_ort_web }
    : missing('needs tiny, batch 1, caitjs and ort-web');
}
{
  const per = modelKeys.flatMap((m) => {
    const one = find(m, 8, 1, 'caitjs'), n = find(m, 8, N, 'caitjs');
    return one && n && N > 1 ? [{ model: m, ratio: +(one.median_ms / n.median_ms).toFixed(3), one_thread_ms: one.median_ms, n_threads_ms: n.median_ms, pass: one.median_ms / n.median_ms >= LIMITS.thread_scaling }] : [];
  });
  checks.b8_thread_scaling = per.length
    ? { what: `caitjs dense, batch 8: throughput with ${N} threads / with 1`, threads: N, limit: `>= ${LIMITS.thread_scaling}`, per_model: per, ratio: Math.min(...per.map((p) => p.ratio)), pass: per.every((p) => p.pass) }
    : missing('needs batch 8 and --threads > 1');
}
{
  const c = find('tiny', 1, 1, 'caitjs-cait'), w = find('tiny', 1, 1, 'ort-web');
  const macRatio = (models.tiny as { cait?: { mac_ratio: number } } | undefined)?.cait?.mac_ratio;
  checks.cait_tiny_b1_1thread_vs_ort_web = c && w && macRatio
    ? {
      what: 'CAIT-compressed DeiT-Tiny, batch 1, 1 thread: its time / dense ort-web time', ratio: +(c.median_ms / w.median_ms).toFixed(3), limit: `<= ${LIMITS.cait_vs_ort_web}`,
      mac_ratio: macRatio, mac_ratio_limit: `>= ${LIMITS.cait_mac_ratio}`, cait_ms: c.median_ms, ort_web_ms: w.median_ms,
      pass: c.median_ms / w.median_ms <= LIMITS.cait_vs_ort_web && macRatio >= LIMITS.cait_mac_ratio,
    }
    : missing('needs tiny, batch 1, caitjs-cait and ort-web');
}
{
  const c = find('tiny', 1, 1, 'caitjs-int8'), w = find('tiny', 1, 1, 'ort-web-int8');
  checks.int8_dense_tiny_b1_1thread_vs_ort_web_int8 = c && w
    ? { what: 'int8 dense DeiT-Tiny, batch 1, 1 thread: caitjs-int8 time / onnxruntime-web time on the int8 graph', ratio: +(c.median_ms / w.median_ms).toFixed(3), limit: `<= ${LIMITS.int8_vs_ort_web_int8}`, caitjs_int8_ms: c.median_ms, ort_web_int8_ms: w.median_ms, pass: c.median_ms / w.median_ms <= LIMITS.int8_vs_ort_web_int8 }
    : missing('needs tiny, batch 1, caitjs-int8 and ort-web-int8');
}
{
  const c = find('tiny', 1, 1, 'caitjs-cait-int8'), n = find('tiny', 1, 1, 'ort-node');
  const macRatio = (models.tiny as { cait?: { mac_ratio: number } } | undefined)?.cait?.mac_ratio;
  checks.int8_cait_tiny_b1_1thread_vs_ort_node_float = c && n
    ? { what: 'int8 CAIT DeiT-Tiny, batch 1, 1 thread: its time / native onnxruntime-node float (dense) time', ratio: +(c.median_ms / n.median_ms).toFixed(3), limit: `<= ${LIMITS.int8_cait_vs_ort_node_float}`, mac_ratio: macRatio, cait_int8_ms: c.median_ms, ort_node_ms: n.median_ms, pass: c.median_ms / n.median_ms <= LIMITS.int8_cait_vs_ort_node_float }
    : missing('needs tiny, batch 1, caitjs-cait-int8 and ort-node');
}
const verdicts = Object.values(checks).map((c) => (c as { pass: boolean | null }).pass);
checks.all_pass = verdicts.every((p) => p === true) ? true : verdicts.some((p) => p === false) ? false : null;

env.loadavgAfter = environment().loadavg;
// the pool's calibration and counters at the end: its start-up calibration
// varies from process to process (src/backend/threads.ts), so a run's
// two-thread rows are read with it
if (pool) env.caitjs_pool_stats = pool.poolStats();
const json: VitBenchJson = {
  what: 'bench/vit.ts: whole-model latency of DeiT (random weights), every runtime in one run, interleaved rounds, medians',
  env, config: { models: modelKeys, batches, threads: THREADS, runs, warmup, runtimes, tolerance: TOL, limits: LIMITS },
  notes, models, checks, verify, results, samples_ms: samples,
};
mkdirSync(dirname(outJson), { recursive: true });
writeFileSync(outJson, JSON.stringify(json, null, 2) + '\n');
mkdirSync(dirname(outSvg), { recursive: true });
writeFileSync(outSvg, vitChartSvg(json));
console.log('\nchecks:');
for (const [k, v] of Object.entries(checks)) if (k !== 'all_pass') {
  const c = v as { pass: boolean | null; ratio?: number; limit?: string; reason?: string; mac_ratio?: number };
  console.log(`  ${k}: ${c.pass === null ? `n/a (${c.reason})` : `${c.ratio} (limit ${c.limit}${c.mac_ratio !== undefined ? `, MACs ${c.mac_ratio}x fewer` : ''}) ${c.pass ? 'PASS' : 'FAIL'}`}`);
}
for (const n of notes) console.log(`note: ${n}`);
console.log(`wrote ${outJson} and ${outSvg}`);
for (const p of peers.values()) await p.close();
await pool?.close();
