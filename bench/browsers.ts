// `npm run bench:browsers`: the cross-platform benchmark (issue #19). One run
// times bench/suite.ts in Node, then the benchmark page (web/bench.html, the
// same suite in a worker) in headless Chromium and in headless Firefox ESR
// (test/browsers.ts launches both), one after another so that they never share
// the cores; writes bench/results/browsers.json (one object per platform, each
// in bench/suite.ts's schema with its environment stamp), draws
// docs/browsers.svg and prints the README's "Node | Chromium | Firefox" table.
//
// Within a platform every variant is interleaved (rounds rotate over one thread
// and the pool, dense and CAIT), so the pool/one-thread ratios and checks are
// measured side by side; across platforms the phases run minutes apart on a
// possibly busy machine, so compare them loosely (the load average is stamped).
//
// Usage: node --import tsx bench/browsers.ts [--quick] [--browsers chromium,firefox]
//          [--models tiny,small] [--batches 1,8] [--runs 10] [--warmup 2] [--threads 2]
//          [--out bench/results/browsers.json] [--svg docs/browsers.svg]
//        node --import tsx bench/browsers.ts --from bench/results/browsers.json --out /tmp/b.json   (redraw, no run)
//   Full run: about 15 minutes on 2 cores. --quick: a minute or two (DeiT-Tiny batch 1, one GEMM shape).
import os from 'node:os';
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWasmSync, relaxedSimdSupported } from '../src/backend/wasm.js';
import { loadThreadedWasmSync } from '../src/backend/threads.js';
import { environment } from '../src/util/timing.js';
import { scriptArgs } from './args.js';
import { DEMO_MODELS } from '../src/cli/demo.js';
import { Svg, PALETTE } from '../src/util/svg.js';
import { buildWeb, MODELS_DIR } from '../web/build.js';
import { serveStatic } from '../web/serve.js';
import { runSuite, suiteParams, SUITE_WHAT, MODELS as SUITE_MODELS, type StructureRow, type GemmRow, type ModelRow } from './suite.js';
import { BROWSERS, browserMissing, withBrowser, type BrowserName } from '../test/browsers.js';

const here = dirname(fileURLToPath(import.meta.url));
const USAGE = `node --import tsx bench/browsers.ts [--quick] [--browsers chromium,firefox] [--models tiny,small] [--batches 1,8]
         [--runs 10] [--warmup 2] [--threads 2] [--out bench/results/browsers.json] [--svg docs/browsers.svg]   (npm run bench:browsers)
       node --import tsx bench/browsers.ts --from bench/results/browsers.json --out /tmp/b.json [--svg /tmp/b.svg]   (redraw, no run)
  Writes --out and --svg (by default over the committed bench/results/browsers.json and docs/browsers.svg).
  --quick: a minute or two (DeiT-Tiny batch 1, one GEMM shape); a browser that is not installed is skipped, saying why.`;
const cli = scriptArgs(process.argv.slice(2), {
  quick: 'boolean', from: 'string', browsers: 'string', models: 'string', batches: 'string', runs: 'number', warmup: 'number', threads: 'number', out: 'string', svg: 'string',
}, USAGE);
const { flags } = cli;
const quick = !!flags.quick;
const over = {
  models: flags.models === undefined ? undefined : cli.list('models', [], Object.keys(SUITE_MODELS)),
  batches: flags.batches === undefined ? undefined : cli.list('batches', []).map(Number),
  runs: flags.runs === undefined ? undefined : cli.int('runs', 0, 1), warmup: flags.warmup === undefined ? undefined : cli.int('warmup', 0, 0),
  threads: flags.threads === undefined ? undefined : cli.int('threads', 0, 1),
};
if (over.batches?.some((b) => !(Number.isInteger(b) && b >= 1))) cli.fail(`--batches: positive integers, got '${flags.batches}'`);
const p = suiteParams(quick, over);
const browsers = cli.list('browsers', BROWSERS, BROWSERS) as BrowserName[];
const outJson = resolve((flags.out as string | undefined) ?? join(here, 'results', 'browsers.json'));
const outSvg = resolve((flags.svg as string | undefined) ?? join(here, '..', 'docs', 'browsers.svg'));

