// cait plot: SVG figures for the README.
//   --log RUN/log.jsonl[,OTHER/log.jsonl ...]   training curves: one panel per
//       metric (default loss and lr, plus any accuracy field the log has;
//       --metrics loss,lr,imagesPerSec,... to choose), one line per run, per
//       epoch (--x step for steps). A run directory stands for its log.jsonl.
//       Where a resumed run logged an epoch twice, the later line wins.
//   --tradeoff results.json[,more.json]   accuracy against latency (--x
//       latency, median with p10-p90 whiskers when known) or MACs (--x macs),
//       one point per model, the Pareto front dashed. Input: the JSON line of
//       `cait demo --json` ({"models": [{label, accuracy, macs, median_ms, ...}]},
//       also the whole captured stdout) or a list of {label, accuracy, median_ms}.
import { existsSync, statSync } from 'node:fs';
import { readInputText } from '../io/input.js';
import { writeFileAtomic } from '../io/output.js';
import { basename, dirname, join } from 'node:path';
import { JSON_FLAG, UsageError, command, type Flags } from './flags.js';
import { checkOutputFlag, emitJson } from './common.js';
import { Svg, PALETTE, formatTick, linearScale, niceDomain } from '../util/svg.js';
import { confusionSvg, readConfusion } from './folder.js';

// ------------------------------------------------------------ training curves

export interface Run { name: string; rows: Array<Record<string, number>> }

/** Reads a log (JSON Lines of numeric fields); a bad line is an error naming file and line. */
export function readLog(path: string): Run {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'log.jsonl') : path;
  const rows: Array<Record<string, number>> = [];
  readInputText(file, 'training log', 256 * 2 ** 20).split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let o: unknown;
    try { o = JSON.parse(line); } catch (e) { throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`); }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${file}:${i + 1}: not a JSON object`);
    const row: Record<string, number> = {};
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) if (typeof v === 'number' && Number.isFinite(v)) row[k] = v;
    rows.push(row);
  });
  if (!rows.length) throw new Error(`${file}: empty log`);
  const name = basename(file) === 'log.jsonl' ? basename(dirname(file)) : basename(file).replace(/\.jsonl?$/, '');
  return { name, rows };
}

const LABELS: Record<string, string> = {
  loss: 'training loss', lr: 'learning rate', imagesPerSec: 'images / s', seconds: 'seconds per epoch', gradNorm: 'gradient norm',
};

/** Default metrics: loss and lr, then any accuracy-like field present. */
export function defaultMetrics(runs: Run[]): string[] {
  const keys = new Set(runs.flatMap((r) => r.rows.flatMap((row) => Object.keys(row))));
  return ['loss', 'lr', ...[...keys].filter((k) => /acc/i.test(k)).sort()].filter((k) => keys.has(k));
}

export interface CurveOptions { metrics?: string[]; x?: string; title?: string; width?: number }

