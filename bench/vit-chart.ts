// The chart of bench/vit.ts's results (docs/vit-bench.svg), drawn from the
// JSON alone, so it can be redrawn without re-running the benchmark:
//   node --import tsx bench/vit-chart.ts [bench/results/vit.json] [docs/vit-bench.svg]
// One panel per (model, batch), its own millisecond scale; in each, one group
// of bars per thread count, one bar per runtime (median, with a p10-p90
// whisker), labelled with its time over caitjs dense at that thread count
// (below 1: faster than this engine). The issue's checks are listed under the
// panels with the measured ratios.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Svg, PALETTE, formatTick, linearScale, niceDomain } from '../src/util/svg.js';

export interface VitBenchJson {
  what: string;
  env: Record<string, unknown>;
  config: { models: string[]; batches: number[]; threads: number[]; runs: number; warmup: number; [k: string]: unknown };
  notes: string[];
  models: Record<string, unknown>;
  checks: Record<string, unknown>;
  verify: Array<Record<string, unknown>>;
  results: Array<Record<string, unknown>>;
  samples_ms: Record<string, number[]>;
}

const ORDER = ['caitjs', 'caitjs-cait', 'ort-web', 'ort-node', 'tfjs-wasm', 'caitjs-int8', 'caitjs-cait-int8', 'ort-web-int8', 'ort-node-int8'];
const NAMES: Record<string, string> = {
  caitjs: 'caitjs (dense)', 'caitjs-cait': 'caitjs CAIT-compressed', 'ort-web': 'onnxruntime-web (wasm)',
  'ort-node': 'onnxruntime-node (native)', 'tfjs-wasm': 'tfjs-backend-wasm',
  'caitjs-int8': 'caitjs int8', 'caitjs-cait-int8': 'caitjs CAIT int8', 'ort-web-int8': 'onnxruntime-web int8', 'ort-node-int8': 'onnxruntime-node int8',
};
const COLOURS: Record<string, string> = { caitjs: PALETTE[0], 'caitjs-cait': PALETTE[5], 'ort-web': PALETTE[1], 'ort-node': PALETTE[4], 'tfjs-wasm': PALETTE[2],
  'caitjs-int8': PALETTE[3], 'caitjs-cait-int8': PALETTE[7], 'ort-web-int8': PALETTE[6], 'ort-node-int8': '#8c8c8c' };
const MODEL_NAMES: Record<string, string> = { tiny: 'DeiT-Tiny', small: 'DeiT-Small' };

type Row = { model: string; batch: number; threads: number; runtime: string; median_ms: number; p10_ms: number; p90_ms: number; time_vs_caitjs: number };

