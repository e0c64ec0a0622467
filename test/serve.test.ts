// cait serve (src/serve/): the Open Inference Protocol endpoints answer in the
// spec's shapes; a batched forward gives each request the same bits as running
// it alone; classify preprocesses as `cait predict`; every malformed request
// class is a 4xx JSON error that leaves the server serving; a full queue is
// 503 with Retry-After; SIGTERM drains in-flight requests and exits 0.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/safetensors-file.js';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { createServer, HttpError, type CaitServer, type ServeOptions } from '../src/serve/index.js';
import { decodeImage, encodePng } from '../src/io/image.js';
import { imageToInput } from '../src/data/preprocess.js';
import { softmax } from '../src/cli/common.js';
import { Batcher } from '../src/serve/batcher.js';
import { INLINE_PIXELS } from '../src/serve/decode.js';
import type { ServedModel } from '../src/serve/model.js';
import { load } from '../src/api/node.js';
import { cait } from './cait.js';

const S = suite('serve');
const root = fileURLToPath(new URL('..', import.meta.url));
const MODEL = `${root}models/fmnist-cait.safetensors`;
const NAME = 'fmnist-cait';
const ITEM = 32 * 32;

let seed = 7;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const randomImage = (n = 1) => Array.from({ length: n * ITEM }, () => rnd() * 4 - 1);

async function withServer(o: Partial<ServeOptions>, fn: (s: CaitServer) => Promise<void>): Promise<void> {
  const s = await createServer({ models: [MODEL], port: 0, ...o });
  try { await fn(s); } finally { await s.close(); }
}

const inferBody = (data: unknown, shape = [1, 1, 32, 32], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ inputs: [{ name: 'pixel_values', shape, datatype: 'FP32', data }], ...extra });

async function post(s: CaitServer, path: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  // (TypeScript's fetch types take only ArrayBuffer-backed views; every body here is one)
  const r = await fetch(s.url + path, { method: 'POST', body: body as string | Uint8Array<ArrayBuffer>, headers });
  const text = await r.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, json, headers: r.headers };
}

async function get(s: CaitServer, path: string): Promise<{ status: number; json: any }> {
  const r = await fetch(s.url + path);
  return { status: r.status, json: await r.json() };
}

/** A raw HTTP exchange: write `text`, half-close, read until the server closes. */
function raw(s: CaitServer, text: string | Buffer): Promise<string> {
  return new Promise((res) => {
    const c = net.connect(s.port, '127.0.0.1', () => { c.write(text); c.end(); });
    let out = '';
    c.on('data', (d) => { out += d; });
    c.on('close', () => res(out));
    c.on('error', (e) => res(`ERROR ${e.message}`));
  });
}

/** A 28x28 grey PNG: a bright rectangle on black (a garment-ish blob). */
function testPng(w = 28, h = 28): Uint8Array {
  const px = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = x > 6 && x < 22 && y > 3 && y < 26 ? 200 + ((x * y) % 50) : 0;
    px.set([v, v, v, 255], 4 * (y * w + x));
  }
  return encodePng(w, h, px);
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

S('protocol: health, server and model metadata, infer (flat, nested, binary), classify as cait predict', async () => {
  await withServer({}, async (s) => {
    assert.equal(await get(s, '/v2/health/live'), { status: 200, json: { live: true } });
    assert.equal(await get(s, '/v2/health/ready'), { status: 200, json: { ready: true } });
    const meta = await get(s, '/v2');
    assert.is(meta.status, 200);
    assert.is(meta.json.name, 'caitjs');
    assert.ok(Array.isArray(meta.json.extensions));
    const m = await get(s, `/v2/models/${NAME}`);
    assert.is(m.status, 200);
    assert.is(m.json.name, NAME);
    assert.equal(m.json.inputs, [{ name: 'pixel_values', datatype: 'FP32', shape: [-1, 1, 32, 32] }]);
    assert.equal(m.json.outputs, [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }]);
    assert.equal(await get(s, `/v2/models/${NAME}/ready`), { status: 200, json: { name: NAME, ready: true } });
    assert.equal((await get(s, `/v2/models/${NAME}/versions/1`)).json.name, NAME);

    // infer: two images flat; the same two nested; the response echoes id
    const data = randomImage(2);
    const flat = await post(s, `/v2/models/${NAME}/infer`, inferBody(data, [2, 1, 32, 32], { id: 'req-7' }));
    assert.is(flat.status, 200, JSON.stringify(flat.json));
    assert.is(flat.json.model_name, NAME);
    assert.is(flat.json.id, 'req-7');
    assert.is(flat.json.outputs.length, 1);
    const out = flat.json.outputs[0];
    assert.equal([out.name, out.datatype, out.shape], ['logits', 'FP32', [2, 10]]);
    assert.is(out.data.length, 20);
    const nested = [0, 1].map((b) => [Array.from({ length: 32 }, (_, r) => data.slice(b * ITEM + r * 32, b * ITEM + r * 32 + 32))]);
    const nest = await post(s, `/v2/models/${NAME}/infer`, inferBody(nested, [2, 1, 32, 32]));
    assert.is(nest.status, 200, JSON.stringify(nest.json));
    assert.equal(nest.json.outputs[0].data, out.data);

    // the binary tensor data extension: same numbers, as raw little-endian FP32 both ways
    const x = Float32Array.from(data);
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'pixel_values', shape: [2, 1, 32, 32], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
    const r = await fetch(`${s.url}/v2/models/${NAME}/infer`, { method: 'POST', body: Buffer.concat([head, Buffer.from(x.buffer)]), headers: { 'Inference-Header-Content-Length': String(head.length), 'Content-Type': 'application/octet-stream' } });
    assert.is(r.status, 200);
    const bytes = Buffer.from(await r.arrayBuffer()), hl = Number(r.headers.get('inference-header-content-length'));
    const bh = JSON.parse(bytes.subarray(0, hl).toString());
    assert.is(bh.outputs[0].parameters.binary_data_size, 80);
    const y = new Float32Array(bytes.buffer.slice(bytes.byteOffset + hl, bytes.byteOffset + hl + 80));
    assert.equal(Array.from(y), out.data);

    // classify: top-k of softmax(logits of the predict preprocessing), PNG body and multipart
    const png = testPng();
    const xin = imageToInput(decodeImage(png), s.models.get(NAME)!.cfg);
    const ref = (await post(s, `/v2/models/${NAME}/infer`, inferBody(Array.from(xin)))).json.outputs[0].data as number[];
    const p = softmax(ref);
    const want = p.map((prob, id) => ({ id, prob })).sort((a, b) => b.prob - a.prob).slice(0, 3);
    const c = await post(s, `/v2/models/${NAME}/classify?topk=3`, png, { 'Content-Type': 'image/png' });
    assert.is(c.status, 200, JSON.stringify(c.json));
    assert.is(c.json.top.length, 3);
    assert.equal(c.json.top.map((t: { id: number }) => t.id), want.map((t) => t.id));
    assert.ok(maxDiff(c.json.top.map((t: { prob: number }) => t.prob), want.map((t) => t.prob)) < 1e-12);
    assert.is(c.json.top[0].label, s.models.get(NAME)!.cfg.classes![want[0].id]);
    const boundary = 'XyZ123';
    const form = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
      Buffer.from(png), Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const cm = await post(s, `/v2/models/${NAME}/classify?topk=3`, form, { 'Content-Type': `multipart/form-data; boundary=${boundary}` });
    assert.is(cm.status, 200, JSON.stringify(cm.json));
    assert.equal(cm.json.top, c.json.top);

    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    for (const name of ['cait_serve_requests_total', 'cait_serve_queue_depth', 'cait_serve_batch_size_bucket', 'cait_serve_request_duration_seconds_bucket', 'cait_serve_process_resident_memory_bytes'])
      assert.ok(metrics.includes(name), `/metrics lacks ${name}`);
    assert.match(metrics, /cait_serve_requests_total\{model="fmnist-cait",endpoint="infer",code="200"\} 4/);
  });
});