export function curvesSvg(runs: Run[], o: CurveOptions = {}): { svg: string; points: number } {
  const xKey = o.x ?? 'epoch';
  const metrics = o.metrics?.length ? o.metrics : defaultMetrics(runs);
  const keys = new Set(runs.flatMap((r) => r.rows.flatMap((row) => Object.keys(row))));
  if (!keys.has(xKey)) throw new Error(`the log has no '${xKey}' field (fields: ${[...keys].join(', ')})`);
  for (const m of metrics) if (!keys.has(m)) throw new Error(`the log has no numeric '${m}' field (fields: ${[...keys].join(', ')})`);
  if (!metrics.length) throw new Error(`nothing to plot: no loss, lr or accuracy fields (fields: ${[...keys].join(', ')}); pass --metrics`);

  // per run and metric: points by x, the last line for an x winning (a resumed run re-logs epochs)
  const series = runs.map((r) => metrics.map((m) => {
    const byX = new Map<number, number>();
    for (const row of r.rows) if (row[xKey] !== undefined && row[m] !== undefined) byX.set(row[xKey], row[m]);
    return [...byX].sort((a, b) => a[0] - b[0]);
  }));
  const all = series.flat(2);
  if (!all.length) throw new Error(`no line of the log has both '${xKey}' and ${metrics.map((m) => `'${m}'`).join(' or ')}`);

  const W = o.width ?? 720, panelH = 170, gap = 34, top = o.title ? 44 : 18, left = 78, right = 20, bottom = 44;
  const legendH = runs.length > 1 ? 22 : 0;
  const H = top + legendH + metrics.length * panelH + (metrics.length - 1) * gap + bottom;
  const svg = new Svg(W, H, { background: '#ffffff', title: o.title ?? `training curves: ${metrics.join(', ')}` });
  if (o.title) svg.text(W / 2, 26, o.title, { 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 600, fill: '#1d2330' });
  if (runs.length > 1) {
    let lx = left;
    runs.forEach((r, i) => {
      svg.line(lx, top + 8, lx + 22, top + 8, { stroke: PALETTE[i % PALETTE.length], 'stroke-width': 2.5 });
      svg.text(lx + 28, top + 12, r.name, { fill: '#1d2330' });
      lx += 40 + 7.5 * r.name.length;
    });
  }
  const xs = all.map((p) => p[0]);
  const xd = niceDomain(Math.min(...xs), Math.max(...xs), 8);
  const xPix = linearScale(xd.lo, xd.hi, left, W - right);
  metrics.forEach((m, k) => {
    const y0 = top + legendH + k * (panelH + gap), y1 = y0 + panelH;
    const ys = series.flatMap((s) => s[k].map((p) => p[1]));
    const yd = niceDomain(Math.min(...ys), Math.max(...ys), 4);
    const yPix = linearScale(yd.lo, yd.hi, y1, y0);
    svg.rect(left, y0, W - right - left, panelH, { fill: '#fafbfc', stroke: '#d6dbe3' });
    for (const t of yd.ticks) {
      svg.line(left, yPix(t), W - right, yPix(t), { stroke: '#e6e9ef' });
      svg.text(left - 6, yPix(t) + 4, formatTick(t, yd.step), { 'text-anchor': 'end', fill: '#5b6475', 'font-size': 11 });
    }
    for (const t of xd.ticks) {
      svg.line(xPix(t), y1, xPix(t), y1 + 4, { stroke: '#8a93a3' });
      if (k === metrics.length - 1 || metrics.length === 1) svg.text(xPix(t), y1 + 17, formatTick(t, xd.step), { 'text-anchor': 'middle', fill: '#5b6475', 'font-size': 11 });
    }
    svg.text(18, (y0 + y1) / 2, LABELS[m] ?? m, { transform: `rotate(-90 18 ${(y0 + y1) / 2})`, 'text-anchor': 'middle', fill: '#1d2330', 'font-size': 12 });
    series.forEach((s, r) => {
      const pts = s[k].map(([x, y]) => [xPix(x), yPix(y)] as [number, number]);
      if (!pts.length) return;   // this run did not log this metric
      const colour = PALETTE[r % PALETTE.length];
      svg.polyline(pts, { stroke: colour, 'stroke-width': 2, 'stroke-linejoin': 'round', 'data-run': runs[r].name, 'data-metric': m });
      if (pts.length <= 60) for (const [x, y] of pts) svg.circle(x, y, 2.8, { fill: colour });
    });
  });
  svg.text((left + W - right) / 2, H - 10, xKey, { 'text-anchor': 'middle', fill: '#1d2330' });
  return { svg: svg.toString(), points: series.flat(2).length };
}

// ------------------------------------------------------------ accuracy vs latency

export interface TradeoffPoint { label: string; accuracy: number; median_ms?: number; p10_ms?: number; p90_ms?: number; macs?: number }

