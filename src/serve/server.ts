// `cait serve`: the Open Inference Protocol (KServe v2) over node:http, with
// dynamic batching (./batcher.ts), limits checked before anything big is
// allocated, Prometheus metrics and one log line per request.
//
//   GET  /v2/health/live | /v2/health/ready | /v2 | /v2/models/{m}[/versions/1][/ready]
//   POST /v2/models/{m}[/versions/1]/infer      JSON tensors (+ binary tensor extension)
//   POST /v2/models/{m}/classify[?topk=K]        PNG/JPEG body or multipart/form-data
//   GET  /metrics
//
// The server keeps no state between requests but the read-only models, so N
// processes behind any HTTP load balancer serve N times the traffic.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { isBackend, type Backend } from '../backend/backend.js';
import { loadWasmSync } from '../backend/wasm.js';
import { loadThreadedWasmSync, type ThreadedWasmBackend } from '../backend/threads.js';
import { ImageError } from '../io/image.js';
import { ImageDecoder } from './decode.js';
import { softmax } from '../cli/common.js';
import { Batcher } from './batcher.js';
import { checkOptionKeys } from '../util/suggest.js';
import { overflowText } from '../util/overflow.js';
import { createMetrics, type ServeMetrics } from './metrics.js';
import { ServedModel, parseModelSpec, type ModelSpec } from './model.js';
import { checkInt8Options, checkQuantize, type LoadQuantize } from '../quant/format.js';
import { PRESETS, isPreset } from '../nn/presets.js';
import { HttpError, bad, modelMetadata, parseInferRequest, parseJson, splitBinaryBody } from './protocol.js';
import { checkImageSize, multipartFile } from './upload.js';

export type LogFormat = 'json' | 'text' | 'none';

export interface ServeOptions {
  /** `PATH` or `NAME=PATH` strings, or specs. */
  models: Array<string | ModelSpec>;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Threads of the WASM pool (1: the plain WASM backend). Ignored when `backend` is given. */
  threads?: number;
  /**
   * Forwards at once, each on its own worker thread running whole forwards
   * of its own batches (Triton's model instances), this thread only serving
   * HTTP; 1 (default): one forward at a time, split over `threads`. Needs
   * threads 1 (each instance is one thread) and no `backend`.
   */
  instances?: number;
  /** A backend to run on instead of one made here (left open by close()). */
  backend?: Backend;
  maxBatch?: number;
  maxWaitMs?: number;
  /** Images that may wait at once, all models together. */
  maxQueue?: number;
  /** Largest request body in bytes. */
  maxBody?: number;
  /** Largest uploaded image, in pixels (width x height, from its header). */
  maxPixels?: number;
  /** Milliseconds a request may take: reading its body (408) and waiting to be decoded or in the queue (504); above maxWaitMs. */
  timeoutMs?: number;
  log?: LogFormat;
  /** Where log lines go (default stdout). */
  logTo?: (line: string) => void;
  /** Arena bytes of cached planned forwards per model. */
  planBudgetBytes?: number;
  /** Capture every batch size's plan before listening (else each on its first use). */
  warmup?: boolean;
  /** An int8 model's attention GEMMs: int8 (true, default) or float, as load()'s int8Attention. */
  int8Attention?: boolean;
  /** An int8 model's 6-bit rows: as load()'s int8SixBit (default true). */
  int8SixBit?: boolean;
  /** Quantize the float models as they load ('int8'), as load()'s quantize; int8 files are int8 already. */
  quantize?: LoadQuantize;
  /** The architecture (a preset name, src/nn/presets.ts) of models whose file has no config, as load()'s preset; refused for a model with its own. */
  preset?: string;
}

export interface ServeLimits { maxBatch: number; maxWaitMs: number; maxQueue: number; maxBody: number; maxPixels: number; timeoutMs: number }

export const SERVE_DEFAULTS = { host: '127.0.0.1', port: 8080, threads: 1, maxBatch: 8, maxWaitMs: 2, maxQueue: 256, maxBody: 16 * 2 ** 20, maxPixels: 4096 * 4096, timeoutMs: 30000 } as const;