export function vitChartSvg(j: VitBenchJson): string {
  const rows = j.results as unknown as Row[];
  const runtimes = ORDER.filter((r) => rows.some((q) => q.runtime === r));
  const threads = j.config.threads, panels: Array<{ model: string; batch: number }> = [];
  for (const model of j.config.models) for (const batch of j.config.batches) if (rows.some((r) => r.model === model && r.batch === batch)) panels.push({ model, batch });
  const cols = Math.min(2, j.config.batches.length), rowsN = Math.ceil(panels.length / cols);
  const W = 980, left = 64, right = 24, gapX = 56, gapY = 64, top = 126, panelH = 250;
  const panelW = (W - left - right - (cols - 1) * gapX) / cols;
  const checkLines = Object.entries(j.checks).filter(([k]) => k !== 'all_pass').map(([k, v]) => {
    const c = v as { what?: string; ratio?: number; limit?: string; pass: boolean | null; reason?: string; mac_ratio?: number };
    const verdict = c.pass === null ? 'not measured' : c.pass ? 'PASS' : 'FAIL';
    const text = `${verdict}  ${c.what ?? k}${c.ratio !== undefined ? ` = ${c.ratio} (limit ${c.limit}${c.mac_ratio !== undefined ? `; ${c.mac_ratio}x fewer MACs` : ''})` : c.reason ? `: ${c.reason}` : ''}`;
    return { text, colour: c.pass === false ? '#b3261e' : c.pass ? '#1b6e3a' : '#5b6475' };
  });
  const noteLines = j.notes.flatMap((n) => wrap(`note: ${n}`, 150));
  const H = top + rowsN * panelH + (rowsN - 1) * gapY + 56 + 18 * (checkLines.length + 1) + 15 * noteLines.length + 8;
  const svg = new Svg(W, H, { background: '#ffffff', title: 'DeiT latency by runtime, batch and threads' });
  svg.text(W / 2, 24, 'DeiT inference latency: caitjs against other runtimes (median ms, lower is better)', { 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 600, fill: '#1d2330' });
  const env = j.env;
  svg.text(W / 2, 44, `${env.cpu} (${env.cores} cores), Node ${env.node}, ${String(env.date).slice(0, 10)}; load average ${env.loadavg} -> ${env.loadavgAfter}; ` +
    `${j.config.runs} interleaved rounds after ${j.config.warmup} warm-up; same weights in every runtime`, { 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6475' });
  // legend, centred on one line
  const widths = runtimes.map((r) => 30 + 6.4 * (NAMES[r] ?? r).length);
  let lx = (W - widths.reduce((a, b) => a + b, 0)) / 2;
  runtimes.forEach((r, k) => {
    svg.rect(lx, 58, 12, 12, { fill: COLOURS[r] });
    svg.text(lx + 17, 68, NAMES[r] ?? r, { fill: '#1d2330', 'font-size': 11.5 });
    lx += widths[k];
  });
  svg.text(W / 2, 88, 'above each bar: median ms, and its time over caitjs dense at the same thread count (below 1: faster than caitjs); whiskers p10-p90',
    { 'text-anchor': 'middle', fill: '#5b6475', 'font-size': 10.5 });
  panels.forEach(({ model, batch }, i) => {
    const x0 = left + (i % cols) * (panelW + gapX), y0 = top + Math.floor(i / cols) * (panelH + gapY), y1 = y0 + panelH;
    const mine = rows.filter((r) => r.model === model && r.batch === batch);
    const yd = niceDomain(0, Math.max(...mine.map((r) => r.p90_ms ?? r.median_ms)) * 1.12, 5);
    const y = linearScale(0, yd.hi, y1, y0);
    const cait = (j.models[model] as { cait?: { merge?: string; mac_ratio?: number } } | undefined)?.cait;
    const caitNote = cait && mine.some((r) => r.runtime === 'caitjs-cait') ? `  (CAIT ${cait.merge || 'no merge'}: ${cait.mac_ratio?.toFixed(2)}x fewer MACs)` : '';
    svg.text(x0 + panelW / 2, y0 - 10, `${MODEL_NAMES[model] ?? model}, batch ${batch}${caitNote}`, { 'text-anchor': 'middle', 'font-weight': 600, fill: '#1d2330' });
    svg.rect(x0, y0, panelW, panelH, { fill: '#fafbfc', stroke: '#d6dbe3' });
    for (const t of yd.ticks) {
      svg.line(x0, y(t), x0 + panelW, y(t), { stroke: '#e6e9ef' });
      svg.text(x0 - 6, y(t) + 4, formatTick(t, yd.step), { 'text-anchor': 'end', fill: '#5b6475', 'font-size': 11 });
    }
    svg.text(x0 - 46, (y0 + y1) / 2, 'ms', { transform: `rotate(-90 ${x0 - 46} ${(y0 + y1) / 2})`, 'text-anchor': 'middle', fill: '#5b6475', 'font-size': 11 });
    const groupW = panelW / threads.length, barW = Math.min(34, (groupW - 24) / runtimes.length);
    threads.forEach((t, g) => {
      const gx = x0 + g * groupW + (groupW - barW * runtimes.length) / 2;
      svg.text(x0 + g * groupW + groupW / 2, y1 + 18, t === 1 ? '1 thread' : `${t} threads`, { 'text-anchor': 'middle', fill: '#1d2330', 'font-size': 12 });
      runtimes.forEach((rt, k) => {
        const r = mine.find((q) => q.runtime === rt && q.threads === t);
        const bx = gx + k * barW;
        if (!r) { svg.text(bx + barW / 2, y1 - 4, 'n/a', { 'text-anchor': 'middle', fill: '#8a93a3', 'font-size': 9 }); return; }
        svg.rect(bx + 1, y(r.median_ms), barW - 2, y1 - y(r.median_ms), { fill: COLOURS[rt], 'data-runtime': rt, 'data-threads': t, 'data-median-ms': r.median_ms });
        if (r.p10_ms !== undefined && r.p90_ms !== undefined) {
          const cx = bx + barW / 2;
          svg.line(cx, y(r.p10_ms), cx, y(r.p90_ms), { stroke: '#1d2330', 'stroke-width': 1 });
          svg.line(cx - 3, y(r.p90_ms), cx + 3, y(r.p90_ms), { stroke: '#1d2330', 'stroke-width': 1 });
        }
        const ty = Math.min(y(r.median_ms), y(r.p90_ms ?? r.median_ms)) - 4;
        svg.text(bx + barW / 2, ty, `${r.median_ms < 100 ? r.median_ms.toFixed(1) : r.median_ms.toFixed(0)}`, { 'text-anchor': 'middle', fill: '#1d2330', 'font-size': 9.5 });
        svg.text(bx + barW / 2, ty - 11, rt === 'caitjs' ? '' : `x${r.time_vs_caitjs.toFixed(2)}`, { 'text-anchor': 'middle', fill: '#5b6475', 'font-size': 9 });
      });
    });
  });
  let cy = top + rowsN * panelH + (rowsN - 1) * gapY + 44;
  svg.text(left, cy, 'Checks (issue #6), this run:', { fill: '#1d2330', 'font-size': 11.5, 'font-weight': 600 });
  for (const c of checkLines) { cy += 18; svg.text(left + 8, cy, c.text, { fill: c.colour, 'font-size': 11 }); }
  if (noteLines.length) cy += 4;
  for (const n of noteLines) { cy += 15; svg.text(left + 8, cy, n, { fill: '#5b6475', 'font-size': 10 }); }
  return svg.toString();
}

/** Splits text at spaces into lines of at most `n` characters. */
function wrap(text: string, n: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > n) { out.push(line); line = '  ' + w; } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const here = dirname(fileURLToPath(import.meta.url));
  const src = resolve(process.argv[2] ?? `${here}/results/vit.json`), out = resolve(process.argv[3] ?? `${here}/../docs/vit-bench.svg`);
  writeFileSync(out, vitChartSvg(JSON.parse(readFileSync(src, 'utf8')) as VitBenchJson));
  console.log(`wrote ${out} from ${src}`);
}
