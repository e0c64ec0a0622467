// cait serve: models behind the Open Inference Protocol (src/serve/).
// Runs until SIGTERM or SIGINT: then it stops taking work (new requests 503
// while the queue drains), answers what is queued and in flight, and exits 0.
import { createServer, parseModelSpec, SERVE_DEFAULTS as D, SERVE_RANGES as R } from '../serve/index.js';
import { BACKEND_FLAGS, INT8_FLAGS, MODEL_FLAGS, int8AttentionOf, int8SixBitOf, UsageError, command, type Flags } from './flags.js';
import { presetUsage, useBackendAsync } from './common.js';
import { getBackend } from '../tensor.js';
import type { Backend } from '../backend/backend.js';

const SERVE_FLAGS = {
  model: { type: 'strings', value: 'FILE|NAME=FILE', help: "a model to serve, named NAME or by its file or folder name without extension; repeat for more" },
  preset: MODEL_FLAGS.preset,
  host: { type: 'string', value: 'HOST', default: D.host, help: 'address to listen on (0.0.0.0: every interface)' },
  port: { type: 'int', min: 0, max: 65535, default: D.port, help: 'port to listen on (0: any free port, printed at start)' },
  backend: BACKEND_FLAGS.backend,
  threads: BACKEND_FLAGS.threads,
  instances: { type: 'int', min: 1, max: 64, default: 1, help: 'forwards at once, each on its own worker thread with its own batches (this thread only serves HTTP); with --threads 1' },
  'max-batch': { type: 'int', ...R.maxBatch, default: D.maxBatch, help: 'most images in one planned forward' },
  'max-wait-ms': { type: 'int', ...R.maxWaitMs, default: D.maxWaitMs, help: 'how long the first waiting request waits for others to batch with' },
  'max-queue': { type: 'int', ...R.maxQueue, default: D.maxQueue, help: 'images that may wait for a forward at once (all models), and uploads that may wait to be decoded; beyond it: 503 with Retry-After' },
  'max-body': { type: 'int', ...R.maxBody, value: 'BYTES', default: D.maxBody, help: 'largest request body (413 beyond)' },
  'max-pixels': { type: 'int', ...R.maxPixels, default: D.maxPixels, help: "largest uploaded image, width x height from its header (413 beyond)" },
  'timeout-ms': { type: 'int', ...R.timeoutMs, default: D.timeoutMs, help: 'time to receive a request (408) and to wait to be decoded or in the queue (504); above --max-wait-ms' },
  warmup: { type: 'boolean', help: 'capture the planned forward of every batch size up to --max-batch before listening (else each on first use)' },
  log: { type: 'enum', choices: ['json', 'text', 'none'], default: 'text', help: 'one line per request on stdout' },
  ...INT8_FLAGS,
} as const;

export const serveCommand = command({
  name: 'serve',
  summary: 'an HTTP inference server (Open Inference Protocol / KServe v2) with dynamic batching and /metrics',
  usage: ['--model models/fmnist-cait.safetensors', '--model fmnist=models/fmnist-cait.safetensors --model dense=models/fmnist-dense.safetensors --port 8080 --threads 2 --log json'],
  notes: 'Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME[/ready], /metrics;\n' +
    '  POST /v2/models/NAME/infer (JSON tensors, FP32 pixel_values NCHW; binary tensor extension) and\n' +
    '  POST /v2/models/NAME/classify[?topk=K] (a PNG or JPEG body, or multipart/form-data).\n' +
    'SIGTERM or SIGINT: stop taking work (503 while the queue drains), answer what is queued, exit 0.',
  flags: SERVE_FLAGS,
  run: serveRun,
});

async function serveRun(f: Flags<typeof SERVE_FLAGS>): Promise<void> {
  if (!f.model.length) throw new UsageError('missing --model: give at least one model file (--model FILE or --model NAME=FILE)');
  if (f.instances > 1 && f.threads > 1) throw new UsageError(`--instances ${f.instances} with --threads ${f.threads}: each instance runs on one thread; give one of them`);
  if (f['max-wait-ms'] >= f['timeout-ms'])
    throw new UsageError(`--max-wait-ms ${f['max-wait-ms']} must be below --timeout-ms ${f['timeout-ms']}: a lone request waits --max-wait-ms for others, and would time out (504) first`);
  const specs = f.model.map(parseModelSpec), names = new Set<string>();
  for (const s of specs) {
    if (!s.path) throw new UsageError(`--model ${s.name}=: no file after '${s.name}=' (expected FILE or NAME=FILE)`);
    if (!/^[A-Za-z0-9_.-]+$/.test(s.name)) throw new UsageError(`--model ${s.path}: name '${s.name}' must be letters, digits, '_', '.', '-' (name it with NAME=FILE)`);
    if (names.has(s.name)) throw new UsageError(`--model: two models named '${s.name}'; name them with NAME=FILE`);
    names.add(s.name);
  }
  if (f.instances > 1 && f.backend !== 'wasm') throw new UsageError(`--instances ${f.instances} runs its own WASM workers: not with --backend ${f.backend}`);
  // wasm (default): the server makes its own (relaxed SIMD where there is, --threads, --instances); else the backend named
  let backend: Backend | undefined;
  if (f.backend !== 'wasm') { await useBackendAsync(f.backend, f.threads); backend = getBackend(); }
  const server = await createServer({
    models: specs, host: f.host, port: f.port, threads: f.threads, instances: f.instances, backend,
    maxBatch: f['max-batch'], maxWaitMs: f['max-wait-ms'], maxQueue: f['max-queue'], maxBody: f['max-body'],
    maxPixels: f['max-pixels'], timeoutMs: f['timeout-ms'], log: f.log, warmup: f.warmup, int8Attention: int8AttentionOf(f), int8SixBit: int8SixBitOf(f), quantize: f.quantize,
    preset: f.preset,
  }).catch((e: unknown) => {
    presetUsage(e, f.preset);
    throw e;
  });
  for (const m of server.models.values()) {
    process.stderr.write(`cait serve: model '${m.name}' from ${m.file}: [${m.itemShape}] -> [${m.outShape}], ${m.path} forward${m.quant ? `, ${m.quant} kernels` : ''}\n`);
  }
  process.stderr.write(`cait serve: listening on ${server.url} (${backend ? `${backend.name}, ` : ''}threads ${f.threads}${f.instances > 1 ? `, instances ${f.instances}` : ''}, max batch ${f['max-batch']}, max wait ${f['max-wait-ms']} ms, queue ${f['max-queue']})\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`cait serve: ${sig}: draining\n`);
      server.close()
        .then(() => (backend as { close?(): Promise<void> } | undefined)?.close?.())   // a --threads pool made here (webgpu: released at exit)
        .then(() => { process.stderr.write('cait serve: stopped\n'); resolve(); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
