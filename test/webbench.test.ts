// The benchmark page (web/bench.html) in quick mode, in headless Chromium and
// Firefox ESR (test/browsers.ts): it must produce one JSON object with the
// schema bench/suite.ts gives Node (the same keys on every GEMM and model row,
// checked against a small Node run of the same suite) plus the environment
// stamp (user agent, engine, cores, SIMD / relaxed SIMD / threads / WebGPU),
// float and int8 GEMM rows,
// with the pool verified bit for bit against one thread, and offer it as a
// download. A browser's test skips, saying why, without its executable.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import { buildWeb } from '../web/build.js';
import { serveStatic } from '../web/serve.js';
import { DEMO_MODELS } from '../src/cli/demo.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../src/backend/threads.js';
import { runSuite, suiteParams, GEMM_SHAPES, type SuiteResult } from '../bench/suite.js';
import { BROWSERS, browserMissing, withBrowser, type BrowserName } from './browsers.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const test = suite('webbench');
const missing: Record<BrowserName, string> = { chromium: await browserMissing('chromium'), firefox: await browserMissing('firefox') };
for (const b of BROWSERS) if (missing[b]) console.log(`  webbench ${b} SKIPPED: ${missing[b]}`);

const work = mkdtempSync(join(tmpdir(), 'cait-webbench-'));
let server: Server | null = null, url = '';
async function ensureServer(): Promise<void> {
  if (server) return;
  await buildWeb({ out: join(work, 'dist'), quiet: true });
  ({ server, url } = await serveStatic(join(work, 'dist'), 0, '127.0.0.1'));
}

/** Node's rows, from the same suite on a small size: the schema the page must match. */
let nodeRun: SuiteResult | null = null;
async function nodeSchema(): Promise<SuiteResult> {
  if (nodeRun) return nodeRun;
  const single = loadWasmSync('auto'), pool = loadThreadedWasmSync({ threads: 2, variant: single.variant });
  await pool.ready();
  try {
    const first = DEMO_MODELS.find(([, f]) => existsSync(join(ROOT, 'models', f)));
    nodeRun = await runSuite({
      single, pool, models: [], batches: [1], runs: 2, warmup: 1, gemm: [[20, 24, 36]], gemmRounds: 1, gemmRoundMs: 5, structures: [],
      committed: first ? [{ label: first[0], file: first[1], bytes: new Uint8Array(readFileSync(join(ROOT, 'models', first[1]))) }] : [],
    });
    return nodeRun;
  } finally { await pool.close(); }
}
const keys = (o: object) => Object.keys(o).sort();