/** Points from `cait demo --json` output (or a list); accuracy becomes a percentage. */
export function readTradeoff(file: string): TradeoffPoint[] {
  const text = readInputText(file, 'results file', 64 * 2 ** 20).trim();
  let data: unknown;
  try { data = JSON.parse(text); } catch {
    // a captured stdout: the JSON object is its last line
    const last = text.split('\n').reverse().find((l) => l.trim().startsWith('{') || l.trim().startsWith('['));
    try { data = JSON.parse(last ?? ''); } catch { throw new Error(`${file}: no JSON (expected the output of \`cait demo --json\` or a list of {label, accuracy, median_ms})`); }
  }
  const list = Array.isArray(data) ? data : (data as { models?: unknown })?.models;
  if (!Array.isArray(list) || !list.length) throw new Error(`${file}: expected {"models": [...]} or a non-empty list`);
  const pts = list.map((m: Record<string, unknown>, i): TradeoffPoint => {
    const label = String(m.label ?? m.name ?? m.file ?? `model ${i + 1}`);
    const n = (k: string) => (typeof m[k] === 'number' && Number.isFinite(m[k]) ? (m[k] as number) : undefined);
    const accuracy = n('accuracy') ?? n('acc');
    if (accuracy === undefined) throw new Error(`${file}: entry ${i + 1} ('${label}') has no numeric accuracy`);
    return { label, accuracy, median_ms: n('median_ms') ?? n('latency_ms') ?? n('ms'), p10_ms: n('p10_ms'), p90_ms: n('p90_ms'), macs: n('macs') };
  });
  // fractions (demo's 0.91) or percentages (91.2): one rule for the whole file
  if (pts.every((p) => p.accuracy <= 1)) for (const p of pts) p.accuracy *= 100;
  return pts;
}

/** Indices of points no other point beats on both axes (lower x, higher accuracy), by x. */
export function paretoFront(pts: Array<{ x: number; y: number }>): number[] {
  const order = pts.map((_, i) => i).sort((a, b) => pts[a].x - pts[b].x || pts[b].y - pts[a].y);
  const front: number[] = [];
  let best = -Infinity;
  for (const i of order) if (pts[i].y > best) { front.push(i); best = pts[i].y; }
  return front;
}

