// cait serve under load (issue 20): throughput and p50/p99 latency with
// autocannon at 1, 8 and 32 connections, for the CAIT Fashion-MNIST model and
// a CAIT DeiT-Tiny structure (random weights: DeiT-Tiny with the structure
// `cait compress --structure-only --target-macs 1.7` chose, from
// bench/results/compress-structure.json), each served three ways:
//   single    --threads 1 --max-batch 1   (one request per forward, one thread)
//   single-2t --threads 2 --max-batch 1   (the pool alone, no batching)
//   batched   --threads 2 --max-batch 8   (dynamic batching over the pool)
//   instances --instances 2 --max-batch 8 (two workers, each its own batches)
// Every server is a `cait serve` child process; requests are
// /v2/models/{m}/infer with the binary tensor extension (a 224x224 image is
// 602 KB of FP32, which as a JSON array would cost the server more to parse
// than the forward). Before timing, each server's logits for one input are
// checked equal (bit for bit) across the three; rounds interleave the servers
// (each round: every concurrency, every server, in rotating order) and the
// medians over rounds are reported, because the machine is shared.
//
// Soak: 20,000 requests at 32 connections against the batched Fashion-MNIST
// server, every tenth one malformed (eight kinds in turn); checked: every good
// answer 200 with the expected logits bit for bit, every malformed one 4xx,
// the server alive at the end; its resident memory (prom-client's
// process_resident_memory_bytes from /metrics) sampled every 1,000 requests.
//
// Checks (issue 20), for batched and for instances (two threads with
// batching, either way): DeiT-Tiny at 8 connections >= 1.8x the req/s of
// `single` at 1 connection; its p99 <= 3x its p50; soak as above.
//
// Usage: node --import tsx bench/serve.ts [--duration 5] [--rounds 2] [--soak 20000]
//          [--models fmnist,deit] [--out bench/results/serve.json]
import os from 'node:os';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel, saveModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { environment } from '../src/util/timing.js';
import { countMacs } from '../src/cait/macs.js';
import { encodePng } from '../src/io/image.js';
import { chosenStructure } from './structure.js';
import { scriptArgs } from './args.js';

// autocannon ships no types; the fields read here
interface Histo { average: number; p50: number; p90: number; p99: number; total: number }
type Autocannon = (o: Record<string, unknown>) => Promise<{ requests: Histo; latency: Histo; non2xx: number; errors: number; timeouts: number }>;
const autocannon = ((await import('autocannon' as string)) as { default: Autocannon }).default;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = scriptArgs(process.argv.slice(2), { duration: 'number', rounds: 'number', soak: 'number', models: 'string', out: 'string' },
  `node --import tsx bench/serve.ts [--duration 5] [--rounds 2] [--soak 20000] [--models fmnist,deit] [--out bench/results/serve.json]
  Writes --out (by default over the committed bench/results/serve.json). --duration: seconds per load level.`);
const DURATION = cli.int('duration', 5, 1), ROUNDS = cli.int('rounds', 2, 1), SOAK = cli.int('soak', 20000, 0);
const MODELS = cli.list('models', ['fmnist', 'deit'], ['fmnist', 'deit']);
const OUT = resolve(root, (cli.flags.out as string | undefined) ?? 'bench/results/serve.json');
const CONNS = [1, 8, 32];
const CONFIGS = [
  { name: 'single', threads: 1, instances: 1, maxBatch: 1 },
  { name: 'single-2t', threads: 2, instances: 1, maxBatch: 1 },
  { name: 'batched', threads: 2, instances: 1, maxBatch: 8 },
  { name: 'instances', threads: 1, instances: 2, maxBatch: 8 },
] as const;

interface Server { proc: ChildProcess; url: string; exited: Promise<number | null>; stderr: () => string }

function startServer(name: string, file: string, threads: number, maxBatch: number, extra: string[] = []): Promise<Server> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', `${name}=${file}`, '--port', '0', '--log', 'none',
    '--threads', String(threads), '--max-batch', String(maxBatch), '--max-wait-ms', '2', '--warmup', ...extra], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
  return new Promise((res, rej) => {
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) res({ proc, url: m[1], exited, stderr: () => err });
    });
    proc.on('exit', (c) => rej(new Error(`cait serve exited ${c}: ${err}`)));
  });
}

