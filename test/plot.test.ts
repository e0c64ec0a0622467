// cait plot and the SVG writer: well-formed SVG, the right series and points,
// tick arithmetic, input formats (training logs, `cait demo --json` output)
// and errors that name the file and line.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Svg, esc, num, niceDomain, formatTick, linearScale, tickStep } from '../src/util/svg.js';
import { readLog, curvesSvg, readTradeoff, tradeoffSvg, paretoFront, defaultMetrics } from '../src/cli/plot.js';
import { cait } from './cait.js';

const test = suite('plot');
const dir = mkdtempSync(join(tmpdir(), 'cait-plot-'));

/** Well-formedness: every tag closed in order, attributes quoted, no stray '&' or '<'. */
function checkXml(s: string): void {
  assert.ok(s.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'), 'SVG header');
  const body = s.replace(/^<\?xml[^>]*\?>/, '');
  const stack: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/g;
  let m: RegExpExecArray | null, at = 0;
  while ((m = re.exec(body))) {
    assert.is(m.index, at, `unparsable XML near: ${body.slice(at, at + 80)}`);
    at = re.lastIndex;
    const [, closing, tag, , self, text] = m;
    if (text !== undefined) { assert.not.match(text, /&(?!(amp|lt|gt|quot|#39);)/, `raw & in text: ${text}`); continue; }
    if (closing) assert.is(stack.pop(), tag, `</${tag}> closes the wrong element`);
    else if (!self) stack.push(tag);
  }
  assert.is(at, body.length, 'trailing unparsable text');
  assert.equal(stack, [], `unclosed: ${stack.join(', ')}`);
}

function log(name: string, rows: object[], extra = ''): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'log.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n' + extra);
  return join(d, 'log.jsonl');
}
const epochs = (n: number, f = 1) => Array.from({ length: n }, (_, i) => ({
  epoch: i + 1, step: (i + 1) * 469, loss: f * (1.6 / (i + 1) + 0.5), lr: 1.5e-3 * Math.cos((i / n) * Math.PI / 2), imagesPerSec: 200 + i, seconds: 300, gradNorm: 1.2,
}));

test('svg writer: escaping, numbers, nesting, well-formed output', () => {
  assert.is(esc(`a<b & "c" 'd'>`), 'a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;');
  assert.is(num(1.23456), '1.23');
  assert.is(num(-0.004), '0');
  assert.throws(() => num(NaN), /non-finite/);
  const s = new Svg(100, 50, { background: '#fff', title: 'a & b' });
  s.open('g', { class: 'x' }).text(5, 10, '<label> & more', { 'font-weight': 600, hidden: false }).polyline([[0, 0], [1.005, 2]], { stroke: 'red' }).close('g');
  const out = s.toString();
  checkXml(out);
  assert.ok(out.includes('&lt;label&gt; &amp; more'));
  assert.ok(out.includes('points="0,0 1.01,2"') || out.includes('points="0,0 1,2"'));
  assert.not.ok(out.includes('hidden'), 'false attributes are left out');
  assert.throws(() => new Svg(1, 1).open('g').toString(), /left open/);
  assert.throws(() => new Svg(1, 1).close('g'), /without an open/);
});

test('ticks: nice steps, domains that cover the data, labels', () => {
  assert.is(tickStep(0, 10, 5), 2);
  assert.is(tickStep(0, 1, 4), 0.2);
  const d = niceDomain(0.37, 1.63, 5);
  assert.ok(d.lo <= 0.37 && d.hi >= 1.63 && d.ticks.length >= 4 && d.ticks.length <= 10, JSON.stringify(d));
  for (let i = 1; i < d.ticks.length; i++) assert.ok(Math.abs(d.ticks[i] - d.ticks[i - 1] - d.step) < 1e-9);
  assert.equal(niceDomain(1, 11, 8).ticks, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const flat = niceDomain(5, 5);
  assert.ok(flat.lo < 5 && flat.hi > 5, 'a constant series gets a non-empty domain');
  assert.is(formatTick(0.4, 0.2), '0.4');
  assert.is(formatTick(12, 2), '12');
  assert.is(formatTick(1.2e-3, 2e-4), '1.2e-3');
  assert.is(formatTick(1e-3, 2e-4), '1e-3');
  assert.is(formatTick(0, 2e-4), '0');
  const s = linearScale(0, 10, 100, 200);
  assert.is(s(5), 150);
  assert.is(linearScale(3, 3, 0, 10)(3), 5);
});

test('curves: one polyline per run and metric, a point per epoch, accuracy fields by default', () => {
  const a = log('runA', epochs(12)), b = log('runB', epochs(8, 1.1).map((r) => ({ ...r, valAccuracy: 0.8 + r.epoch / 100 })));
  const runs = [readLog(a), readLog(join(dir, 'runB'))];   // a run directory stands for its log.jsonl
  assert.is(runs[0].name, 'runA');
  assert.equal(defaultMetrics(runs), ['loss', 'lr', 'valAccuracy']);
  const { svg, points } = curvesSvg(runs, { title: 'two runs' });
  checkXml(svg);
  assert.is(points, 12 * 2 + 8 * 3);
  const lines = [...svg.matchAll(/<polyline points="([^"]*)"[^>]*data-run="([^"]*)" data-metric="([^"]*)"/g)];
  assert.is(lines.length, 5, 'runA: loss, lr; runB: loss, lr, valAccuracy');
  const la = lines.find((l) => l[2] === 'runA' && l[3] === 'loss')!;
  const pts = la[1].split(' ').map((p) => p.split(',').map(Number));
  assert.is(pts.length, 12);
  for (let i = 1; i < pts.length; i++) {
    assert.ok(pts[i][0] > pts[i - 1][0], 'x increases with the epoch');
    assert.ok(pts[i][1] > pts[i - 1][1], 'a falling loss is drawn falling (SVG y grows downwards)');
  }
  assert.ok(svg.includes('>runB<') && svg.includes('>two runs<'), 'legend and title');
  const three = curvesSvg([runs[0]], { metrics: ['loss', 'lr', 'imagesPerSec'], x: 'step' });
  assert.is([...three.svg.matchAll(/<polyline/g)].length, 3);
  assert.ok(three.svg.includes('images / s'));
});

test('curves: a resumed run that re-logs epochs keeps the later lines', () => {
  const rows = [...epochs(5), ...epochs(5).slice(3).map((r) => ({ ...r, loss: 0.1 }))];
  const { points } = curvesSvg([readLog(log('resumed', rows))], { metrics: ['loss'] });
  assert.is(points, 5);
});

test('logs: errors name the file and line, and the fields there are', () => {
  const bad = log('bad', epochs(3), '{"epoch": 4, "loss": \n');
  assert.throws(() => readLog(bad), (e: Error) => e.message.includes('bad/log.jsonl:4: not JSON'));
  assert.throws(() => readLog(join(dir, 'nope.jsonl')), /not found/);
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '\n\n');
  assert.throws(() => readLog(empty), /empty log/);
  const r = readLog(log('ok', epochs(3)));
  assert.throws(() => curvesSvg([r], { metrics: ['accuracy'] }), (e: Error) => e.message.includes("no numeric 'accuracy' field") && e.message.includes('imagesPerSec'));
  assert.throws(() => curvesSvg([r], { x: 'iteration' }), /no 'iteration' field/);
});

const DEMO = {
  models: [
    { label: 'dense ViT', file: 'fmnist-dense.safetensors', accuracy: 0.9012, n: 10000, macs: 22480256, params: 305994, merge: '', median_ms: 1.9, p10_ms: 1.8, p90_ms: 2.1, speedup: 1, mac_ratio: 1 },
    { label: 'ATME (merging)', file: 'fmnist-atme.safetensors', accuracy: 0.8934, n: 10000, macs: 11232640, params: 305994, merge: 'h@1,v@3', median_ms: 1.2, p10_ms: 1.1, p90_ms: 1.4, speedup: 1.58, mac_ratio: 2 },
    { label: 'CAIT (ATME+CDCP)', file: 'fmnist-cait.safetensors', accuracy: 0.8851, n: 10000, macs: 7275248, params: 188250, merge: 'h@1,v@3', median_ms: 0.9, p10_ms: 0.85, p90_ms: 1.0, speedup: 2.1, mac_ratio: 3.1 },
  ],
};

test('tradeoff: `cait demo --json` output (line or whole stdout) and plain lists', () => {
  const line = join(dir, 'demo.json'), stdout = join(dir, 'demo.out'), list = join(dir, 'list.json');
  writeFileSync(line, JSON.stringify(DEMO));
  writeFileSync(stdout, 'Loading Fashion-MNIST ...\nmodel  accuracy\n' + JSON.stringify(DEMO) + '\n');
  writeFileSync(list, JSON.stringify([{ label: 'pruned', accuracy: 88.0, median_ms: 1.3 }, { label: 'dense', accuracy: 90.1, median_ms: 1.9 }]));
  const a = readTradeoff(line), b = readTradeoff(stdout), c = readTradeoff(list);
  assert.equal(a, b);
  assert.is(a.length, 3);
  assert.ok(Math.abs(a[0].accuracy - 90.12) < 1e-9, 'fractions become percentages');
  assert.is(c[0].accuracy, 88, 'percentages stay');
  const { svg, points } = tradeoffSvg([...a, ...c], { title: 'accuracy vs latency' });
  checkXml(svg);
  assert.is(points, 5);
  for (const p of [...a, ...c]) assert.ok(svg.includes(`data-label="${esc(p.label)}"`), p.label);
  assert.ok(svg.includes('stroke-dasharray'), 'the Pareto front is drawn');
  const macs = tradeoffSvg(a, { x: 'macs' });
  assert.ok(macs.svg.includes('MMACs per image'));
  assert.throws(() => tradeoffSvg(c, { x: 'macs' }), /no macs/);
  const noAcc = join(dir, 'noacc.json');
  writeFileSync(noAcc, JSON.stringify({ models: [{ label: 'x', median_ms: 1 }] }));
  assert.throws(() => readTradeoff(noAcc), /entry 1 \('x'\) has no numeric accuracy/);
  const garbage = join(dir, 'garbage.json');
  writeFileSync(garbage, 'hello\nworld\n');
  assert.throws(() => readTradeoff(garbage), /no JSON/);
});

test('pareto front: lower latency and higher accuracy win', () => {
  const pts = [{ x: 2, y: 90 }, { x: 1, y: 88 }, { x: 1.5, y: 87 }, { x: 0.5, y: 80 }, { x: 3, y: 89 }];
  assert.equal(paretoFront(pts), [3, 1, 0]);
});

/** `cait plot ...args` in-process (test/cait.ts); status is the exit code. */
const cli = async (...args: string[]) => { const r = await cait('plot', ...args); return { status: r.code, stdout: r.stdout, stderr: r.stderr }; };

test('cait plot: writes the SVGs, prints the JSON line, refuses bad usage', async () => {
  const logFile = log('cli', epochs(6)), out = join(dir, 'curves.svg');
  let r = await cli('--log', logFile, '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  checkXml(readFileSync(out, 'utf8'));
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(j, { out, kind: 'curves', points: 12, bytes: readFileSync(out).length });
  const demo = join(dir, 'demo2.json'), out2 = join(dir, 'tradeoff.svg');
  writeFileSync(demo, JSON.stringify(DEMO));
  r = await cli('--tradeoff', demo, '--out', out2);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*tradeoff\.svg \(3 points\)/);
  assert.ok(existsSync(out2));
  r = await cli('--out', out2);
  assert.is(r.status, 2);
  assert.match(r.stderr, /one of --log .*, --tradeoff .* or --confusion/);
  r = await cli('--log', logFile);
  assert.is(r.status, 2);
  assert.match(r.stderr, /missing --out/);
  r = await cli('--log', join(dir, 'missing.jsonl'), '--out', out);
  assert.is(r.status, 1);
  assert.match(r.stderr, /missing\.jsonl: not found/);
  r = await cli('--log', '/dev/zero', '--out', out);
  assert.is(r.status, 1);
  assert.match(r.stderr, /\/dev\/zero: is a device; the training log must be a regular file/);
  // a count of 1e308 drew its row's accuracy as 'Infinity%'
  const huge = join(dir, 'huge-confusion.json'), out3 = join(dir, 'huge-confusion.svg');
  for (const v of [1e308, 2 ** 53, -1, 1.5]) {
    writeFileSync(huge, JSON.stringify({ classes: ['a', 'b'], confusion: [[v, 1], [2, 3]] }));
    r = await cli('--confusion', huge, '--out', out3);
    assert.is(r.status, 1, `${v}: ${r.stderr}`);
    assert.match(r.stderr, /huge-confusion\.json: 'confusion' must be a square matrix of counts \(integers in 0\.\.2\^53-1\)/);
  }
  assert.not.ok(existsSync(out3));
});

test('cait plot --confusion: past 60 classes one pixel per cell in an embedded PNG (1000 classes: small, quick)', async () => {
  const K = 1000, confusion = Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => (i === j ? 50 : (i * 7 + j) % 97 === 0 ? 3 : 0)));
  const file = join(dir, 'eval1000.json'), out = join(dir, 'conf1000.svg');
  writeFileSync(file, JSON.stringify({ classes: confusion.map((_, i) => `c${i}`), confusion }));
  const r = await cli('--confusion', file, '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const svg = readFileSync(out, 'utf8');
  checkXml(svg);
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!), { out, kind: 'confusion', points: K * K, bytes: svg.length });
  assert.match(svg, /<image [^>]*width="1000" height="1000" href="data:image\/png;base64,/);
  assert.ok(svg.length < 200_000, `${svg.length} bytes`);
  assert.not.match(svg, /<rect [^>]*fill="rgb/, 'no cell per class');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