/** Each limit's range, for createServer and `cait serve`'s flags (timers take at most 2^31 - 1 ms: 3e9 fired at once, every request a 504). */
export const SERVE_RANGES = {
  maxBatch: { min: 1, max: 1024 }, maxWaitMs: { min: 0, max: 60000 }, maxQueue: { min: 1, max: 1_000_000 },
  maxBody: { min: 1024, max: 2 ** 31 - 1 }, maxPixels: { min: 1, max: 2 ** 31 - 1 }, timeoutMs: { min: 1, max: 2 ** 31 - 1 },
} as const satisfies Record<keyof ServeLimits, { min: number; max: number }>;

export interface CaitServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly models: ReadonlyMap<string, ServedModel>;
  readonly metrics: ServeMetrics;
  readonly limits: ServeLimits;
  readonly http: http.Server;
  /** Uploaded images decoded on the server's thread and in its decode worker (src/serve/decode.ts). */
  readonly decodes: { readonly inline: number; readonly worker: number };
  /** Stop taking work (new requests 503 while the queue drains), answer what is queued and in flight, then stop listening and close connections (and the pool made here). */
  close(): Promise<void>;
}

function positiveInt(name: string, v: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`}, got ${v}`);
  return v;
}

/** Every option createServer takes (the compiler holds this to ServeOptions' keys, both ways). */
const SERVE_OPTIONS = {
  models: 1, host: 1, port: 1, threads: 1, instances: 1, backend: 1, maxBatch: 1, maxWaitMs: 1, maxQueue: 1, maxBody: 1, maxPixels: 1,
  timeoutMs: 1, log: 1, logTo: 1, planBudgetBytes: 1, warmup: 1, int8Attention: 1, int8SixBit: 1, quantize: 1, preset: 1,
} satisfies Record<keyof ServeOptions, 1>;