/** The binary-extension infer request for n images of `item` values. */
function binaryRequest(x: Float32Array, shape: number[]): { body: Buffer; headers: Record<string, string> } {
  const head = Buffer.from(JSON.stringify({
    inputs: [{ name: 'pixel_values', shape, datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
    outputs: [{ name: 'logits', parameters: { binary_data: true } }],
  }));
  return { body: Buffer.concat([head, Buffer.from(x.buffer, x.byteOffset, x.byteLength)]), headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) } };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(url: string, method: string, body: Buffer | null, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((res, rej) => {
    const r = http.request(url, { method, agent, headers: body ? { ...headers, 'Content-Length': String(body.length) } : headers }, (resp) => {
      const chunks: Buffer[] = [];
      resp.on('data', (c) => chunks.push(c));
      resp.on('end', () => res({ status: resp.statusCode ?? 0, body: Buffer.concat(chunks), headers: resp.headers }));
      resp.on('error', rej);
    });
    r.on('error', rej);
    r.end(body ?? undefined);
  });
}

function logitsOf(r: { body: Buffer; headers: http.IncomingHttpHeaders }): Float32Array {
  const h = Number(r.headers['inference-header-content-length']);
  const b = r.body.subarray(h);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

async function metric(url: string, name: string): Promise<number> {
  const r = await request(`${url}/metrics`, 'GET', null);
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(r.body.toString());
  return m ? Number(m[1]) : NaN;
}

/** Waits until nothing is queued (requests autocannon left behind are dropped by the server when their connection closes). */
async function settle(url: string): Promise<void> {
  for (let i = 0; i < 600 && (await metric(url, 'cait_serve_queue_depth')) > 0; i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 200));
}

function median(v: number[]): number { const s = [...v].sort((a, b) => a - b), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; }

interface Run { rps: number; p50: number; p90: number; p99: number; mean: number; non2xx: number; errors: number; requests: number }

async function load(url: string, path: string, req: { body: Buffer; headers: Record<string, string> }, connections: number, duration: number): Promise<Run> {
  const r = await autocannon({ url: url + path, method: 'POST', body: req.body, headers: req.headers, connections, duration, pipelining: 1 });
  return { rps: r.requests.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, mean: r.latency.average, non2xx: r.non2xx, errors: r.errors + r.timeouts, requests: r.requests.total };
}

async function benchModel(key: string, name: string, file: string, item: number[], macs: number) {
  const servers: Server[] = [];
  for (const c of CONFIGS) servers.push(await startServer(name, file, c.threads, c.maxBatch, c.instances > 1 ? ['--instances', String(c.instances)] : []));
  try {
    let seed = 3;
    const x = Float32Array.from({ length: item.reduce((a, b) => a * b, 1) }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1);
    const req = binaryRequest(x, [1, ...item]), path = `/v2/models/${name}/infer`;
    // the same bits from every server (threads and batching must not change results)
    const ref = logitsOf(await request(servers[0].url + path, 'POST', req.body, req.headers));
    for (let i = 1; i < servers.length; i++) {
      const y = logitsOf(await request(servers[i].url + path, 'POST', req.body, req.headers));
      if (y.length !== ref.length || y.some((v, j) => v !== ref[j])) throw new Error(`${key}: ${CONFIGS[i].name} logits differ from single's`);
    }
    // warm-up (every batch size's plan was captured at start, --warmup): a short load, discarded
    for (const s of servers) {
      await load(s.url, path, req, 8, 1);
      await settle(s.url);
    }
    const runs = new Map<string, Run[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const conns of CONNS) {
        for (let j = 0; j < servers.length; j++) {
          const k = (j + r) % servers.length, c = CONFIGS[k];
          const res = await load(servers[k].url, path, req, conns, DURATION);
          await settle(servers[k].url);
          const id = `${c.name}@${conns}`;
          (runs.get(id) ?? runs.set(id, []).get(id)!).push(res);
          process.stderr.write(`${key} round ${r + 1} ${id}: ${res.rps.toFixed(1)} req/s, p50 ${res.p50} ms, p99 ${res.p99} ms${res.non2xx || res.errors ? `, ${res.non2xx} non-2xx, ${res.errors} errors` : ''}\n`);
        }
      }
    }
    const rows = [...runs].map(([id, rs]) => {
      const [config, conns] = id.split('@');
      return {
        config, connections: Number(conns), rounds: rs.length,
        req_per_s: +median(rs.map((v) => v.rps)).toFixed(2), p50_ms: median(rs.map((v) => v.p50)), p90_ms: median(rs.map((v) => v.p90)), p99_ms: median(rs.map((v) => v.p99)),
        req_per_s_each_round: rs.map((v) => +v.rps.toFixed(2)), non2xx: rs.reduce((a, v) => a + v.non2xx, 0), errors: rs.reduce((a, v) => a + v.errors, 0),
      };
    });
    const batchHist = await metric(servers[2].url, 'cait_serve_batch_size_sum') / await metric(servers[2].url, 'cait_serve_batch_size_count');
    return { model: key, name, gmacs_per_image: +(macs / 1e9).toFixed(4), input_shape: item, mean_batch_of_batched_server: +batchHist.toFixed(2), rows };
  } finally {
    for (const s of servers) { s.proc.kill('SIGTERM'); await s.exited; }
  }
}