/** One infer request of d (images of ITEM values); its logits. */
async function inferOne(s: CaitServer, d: number[]): Promise<number[]> {
  const r = await post(s, `/v2/models/${NAME}/infer`, inferBody(d, [d.length / ITEM, 1, 32, 32]));
  assert.is(r.status, 200, JSON.stringify(r.json));
  return r.json.outputs[0].data as number[];
}

/** Each input's logits from a server that runs one request per forward on one thread. */
async function oneByOne(inputs: number[][]): Promise<number[][]> {
  const out: number[][] = [];
  await withServer({ maxBatch: 1, maxWaitMs: 0 }, async (s) => { for (const d of inputs) out.push(await inferOne(s, d)); });
  return out;
}

S('a large upload is decoded in a worker (same bits as on the server thread), small ones inline; its decode errors are 400s as inline ones', async () => {
  await withServer({}, async (s) => {
    const small = testPng(), big = testPng(300, 300);   // 90,000 pixels > INLINE_PIXELS
    assert.ok(300 * 300 > INLINE_PIXELS && 28 * 28 <= INLINE_PIXELS);
    for (const png of [small, big]) {
      const xin = imageToInput(decodeImage(png), s.models.get(NAME)!.cfg);
      const ref = (await post(s, `/v2/models/${NAME}/infer`, inferBody(Array.from(xin)))).json.outputs[0].data as number[];
      const want = softmax(ref).map((prob, id) => ({ id, prob })).sort((a, b) => b.prob - a.prob).slice(0, 3);
      const c = await post(s, `/v2/models/${NAME}/classify?topk=3`, png, { 'Content-Type': 'image/png' });
      assert.is(c.status, 200, JSON.stringify(c.json));
      assert.equal(c.json.top.map((t: { id: number; prob: number }) => [t.id, t.prob]), want.map((t) => [t.id, t.prob]), `${png === big ? 'worker' : 'inline'}: the bits of decodeImage + imageToInput`);
    }
    assert.equal({ ...s.decodes }, { inline: 1, worker: 1 });
    // a header that passes and pixel data that does not: the decoder's own message, as a 400
    const broken = Uint8Array.from(big.subarray(0, 200));
    let want = '';
    try { decodeImage(broken, 'upload'); } catch (e) { want = (e as Error).message; }
    assert.ok(want.startsWith('upload: '), want);
    const b = await post(s, `/v2/models/${NAME}/classify`, broken, { 'Content-Type': 'image/png' });
    assert.is(b.status, 400, JSON.stringify(b.json));
    assert.is(b.json.error, want);
    assert.equal({ ...s.decodes }, { inline: 1, worker: 2 });
    // and the server goes on, the worker too
    assert.is((await post(s, `/v2/models/${NAME}/classify?topk=1`, big, { 'Content-Type': 'image/png' })).status, 200);
  });
});

S('batching: concurrent requests run as one forward and get the same bits as one by one (1 and 2 threads)', async () => {
  const inputs = Array.from({ length: 7 }, (_, i) => randomImage(i === 3 ? 2 : 1));
  const alone = await oneByOne(inputs);
  for (const threads of [1, 2]) {
    await withServer({ maxBatch: 8, maxWaitMs: 300, threads, warmup: threads === 2 }, async (s) => {
      if (threads === 2) assert.equal(s.models.get(NAME)!.planStats().sizes, [1, 2, 3, 4, 5, 6, 7, 8], '--warmup captures every batch size');
      const batched = await Promise.all(inputs.map((d) => inferOne(s, d)));
      for (let i = 0; i < inputs.length; i++) {
        const d = maxDiff(batched[i], alone[i]);
        assert.ok(d === 0, `request ${i}: batched differs from alone by ${d} (${threads} threads)`);
      }
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      const count = Number(/cait_serve_batch_size_count\{model="fmnist-cait"\} (\d+)/.exec(metrics)?.[1]);
      const sum = Number(/cait_serve_batch_size_sum\{model="fmnist-cait"\} (\d+)/.exec(metrics)?.[1]);
      assert.is(sum, 8, 'images forwarded');
      assert.ok(count <= 2, `7 concurrent requests (8 images) ran in ${count} forwards; expected them batched`);
    });
  }
});

S('--instances 2: two workers run their own batches; every request gets the bits of one thread alone; bad combinations refused', async () => {
  const inputs = Array.from({ length: 11 }, (_, i) => randomImage(i === 4 ? 3 : 1));
  const alone = await oneByOne(inputs);
  await withServer({ maxBatch: 4, maxWaitMs: 50, instances: 2, warmup: true }, async (s) => {
    assert.equal(s.models.get(NAME)!.planStats().sizes, [1, 2, 3, 4], '--warmup captures every batch size (on each worker)');
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(inputs.map((d) => inferOne(s, d)));
      for (let i = 0; i < inputs.length; i++) {
        const d = maxDiff(got[i], alone[i]);
        assert.ok(d === 0, `round ${round} request ${i}: differs from alone by ${d}`);
      }
    }
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const sum = Number(/cait_serve_batch_size_sum\{model="fmnist-cait"\} (\d+)/.exec(metrics)?.[1]);
    assert.is(sum, 3 * 13, 'images forwarded');
  });
  let err = '';
  try { await (await createServer({ models: [MODEL], port: 0, instances: 2, threads: 2 })).close(); } catch (e) { err = (e as Error).message; }
  assert.match(err, /each instance is one thread/);
});

