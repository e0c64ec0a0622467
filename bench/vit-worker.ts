// The WASM peers of bench/vit.ts, each in a worker thread of its own:
//   ort-web   onnxruntime-web, wasm EP, env.wasm.numThreads = threads
//   tfjs      @tensorflow/tfjs-backend-wasm running bench/tfjs-vit.ts
// Why workers: both libraries fix their thread count once per JS realm (ORT
// at OrtInit, tfjs when the backend starts), so x1 and x2 cannot share one;
// and tfjs x2 patches globals (see bench/tfjs-vit.ts). In a worker each gets
// its own module instance, exactly as a page would run it in a Web Worker.
//
// Timing is taken inside the worker, around exactly what the main thread times
// for caitjs and ort-node: input tensor from a Float32Array, the forward, the
// logits read back into a JS Float32Array. The postMessage round trip
// (about 0.1 ms) is not charged to the peer; the main thread reports it apart.
//
// Protocol (main -> worker, each answered once, in order):
//   {op: 'load', onnx?: Uint8Array, weights?: NamedWeights, cfg?}  -> {op: 'loaded', info}
//   {op: 'input', x: Float32Array, shape}                          -> {op: 'ok'}
//   {op: 'run'}                                                    -> {op: 'ran', ms, logits}
//   {op: 'unload'}                                                 -> {op: 'ok'}
// Any error -> {op: 'error', message}.
//
// startPeer() (main thread) starts one and returns a Runner-like client.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export type PeerKind = 'ort-web' | 'tfjs';

interface Msg { op: string; [k: string]: unknown }

// ------------------------------------------------------------------ main side

export interface Peer {
  kind: PeerKind; threads: number; info: Record<string, unknown>;
  load(m: Record<string, unknown>): Promise<Record<string, unknown>>;
  setInput(x: Float32Array, shape: number[]): Promise<void>;
  /** One timed forward: ms measured in the worker, rtt_ms the whole round trip seen from here. */
  run(): Promise<{ ms: number; rtt_ms: number; logits: Float32Array }>;
  unload(): Promise<void>;
  close(): Promise<void>;
}

export async function startPeer(kind: PeerKind, threads: number): Promise<Peer> {
  // The worker imports this file as TypeScript: tsx is registered in it first
  // (a worker does not inherit the main thread's --import hooks for ESM).
  const tsx = import.meta.resolve('tsx/esm/api'), self = import.meta.url;
  const src = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })` +
    `.catch((e) => { require('node:worker_threads').parentPort.postMessage({ op: 'error', message: String(e && e.stack || e) }); });`;
  const w = new Worker(src, { eval: true, workerData: { peer: kind, threads } });
  const queue: Array<{ resolve: (m: Msg) => void; reject: (e: Error) => void }> = [];
  let dead: Error | null = null;
  const fail = (e: Error) => { dead = e; while (queue.length) queue.shift()!.reject(e); };
  w.on('message', (m: Msg) => {
    const q = queue.shift();
    if (!q) { if (m.op === 'error') fail(new Error(`${kind} x${threads}: ${m.message}`)); return; }
    if (m.op === 'error') q.reject(new Error(`${kind} x${threads}: ${m.message}`)); else q.resolve(m);
  });
  w.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
  w.on('exit', (c) => fail(new Error(`${kind} x${threads} worker exited (${c})`)));
  const call = (m: Msg, transfer: ArrayBuffer[] = []) => new Promise<Msg>((resolve, reject) => {
    if (dead) { reject(dead); return; }
    queue.push({ resolve, reject });
    w.postMessage(m, transfer);
  });
  const hello = await call({ op: 'init' });
  const peer: Peer = {
    kind, threads, info: hello.info as Record<string, unknown>,
    load: async (m) => (await call({ ...m, op: 'load' })).info as Record<string, unknown>,
    setInput: async (x, shape) => { await call({ op: 'input', x, shape }); },
    run: async () => {
      const t0 = performance.now();
      const r = await call({ op: 'run' });
      return { ms: r.ms as number, rtt_ms: performance.now() - t0, logits: r.logits as Float32Array };
    },
    unload: async () => { await call({ op: 'unload' }); },
    close: async () => { await w.terminate(); },
  };
  return peer;
}

// ---------------------------------------------------------------- worker side

interface Impl {
  info: Record<string, unknown>;
  load(m: Msg): Promise<Record<string, unknown>>;
  run(x: Float32Array, shape: number[]): Promise<Float32Array>;
  unload(): Promise<void>;
}

async function ortWebImpl(threads: number): Promise<Impl> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'error';
  type Session = Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  let s: Session | null = null;
  const info: Record<string, unknown> = { onnxruntime_web: ort.env.versions.web, requested_threads: threads };
  return {
    info,
    async load(m) {
      await s?.release();
      s = await ort.InferenceSession.create(m.onnx as Uint8Array, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      // initializeWebAssembly falls back to one thread (and says so) where
      // threads are unavailable; numThreads then reads 1
      info.threads = ort.env.wasm.numThreads;
      if (info.threads !== threads) throw new Error(`onnxruntime-web runs ${info.threads} threads, asked for ${threads}`);
      return info;
    },
    async run(x, shape) {
      const out = await s!.run({ pixel_values: new ort.Tensor('float32', x, shape) });
      return out.logits.data as Float32Array;
    },
    async unload() { await s?.release(); s = null; },
  };
}

async function tfjsImpl(threads: number): Promise<Impl> {
  const { initTfjsWasm, TfjsVit } = await import('./tfjs-vit.js');
  const init = await initTfjsWasm(threads);
  let model: InstanceType<typeof TfjsVit> | null = null;
  return {
    info: { ...init },
    async load(m) {
      model?.dispose();
      model = new TfjsVit(m.cfg as ConstructorParameters<typeof TfjsVit>[0], m.weights as ConstructorParameters<typeof TfjsVit>[1]);
      return { ...init };
    },
    async run(x, shape) { return model!.forward(x, shape); },
    async unload() { model?.dispose(); model = null; },
  };
}

if (!isMainThread && workerData?.peer) {
  const port = parentPort!;
  const { peer, threads } = workerData as { peer: PeerKind; threads: number };
  let impl: Impl | null = null, x: Float32Array | null = null, shape: number[] = [];
  // messages are handled one at a time, in order
  let chain = Promise.resolve();
  port.on('message', (m: Msg) => {
    chain = chain.then(async () => {
      try {
        switch (m.op) {
          case 'init':
            impl = peer === 'ort-web' ? await ortWebImpl(threads) : await tfjsImpl(threads);
            port.postMessage({ op: 'ready', info: impl.info });
            break;
          case 'load': port.postMessage({ op: 'loaded', info: await impl!.load(m) }); break;
          case 'input': x = m.x as Float32Array; shape = m.shape as number[]; port.postMessage({ op: 'ok' }); break;
          case 'run': {
            const t0 = performance.now();
            const logits = await impl!.run(x!, shape);
            const ms = performance.now() - t0;
            port.postMessage({ op: 'ran', ms, logits });
            break;
          }
          case 'unload': await impl?.unload(); port.postMessage({ op: 'ok' }); break;
          default: throw new Error(`unknown op '${m.op}'`);
        }
      } catch (e) {
        port.postMessage({ op: 'error', message: e instanceof Error ? e.stack ?? e.message : String(e) });
      }
    });
  });
}