type Platform = Record<string, unknown> & { env: Record<string, unknown>; gemm: GemmRow[]; results: ModelRow[]; checks: Record<string, unknown> };
const platforms: Record<string, Platform | { error: string }> = {};
const structures = (JSON.parse(readFileSync(join(here, 'results', 'compress-structure.json'), 'utf8')) as { results: StructureRow[] }).results;
const committed = DEMO_MODELS.flatMap(([label, file]) => {
  try { return [{ label, file, bytes: new Uint8Array(readFileSync(join(MODELS_DIR, file))) }]; } catch { return []; }
});

const from = flags.from as string | undefined;
let runDate = new Date().toISOString(), runHost: { cpu: string; cores: number; loadavg: number } | null = null;
if (from) {
  // redraw the chart and tables from an earlier run
  const old = JSON.parse(readFileSync(resolve(from), 'utf8')) as { platforms: typeof platforms; date: string; host: Record<string, unknown> };
  Object.assign(platforms, old.platforms);
  runDate = old.date;
  runHost = old.host as { cpu: string; cores: number; loadavg: number };   // the machine that ran it, not this one
} else {
  // ---- Node
  {
    console.log(`node: ${quick ? 'quick' : 'full'} suite (${p.models.join(', ')}, batches ${p.batches.join(', ')}, ${p.runs} rounds after ${p.warmup} warm-up, pool of ${p.threads})`);
    const single = loadWasmSync('auto');
    const pool = p.threads > 1 ? loadThreadedWasmSync({ threads: p.threads, variant: single.variant, maxMemoryPages: 32768 }) : null;
    await pool?.ready();
    const env0 = { runtime: 'node', ...environment(), engine: 'V8', browser: `Node ${process.versions.node}`, simd: true, relaxedSimd: relaxedSimdSupported(), threads: pool?.threads ?? 1, threadsAvailable: !!pool, webgpu: null, caitjs_backend: single.name, caitjs_pool: pool ? `${pool.name}, ${pool.threads} threads` : null, platform: `${os.platform()}-${os.arch()}` };
    const t0 = performance.now();
    const r = await runSuite({ single, pool, ...p, structures, committed, log: (l) => console.log(`  ${l}`) });
    const env = { ...env0, pool_stats: pool ? pool.poolStats() : null, loadavgAfter: environment().loadavg, seconds: +((performance.now() - t0) / 1000).toFixed(1) };
    await pool?.close();
    platforms.node = { what: SUITE_WHAT, env, ...r, config: { ...r.config, quick } };
  }

  // ---- browsers: the page, built with the committed models, served cross-origin isolated
  const work = mkdtempSync(join(tmpdir(), 'cait-bench-web-'));
  const { server, url } = await (async () => {
    await buildWeb({ out: join(work, 'dist'), quiet: true });
    return serveStatic(join(work, 'dist'), 0, '127.0.0.1');
  })();
  try {
    const qs = new URLSearchParams({ quick: quick ? '1' : '0', models: p.models.join(','), batches: p.batches.join(','), runs: String(p.runs), warmup: String(p.warmup), threads: String(p.threads) });
    for (const b of browsers) {
      const why = await browserMissing(b);
      if (why) { console.log(`${b}: SKIPPED (${why})`); platforms[b] = { error: why }; continue; }
      const load0 = os.loadavg()[0];
      try {
        platforms[b] = await withBrowser(b, async (page, l) => {
          console.log(`${b} ${l.version}: ${url}bench.html?${qs}`);
          let shown = 0;
          const poll = setInterval(async () => {
            try {
              const lines = await page.evaluate(() => (window as unknown as { __benchLog: string[] }).__benchLog ?? []);
              for (; shown < lines.length; shown++) console.log(`  ${lines[shown]}`);
            } catch { /* navigation */ }
          }, 2000);
          try {
            await page.goto(`${url}bench.html?${qs}`);
            await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), { timeout: 40 * 60_000, polling: 1000 });
          } finally { clearInterval(poll); }
          const out = await page.evaluate(() => { const w = window as unknown as { __benchResult?: unknown; __benchError?: string; __benchLog: string[] }; return { r: w.__benchResult, e: w.__benchError, log: w.__benchLog }; });
          for (; shown < out.log.length; shown++) console.log(`  ${out.log[shown]}`);
          if (!out.r) throw new Error(out.e ?? 'no result');
          const r = out.r as Platform;
          r.env = { ...r.env, browserVersion: l.version, loadavg: +load0.toFixed(2), loadavgAfter: +os.loadavg()[0].toFixed(2) };
          return r;
        }, { timeout: 40 * 60_000 });
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        console.log(`${b}: FAILED: ${msg}`);
        platforms[b] = { error: msg };
      }
    }
  } finally {
    server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

// ---- the comparison: one row per measurement, a column per platform
const NAMES: Record<string, string> = { node: 'Node', chromium: 'Chromium', firefox: 'Firefox' };
const MODEL_NAMES: Record<string, string> = { tiny: 'DeiT-Tiny', small: 'DeiT-Small' };
// int8 GEMM rows count a multiply-add as two operations, as float ones do, but of integers: GOP/s
interface Cmp { row: string; unit: 'GFLOP/s' | 'GOP/s' | 'ms'; values: Record<string, number | null> }
const ok = Object.entries(platforms).filter((e): e is [string, Platform] => !('error' in e[1]));
const first = ok[0]?.[1];
const cmp: Cmp[] = [];
if (first) {
  // impl names carry the build (relaxed or simd, which differs by engine): rows match by float or int8
  const int8 = (g: GemmRow) => g.impl.includes('int8');
  for (const g of first.gemm) {
    cmp.push({ row: `GEMM ${g.M}x${g.K}x${g.N}${int8(g) ? ' int8' : ''}, ${g.threads === 1 ? '1 thread' : `pool x${g.threads}`}`, unit: int8(g) ? 'GOP/s' : 'GFLOP/s',
      values: Object.fromEntries(ok.map(([k, v]) => [k, v.gemm.find((x) => x.M === g.M && x.K === g.K && x.N === g.N && x.threads === g.threads && int8(x) === int8(g))?.gflops ?? null])) });
  }
  for (const m of first.results) {
    const name = MODEL_NAMES[m.model] ? `${MODEL_NAMES[m.model]} ${m.variant.startsWith('cait') ? 'CAIT' : 'dense'}${m.variant.endsWith('-int8') ? ' int8' : ''}` : String(m.model);
    cmp.push({ row: `${name}, batch ${m.batch}, ${m.threads === 1 ? '1 thread' : `pool x${m.threads}`}`, unit: 'ms',
      values: Object.fromEntries(ok.map(([k, v]) => [k, v.results.find((x) => x.model === m.model && x.variant === m.variant && x.batch === m.batch && x.threads === m.threads)?.median_ms ?? null])) });
  }
}
const fmt = (v: number | null, unit: string) => (v === null ? '—' : unit === 'ms' ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : v.toFixed(1));
const checks = Object.fromEntries(ok.map(([k, v]) => [k, v.checks]));
const json = {
  what: `bench/browsers.ts: ${SUITE_WHAT}; Node, then Chromium, then Firefox ESR (headless) in one run`,
  date: runDate, host: runHost ?? { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, loadavg: +os.loadavg()[0].toFixed(2) },
  comparison: cmp, checks, platforms,
};
mkdirSync(dirname(outJson), { recursive: true });
writeFileSync(outJson, JSON.stringify(json, null, 1) + '\n');
mkdirSync(dirname(outSvg), { recursive: true });
// the chart: the README's rows (the full list is in the JSON)
const CHART = /^(GEMM 197x192x576( int8)?|GEMM 512x512x512|DeiT-Tiny (dense|CAIT)( int8)?, batch [18]|DeiT-Small dense, batch [18]|fmnist-(dense|cait)),/;
writeFileSync(outSvg, chart(cmp.filter((c) => CHART.test(c.row)), ok.map(([k]) => k), json.host));

const cols = ok.map(([k]) => k);
// the README's table: each measurement once, "one thread / pool" in each cell
console.log(`\n| one thread / pool | ${cols.map((c) => NAMES[c] ?? c).join(' | ')} |\n| --- |${cols.map(() => ' --- |').join('')}`);
for (const c of cmp) {
  if (!/, 1 thread$/.test(c.row)) continue;
  const pool = cmp.find((q) => q.row === c.row.replace(/, 1 thread$/, `, pool x${p.threads}`));
  console.log(`| ${c.row.replace(/, 1 thread$/, '')} (${c.unit}) | ${cols.map((k) => `${fmt(c.values[k], c.unit)} / ${fmt(pool?.values[k] ?? null, c.unit)}`).join(' | ')} |`);
}
console.log('\nchecks:');
for (const [k, c] of Object.entries(checks)) {
  for (const [name, v] of Object.entries(c as Record<string, unknown>)) {
    if (name === 'all_pass') continue;
    const x = v as { pass: boolean | null; ratio?: number; limit?: string; reason?: string; per_model?: Array<{ model: string; variant: string; ratio: number }> };
    console.log(`  ${NAMES[k] ?? k} ${name}: ${x.pass === null ? `n/a (${x.reason})` : `${x.ratio} (limit ${x.limit}) ${x.pass ? 'PASS' : 'FAIL'}`}` +
      (x.per_model ? `  [${x.per_model.map((q) => `${q.model}${q.variant === 'committed' ? '' : ` ${q.variant}`} ${q.ratio}`).join(', ')}]` : ''));
  }
}
for (const [k, v] of Object.entries(platforms)) if ('error' in v) console.log(`  ${NAMES[k] ?? k}: ${v.error}`);
for (const [k, v] of ok) {
  const ps = v.env.pool_stats as { minWork: Record<string, number> | null; calibration?: { dispatchUs: { hot: number; cold: number } } | null } | null, c = ps?.calibration;
  // (minWork values of Infinity come back from a page as null: never split)
  if (c) console.log(`  ${NAMES[k] ?? k} pool: dispatch per split call ${c.dispatchUs.hot.toFixed(1)} us (workers spinning), ${c.dispatchUs.cold.toFixed(1)} us (asleep); split from work ${Object.entries(ps!.minWork ?? {}).map(([cls, w]) => `${cls} ${w === null ? 'never' : Math.round(w)}`).join(', ')}`);
}
console.log(`\nwrote ${outJson} and ${outSvg}`);

/** Grouped horizontal bars: each row's speed on each platform relative to Node (higher is faster), the value printed beside. */
function chart(rows: Cmp[], keys: string[], host: { cpu: string; cores: number }): string {
  const W = 900, rowH = 13 * keys.length + 8, top = 92, left = 300, right = 130, H = top + rows.length * rowH + 40;
  const svg = new Svg(W, H, { background: '#ffffff', title: 'caitjs in Node, Chromium and Firefox' });
  svg.text(W / 2, 24, 'caitjs on one machine: Node, Chromium and Firefox ESR (same suite, same run)', { 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 600, fill: '#1d2330' });
  svg.text(W / 2, 42, `${host.cpu} (${host.cores} cores), ${runDate.slice(0, 10)}, shared with other work (load average stamped in the JSON)`, { 'text-anchor': 'middle', 'font-size': 11.5, fill: '#5b6475' });
  svg.text(W / 2, 57, `bar: speed relative to ${NAMES[keys[0]] ?? keys[0]} (GFLOP/s or GOP/s ratio, or inverse time ratio; longer is faster); label: GFLOP/s, GOP/s (int8) or median ms`, { 'text-anchor': 'middle', 'font-size': 11.5, fill: '#5b6475' });
  keys.forEach((k, i) => { svg.rect(left + i * 120, 66, 12, 12, { fill: PALETTE[i] }); svg.text(left + i * 120 + 17, 76, NAMES[k] ?? k, { 'font-size': 12, fill: '#1d2330' }); });
  const rel = (r: Cmp, k: string) => { const v = r.values[k], b = r.values[keys[0]]; return v && b ? (r.unit === 'ms' ? b / v : v / b) : 0; };
  const maxRel = Math.max(1.5, ...rows.flatMap((r) => keys.map((k) => rel(r, k))));
  const x = (v: number) => left + (v / maxRel) * (W - left - right);
  rows.forEach((r, i) => {
    const y0 = top + i * rowH;
    if (i % 2 === 0) svg.rect(0, y0 - 2, W, rowH, { fill: '#f6f7f9' });
    svg.text(left - 8, y0 + rowH / 2 + 2, r.row, { 'text-anchor': 'end', 'font-size': 11.5, fill: '#1d2330' });
    keys.forEach((k, j) => {
      const v = r.values[k], yy = y0 + 3 + j * 13;
      if (v === null) { svg.text(left + 4, yy + 9, 'n/a', { 'font-size': 10, fill: '#8a93a3' }); return; }
      svg.rect(left, yy, Math.max(1, x(rel(r, k)) - left), 11, { fill: PALETTE[j], 'data-platform': k, 'data-value': v });
      svg.text(x(rel(r, k)) + 4, yy + 9, `${fmt(v, r.unit)} ${r.unit}`, { 'font-size': 10, fill: '#1d2330' });
    });
  });
  svg.line(x(1), top - 4, x(1), top + rows.length * rowH, { stroke: '#8a93a3', 'stroke-dasharray': '3 3' });
  svg.text(x(1), H - 18, `1.0 = ${NAMES[keys[0]] ?? keys[0]}`, { 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6475' });
  return svg.toString();
}