S('batcher: a batch waits for a body still arriving and for the clients the last forward answered', async () => {
  const forwards: number[] = [];
  const model = { name: 'm', itemSize: 1, outSize: 1, forward: (x: Float32Array, n: number) => { forwards.push(n); return x.map((v) => 2 * v); } } as unknown as ServedModel;
  const b = new Batcher({ maxBatch: 4, maxWaitMs: 1, maxQueue: 16, timeoutMs: 10000, receiveWaitMs: 5000 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  b.receiving(model, 1); b.receiving(model, -1);
  b.receiving(model, 1);                        // B's body is arriving
  const a = b.submit(model, Float32Array.of(1), 1);
  await sleep(60);
  assert.equal(forwards, [], 'A waits past --max-wait-ms while B is receiving');
  b.receiving(model, -1);
  const y = await Promise.all([a, b.submit(model, Float32Array.of(2), 1)]);
  assert.equal(forwards, [2], 'A and B in one forward');
  assert.equal(y.map((v) => v[0]), [2, 4]);
  // closed loop: the forward answered 2 requests; one is back, the other not yet, so the batch (1 + 1 <= 4) waits for it
  // (at most a tenth of that forward: a forward of 800 ms gives an 80 ms window)
  const slow = { ...model, forward: (x: Float32Array, n: number) => { const t = performance.now(); while (performance.now() - t < 800) { /* a forward of 800 ms */ } forwards.push(n); return x; } } as unknown as ServedModel;
  forwards.length = 0;
  b.receiving(slow, 1); b.receiving(slow, -1); b.receiving(slow, 1); b.receiving(slow, -1);
  await Promise.all([b.submit(slow, Float32Array.of(1), 1), b.submit(slow, Float32Array.of(1), 1)]);
  assert.equal(forwards, [2]);
  b.receiving(slow, 1); b.receiving(slow, -1);
  const c = b.submit(slow, Float32Array.of(1), 1);
  await sleep(20);
  assert.equal(forwards, [2], 'waits for the second client of the last forward');
  b.receiving(slow, 1); b.receiving(slow, -1);
  await Promise.all([c, b.submit(slow, Float32Array.of(1), 1)]);
  assert.equal(forwards, [2, 2]);
  // nobody comes back: it runs after that tenth (80 ms)
  b.receiving(slow, 1); b.receiving(slow, -1);
  const t0 = performance.now();
  await b.submit(slow, Float32Array.of(1), 1);
  assert.equal(forwards, [2, 2, 1]);
  assert.ok(performance.now() - t0 < 80 + 800 + 2000, 'bounded wait');
});

S('every malformed request class is a 4xx JSON error, and the server keeps serving', async () => {
  await withServer({ maxBody: 64 * 1024, maxPixels: 100 * 100 }, async (s) => {
    const inf = `/v2/models/${NAME}/infer`, cls = `/v2/models/${NAME}/classify`;
    const png = testPng();
    const bigHeader = Buffer.from(png); bigHeader.writeUInt32BE(50000, 16); bigHeader.writeUInt32BE(50000, 20);
    const cases: Array<[string, () => Promise<{ status: number; json: any }>, number, RegExp]> = [
      ['bad JSON', () => post(s, inf, '{"inputs": [1, 2'), 400, /not valid JSON/],
      ['not an object', () => post(s, inf, '[1, 2]'), 400, /JSON object/],
      ['no inputs', () => post(s, inf, '{}'), 400, /inputs/],
      ['wrong input name', () => post(s, inf, JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1, 32, 32], datatype: 'FP32', data: randomImage() }] })), 400, /pixel_values/],
      ['wrong datatype', () => post(s, inf, JSON.stringify({ inputs: [{ name: 'pixel_values', shape: [1, 1, 32, 32], datatype: 'INT8', data: randomImage() }] })), 400, /datatype "INT8", expected "FP32"/],
      ['wrong shape', () => post(s, inf, inferBody(randomImage(), [1, 3, 32, 32])), 400, /expected \[N, 1,32,32\]/],
      ['data shorter than the shape', () => post(s, inf, inferBody(randomImage().slice(1))), 400, /1023 numbers/],
      ['nested data off the shape', () => post(s, inf, inferBody([[[1, 2]]])), 400, /entries/],
      ['a string in the data', () => post(s, inf, inferBody(['a', ...randomImage().slice(1)])), 400, /expected a number/],
      ['JSON 1e999 (Infinity)', () => post(s, inf, inferBody(randomImage()).replace('"data":[', '"data":[1e999,').replace(/,[^,\]]*\]}\]}$/, ']}]}')), 400, /value 0 is Infinity as FP32, expected a finite FP32 number/],
      ['past FP32 range (1e39)', () => post(s, inf, inferBody([1e39, ...randomImage().slice(1)])), 400, /value 0 is Infinity as FP32/],
      ['finite but overflows the model (3e38)', () => post(s, inf, inferBody(randomImage().map(() => 3e38))), 400, /non-finite logits: values up to 3\.00e\+38/],
      ['unknown output', () => post(s, inf, inferBody(randomImage(), [1, 1, 32, 32], { outputs: [{ name: 'probs' }] })), 400, /unknown output/],
      ['binary size mismatch', () => post(s, inf, Buffer.concat([Buffer.from(JSON.stringify({ inputs: [{ name: 'pixel_values', shape: [1, 1, 32, 32], datatype: 'FP32', parameters: { binary_data_size: 4096 } }] })), Buffer.alloc(100)]), { 'Inference-Header-Content-Length': String(JSON.stringify({ inputs: [{ name: 'pixel_values', shape: [1, 1, 32, 32], datatype: 'FP32', parameters: { binary_data_size: 4096 } }] }).length) }), 400, /binary data is 100 bytes/],
      ['unknown model', () => post(s, '/v2/models/nope/infer', inferBody(randomImage())), 404, /unknown model 'nope'/],
      ['unknown route', () => get(s, '/v1/models'), 404, /no route/],
      ['bad percent-encoding', () => get(s, '/v2/models/%E0%A4%A'), 400, /percent-encoding/],
      ['wrong method', () => get(s, inf), 405, /use POST/],
      ['body over --max-body', () => post(s, inf, inferBody(Array.from({ length: 20000 }, () => 0.123456789))), 413, /limit/],
      ['not an image', () => post(s, cls, Buffer.from('GIF89a this is not a png')), 415, /not a PNG or JPEG/],
      ['empty body', () => post(s, cls, Buffer.alloc(0)), 400, /empty body/],
      ['truncated PNG', () => post(s, cls, png.subarray(0, png.length - 30)), 400, /truncated|corrupt/],
      ['truncated JPEG header', () => post(s, cls, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a])), 400, /truncated JPEG/],
      ['image over --max-pixels (from its header)', () => post(s, cls, bigHeader), 413, /50000x50000/],
      ['bad topk', () => post(s, `${cls}?topk=zero`, png), 400, /topk/],
      ['multipart without its boundary', () => post(s, cls, png, { 'Content-Type': 'multipart/form-data' }), 400, /boundary/],
      // identity only: a gzip body was read as is, 'not valid JSON'
      ['gzip body', () => post(s, inf, gzipSync(inferBody(randomImage())), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }), 415, /Content-Encoding 'gzip' is not supported: send the body uncompressed \(identity\)/],
      ['gzip image', () => post(s, cls, gzipSync(png), { 'Content-Type': 'image/png', 'Content-Encoding': 'gzip' }), 415, /Content-Encoding 'gzip'/],
    ];
    // all at once, with good requests among them: each gets its own answer
    const good = Array.from({ length: 4 }, () => randomImage());
    const [bad, ok] = await Promise.all([
      Promise.all(cases.map(([, f]) => f())),
      Promise.all(good.map((d) => post(s, inf, inferBody(d)))),
    ]);
    cases.forEach(([what, , status, msg], i) => {
      assert.is(bad[i].status, status, `${what}: status ${bad[i].status} ${JSON.stringify(bad[i].json)}`);
      assert.type(bad[i].json?.error, 'string', `${what}: no {"error": ...} body`);
      assert.match(bad[i].json.error, msg, what);
    });
    for (const r of ok) assert.is(r.status, 200);
    const gz = await post(s, inf, gzipSync(inferBody(randomImage())), { 'Content-Encoding': 'gzip' });
    assert.is(gz.headers.get('accept-encoding'), 'identity');
    assert.is((await post(s, inf, inferBody(randomImage()), { 'Content-Encoding': 'identity' })).status, 200, 'identity is no coding');
    // a body cut short (the connection ends before Content-Length) and garbage on the wire: 400
    const cut = await raw(s, `POST ${inf} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"inputs": [`);
    assert.match(cut, /^HTTP\/1\.1 400 [^]*truncated/);
    const junk = await raw(s, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(junk, /^HTTP\/1\.1 400 [^]*"error"/);
    // Content-Length over the limit: refused before reading
    const big = await raw(s, `POST ${inf} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{`);
    assert.match(big, /^HTTP\/1\.1 413 [^]*max-body/);
    // waiting for 100 Continue: the 413 straight away (node:http sent 100 Continue first, then the 413)
    const cont = await raw(s, `POST ${inf} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n`);
    assert.match(cont, /^HTTP\/1\.1 413 [^]*max-body/);
    assert.not.match(cont, /100 Continue/);
    const gone = await raw(s, `POST /v2/models/nope/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n`);
    assert.match(gone, /^HTTP\/1\.1 404 /);
    // and 100 Continue once the body is wanted
    const body = inferBody(randomImage());
    const ok100 = await new Promise<string>((res) => {
      let out = '', sent = false;
      const c = net.connect(s.port, '127.0.0.1', () => c.write(`POST ${inf} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`));
      c.on('data', (d) => { out += d; if (!sent && out.includes('100 Continue\r\n\r\n')) { sent = true; c.write(body); } });
      c.on('close', () => res(out));
      c.on('error', (e) => res(`ERROR ${e.message}`));
    });
    assert.match(ok100, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.is((await post(s, inf, inferBody(randomImage()))).status, 200, 'still serving after the malformed ones');
  });
});