/** Checks the options; loads and warms every model (its batch-1 plan); listens. */
export async function createServer(o: ServeOptions): Promise<CaitServer> {
  if (o === undefined) throw new TypeError('createServer: options are required: { models: [PATH or NAME=PATH, ...], ... }');
  checkOptionKeys(o, Object.keys(SERVE_OPTIONS), 'createServer: ');
  if (!Array.isArray(o.models)) throw new TypeError(`createServer: models must be an array of PATH or NAME=PATH strings, got ${JSON.stringify(o.models)}`);
  if (o.host !== undefined && (typeof o.host !== 'string' || !o.host)) throw new TypeError(`createServer: host must be a host name or address, got ${JSON.stringify(o.host)}`);
  if (o.port !== undefined && !(Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535)) throw new RangeError(`createServer: port must be an integer in 0..65535 (0: a free one), got ${JSON.stringify(o.port)}`);
  if (o.threads !== undefined) positiveInt('threads', o.threads);
  const badSpec = o.models.findIndex((m) => !(typeof m === 'string' || (typeof m?.path === 'string' && typeof m?.name === 'string')));
  if (badSpec >= 0) throw new TypeError(`createServer: models[${badSpec}] must be a PATH or NAME=PATH string or a {name, path} spec, got ${JSON.stringify(o.models[badSpec])}`);
  if (o.logTo !== undefined && typeof o.logTo !== 'function') throw new TypeError(`createServer: logTo must be a function (line) => void, got ${typeof o.logTo}`);
  if (o.warmup !== undefined && typeof o.warmup !== 'boolean') throw new TypeError(`createServer: warmup must be true or false, got ${JSON.stringify(o.warmup)}`);
  if (o.planBudgetBytes !== undefined && !(Number.isFinite(o.planBudgetBytes) && o.planBudgetBytes >= 0)) throw new RangeError(`createServer: planBudgetBytes must be a number of bytes >= 0, got ${JSON.stringify(o.planBudgetBytes)}`);
  if (o.backend !== undefined && !isBackend(o.backend)) throw new TypeError(`createServer: backend must be a Backend instance, got ${Object.prototype.toString.call(o.backend)}`);
  const d = SERVE_DEFAULTS;
  const ranged = (k: keyof ServeLimits): number => positiveInt(k, o[k] ?? d[k], SERVE_RANGES[k].min, SERVE_RANGES[k].max);
  const limits: ServeLimits = {
    maxBatch: ranged('maxBatch'), maxWaitMs: ranged('maxWaitMs'), maxQueue: ranged('maxQueue'),
    maxBody: ranged('maxBody'), maxPixels: ranged('maxPixels'), timeoutMs: ranged('timeoutMs'),
  };
  // a lone request waits maxWaitMs for company: at or past the timeout every one of them was a 504
  if (limits.maxWaitMs >= limits.timeoutMs) throw new RangeError(`maxWaitMs ${limits.maxWaitMs} must be below timeoutMs ${limits.timeoutMs}: a lone request waits maxWaitMs, and would time out (504) first`);
  if (o.preset !== undefined && !isPreset(o.preset))
    throw new RangeError(`createServer: preset must be one of ${Object.keys(PRESETS).join(', ')}, got ${JSON.stringify(o.preset)}`);
  checkInt8Options(o, '');
  checkQuantize(o.quantize, '');
  const logFormat = o.log ?? 'none';
  if (!['json', 'text', 'none'].includes(logFormat)) throw new RangeError(`log must be json, text or none, got '${logFormat}'`);
  const specs = o.models.map((m) => (typeof m === 'string' ? parseModelSpec(m) : m));
  if (!specs.length) throw new RangeError('no model to serve');
  const seen = new Set<string>();
  for (const s of specs) {
    if (!/^[A-Za-z0-9_.-]+$/.test(s.name)) throw new RangeError(`model name '${s.name}' (${s.path}): use letters, digits, '_', '.', '-' (NAME=PATH names it)`);
    if (!s.path) throw new RangeError(`model '${s.name}': no path (NAME=PATH, got '${s.name}=')`);
    if (seen.has(s.name)) throw new RangeError(`two models named '${s.name}': name them with NAME=PATH`);
    seen.add(s.name);
  }
  const threads = o.threads ?? d.threads, instances = positiveInt('instances', o.instances ?? 1);
  if (instances > 1 && threads > 1) throw new RangeError(`instances ${instances} with threads ${threads}: each instance is one thread; give one of them`);
  if (instances > 1 && o.backend) throw new RangeError('instances: the server makes its own pool (no backend option)');
  let own: Backend | null = null;
  // instances: one worker each, and the pool never splits a call (a split would post to a worker inside its program)
  if (!o.backend) own = instances > 1 ? loadThreadedWasmSync({ threads: instances + 1, variant: 'auto', minWork: Infinity })
    : threads > 1 ? loadThreadedWasmSync({ threads, variant: 'auto' }) : loadWasmSync('auto');
  const backend = o.backend ?? own!;
  const models = new Map<string, ServedModel>();
  try {
    for (const s of specs) {
      const m = ServedModel.open(s, backend, o.planBudgetBytes, { int8Attention: o.int8Attention, int8SixBit: o.int8SixBit, quantize: o.quantize, preset: o.preset });
      models.set(s.name, m);
      if (o.warmup && m.path === 'planned') await m.warm(limits.maxBatch, instances);
    }
  } catch (e) {
    for (const m of models.values()) m.dispose();
    await closeBackend(own);
    throw e;
  }

  const metrics = createMetrics([1, 2, 4, 8, 16, 32, 64, 128, 256].filter((b) => b < limits.maxBatch).concat(limits.maxBatch));
  const decoder = new ImageDecoder(limits.maxPixels, limits);
  const batcher = new Batcher({
    ...limits,
    instances,
    onBatch: (m, n) => { metrics.batchSize.observe({ model: m.name }, n); metrics.planBytes.set({ model: m.name }, m.planStats().bytes); },
    onQueue: (n) => metrics.queueDepth.set(n),
  });
  const log = logFormat === 'none' ? null : (o.logTo ?? ((l: string) => { process.stdout.write(l + '\n'); }));
  let draining = false;
  /** Requests not yet answered (or given up), for close(): it waits for them, then answers those still arriving 408. */
  const active = new Set<http.ServerResponse>();
  // many bodies under --max-body at once still add up (50 of 16 MiB: 861 MB, and 408s for bodies
  // fully sent while the main thread parsed the others): beyond 4 x --max-body in all, 503
  const receiving: Receiving = { bytes: 0, max: 4 * limits.maxBody };
  const timedOut = new WeakSet<object>();
  const idleWaiters: Array<() => void> = [];

  // node:http checks these timeouts every connectionsCheckingInterval (30 s by default, so a 3 s
  // --timeout-ms answered 408 after ~28 s): a quarter of the timeout keeps the 408 within 1.25x of it
  const server = http.createServer({
    requestTimeout: limits.timeoutMs, headersTimeout: Math.min(limits.timeoutMs, 60000), keepAliveTimeout: 5000,
    connectionsCheckingInterval: Math.min(30000, Math.max(250, limits.timeoutMs / 4)),
  }, onRequest);
  // Expect: 100-continue: the same handler, which sends 100 Continue only once it reads the body
  // (readBody), so that a refusal (a Content-Length over --max-body: 413, a 404, a 503) comes
  // straight away; node:http would otherwise send 100 Continue first, for any request
  server.on('checkContinue', onRequest);

  function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const t0 = performance.now();
    const ctx: LogCtx = { model: '', endpoint: 'other', images: 0 };
    active.add(res);
    const gone = new AbortController();
    ctx.signal = gone.signal;
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
      // a response never finished: the client went away, or its body was cut short (answered 400 by clientError below)
      const status = res.writableFinished ? res.statusCode : req.complete ? 499 : timedOut.has(req.socket) ? 408 : 400, code = String(status);
      metrics.requests.inc({ model: ctx.model, endpoint: ctx.endpoint, code });
      const sec = (performance.now() - t0) / 1000;
      metrics.latency.observe({ model: ctx.model, endpoint: ctx.endpoint }, sec);
      // the books first: a logTo that throws must not keep body bytes held or close() waiting
      receiving.bytes -= ctx.held ?? 0;
      active.delete(res);
      if (!active.size) for (const f of idleWaiters.splice(0)) f();
      if (log) {
        const rec = { time: new Date().toISOString(), method: req.method, path: req.url, model: ctx.model || undefined, endpoint: ctx.endpoint, status, ms: +(sec * 1000).toFixed(3), images: ctx.images || undefined, error: ctx.error, aborted: res.writableFinished ? undefined : true };
        try { log(logFormat === 'json' ? JSON.stringify(rec) : `${rec.time} ${rec.method} ${rec.path} ${status} ${rec.ms}ms${ctx.error ? ' ' + ctx.error : ''}`); } catch (e) {
          process.stderr.write(`cait serve: logTo threw: ${(e as Error).message}\n`);
        }
      }
    });
    handle(req, res, ctx).catch((e: unknown) => {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message ?? String(e));
      ctx.error = err.message;
      if (res.headersSent) { res.destroy(); return; }
      const headers: Record<string, string> = { ...err.headers };
      // the body may be unread (too large, or refused before reading): do not reuse the connection
      if (!req.complete) headers.Connection = 'close';
      sendJson(res, err.status, { error: err.message }, headers);
    });
  }
  // malformed HTTP (a bad request line, headers, or a body cut short): a JSON 400 where the socket still takes one
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (err.code === 'ECONNRESET')) { socket.destroy(); return; }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const what = status === 408 ? 'request not received in time' : err.code === 'HPE_INVALID_EOF_STATE' ? 'truncated request: the connection ended before the declared body' : 'malformed HTTP request';
    answerRaw(socket, status, `${what} (${err.code ?? err.message})`);
  });

  /**
   * A JSON error written on the socket itself, then the connection closed:
   * where node:http gave up on the request (or has none), as it does itself.
   */
  function answerRaw(socket: Duplex, status: number, error: string): void {
    if (status === 408) timedOut.add(socket);   // its request's log line and metrics say 408, not 400
    const body = JSON.stringify({ error });
    // then destroyed, not only ended: a client that keeps its half of the connection open held the
    // socket, its request and the body bytes counted against `receiving` (503 for everyone) forever
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: LogCtx): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    let parts: string[];
    try { parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent); } catch { throw bad(`malformed percent-encoding in the path ${url.pathname}`); }
    const method = req.method ?? 'GET';
    // HEAD wherever GET is (RFC 9110 9.3.2; node:http drops the body of a HEAD response)
    const only = (m: string): void => {
      if (method !== m && !(m === 'GET' && method === 'HEAD')) throw new HttpError(405, `${method} ${url.pathname}: use ${m}`, { Allow: m === 'GET' ? 'GET, HEAD' : m });
    };
    if (draining && !(parts[0] === 'v2' && parts[1] === 'health') && parts[0] !== 'metrics')
      throw new HttpError(503, 'server is shutting down', { Connection: 'close' });
    if (url.pathname === '/metrics') {
      only('GET'); ctx.endpoint = 'metrics';
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (parts[0] !== 'v2') throw new HttpError(404, `no route ${url.pathname}; the API is under /v2 (Open Inference Protocol) and /metrics`);
    if (parts.length === 1) { only('GET'); ctx.endpoint = 'server'; return sendJson(res, 200, { name: 'caitjs', version: VERSION, extensions: ['binary_tensor_data', 'classify'] }); }
    if (parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready')) {
      only('GET'); ctx.endpoint = 'health';
      if (parts[2] === 'live') return sendJson(res, 200, { live: true });
      return sendJson(res, draining ? 503 : 200, { ready: !draining });
    }
    if (parts[1] !== 'models' || parts.length < 3) throw new HttpError(404, `no route ${url.pathname}`);
    const name = parts[2];
    const model = models.get(name);
    if (!model) throw new HttpError(404, `unknown model '${name}'; this server has ${[...models.keys()].map((k) => `'${k}'`).join(', ')}`);
    ctx.model = name;
    let rest = parts.slice(3);
    if (rest[0] === 'versions') {
      if (rest[1] !== '1') throw new HttpError(404, `model '${name}' has version '1' only, not '${rest[1] ?? ''}'`);
      rest = rest.slice(2);
    }
    const action = rest.join('/');
    if (action === '') { only('GET'); ctx.endpoint = 'metadata'; return sendJson(res, 200, modelMetadata(name, model.itemShape, model.outShape)); }
    if (action === 'ready') { only('GET'); ctx.endpoint = 'ready'; return sendJson(res, draining ? 503 : 200, { name, ready: !draining }); }
    if (action === 'infer') { only('POST'); ctx.endpoint = 'infer'; return infer(req, res, model, ctx); }
    if (action === 'classify') { only('POST'); ctx.endpoint = 'classify'; return classify(req, res, model, url, ctx); }
    throw new HttpError(404, `no route ${url.pathname}; a model has '', /ready, /infer and /classify`);
  }

  async function infer(req: http.IncomingMessage, res: http.ServerResponse, model: ServedModel, ctx: LogCtx): Promise<void> {
    // counted while its body arrives, so that a batch waits for it (batcher.ts)
    batcher.receiving(model, 1);
    let r: ReturnType<typeof parseInferRequest>;
    try {
      const body = await readBody(req, res, limits.maxBody, receiving, ctx);
      const hl = req.headers['inference-header-content-length'];
      let json: string, binary: Uint8Array | null = null;
      if (typeof hl === 'string') ({ json, rest: binary } = splitBinaryBody(body, hl));
      else json = body.toString('utf8');
      r = parseInferRequest(parseJson(json), model.itemShape, limits.maxQueue, binary);
    } finally {
      batcher.receiving(model, -1);
    }
    ctx.images = r.n;
    const y = await batcher.submit(model, r.x, r.n, ctx.signal);
    // finite inputs far outside a preprocessed image's range (3e38) overflow inside the model: a 400, not 200 with nulls
    if (!y.every(Number.isFinite)) throw bad(`input 'pixel_values' gives non-finite logits: ${overflowText(r.x)}`);
    const out = { name: 'logits', datatype: 'FP32', shape: [r.n, ...model.outShape] };
    const head = { model_name: model.name, model_version: '1', ...(r.id !== undefined ? { id: r.id } : {}) };
    if (r.binaryOutput) {
      const bytes = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
      const h = Buffer.from(JSON.stringify({ ...head, outputs: [{ ...out, parameters: { binary_data_size: bytes.length } }] }));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(h.length), 'Content-Length': String(h.length + bytes.length) });
      res.end(Buffer.concat([h, bytes]));
      return;
    }
    sendJson(res, 200, { ...head, outputs: [{ ...out, data: Array.from(y) }] });
  }

  async function classify(req: http.IncomingMessage, res: http.ServerResponse, model: ServedModel, url: URL, ctx: LogCtx): Promise<void> {
    if (!model.isClassifier) throw bad(`model '${model.name}' gives [${model.outShape}] per image, not class scores: use /infer`);
    const classes = model.outShape[0];
    const k = url.searchParams.get('topk') ?? '5';
    const topk = Number(k);
    if (!/^\d+$/.test(k) || topk < 1) throw bad(`topk must be a positive integer, got '${k}'`);
    batcher.receiving(model, 1);
    let x: Float32Array;
    try {
      const body = await readBody(req, res, limits.maxBody, receiving, ctx);
      const ct = req.headers['content-type'] ?? '';
      const bytes = /^multipart\/form-data/i.test(ct) ? multipartFile(body, ct) : body;
      const h = checkImageSize(bytes, limits.maxPixels);
      x = await decoder.input(bytes, h.width * h.height, model.cfg, ctx.signal);
    } catch (e) {
      if (e instanceof ImageError) throw bad(e.message);
      throw e;
    } finally {
      batcher.receiving(model, -1);
    }
    ctx.images = 1;
    const y = await batcher.submit(model, x, 1, ctx.signal);
    // an image preprocessed within a few units of 0 and non-finite logits: the served model's weights overflow
    // (this answered 200 with every probability null); the server's fault, not the request's
    if (!y.every(Number.isFinite)) throw new HttpError(500, `model '${model.name}' gives non-finite logits for this image: ${overflowText(x)}`);
    const p = softmax(y);
    const top = p.map((prob, id) => ({ id, label: model.cfg.classes?.[id] ?? String(id), prob }))
      .sort((a, b) => b.prob - a.prob).slice(0, Math.min(topk, classes));
    sendJson(res, 200, { model_name: model.name, model_version: '1', top });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? d.port, o.host ?? d.host, () => { server.off('error', reject); resolve(); });
  }).catch(async (e: NodeJS.ErrnoException) => {
    for (const m of models.values()) m.dispose();
    await closeBackend(own);
    // name what could not be listened on (getaddrinfo ENOTFOUND alone named no option)
    const why = e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? 'no such host' : e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EADDRNOTAVAIL' ? 'not an address of this machine' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new Error(`cannot listen on host ${o.host ?? d.host} port ${o.port ?? d.port}: ${why}`, { cause: e });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    models,
    metrics,
    limits,
    http: server,
    decodes: decoder.counts,
    close() {
      if (closing) return closing;
      draining = true;
      closing = (async () => {
        server.closeIdleConnections();
        // still listening while the queue drains: whoever connects now, or sat in the accept
        // backlog at the signal, gets a 503 'shutting down' (and /v2/health/ready a 503), not a
        // reset connection; the listener closes once the queued forwards are done
        await batcher.drained();
        const stopped = new Promise<void>((res) => server.close(() => res()));
        // server.close() also stops node:http's request timeouts: a client still sending its body
        // (or silent after its headers) gets --timeout-ms from here, then a 408 (below)
        if (active.size) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([new Promise<void>((r) => idleWaiters.push(r)), new Promise<void>((r) => { timer = setTimeout(r, limits.timeoutMs); })]);
          clearTimeout(timer);
          // one still arriving gets the 408 node:http's own timeout gives outside shutdown (it was
          // cut off with an empty reply, logged 400); any other (its response under way) is closed
          for (const res of active) {
            const socket = res.req.socket;
            if (!res.req.complete && !res.headersSent && socket.writable) answerRaw(socket, 408, `request not received in time: the server is shutting down (${limits.timeoutMs} ms, --timeout-ms)`);
            else socket.destroy();
          }
        }
        server.closeIdleConnections();
        // keep-alive connections mid-request were answered above; any left are idle or dead
        const force = setTimeout(() => server.closeAllConnections(), 1000);
        await stopped;
        clearTimeout(force);
        for (const m of models.values()) m.dispose();
        await decoder.close();
        await closeBackend(own);
      })();
      return closing;
    },
  };
}

