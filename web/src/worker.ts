// Inference worker: one backend, the demo models loaded on it. The page
// starts one per backend; each answers `init` (backend up, models fetched and
// built), `predict` (class probabilities, and for merged models on WASM the
// ATME merge maps for the overlay) and `time` (one timing round on the last
// predicted input; the page drives the rounds, so a new input can stop them).
//
// WASM: the threaded backend (src/backend/threads.ts: a pool of Web Workers
// over one shared memory) when this context is cross-origin isolated and the
// shared builds are there; it blocks with Atomics.wait, which workers may do
// and a page's main thread may not, hence this worker. Otherwise one thread.
import type { Backend } from '../../src/backend/backend.js';
import { loadWasm } from '../../src/backend/wasm.js';
import { loadThreadedWasm } from '../../src/backend/threads.js';
import { createWebGpuBackend } from '../../src/backend/webgpu/index.js';
import { Tensor, scope, setBackend, readTensor } from '../../src/tensor.js';
import { noGrad } from '../../src/autograd.js';
import { modelFromBytes } from '../../src/nn/load-bytes.js';
import type { VisionTransformer } from '../../src/nn/vit.js';
import { CaitModel, atmeOptionsFromMetadata } from '../../src/cait/wrap.js';
import { composeMaps } from '../../src/cait/atme.js';
import { countMacs, countParams } from '../../src/cait/macs.js';
import { imageToInput } from '../../src/data/preprocess.js';
import { quantizeLoaded, quantScheme } from '../../src/quant/format.js';   // (also registers the int8 files' decoder)
import { hasInt8Kernels } from '../../src/quant/int8.js';
import type { BackendInfo, InitRequest, MergeStepView, ModelInfo, ModelResult, PredictRequest, PredictResult, Request, Response, TimeRequest, TimeResult } from './protocol.js';

interface Loaded { label: string; vit: VisionTransformer; runner: VisionTransformer | CaitModel }

let backend: Backend | null = null;
let kind: InitRequest['kind'] = 'wasm';
let models: Loaded[] = [];

const post = (r: Response) => (self as unknown as Worker).postMessage(r);