test('suiteParams refuses what the page\'s URL (bench.html?runs=0) or the command line gives it unchecked, by name', () => {
  for (const [over, re] of [
    [{ runs: 0 }, /runs must be an integer >= 1, got 0/], [{ warmup: -1 }, /warmup must be an integer >= 0, got -1/],
    [{ threads: Number('x') }, /threads must be an integer >= 1, got NaN/], [{ batches: [0] }, /batches must be integers in 1\.\.16, got 0/],
    [{ models: ['huge'] }, /unknown model 'huge' \(known: tiny, small/], [{ models: [] }, /models: none given/],
  ] as const) assert.throws(() => suiteParams(true, over as Parameters<typeof suiteParams>[1]), re as RegExp);
  assert.is(suiteParams(true, { runs: 4 }).runs, 4);
});

for (const B of BROWSERS) {
  const name = `${B}: bench.html?quick=1 gives one JSON object, Node's schema plus an environment stamp, offered as a download`;
  (missing[B] ? test.skip : test)(name, async () => {
    await ensureServer();
    const node = await nodeSchema();
    const t0 = performance.now();
    const { r, download } = await withBrowser(B, async (page) => {
      await page.goto(`${url}bench.html?quick=1`);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), { timeout: 300_000, polling: 200 });
      const out = await page.evaluate(() => { const w = window as unknown as { __benchResult?: Record<string, unknown>; __benchError?: string }; return { r: w.__benchResult, e: w.__benchError }; });
      assert.ok(out.r, `no result: ${out.e}`);
      const a = await page.$eval('#download', (e) => ({ hidden: (e as HTMLAnchorElement).hidden, href: (e as HTMLAnchorElement).href, name: (e as HTMLAnchorElement).download }));
      // the download holds the same object (compared in the page: the protocols' serialization drops shared references)
      const same = await page.evaluate(async (href: string) => (await (await fetch(href)).text()) === JSON.stringify((window as unknown as { __benchResult: unknown }).__benchResult, null, 1) + '\n', a.href);
      assert.ok(same, 'the download is the result');
      return { r: out.r as unknown as SuiteResult & { what: string; env: Record<string, unknown> }, download: a };
    });
    console.log(`  webbench ${B}: quick run in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${r.env.browser} (${r.env.engine}), pool ${r.env.caitjs_pool}`);
    assert.not.ok(download.hidden);
    assert.match(download.name, /^caitjs-bench-(blink|gecko)-quick\.json$/);
    assert.match(download.href, /^blob:/);

    // the environment stamp
    const env = r.env;
    for (const k of ['userAgent', 'engine', 'browser', 'cores', 'simd', 'relaxedSimd', 'crossOriginIsolated', 'threads', 'threadsAvailable', 'webgpu', 'caitjs_backend', 'date'])
      assert.ok(k in env, `env.${k}`);
    assert.is(env.engine, B === 'chromium' ? 'Blink' : 'Gecko');
    assert.ok((env.cores as number) >= 1);
    assert.is(env.simd, true);
    assert.is(env.crossOriginIsolated, true, 'served cross-origin isolated');
    assert.is(env.threadsAvailable, true, `the pool starts (${env.threadsWhy})`);

    // Node's schema, row by row
    assert.equal(keys(r).filter((k) => k !== 'what' && k !== 'env'), keys(node));
    assert.equal(r.gemm.map((g) => [g.impl.includes('int8'), g.threads]), [[false, 1], [false, 2], [true, 1], [true, 2]], 'GEMM: the first shape, float and int8, on one thread and the pool');
    for (const g of r.gemm) {
      assert.equal(keys(g), keys(node.gemm[0]));
      assert.equal([g.M, g.K, g.N], GEMM_SHAPES[0]);
      assert.ok(g.gflops > 0 && g.samples >= 5, `gemm x${g.threads}: ${g.gflops} GFLOP/s over ${g.samples} calls`);
    }
    const nodeRow = keys(node.results[0]), nodePoolRow = keys(node.results.find((x) => x.threads > 1)!);
    for (const x of r.results) {
      assert.equal(keys(x), x.threads > 1 ? nodePoolRow : nodeRow, `${x.model} b${x.batch} ${x.runtime} x${x.threads}: row keys`);
      assert.ok(x.median_ms > 0 && x.runs === 3, `${x.model} ${x.variant} x${x.threads}: ${x.median_ms} ms over ${x.runs} runs`);
    }
    const has = (model: string, variant: string, threads: number) => r.results.some((x) => x.model === model && x.variant === variant && x.threads === threads && x.batch === 1);
    for (const v of ['dense', 'cait', 'dense-int8', 'cait-int8']) for (const t of [1, 2]) assert.ok(has('tiny', v, t), `DeiT-Tiny ${v} x${t}`);
    for (const [, f] of DEMO_MODELS) if (existsSync(join(ROOT, 'models', f))) for (const t of [1, 2]) assert.ok(has(f.replace(/\.safetensors$/, ''), 'committed', t), `${f} x${t}`);
    // the pool computed the same bits as one thread, for every model row
    assert.ok(r.verify.filter((v) => 'bit_identical' in v).length === r.results.filter((x) => x.threads > 1).length);
    // checks are computed (their verdicts depend on the machine: reported, not asserted)
    const c = r.checks as Record<string, { pass: boolean | null; ratio?: number; reason?: string }>;
    assert.ok(typeof c.pool_b1_not_slower.ratio === 'number', 'pool/one-thread ratio at batch 1');
    assert.is(c.b8_thread_scaling.pass, null, 'quick mode has no batch 8');
    console.log(`  webbench ${B}: pool/one-thread at batch 1, worst ${c.pool_b1_not_slower.ratio} (limit 1.05; a busy machine)`);
  });
}

test.after(() => {
  server?.close();
  rmSync(work, { recursive: true, force: true });
});

test.run();