export function tradeoffSvg(points: TradeoffPoint[], o: { x?: 'latency' | 'macs'; title?: string; width?: number } = {}): { svg: string; points: number } {
  const axis = o.x ?? 'latency';
  const xOf = (p: TradeoffPoint) => (axis === 'macs' ? (p.macs ?? NaN) / 1e6 : p.median_ms ?? NaN);
  const bad = points.filter((p) => !Number.isFinite(xOf(p)));
  if (bad.length) throw new Error(`${bad.map((p) => `'${p.label}'`).join(', ')}: no ${axis === 'macs' ? 'macs' : 'median_ms (latency)'}`);
  const W = o.width ?? 720, H = 440, left = 70, right = 30, top = o.title ? 48 : 22, bottom = 52;
  const xs = points.flatMap((p) => (axis === 'latency' ? [xOf(p), p.p10_ms ?? xOf(p), p.p90_ms ?? xOf(p)] : [xOf(p)]));
  const ys = points.map((p) => p.accuracy);
  const xd = niceDomain(Math.min(0, ...xs), Math.max(...xs) * 1.08, 6);
  const ySpan = Math.max(...ys) - Math.min(...ys);
  const yd = niceDomain(Math.min(...ys) - Math.max(0.5, ySpan * 0.25), Math.min(100, Math.max(...ys) + Math.max(0.5, ySpan * 0.25)), 5);
  const xPix = linearScale(xd.lo, xd.hi, left, W - right), yPix = linearScale(yd.lo, yd.hi, H - bottom, top);
  const title = o.title ?? `accuracy vs ${axis === 'macs' ? 'MACs' : 'latency'}`;
  const svg = new Svg(W, H, { background: '#ffffff', title });
  if (o.title) svg.text(W / 2, 28, o.title, { 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 600, fill: '#1d2330' });
  svg.rect(left, top, W - right - left, H - bottom - top, { fill: '#fafbfc', stroke: '#d6dbe3' });
  for (const t of yd.ticks) {
    svg.line(left, yPix(t), W - right, yPix(t), { stroke: '#e6e9ef' });
    svg.text(left - 6, yPix(t) + 4, formatTick(t, yd.step), { 'text-anchor': 'end', fill: '#5b6475', 'font-size': 11 });
  }
  for (const t of xd.ticks) {
    svg.line(xPix(t), top, xPix(t), H - bottom, { stroke: '#eef0f4' });
    svg.text(xPix(t), H - bottom + 17, formatTick(t, xd.step), { 'text-anchor': 'middle', fill: '#5b6475', 'font-size': 11 });
  }
  svg.text((left + W - right) / 2, H - 12, axis === 'macs' ? 'MMACs per image' : 'latency per image, ms (median; whiskers p10-p90)', { 'text-anchor': 'middle', fill: '#1d2330' });
  svg.text(18, (top + H - bottom) / 2, 'test accuracy, %', { transform: `rotate(-90 18 ${(top + H - bottom) / 2})`, 'text-anchor': 'middle', fill: '#1d2330' });
  const xy = points.map((p) => ({ x: xOf(p), y: p.accuracy }));
  const front = paretoFront(xy);
  if (front.length > 1) svg.polyline(front.map((i) => [xPix(xy[i].x), yPix(xy[i].y)] as [number, number]), { stroke: '#8a93a3', 'stroke-width': 1.5, 'stroke-dasharray': '5 4' });
  // labels: two lines beside each point, placed greedily where they overlap no other label, point or whisker
  type Box = [number, number, number, number];   // x0, y0, x1, y1
  const hits = (a: Box, b: Box) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
  const taken: Box[] = points.map((p, i): Box => {
    const x = xPix(xy[i].x), y = yPix(p.accuracy);
    const w0 = axis === 'latency' && p.p10_ms !== undefined ? xPix(p.p10_ms) : x - 6, w1 = axis === 'latency' && p.p90_ms !== undefined ? xPix(p.p90_ms) : x + 6;
    return [Math.min(w0, x - 6), y - 6, Math.max(w1, x + 6), y + 6];
  });
  points.forEach((p, i) => {
    const c = PALETTE[i % PALETTE.length], x = xPix(xy[i].x), y = yPix(p.accuracy);
    if (axis === 'latency' && p.p10_ms !== undefined && p.p90_ms !== undefined) {
      svg.line(xPix(p.p10_ms), y, xPix(p.p90_ms), y, { stroke: c, 'stroke-width': 1.5 });
      for (const e of [p.p10_ms, p.p90_ms]) svg.line(xPix(e), y - 4, xPix(e), y + 4, { stroke: c, 'stroke-width': 1.5 });
    }
    svg.circle(x, y, 6, { fill: c, stroke: '#fff', 'stroke-width': 1.5, 'data-label': p.label });
  });
  points.forEach((p, i) => {
    const x = xPix(xy[i].x), y = yPix(p.accuracy), own = taken[i];
    const detail = axis === 'macs' ? `${p.accuracy.toFixed(2)}%, ${xy[i].x.toFixed(2)} M` : `${p.accuracy.toFixed(2)}%, ${xy[i].x.toFixed(2)} ms`;
    const w = Math.max(7.2 * p.label.length, 6.2 * detail.length), h = 30;
    const preferLeft = x > (left + W - right) / 2;
    const sides = preferLeft ? ['left', 'right'] : ['right', 'left'];
    const cands: Array<{ box: Box; anchor: 'start' | 'end'; tx: number; ty: number }> = [];
    for (const dy of [0, -24, 24, -44, 44]) for (const side of sides) {
      const tx = side === 'right' ? (dy ? x - 4 : own[2] + 8) : (dy ? x + 4 : own[0] - 8);
      const top0 = y + dy - 13;
      const box: Box = side === 'right' ? [tx, top0, tx + w, top0 + h] : [tx - w, top0, tx, top0 + h];
      cands.push({ box, anchor: side === 'right' ? 'start' : 'end', tx, ty: y + dy });
    }
    const inside = (b: Box) => b[0] >= left + 2 && b[2] <= W - right - 2 && b[1] >= top + 2 && b[3] <= H - bottom - 2;
    const pick = cands.find((k) => inside(k.box) && !taken.some((t) => hits(t, k.box))) ?? cands.find((k) => inside(k.box)) ?? cands[0];
    taken.push(pick.box);
    svg.text(pick.tx, pick.ty - 1, p.label, { 'text-anchor': pick.anchor, 'font-weight': 600, fill: '#1d2330' });
    svg.text(pick.tx, pick.ty + 13, detail, { 'text-anchor': pick.anchor, fill: '#5b6475', 'font-size': 11 });
  });
  return { svg: svg.toString(), points: points.length };
}