S('a full queue answers 503 with Retry-After; a request that waits past --timeout-ms answers 504', async () => {
  await withServer({ maxBatch: 8, maxQueue: 2, maxWaitMs: 300 }, async (s) => {
    const rs = await Promise.all(Array.from({ length: 6 }, () => post(s, `/v2/models/${NAME}/infer`, inferBody(randomImage()))));
    const codes = rs.map((r) => r.status).sort();
    assert.ok(codes.filter((c) => c === 200).length >= 2, `codes ${codes}`);
    assert.ok(codes.filter((c) => c === 503).length >= 1, `codes ${codes}`);
    for (const r of rs.filter((r) => r.status === 503)) {
      assert.is(r.headers.get('retry-after'), '1');
      assert.match(r.json.error, /queue full/);
    }
    assert.ok(codes.every((c) => c === 200 || c === 503), `codes ${codes}`);
  });
  // (a server refuses --max-wait-ms at or past --timeout-ms: the batcher itself waits past its timeout here)
  const model = { name: 'm', itemSize: 1, outSize: 1, forward: (x: Float32Array) => x } as unknown as ServedModel;
  const b = new Batcher({ maxBatch: 8, maxWaitMs: 400, maxQueue: 8, timeoutMs: 50 });
  let err: unknown = null;
  try { await b.submit(model, Float32Array.of(1), 1); } catch (e) { err = e; }
  assert.is((err as HttpError)?.status, 504);
  assert.match((err as Error).message, /timed out after 50 ms in the queue/);
});