async function init(req: InitRequest): Promise<BackendInfo> {
  kind = req.kind;
  const isolated = (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  let note: string | undefined, threads = 1, name: string;
  if (req.kind === 'webgpu') {
    const gpu = await createWebGpuBackend();   // throws when there is no navigator.gpu or no adapter
    backend = gpu;
    name = gpu.info;
  } else {
    if (req.threads > 1 && isolated) {
      try {
        const be = await loadThreadedWasm(req.wasmBase, { threads: req.threads });
        backend = be; threads = be.threads;
      } catch (e) { note = `threads unavailable (${(e as Error).message}); one thread`; }
    } else if (req.threads > 1) note = 'one thread: this page is served without cross-origin isolation, which browsers require for shared memory between threads';
    if (!backend) backend = await loadWasm(req.wasmBase);
    name = backend.name;
  }
  setBackend(backend);
  models = [];
  const infos: ModelInfo[] = [];
  for (const m of req.models) {
    const res = await fetch(m.url);
    if (!res.ok) throw new Error(`${m.url}: HTTP ${res.status}`);
    infos.push(addModel(m.label, new Uint8Array(await res.arrayBuffer()), m.url));
  }
  return { kind: req.kind, name, threads, note, crossOriginIsolated: isolated, models: infos };
}

/** Builds a model file's model on this worker's backend, as `cait` runs it, and describes it. */
function addModel(label: string, bytes: Uint8Array, source: string): ModelInfo {
  const { model: vit, metadata } = modelFromBytes(bytes, {}, source);
  // an int8 file (cait quantize) on the int8 kernels, as load() runs it; WebGPU runs its dequantized weights in float
  const int8 = quantScheme(metadata) !== null && !!backend && hasInt8Kernels(backend);
  if (int8) quantizeLoaded(vit, metadata);
  // as `cait` runs a model file (withMerging in src/cli/common.ts): merged when its config has a schedule
  const runner = vit.cfg.merge ? new CaitModel(vit, atmeOptionsFromMetadata(metadata)) : vit;
  models.push({ label, vit, runner });
  const cfg = vit.cfg;
  return {
    label, name: cfg.name, merge: cfg.merge ?? '', compact: !!cfg.widths, int8, macs: countMacs(cfg, cfg.merge ?? '').total,
    params: countParams(cfg), grid: vit.grid, imgSize: cfg.imgSize, patchSize: cfg.patchSize,
    classes: cfg.classes ?? Array.from({ length: cfg.numClasses }, (_, i) => String(i)),
  };
}

function softmax(z: Float32Array): number[] {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v);
  const e = Array.from(z, (v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Logits (and merge maps) of one image; WASM reads synchronously, WebGPU awaits the read-back. */
async function run(m: Loaded, x: Float32Array, overlay: boolean): Promise<{ logits: Float32Array; steps: MergeStepView[] }> {
  const cfg = m.vit.cfg, shape = [1, cfg.inChans, cfg.imgSize, cfg.imgSize];
  if (kind === 'webgpu') {
    const y = noGrad(() => scope(() => m.runner.forward(Tensor.from(x, shape))));
    try { return { logits: await readTensor(y), steps: [] }; } finally { y.dispose(); }
  }
  return noGrad(() => scope(() => {
    const xt = Tensor.from(x, shape);
    if (!(m.runner instanceof CaitModel) || !overlay) return { logits: m.runner.forward(xt).toArray(), steps: [] };
    const r = m.runner, out = r.forwardTokens(xt);
    const logits = r.vit.forwardHead(out.tokens).toArray();
    const steps = out.plans.map((p, k): MergeStepView => ({
      axis: p.axis, block: r.schedule[k].block, grid: [p.grid[0], p.grid[1]], newGrid: [p.newGrid[0], p.newGrid[1]],
      map: Array.from(composeMaps(out.plans.slice(0, k + 1))),
    }));
    return { logits, steps };
  }));
}

/** One prediction, end to end: input upload, forward, logits back. */
async function timeOnce(m: Loaded, x: Float32Array): Promise<number> {
  const t0 = performance.now();
  await run(m, x, false);
  return performance.now() - t0;
}

/** The input the timing rounds use: the last predicted picture, per model. */
let inputs: Float32Array[] = [];

async function predict(req: PredictRequest): Promise<PredictResult> {
  const img = { width: req.image.width, height: req.image.height, data: new Uint8Array(req.image.data.buffer, req.image.data.byteOffset, req.image.data.byteLength) };
  inputs = models.map((m) => imageToInput(img, m.vit.cfg));
  const out: ModelResult[] = [];
  for (let i = 0; i < models.length; i++) {
    const { logits, steps } = await run(models[i], inputs[i], req.overlay);
    const probs = softmax(logits);
    out.push({ label: models[i].label, probs, top: probs.indexOf(Math.max(...probs)), median_ms: NaN, p10_ms: NaN, p90_ms: NaN, runs: 0, steps });
  }
  const cfg = models[0]?.vit.cfg;
  const input = cfg ? Array.from(inputs[0].subarray(0, cfg.imgSize * cfg.imgSize), (v) => Math.min(1, Math.max(0, v * cfg.std[0] + cfg.mean[0]))) : [];
  return { kind, backend: backend?.name === 'webgpu' ? 'webgpu' : backend?.name ?? '', models: out, input, inputSize: cfg?.imgSize ?? 0 };
}

/** One round: every model once on the current input, starting at model `round % n` (rotating order). */
async function time(req: TimeRequest): Promise<TimeResult> {
  if (inputs.length !== models.length) throw new Error('time before predict');
  const ms = models.map(() => NaN);
  for (let j = 0; j < models.length; j++) {
    const k = (j + req.round) % models.length;
    ms[k] = await timeOnce(models[k], inputs[k]);
  }
  return { ms };
}

self.onmessage = async (ev: MessageEvent<Request>) => {
  const req = ev.data;
  try {
    if (req.op === 'init') post({ id: req.id, ok: true, info: await init(req) });
    else {
      if (!backend) throw new Error(`${req.op} before init`);
      if (req.op === 'predict') post({ id: req.id, ok: true, result: await predict(req) });
      else if (req.op === 'add') post({ id: req.id, ok: true, added: addModel(req.label, new Uint8Array(req.bytes), req.file) });
      else post({ id: req.id, ok: true, timed: await time(req) });
    }
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e);
    post({ id: req.id, ok: false, error: msg, unavailable: req.op === 'init' && req.kind === 'webgpu' && !backend });
  }
};