async function soak(file: string, total: number) {
  const name = 'fmnist-cait';
  const s = await startServer(name, file, 2, 8, ['--max-queue', '256', '--max-pixels', String(1024 * 1024), '--max-body', String(1 << 20)]);
  try {
    const item = 32 * 32, inf = `${s.url}/v2/models/${name}/infer`, cls = `${s.url}/v2/models/${name}/classify`;
    let seed = 11;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const goods = Array.from({ length: 16 }, () => binaryRequest(Float32Array.from({ length: item }, () => rnd() * 2 - 1), [1, 1, 32, 32]));
    const expected: Float32Array[] = [];
    for (const g of goods) expected.push(logitsOf(await request(inf, 'POST', g.body, g.headers)));
    const px = new Uint8Array(28 * 28 * 4).fill(200), png = Buffer.from(encodePng(28, 28, px));
    const huge = Buffer.from(png); huge.writeUInt32BE(40000, 16); huge.writeUInt32BE(40000, 20);
    const json = (o: unknown) => ({ body: Buffer.from(JSON.stringify(o)), headers: { 'Content-Type': 'application/json' } });
    const pv = (shape: number[], datatype: string, data: unknown) => ({ inputs: [{ name: 'pixel_values', shape, datatype, data }] });
    const bad: Array<{ kind: string; url: string; body: Buffer; headers: Record<string, string> }> = [
      { kind: 'bad JSON', url: inf, body: Buffer.from('{"inputs": [{"name": "pixel_'), headers: { 'Content-Type': 'application/json' } },
      { kind: 'wrong shape', url: inf, ...json(pv([1, 3, 32, 32], 'FP32', new Array(3072).fill(0))) },
      { kind: 'wrong datatype', url: inf, ...json(pv([1, 1, 32, 32], 'FP64', new Array(1024).fill(0))) },
      { kind: 'short data', url: inf, ...json(pv([1, 1, 32, 32], 'FP32', new Array(1000).fill(0))) },
      { kind: 'unknown model', url: `${s.url}/v2/models/nope/infer`, ...json(pv([1, 1, 32, 32], 'FP32', new Array(1024).fill(0))) },
      { kind: 'not an image', url: cls, body: Buffer.from('this is text, not a picture'), headers: { 'Content-Type': 'image/png' } },
      { kind: 'truncated PNG', url: cls, body: png.subarray(0, png.length - 20), headers: { 'Content-Type': 'image/png' } },
      { kind: 'image over the pixel limit', url: cls, body: huge, headers: { 'Content-Type': 'image/png' } },
    ];
    let next = 0, goodOk = 0, goodFail = 0, badOk = 0, badFail = 0, other = 0;
    const failures: string[] = [], rss: Array<{ after: number; rss_mb: number }> = [];
    const byKind: Record<string, Record<string, number>> = {};
    const t0 = performance.now();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        try {
          if (i % 10 === 9) {
            const b = bad[Math.floor(i / 10) % bad.length];
            const r = await request(b.url, 'POST', b.body, b.headers);
            const k = (byKind[b.kind] ??= {});
            k[r.status] = (k[r.status] ?? 0) + 1;
            let ok = r.status >= 400 && r.status < 500;
            try { ok = ok && typeof JSON.parse(r.body.toString()).error === 'string'; } catch { ok = false; }
            if (ok) badOk++; else { badFail++; if (failures.length < 10) failures.push(`${b.kind}: ${r.status} ${r.body.toString().slice(0, 100)}`); }
          } else {
            const g = i % goods.length;
            const r = await request(inf, 'POST', goods[g].body, goods[g].headers);
            const y = r.status === 200 ? logitsOf(r) : null;
            if (y && y.length === expected[g].length && y.every((v, j) => v === expected[g][j])) goodOk++;
            else { goodFail++; if (failures.length < 10) failures.push(`good ${i}: ${r.status} ${r.body.toString().slice(0, 100)}`); }
          }
        } catch (e) { other++; if (failures.length < 10) failures.push(`request ${i}: ${(e as Error).message}`); }
        if ((i + 1) % 1000 === 0) rss.push({ after: i + 1, rss_mb: +((await metric(s.url, 'cait_serve_process_resident_memory_bytes')) / 2 ** 20).toFixed(1) });
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const alive = (await request(`${s.url}/v2/health/live`, 'GET', null)).status === 200 && s.proc.exitCode === null;
    const warm = rss.filter((r) => r.after > total / 10).map((r) => r.rss_mb);
    rss.sort((a, b) => a.after - b.after);
    return {
      requests: total, connections: 32, seconds: +seconds.toFixed(1), req_per_s: +(total / seconds).toFixed(1),
      good: { ok: goodOk, failed: goodFail }, malformed: { answered_4xx: badOk, other: badFail, by_kind: byKind }, transport_errors: other,
      server_alive_after: alive, crashes: alive ? 0 : 1,
      rss_mb: rss, rss_after_warmup_mb: { min: Math.min(...warm), max: Math.max(...warm), first: warm[0], last: warm[warm.length - 1] },
      failures,
    };
  } finally {
    s.proc.kill('SIGTERM');
    const code = await s.exited;
    if (code !== 0) process.stderr.write(`soak server exited ${code}\n${s.stderr()}`);
  }
}