S('a request whose client leaves while it waits is dropped from the queue, uncomputed', async () => {
  await withServer({ maxWaitMs: 400 }, async (s) => {
    const body = inferBody(randomImage());
    const c = net.connect(s.port, '127.0.0.1', () => c.write(`POST /v2/models/${NAME}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
    await new Promise((r) => setTimeout(r, 100));
    const queued = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(queued, /cait_serve_queue_depth 1/);
    c.destroy();
    await new Promise((r) => setTimeout(r, 600));
    const after = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(after, /cait_serve_queue_depth 0/);
    assert.not.match(after, /cait_serve_batch_size_count\{model="fmnist-cait"\} [1-9]/, 'no forward ran');
    assert.match(after, /cait_serve_requests_total\{model="fmnist-cait",endpoint="infer",code="499"\} 1/);
  });
});

// An int8 file (cait quantize) is served on its int8 kernels, as load() and
// cait predict run it (the dequantized weights in float would be ~1e-2 away).
S('an int8 file runs its int8 kernels, as load() does; int8Attention false keeps attention float, int8SixBit false every row 7-bit; cait serve says so', async () => {
  const INT8 = `${root}models/fmnist-cait-int8.safetensors`, name = 'fmnist-cait-int8', shirt = `${root}web/public/samples/06-shirt.png`;
  const served: number[][] = [];
  for (const o of [{}, { int8Attention: false }, { int8SixBit: false }]) {
    const m = await load(INT8, o);
    try {
      const x = m.preprocess(shirt), want = await m.forward(x);
      await withServer({ models: [INT8], ...o }, async (s) => {
        assert.is(s.models.get(name)!.quant, 'int8-dynamic');
        const r = await post(s, `/v2/models/${name}/infer`, inferBody(Array.from(x)));
        assert.is(r.status, 200, JSON.stringify(r.json));
        const got = r.json.outputs[0].data as number[], d = maxDiff(got, want);
        assert.ok(d <= 1e-6, `${JSON.stringify(o)}: served logits ${d} from load()'s`);
        served.push(got);
      });
    } finally { m.dispose(); }
  }
  assert.ok(maxDiff(served[0], served[1]) > 0, 'float attention gives other logits');
  assert.ok(maxDiff(served[0], served[2]) > 0, '7-bit rows give other logits');
  await withServer({}, async (s) => assert.is(s.models.get(NAME)!.quant, null, 'a float file'));
  // a float file quantized as it loads serves what its int8 file serves (cait quantize wrote one from the other)
  await withServer({ models: [`${root}models/fmnist-cait.safetensors`], quantize: 'int8' }, async (s) => {
    assert.is(s.models.get(NAME)!.quant, 'int8-dynamic', 'quantize: int8');
    const m = await load(INT8);
    try {
      const x = m.preprocess(shirt), r = await post(s, `/v2/models/${NAME}/infer`, inferBody(Array.from(x)));
      assert.is(r.status, 200, JSON.stringify(r.json));
      assert.ok(maxDiff(r.json.outputs[0].data as number[], await m.forward(x)) <= 1e-6, 'the int8 file\'s logits');
    } finally { m.dispose(); }
  });
  let err = '';
  for (const [o, re] of [
    [{ models: [INT8], port: 0, thread: 2 }, /createServer: unknown option 'thread' \(did you mean 'threads'\?\)/],
    [{ models: [INT8], port: 0, threads: -1 }, /threads must be an integer >= 1, got -1/],
    [{ models: [INT8], port: 'abc' }, /createServer: port must be an integer in 0\.\.65535 \(0: a free one\), got "abc"/],
    [{}, /createServer: models must be an array of PATH or NAME=PATH strings, got undefined/],
    [null, /createServer: options must be an object, got null/],
  ] as const) {
    err = '';
    try { await (await createServer(o as never)).close(); } catch (e) { err = (e as Error).message; }
    assert.match(err, re);
  }
  err = '';
  try { await (await createServer({ models: [INT8], port: 0, int8Attention: 'no' as never })).close(); } catch (e) { err = (e as Error).message; }
  assert.match(err, /int8Attention must be true or false, got "no"/);
  err = '';
  try { await (await createServer({ models: [INT8], port: 0, int8SixBit: 1 as never })).close(); } catch (e) { err = (e as Error).message; }
  assert.match(err, /int8SixBit must be true or false, got 1/);
  err = '';
  try { await (await createServer({ models: [INT8], port: 0, quantize: 'int4' as never })).close(); } catch (e) { err = (e as Error).message; }
  assert.match(err, /quantize must be 'int8', got "int4"/);
  // the CLI flag reaches the server, and its start-up line names the kernels
  const child = serveProcess([INT8, '--port', '0', '--int8-attention', 'off', '--log', 'none']);
  try {
    await child.url;
    assert.match(child.stderr(), /model 'fmnist-cait-int8' from .*fmnist-cait-int8\.safetensors: \[1,32,32\] -> \[10\], planned forward, int8-dynamic kernels/);
  } finally { child.proc.kill('SIGTERM'); }
  // what cannot be listened on is named (getaddrinfo ENOTFOUND alone named no flag)
  const host = await cait('serve', '--model', INT8, '--host', '999.1.1.1', '--port', '0');
  assert.is(host.code, 1, host.stderr);
  assert.match(host.stderr, /cannot listen on host 999\.1\.1\.1 port 0: no such host/);
  await withServer({}, async (s) => {
    const busy = await cait('serve', '--model', INT8, '--port', String(s.port));
    assert.is(busy.code, 1, busy.stderr);
    assert.match(busy.stderr, new RegExp(`cannot listen on host 127\\.0\\.0\\.1 port ${s.port}: the port is in use`));
  });
  const bad = await cait('serve', '--model', INT8, '--int8-attention', 'maybe');
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--int8-attention must be on or off, got 'maybe'/);
  const bad6 = await cait('serve', '--model', INT8, '--int8-six-bit', 'no');
  assert.is(bad6.code, 2, bad6.stderr);
  assert.match(bad6.stderr, /--int8-six-bit must be on or off, got 'no'/);
});

/** `cait serve --model ...args` as a child process: its stderr so far, and the URL of its 'listening' line (rejects on exit or after 60 s). */
function serveProcess(args: string[]): { proc: ReturnType<typeof spawn>; stderr: () => string; url: Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const url = new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`no 'listening' line in 60 s: ${err}`)), 60000);
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(t); res(m[1]); }
    });
    proc.on('exit', (c) => { clearTimeout(t); rej(new Error(`cait serve exited ${c}: ${err}`)); });
  });
  url.catch(() => {});   // awaited by the caller; an exit after listening is not a failure
  return { proc, stderr: () => err, url };
}

S('cait serve: SIGTERM answers the queued requests (new ones 503 while they drain, not refused), then exits 0', async () => {
  const child = serveProcess([MODEL, '--port', '0', '--max-wait-ms', '1500', '--log', 'json']);
  let out = '';
  child.proc.stdout!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((res) => child.proc.on('exit', (code) => res(code)));
  try {
    const s = { url: await child.url } as CaitServer;
    // three requests wait out the 1.5 s batching window; SIGTERM arrives meanwhile
    const pending = Array.from({ length: 3 }, () => post(s, `/v2/models/${NAME}/infer`, inferBody(randomImage())));
    await new Promise((r) => setTimeout(r, 400));
    child.proc.kill('SIGTERM');
    // while those drain, the server still listens: a new request is told it is shutting down, readiness says no
    await new Promise((r) => setTimeout(r, 200));
    const late = await post(s, `/v2/models/${NAME}/infer`, inferBody(randomImage()));
    assert.is(late.status, 503, JSON.stringify(late.json));
    assert.equal(late.json, { error: 'server is shutting down' });
    assert.is(late.headers.get('connection'), 'close');
    const ready = await get(s, '/v2/health/ready');
    assert.equal([ready.status, ready.json], [503, { ready: false }]);
    const rs = await Promise.all(pending);
    for (const r of rs) {
      assert.is(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.outputs[0].shape, [1, 10]);
    }
    assert.is(await exited, 0, child.stderr());
    assert.match(child.stderr(), /draining/);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.is(lines.filter((l) => l.endpoint === 'infer' && l.status === 200).length, 3, 'one JSON log line per request');
  } finally {
    if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  }
});

