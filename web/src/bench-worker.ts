// The benchmark page's worker (web/bench.html): loads the WASM kernels on one
// thread and on the pool (src/backend/threads.ts, which blocks with
// Atomics.wait and so must run off the page's main thread), the committed
// models from manifest.json, and runs bench/suite.ts, the same code Node runs
// in bench/browsers.ts. Posts {log} lines, then {result} or {error}.
import { loadWasm, relaxedSimdSupported } from '../../src/backend/wasm.js';
import { loadThreadedWasm, type ThreadedWasmBackend } from '../../src/backend/threads.js';
import { runSuite, suiteParams, SUITE_WHAT, type StructureRow } from '../../bench/suite.js';
import structureFile from '../../bench/results/compress-structure.json' with { type: 'json' };
import type { Manifest } from '../build.js';

export interface BenchRequest { quick: boolean; models?: string[]; batches?: number[]; runs?: number; warmup?: number; threads?: number; committed?: boolean }

const post = (m: unknown) => (self as unknown as Worker).postMessage(m);
const log = (line: string) => post({ log: line });

/** Engine from the user agent: Blink, Gecko or WebKit, with the browser's version. */
function engine(ua: string): { engine: string; browser: string } {
  const m = (re: RegExp) => ua.match(re)?.[1];
  if (/Firefox\/|Gecko\/\d/.test(ua) && !/like Gecko/.test(ua)) return { engine: 'Gecko', browser: `Firefox ${m(/Firefox\/([\d.]+)/) ?? '?'}` };
  if (/Chrome\/|Chromium\//.test(ua)) return { engine: 'Blink', browser: `${/HeadlessChrome/.test(ua) ? 'HeadlessChrome' : 'Chrome'} ${m(/Chrom(?:e|ium)\/([\d.]+)/) ?? '?'}` };
  if (/AppleWebKit/.test(ua)) return { engine: 'WebKit', browser: `Safari ${m(/Version\/([\d.]+)/) ?? '?'}` };
  return { engine: 'unknown', browser: ua };
}

/** WebGPU availability as a visitor would see it: an adapter, or why not (never waits more than 3 s). */
async function webgpu(): Promise<string | null> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string; description?: string } } | null> } }).gpu;
  if (!gpu) return null;
  const adapter = await Promise.race([gpu.requestAdapter().catch(() => null), new Promise<null>((ok) => setTimeout(() => ok(null), 3000))]);
  if (!adapter) return 'navigator.gpu present, no adapter';
  const i = adapter.info ?? {};
  return `adapter: ${[i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'yes'}`;
}

async function run(req: BenchRequest): Promise<Record<string, unknown>> {
  const p = suiteParams(req.quick, { models: req.models, batches: req.batches, runs: req.runs, warmup: req.warmup, threads: req.threads });
  const base = new URL('wasm/', location.href).href;
  const isolated = (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const single = await loadWasm(base);
  let pool: ThreadedWasmBackend | null = null, poolWhy: string | null = null;
  if (!isolated) poolWhy = 'not cross-origin isolated (no SharedArrayBuffer)';
  else if (p.threads < 2) poolWhy = `threads=${p.threads}`;
  else {
    // DeiT-Small at batch 8 needs ~0.8 GB of activations: 2 GiB maximum, as bench/vit.ts
    try { pool = await loadThreadedWasm(base, { threads: p.threads, variant: single.variant, maxMemoryPages: 32768 }); } catch (e) { poolWhy = (e as Error).message; }
  }
  const ua = navigator.userAgent;
  const env = {
    runtime: 'browser', userAgent: ua, ...engine(ua), platform: (navigator as unknown as { platform?: string }).platform ?? '',
    cores: navigator.hardwareConcurrency ?? null, simd: true, relaxedSimd: relaxedSimdSupported(), crossOriginIsolated: isolated,
    threads: pool ? pool.threads : 1, threadsAvailable: !!pool, threadsWhy: poolWhy, webgpu: await webgpu(),
    caitjs_backend: single.name, caitjs_pool: pool ? `${pool.name}, ${pool.threads} threads` : null, date: new Date().toISOString(),
  };
  log(`${env.browser} (${env.engine}), ${env.cores} cores, ${single.name}${pool ? ` + pool x${pool.threads}` : `, no pool (${poolWhy})`}`);
  const committed: Array<{ label: string; file: string; bytes: Uint8Array }> = [];
  if (req.committed !== false) {
    const manifest = await (await fetch('manifest.json')).json() as Manifest;
    for (const m of manifest.models) committed.push({ label: m.label, file: m.file, bytes: new Uint8Array(await (await fetch(`models/${m.file}`)).arrayBuffer()) });
  }
  const t0 = performance.now();
  const r = await runSuite({
    single, pool, models: p.models, batches: p.batches, runs: p.runs, warmup: p.warmup, gemm: p.gemm, gemmRounds: p.gemmRounds, gemmRoundMs: p.gemmRoundMs,
    structures: (structureFile as { results: StructureRow[] }).results, committed, log,
    tick: () => new Promise((ok) => setTimeout(ok, 0)),
  });
  // the pool's calibration (dispatch cost per split call, thresholds per kernel class) and its split/solo call counts
  const poolStats = pool ? pool.poolStats() : null;
  await pool?.close();
  return { what: SUITE_WHAT, env: { ...env, pool_stats: poolStats, seconds: +((performance.now() - t0) / 1000).toFixed(1) }, ...r, config: { ...r.config, quick: p.quick } };
}

self.onmessage = async (ev: MessageEvent<BenchRequest>) => {
  try { post({ result: await run(ev.data) }); } catch (e) { post({ error: String((e as Error)?.stack ?? e) }); }
};