const tmp = mkdtempSync(join(os.tmpdir(), 'cait-serve-bench-'));
try {
  const results: Array<Awaited<ReturnType<typeof benchModel>> & { structure?: unknown }> = [];
  if (MODELS.includes('fmnist')) {
    const file = join(root, 'models/fmnist-cait.safetensors');
    const cfg = JSON.parse(JSON.parse(readFileSync(file).subarray(8, 8 + Number(readFileSync(file).readBigUInt64LE(0))).toString()).__metadata__.config);
    results.push(await benchModel('fmnist-cait', 'fmnist-cait', file, [1, 32, 32], countMacs(cfg, cfg.merge ?? '').total));
  }
  let deitStructure = null;
  if (MODELS.includes('deit')) {
    const base = getPreset('deit_tiny_patch16_224'), st = chosenStructure(base, 1.7);
    const cfg = { ...base, widths: st.widths, merge: st.merge }, file = join(tmp, 'deit-tiny-cait.safetensors');
    const m = createModel(cfg, 0);
    saveModel(file, m);
    m.dispose();
    deitStructure = { merge: st.merge, source: st.source, mac_ratio: +(countMacs(base, '').total / countMacs(cfg, st.merge).total).toFixed(3) };
    results.push({ ...(await benchModel('deit-tiny-cait', 'deit-tiny-cait', file, [3, 224, 224], countMacs(cfg, st.merge).total)), structure: deitStructure });
  }
  const soakResult = SOAK > 0 ? await soak(join(root, 'models/fmnist-cait.safetensors'), SOAK) : null;

  const row = (m: string, c: string, n: number) => results.find((r) => r.model === m)?.rows.find((x) => x.config === c && x.connections === n);
  const checks: Record<string, unknown> = {};
  // issue 20: two threads with batching, both ways a server can use them
  const deitS = row('deit-tiny-cait', 'single', 1);
  for (const c of ['batched', 'instances']) {
    const b = row('deit-tiny-cait', c, 8);
    if (!b || !deitS) continue;
    const ratio = b.req_per_s / deitS.req_per_s;
    checks[`deit_${c}_c8_vs_single_c1`] = { ratio: +ratio.toFixed(3), target: 1.8, pass: ratio >= 1.8 };
    checks[`deit_${c}_c8_p99_over_p50`] = { ratio: +(b.p99_ms / b.p50_ms).toFixed(3), target: 3, pass: b.p99_ms <= 3 * b.p50_ms };
  }
  if (soakResult) {
    checks.soak = {
      good_failed: soakResult.good.failed, malformed_not_4xx: soakResult.malformed.other, crashes: soakResult.crashes,
      rss_growth_after_warmup_mb: +(soakResult.rss_after_warmup_mb.last - soakResult.rss_after_warmup_mb.first).toFixed(1),
      pass: soakResult.good.failed === 0 && soakResult.malformed.other === 0 && soakResult.crashes === 0 && soakResult.transport_errors === 0,
    };
  }
  const out = {
    what: 'cait serve under autocannon: /infer with the binary tensor extension, 1/8/32 connections, servers single (1 thread, --max-batch 1), single-2t (2 threads, --max-batch 1), batched (2 threads, --max-batch 8, --max-wait-ms 2), instances (--instances 2: two worker threads each running its own batches, --max-batch 8); medians over interleaved rounds; load generator on the same machine; soak of the batched Fashion-MNIST server',
    env: { ...environment(), note: 'shared 2-core machine with other work running: ratios within this run, not absolute numbers', duration_s: DURATION, rounds: ROUNDS },
    results, soak: soakResult, checks,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(checks));
} finally {
  rmSync(tmp, { recursive: true, force: true });
  agent.destroy();
}