/** Opens a connection that sends headers and one byte of a 100-byte body, then nothing: resolves with what the server answers when it closes. */
function silentClient(port: number): { answered: Promise<{ text: string; ms: number }> } {
  const t0 = performance.now();
  return {
    answered: new Promise((res) => {
      const c = net.connect(port, '127.0.0.1', () => c.write(`POST /v2/models/${NAME}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`));
      let out = '';
      c.on('data', (d) => { out += d; });
      c.on('close', () => res({ text: out, ms: performance.now() - t0 }));
      c.on('error', () => {});
    }),
  };
}

S('request bodies held at once are capped at 4 x --max-body: beyond, 503 with Retry-After; the bytes come back when those requests end', async () => {
  await withServer({ maxBody: 64 * 1024 }, async (s) => {
    const inf = `/v2/models/${NAME}/infer`;
    // four clients send all but the last byte of 60,000 and wait: 239,996 of the 262,144 bytes held
    const socks = await Promise.all(Array.from({ length: 4 }, () => new Promise<net.Socket>((res) => {
      const c = net.connect(s.port, '127.0.0.1', () => { c.write(`POST ${inf} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n${' '.repeat(59999)}`); res(c); });
      c.on('error', () => {});
    })));
    await new Promise((r) => setTimeout(r, 300));
    const r = await post(s, inf, ' '.repeat(60000));
    assert.is(r.status, 503, JSON.stringify(r.json));
    assert.match(r.json.error, /limit \(4 x --max-body\)/);
    assert.is(r.headers.get('retry-after'), '1');
    for (const c of socks) c.destroy();
    await new Promise((r) => setTimeout(r, 300));
    assert.is((await post(s, inf, inferBody(randomImage()))).status, 200, 'the held bytes were given back');
  });
  // clients that go silent and keep their half of the connection open after their 408: the sockets
  // are destroyed, so their bytes come back (4 x 64,990 of the 262,144 held the server at 503, a
  // 20 KB request not fitting, for as long as they stayed)
  await withServer({ maxBody: 64 * 1024, timeoutMs: 1000 }, async (s) => {
    const inf = `/v2/models/${NAME}/infer`;
    const answers = await Promise.all(Array.from({ length: 4 }, () => new Promise<string>((res) => {
      const c = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true }, () => c.write(`POST ${inf} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65000\r\n\r\n${' '.repeat(64990)}`));
      let out = '';
      c.on('data', (d) => { out += d; if (/^HTTP\/1\.1 408/.test(out)) res(out); });
      c.on('error', () => {});
      c.on('close', () => res(out));
    })));
    for (const a of answers) assert.match(a, /^HTTP\/1\.1 408/);
    await new Promise((r) => setTimeout(r, 200));
    assert.is((await post(s, inf, inferBody(randomImage()))).status, 200, 'not held at 503 by half-open clients');
  });
});

S('a logTo that throws neither stops the server nor holds its books; createServer checks every option', async () => {
  let calls = 0;
  const s = await createServer({ models: [MODEL], port: 0, log: 'json', logTo: () => { calls++; throw new Error('disk full'); } });
  const err = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    for (let i = 0; i < 10; i++) assert.is((await post(s, `/v2/models/${NAME}/infer`, inferBody(randomImage()))).status, 200, `request ${i}`);
  } finally { process.stderr.write = err; }
  assert.ok(calls >= 10);
  const t0 = performance.now();
  await s.close();
  assert.ok(performance.now() - t0 < 5000, 'close() did not wait for a request that never ended');
  for (const [o, re] of [
    [{ logTo: 'stdout' }, /logTo must be a function/],
    [{ warmup: 'yes' }, /warmup must be true or false, got "yes"/],
    [{ planBudgetBytes: -1 }, /planBudgetBytes must be a number of bytes >= 0, got -1/],
    [{ backend: 'wasm' }, /backend must be a Backend instance, got \[object String\]/],
    [{ models: [null] }, /models\[0\] must be a PATH or NAME=PATH string or a \{name, path\} spec, got null/],
    [{ timeoutMs: 3e9 }, /timeoutMs must be an integer in 1\.\.2147483647, got 3000000000/],
    [{ maxBatch: 1e9 }, /maxBatch must be an integer in 1\.\.1024/],
    // a lone request would wait out its timeout: every one a 504
    [{ maxWaitMs: 400, timeoutMs: 50 }, /maxWaitMs 400 must be below timeoutMs 50/],
    [{ maxWaitMs: 50, timeoutMs: 50 }, /maxWaitMs 50 must be below timeoutMs 50/],
    [{ models: ['x='] }, /model 'x': no path \(NAME=PATH, got 'x='\)/],
    [{ preset: 'nope' }, /createServer: preset must be one of [^]*micro[^]*, got "nope"/],
  ] as const) {
    let msg = '';
    try { await (await createServer({ models: [MODEL], port: 0, ...o } as never)).close(); } catch (e) { msg = (e as Error).message; }
    assert.match(msg, re);
  }
});

// close() leaves a caller's backend open: the models it loaded there must go
// (their weights stayed allocated, every createServer + close on one backend)
S('close() frees the models\' weights on a backend the caller gave', async () => {
  const { loadWasmSync } = await import('../src/backend/wasm.js');
  const be = loadWasmSync('auto'), before = be.stats().liveBlocks;
  for (let i = 0; i < 2; i++) {
    const s = await createServer({ models: [MODEL, `seg=${root}models/seg-cait.safetensors`], port: 0, backend: be });
    assert.is((await post(s, `/v2/models/${NAME}/infer`, inferBody(randomImage()))).status, 200);
    await s.close();
    assert.is(be.stats().liveBlocks, before, `round ${i}: blocks still live after close()`);
  }
});

S('a client that stops sending gets its 408 near --timeout-ms (node:http checked only every 30 s); HEAD where GET is', async () => {
  const lines: string[] = [];
  await withServer({ timeoutMs: 1000, log: 'json', logTo: (l) => lines.push(l) }, async (s) => {
    const { text, ms } = await silentClient(s.port).answered;
    assert.match(text, /^HTTP\/1\.1 408/, text);
    assert.ok(ms < 10000, `408 after ${ms.toFixed(0)} ms (timeout 1000)`);
    await new Promise((r) => setTimeout(r, 50));
    assert.is(JSON.parse(lines[0]).status, 408, `its log line: ${lines[0]}`);
    const h = await fetch(s.url + '/v2/health/ready', { method: 'HEAD' });
    assert.is(h.status, 200);
    assert.is(await h.text(), '');
    const m = await fetch(s.url + `/v2/models/${NAME}`, { method: 'HEAD' });
    assert.is(m.status, 200);
    const p = await fetch(s.url + `/v2/models/${NAME}/infer`, { method: 'HEAD' });
    assert.is(p.status, 405);
    assert.is(p.headers.get('allow'), 'POST');
    const d = await fetch(s.url + '/v2', { method: 'DELETE' });
    assert.is(d.headers.get('allow'), 'GET, HEAD');
  });
});

