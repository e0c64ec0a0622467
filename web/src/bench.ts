// The benchmark page (web/bench.html): runs bench/suite.ts in a worker
// (./bench-worker.ts) and shows the rows; the result is one JSON object (the
// schema of bench/suite.ts plus an environment stamp), offered as a download
// and left in window.__benchResult for automation (bench/browsers.ts,
// test/webbench.test.ts). document.body.dataset.state: loading | running | done | error.
//
// URL parameters: quick=1 (seconds: DeiT-Tiny batch 1, one GEMM shape, few
// rounds), models=tiny,small, batches=1,8, runs, warmup, threads (pool size,
// default 2), auto=0 (wait for the button instead of starting at once).
import type { BenchRequest } from './bench-worker.js';

const $ = (id: string) => document.getElementById(id)!;
const q = new URLSearchParams(location.search);
const list = (k: string) => q.get(k)?.split(',').map((s) => s.trim()).filter(Boolean);
const num = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);
const req: BenchRequest = {
  quick: q.get('quick') === '1', models: list('models'), batches: list('batches')?.map(Number), runs: num('runs'), warmup: num('warmup'), threads: num('threads'),
};
const w = window as unknown as { __benchResult?: Record<string, unknown>; __benchError?: string; __benchLog: string[] };
w.__benchLog = [];

function say(line: string): void {
  w.__benchLog.push(line);
  const el = $('log');
  el.textContent += line + '\n';
}

interface Row { model: string; batch: number; threads: number; variant: string; median_ms: number; spread: number; throughput_vs_1_thread?: number }
interface Gemm { M: number; K: number; N: number; threads: number; gflops: number; rme: number }

function show(r: Record<string, unknown>): void {
  const tb = $('table').querySelector('tbody')!;
  const esc = (s: unknown) => String(s).replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
  let html = '<tr><th>what</th><th>threads</th><th>median</th><th>spread</th><th>vs 1 thread</th></tr>';
  for (const g of r.gemm as Gemm[]) html += `<tr><td>GEMM ${g.M}×${g.K}×${g.N}</td><td class="num">${g.threads}</td><td class="num">${g.gflops.toFixed(1)} GFLOP/s</td><td class="num">±${g.rme.toFixed(1)}%</td><td></td></tr>`;
  for (const x of r.results as Row[]) {
    html += `<tr><td>${esc(x.model)} ${esc(x.variant)}, batch ${x.batch}</td><td class="num">${x.threads}</td><td class="num">${x.median_ms.toFixed(2)} ms</td>` +
      `<td class="num">${(100 * x.spread).toFixed(1)}%</td><td class="num">${x.throughput_vs_1_thread !== undefined ? `${x.throughput_vs_1_thread.toFixed(2)}x` : ''}</td></tr>`;
  }
  tb.innerHTML = html;
  const c = r.checks as Record<string, { what?: string; ratio?: number; limit?: string; pass: boolean | null; reason?: string }>;
  $('checks').textContent = Object.entries(c).filter(([k]) => k !== 'all_pass')
    .map(([, v]) => (v.pass === null ? `n/a: ${v.reason}` : `${v.what}: ${v.ratio} (${v.limit}) ${v.pass ? 'pass' : 'FAIL'}`)).join(' · ');
  const blob = new Blob([JSON.stringify(r, null, 1) + '\n'], { type: 'application/json' });
  const a = $('download') as HTMLAnchorElement;
  const env = r.env as { engine?: string };
  a.href = URL.createObjectURL(blob);
  a.download = `caitjs-bench-${(env.engine ?? 'browser').toLowerCase()}${req.quick ? '-quick' : ''}.json`;
  a.hidden = false;
}

function start(): void {
  ($('start') as HTMLButtonElement).disabled = true;
  document.body.dataset.state = 'running';
  say(`${req.quick ? 'quick' : 'full'} run; cross-origin isolated: ${crossOriginIsolated}`);
  const worker = new Worker('bench-worker.js', { type: 'module' });
  worker.onmessage = (ev: MessageEvent<{ log?: string; result?: Record<string, unknown>; error?: string }>) => {
    if (ev.data.log !== undefined) say(ev.data.log);
    if (ev.data.result) {
      w.__benchResult = ev.data.result;
      show(ev.data.result);
      say('done');
      document.body.dataset.state = 'done';
      worker.terminate();
    }
    if (ev.data.error) {
      w.__benchError = ev.data.error;
      say(`error: ${ev.data.error}`);
      document.body.dataset.state = 'error';
      worker.terminate();
    }
  };
  worker.onerror = (e) => { w.__benchError = `worker failed: ${e.message}`; say(w.__benchError); document.body.dataset.state = 'error'; };
  worker.postMessage(req);
}

$('start').addEventListener('click', start);
document.body.dataset.state = 'ready';
if (q.get('auto') !== '0') start();