interface LogCtx { model: string; endpoint: string; images: number; error?: string; signal?: AbortSignal; /** body bytes this request holds in `receiving` */ held?: number }

const VERSION = '0.1.0';

async function closeBackend(be: Backend | null): Promise<void> {
  const t = be as ThreadedWasmBackend | null;
  if (t && typeof t.close === 'function') await t.close();
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** Body bytes all requests hold at once (from the first byte read until the response ends), and the cap. */
interface Receiving { bytes: number; max: number }

/**
 * The whole body, refused with 413 as soon as Content-Length or the bytes
 * received pass `max` (nothing beyond `max` is kept); 400 when the client
 * stops sending before the declared length; 415 for a content coding other
 * than identity. A client waiting for 100 Continue gets it here, once the
 * body is wanted.
 */
function readBody(req: http.IncomingMessage, res: http.ServerResponse, max: number, all: Receiving, ctx: LogCtx): Promise<Buffer> {
  // a compressed body read as it is failed as 'not valid JSON' or 'not a PNG or JPEG image'
  const coding = req.headers['content-encoding']?.trim();
  if (coding && coding.toLowerCase() !== 'identity')
    return Promise.reject(new HttpError(415, `Content-Encoding '${coding.slice(0, 40)}' is not supported: send the body uncompressed (identity)`, { 'Accept-Encoding': 'identity' }));
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max)
    return Promise.reject(new HttpError(413, `request body of ${declared} bytes is over this server's limit of ${max} (--max-body)`));
  const busy = () => new HttpError(503, `the server holds ${all.bytes} bytes of request bodies, its limit (4 x --max-body); try again`, { 'Retry-After': '1' });
  if (declared !== undefined && all.bytes + Number(declared) > all.max) return Promise.reject(busy());
  if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0, done = false;
    const fail = (e: HttpError) => { if (done) return; done = true; req.removeAllListeners('data'); req.resume(); reject(e); };
    req.on('data', (c: Buffer) => {
      if (done) return;
      n += c.length;
      if (n > max) return fail(new HttpError(413, `request body passed this server's limit of ${max} bytes (--max-body)`));
      if (all.bytes + c.length > all.max) return fail(busy());
      all.bytes += c.length;
      ctx.held = (ctx.held ?? 0) + c.length;
      chunks.push(c);
    });
    req.on('end', () => { if (!done) { done = true; resolve(Buffer.concat(chunks, n)); } });
    req.on('aborted', () => fail(bad(`truncated body: the client stopped after ${n} of ${declared ?? '?'} bytes`)));
    req.on('error', (e) => fail(bad(`reading the body failed: ${e.message}`)));
    // settles even when the socket goes without 'aborted' or 'error' (the batcher counts bodies in flight)
    req.on('close', () => fail(bad(`truncated body: the connection closed after ${n} of ${declared ?? '?'} bytes`)));
  });
}