// ------------------------------------------------------------ command

const PLOT_FLAGS = {
  log: { type: 'string', value: 'RUN/log.jsonl[,...]', help: 'training logs (or run directories), comma-separated: curves per epoch' },
  tradeoff: { type: 'string', value: 'results.json[,...]', help: 'the output of `cait demo --json` (or a list of {label, accuracy, median_ms}): accuracy vs latency' },
  confusion: { type: 'string', value: 'eval.json', help: 'the output of `cait eval --data DIR --json`: its confusion matrix as a heat map' },
  out: { type: 'string', value: 'FILE.svg', help: 'the SVG to write (required)' },
  metrics: { type: 'string', value: 'loss,lr,...', help: 'fields to plot from the log', defaultText: 'loss, lr and any accuracy field' },
  x: { type: 'string', value: 'FIELD', help: 'x axis: a log field (epoch, step) for --log; latency or macs for --tradeoff', defaultText: 'epoch / latency' },
  title: { type: 'string', value: 'TEXT', help: 'a title above the figure' },
  width: { type: 'int', min: 200, max: 4000, help: 'width in pixels', defaultText: '720' },
  ...JSON_FLAG,
} as const;

export const plotCommand = command({
  name: 'plot',
  summary: 'SVG figures: training curves from log.jsonl, or accuracy against latency or MACs',
  usage: ['--log runs/fmnist/log.jsonl --out docs/curves.svg', '--confusion eval.json --out confusion.svg', '--log runs/a,runs/b --metrics loss,gradNorm --x step --out curves.svg', '--tradeoff results.json --x macs --out tradeoff.svg'],
  flags: PLOT_FLAGS,
  run: plotRun,
});

function plotRun(f: Flags<typeof PLOT_FLAGS>): void {
  const { log, tradeoff, confusion, out, width } = f;
  if ([log, tradeoff, confusion].filter(Boolean).length !== 1) throw new UsageError('give one of --log (training curves), --tradeoff (accuracy vs latency) or --confusion (confusion matrix)');
  if (!out) throw new UsageError('missing --out FILE.svg');
  const list = (s: string) => s.split(',').map((v) => v.trim()).filter(Boolean);
  for (const [flag, v] of [['log', log], ['tradeoff', tradeoff], ['metrics', f.metrics]] as const)
    if (v !== undefined && !list(v).length) throw new UsageError(`--${flag} names nothing, got '${v}': give one or more, comma-separated`);
  const logFile = (p: string) => (existsSync(p) && statSync(p).isDirectory() ? join(p, 'log.jsonl') : p);
  const inputs = [...list(log ?? '').map((p) => ({ flag: '--log', path: logFile(p) })), ...list(tradeoff ?? '').map((p) => ({ flag: '--tradeoff', path: p })), ...(confusion ? [{ flag: '--confusion', path: confusion }] : [])];
  checkOutputFlag('out', out, inputs);
  let r: { svg: string; points: number };
  if (confusion) r = confusionSvg(readConfusion(confusion), { title: f.title, width });
  else if (log) {
    const runs = list(log).map(readLog);
    r = curvesSvg(runs, { metrics: f.metrics ? list(f.metrics) : undefined, x: f.x, title: f.title, width });
  } else {
    const x = f.x ?? 'latency';
    if (x !== 'latency' && x !== 'macs') throw new UsageError(`--x for --tradeoff is latency or macs, got '${x}'`);
    const pts = list(tradeoff!).flatMap(readTradeoff);
    r = tradeoffSvg(pts, { x, title: f.title, width });
  }
  writeFileAtomic(out, Buffer.from(r.svg, 'utf8'), inputs);
  if (!f.json) console.log(`wrote ${out} (${r.points} points)`);
  emitJson(f, { out, kind: confusion ? 'confusion' : log ? 'curves' : 'tradeoff', points: r.points, bytes: Buffer.byteLength(r.svg) });
}