S('cait serve: SIGTERM with a client silent mid-body still exits 0, after at most --timeout-ms; that client gets a 408, logged 408', async () => {
  const child = serveProcess([MODEL, '--port', '0', '--timeout-ms', '2000', '--log', 'json']);
  let out = '';
  child.proc.stdout!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((res) => child.proc.on('exit', (code) => res(code)));
  try {
    const port = Number(new URL(await child.url).port);
    const c = silentClient(port);
    await new Promise((r) => setTimeout(r, 300));
    child.proc.kill('SIGTERM');
    const gone = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 20 s'), 20000))]);
    assert.is(gone, 0, child.stderr());
    // (it was cut off with an empty reply, logged 400)
    const { text } = await c.answered;
    assert.match(text, /^HTTP\/1\.1 408 [^]*"error":"request not received in time: the server is shutting down/, text);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.map((l) => [l.endpoint, l.status]), [['infer', 408]], out);
  } finally {
    if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  }
});

// A segmentation model's forward gives [n * S * S, classes] (pixel rows): the
// server took its per-image output for [classes] and every request failed.
S('a segmentation model: metadata says [-1, S, S, classes], /infer gives load()\'s per-pixel logits bit for bit, /classify a 400', async () => {
  const SEGS = ['seg-cait', 'seg-dense'];
  await withServer({ models: SEGS.map((n) => `${root}models/${n}.safetensors`) }, async (s) => {
    for (const name of SEGS) {
      const m = await load(`${root}models/${name}.safetensors`);
      try {
        const [C, H, W] = m.info.inputShape, K = m.info.config.numClasses;
        assert.equal((await get(s, `/v2/models/${name}`)).json.outputs, [{ name: 'logits', datatype: 'FP32', shape: [-1, H, W, K] }]);
        const x = Float32Array.from({ length: 2 * C * H * W }, () => rnd() * 2 - 1);
        const r = await post(s, `/v2/models/${name}/infer`, inferBody(Array.from(x), [2, C, H, W]));
        assert.is(r.status, 200, JSON.stringify(r.json).slice(0, 300));
        assert.equal(r.json.outputs[0].shape, [2, H, W, K]);
        const want = await m.forward(x, 2), got = r.json.outputs[0].data as number[];
        assert.is(got.length, want.length);
        assert.ok(got.every((v, i) => v === want[i]), `${name}: served logits differ from load()'s by ${maxDiff(got, want)}`);
        const c = await post(s, `/v2/models/${name}/classify`, testPng(), { 'Content-Type': 'image/png' });
        assert.is(c.status, 400, JSON.stringify(c.json));
        assert.match(c.json.error, new RegExp(`model '${name}' gives \\[${H},${W},${K}\\] per image, not class scores: use /infer`));
      } finally { m.dispose(); }
    }
  });
});

// finite weights of 3e38 pass the loader; every class's probability came back null, with a 200
S('a served model whose weights overflow: /classify of an ordinary image is a 500 saying so, not 200 with null probabilities', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cait-serve-huge-')), file = join(dir, 'huge.safetensors');
  const src = readSafetensorsFile(MODEL);
  writeSafetensorsFile(file, new Map([...src.tensors].map(([n, t]) => [n, { shape: t.shape, data: n === 'head.weight' ? new Float32Array(t.data.length).fill(3e38) : Float32Array.from(t.data) }])), src.metadata);
  try {
    await withServer({ models: [file] }, async (s) => {
      const c = await post(s, '/v2/models/huge/classify', testPng(), { 'Content-Type': 'image/png' });
      assert.is(c.status, 500, JSON.stringify(c.json));
      assert.match(c.json.error, /model 'huge' gives non-finite logits for this image: the inputs are within \d\.\d+ in magnitude, as preprocessed images are: the model's own weights overflow/);
      assert.is((await get(s, '/v2/health/live')).status, 200, 'the server keeps serving');
    });
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

// JSON.parse reads a value 200,000 arrays deep; JSON.stringify of it in an error message overflowed the stack (a 500)
S('deeply nested JSON in a field an error message shows is a 400 naming the field', async () => {
  await withServer({}, async (s) => {
    const inf = `/v2/models/${NAME}/infer`, N = 200000;
    const deep = '['.repeat(N) + ']'.repeat(N), deepObj = '{"a":'.repeat(N) + '1' + '}'.repeat(N);
    const t = (o: Record<string, string>) => `{"name":${o.name ?? '"pixel_values"'},"shape":${o.shape ?? '[1,1,32,32]'},"datatype":${o.datatype ?? '"FP32"'},"data":${o.data ?? JSON.stringify(randomImage())}${o.parameters ? `,"parameters":${o.parameters}` : ''}}`;
    const nested = (leaf: string) => `[[${Array.from({ length: 32 }, (_, r) => `[${r === 0 ? [leaf, ...Array(31).fill('0')] : Array(32).fill('0')}]`)}]]`;
    const x = new Float32Array(ITEM);
    const cases: Array<[string, string, RegExp, Record<string, string>?]> = [
      ['id', `{"id":${deep},"inputs":[]}`, /^'id' must be a string, got \[\[\[\[\.\.\.\]\]\]\]$/],
      ['id (object)', `{"id":${deepObj},"inputs":[]}`, /^'id' must be a string, got \{"a":\{"a":\{"a":\{\.\.\.\}\}\}\}$/],
      ['inputs[0].name', `{"inputs":[${t({ name: deep })}]}`, /^unknown input \[\[\[\[\.\.\.\]\]\]\]; the model's input is 'pixel_values'$/],
      ['datatype', `{"inputs":[${t({ datatype: deep })}]}`, /datatype \[\[\[\[\.\.\.\]\]\]\], expected "FP32"/],
      ['shape', `{"inputs":[${t({ shape: deep })}]}`, /'shape' must be an array of non-negative integers, got \[\[\[\[\.\.\.\]\]\]\]/],
      ['outputs[0].name', `{"inputs":[${t({})}],"outputs":[{"name":${deep}}]}`, /^unknown output \[\[\[\[\.\.\.\]\]\]\]; the model's output is 'logits'$/],
      ['outputs[0]', `{"inputs":[${t({})}],"outputs":[${deep}]}`, /^unknown output \[\[\[\[\.\.\.\]\]\]\]/],
      ['a leaf of nested data', `{"inputs":[${t({ data: `[${nested(deep)}]` })}]}`, /data\[0\]\[0\]\[0\]\[0\] is \[\[\[\[\.\.\.\]\]\]\], expected a number/],
      ['a leaf of flat data', `{"inputs":[${t({ data: `[${deepObj},${Array(ITEM - 1).fill('0')}]` })}]}`, /data\[0\] is \{"a":\{"a":\{"a":\{\.\.\.\}\}\}\}, expected a number/],
      ['binary_data_size', `{"inputs":[${t({ data: 'null', parameters: `{"binary_data_size":${deep}}` })}]}`, /binary_data_size \[\[\[\[\.\.\.\]\]\]\]/, { binary: '1' }],
      ['a long name', `{"inputs":[${t({ name: JSON.stringify('n'.repeat(100000)) })}]}`, /^unknown input "n{39}\.\.\.; the model's input is 'pixel_values'$/],
      ['a wide array', `{"inputs":[${t({ shape: `[${Array(100000).fill('"x"')}]` })}]}`, /got \["x","x","x","x","x","x","x","x","x","x"\.\.\.$/],
    ];
    for (const [what, body, re, o] of cases) {
      const r = o?.binary
        ? await post(s, inf, Buffer.concat([Buffer.from(body), Buffer.from(x.buffer)]), { 'Inference-Header-Content-Length': String(Buffer.byteLength(body)) })
        : await post(s, inf, body, { 'Content-Type': 'application/json' });
      assert.is(r.status, 400, `${what}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      assert.match(r.json.error, re, what);
      assert.ok(r.json.error.length < 200, `${what}: ${r.json.error.length} characters`);
    }
    assert.is((await post(s, inf, inferBody(randomImage()))).status, 200);
  });
});

/** An all-black PNG of n x n pixels (a few KB, and a slow decode: 2048 x 2048 about 0.4 s here), made once. */
const blackPng = (() => { let p: Uint8Array | null = null; return () => (p ??= encodePng(2048, 2048, new Uint8Array(2048 * 2048 * 4))); })();

// Uploads were posted to the decode worker all at once: none refused, none timed out, each decoded even after its client left
S('the decode worker\'s queue: --max-queue waiting (503 with Retry-After), --timeout-ms waiting (504), a client gone is dropped undecoded', async () => {
  const cls = `/v2/models/${NAME}/classify`, png = blackPng(), h = { 'Content-Type': 'image/png' };
  await withServer({ maxQueue: 1 }, async (s) => {
    // one decoding, one waiting, two refused
    const rs = await Promise.all(Array.from({ length: 4 }, () => post(s, cls, png, h)));
    const codes = rs.map((r) => r.status).sort();
    assert.equal(codes, [200, 200, 503, 503], JSON.stringify(rs.map((r) => r.json)));
    for (const r of rs.filter((r) => r.status === 503)) {
      assert.is(r.headers.get('retry-after'), '1');
      assert.match(r.json.error, /decode queue full \(1 of 1 images waiting to be decoded\); retry later/);
    }
    assert.is(s.decodes.worker, 2);
  });
  await withServer({ timeoutMs: 300 }, async (s) => {
    // the first decodes (started: no timeout), the others wait for it past 300 ms
    const rs = await Promise.all(Array.from({ length: 3 }, () => post(s, cls, png, h)));
    assert.equal(rs.map((r) => r.status).sort(), [200, 504, 504], JSON.stringify(rs.map((r) => r.json)));
    for (const r of rs.filter((r) => r.status === 504)) assert.match(r.json.error, /timed out after 300 ms waiting to be decoded/);
    assert.is(s.decodes.worker, 1);
  });
  await withServer({}, async (s) => {
    const first = post(s, cls, png, h);
    await new Promise((r) => setTimeout(r, 50));
    const c = net.connect(s.port, '127.0.0.1', () => c.write(Buffer.concat([Buffer.from(`POST ${cls} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`), png])));
    c.on('error', () => {});
    await new Promise((r) => setTimeout(r, 100));
    c.destroy();
    assert.is((await first).status, 200);
    await new Promise((r) => setTimeout(r, 100));
    assert.is(s.decodes.worker, 1, 'the second upload was never decoded');
    assert.match(await (await fetch(`${s.url}/metrics`)).text(), /cait_serve_requests_total\{model="fmnist-cait",endpoint="classify",code="499"\} 1/);
    assert.is((await post(s, cls, png, h)).status, 200, 'the worker goes on');
  });
});

S('--preset: a bare checkpoint is served as load() runs it with that preset; beside a model with its own config a usage error', async () => {
  const bare = [`${root}shared/fixtures/micro-vit/model.safetensors`, `${root}../shared/fixtures/micro-vit/model.safetensors`].find((f) => existsSync(f))!;
  assert.ok(bare, 'the micro-vit fixture');
  await withServer({ models: [`micro=${bare}`], preset: 'micro' }, async (s) => {
    const m = await load(bare, { preset: 'micro' });
    try {
      const [C, H, W] = m.info.inputShape;
      const x = Float32Array.from({ length: C * H * W }, () => rnd() * 2 - 1);
      const r = await post(s, '/v2/models/micro/infer', inferBody(Array.from(x), [1, C, H, W]));
      assert.is(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.outputs[0].data, Array.from(await m.forward(x)));
    } finally { m.dispose(); }
  });
  // it told the user to pass --preset NAME, which serve did not take
  const none = await cait('serve', '--model', bare, '--port', '0');
  assert.is(none.code, 1, none.stderr);
  assert.match(none.stderr, /no model config[^]*--preset NAME/);
  const own = await cait('serve', '--model', MODEL, '--preset', 'micro', '--port', '0');
  assert.is(own.code, 2, own.stderr);
  assert.match(own.stderr, /cait serve: --preset micro: .*fmnist-cait\.safetensors: config field '\(preset\)': expected no preset: the model has its own config/);
  const unknown = await cait('serve', '--model', bare, '--preset', 'mikro');
  assert.is(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /--preset must be one of .*, got 'mikro' \(did you mean 'micro'\?\)/);
});

S('cait serve: usage errors name the flag: --model NAME= without a file, --max-wait-ms not below --timeout-ms', async () => {
  const empty = await cait('serve', '--model', 'x=');
  assert.is(empty.code, 2, empty.stderr);
  assert.match(empty.stderr, /cait serve: --model x=: no file after 'x=' \(expected FILE or NAME=FILE\)/);
  const wait = await cait('serve', '--model', MODEL, '--max-wait-ms', '2000', '--timeout-ms', '1000');
  assert.is(wait.code, 2, wait.stderr);
  assert.match(wait.stderr, /--max-wait-ms 2000 must be below --timeout-ms 1000/);
});

S.run();
