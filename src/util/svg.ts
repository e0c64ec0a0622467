// A tiny SVG writer (no dependencies) and the axis arithmetic plots need:
// linear scales, "nice" tick values (1, 2, 5 x 10^k steps) and tick labels.
// Output is plain SVG 1.1 text, readable by browsers, GitHub's README
// renderer and image viewers; text uses a system font stack.

export type Attrs = Record<string, string | number | boolean | null | undefined>;

/** XML text/attribute escaping. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Coordinates with at most 2 decimals (smaller files, identical rendering). */
export function num(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`svg: non-finite coordinate ${v}`);
  return String(Math.round(v * 100) / 100);
}

function attrs(a: Attrs): string {
  let s = '';
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined || v === null || v === false) continue;
    s += ` ${k}="${typeof v === 'number' ? num(v) : esc(v === true ? k : v)}"`;
  }
  return s;
}

export const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif';

export class Svg {
  private readonly parts: string[] = [];
  private depth = 0;

  constructor(readonly width: number, readonly height: number, readonly o: { background?: string; font?: string; title?: string } = {}) {}

  /** Any element; `text` (escaped) makes it non-empty. */
  el(tag: string, a: Attrs = {}, text?: string): this {
    this.parts.push(text === undefined ? `<${tag}${attrs(a)}/>` : `<${tag}${attrs(a)}>${esc(text)}</${tag}>`);
    return this;
  }
  open(tag: string, a: Attrs = {}): this { this.parts.push(`<${tag}${attrs(a)}>`); this.depth++; return this; }
  close(tag: string): this {
    if (this.depth === 0) throw new Error(`svg: close('${tag}') without an open element`);
    this.parts.push(`</${tag}>`); this.depth--;
    return this;
  }

  line(x1: number, y1: number, x2: number, y2: number, a: Attrs = {}): this { return this.el('line', { x1, y1, x2, y2, ...a }); }
  rect(x: number, y: number, width: number, height: number, a: Attrs = {}): this { return this.el('rect', { x, y, width, height, ...a }); }
  circle(cx: number, cy: number, r: number, a: Attrs = {}): this { return this.el('circle', { cx, cy, r, ...a }); }
  text(x: number, y: number, s: string, a: Attrs = {}): this { return this.el('text', { x, y, ...a }, s); }
  polyline(points: ReadonlyArray<readonly [number, number]>, a: Attrs = {}): this {
    return this.el('polyline', { points: points.map(([x, y]) => `${num(x)},${num(y)}`).join(' '), fill: 'none', ...a });
  }

  toString(): string {
    if (this.depth !== 0) throw new Error(`svg: ${this.depth} element(s) left open`);
    const { width: w, height: h } = this;
    const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${num(w)}" height="${num(h)}" viewBox="0 0 ${num(w)} ${num(h)}" font-family="${esc(this.o.font ?? FONT)}" font-size="12">`;
    const title = this.o.title ? `<title>${esc(this.o.title)}</title>` : '';
    const bg = this.o.background ? `<rect width="100%" height="100%" fill="${esc(this.o.background)}"/>` : '';
    return `<?xml version="1.0" encoding="UTF-8"?>\n${head}${title}${bg}\n${this.parts.join('\n')}\n</svg>\n`;
  }
}

/** Maps [d0, d1] onto [r0, r1] linearly (a zero-width domain maps to the range's middle). */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (d1 === d0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** Tick step of 1, 2 or 5 x 10^k giving about `count` ticks over [lo, hi]. */
export function tickStep(lo: number, hi: number, count = 5): number {
  const span = Math.abs(hi - lo) || Math.abs(hi) || 1;
  const raw = span / Math.max(1, count), mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/** A domain widened to whole tick steps, and its ticks. */
export function niceDomain(lo: number, hi: number, count = 5): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new RangeError(`niceDomain: bad range [${lo}, ${hi}]`);
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const step = tickStep(lo, hi, count);
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0, n = Math.round((b - a) / step); i <= n; i++) ticks.push(+(a + i * step).toPrecision(12));
  return { lo: ticks[0], hi: ticks[ticks.length - 1], step, ticks };
}

/** A tick label: enough decimals for `step`; exponent form for very small or large steps (learning rates). */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(step);
  if (a < 1e-3 || a >= 1e6) {
    const digits = Math.max(0, Math.ceil(-Math.log10(a / 10 ** Math.floor(Math.log10(Math.abs(v)))) - 1e-9));
    return v.toExponential(Math.min(3, digits)).replace(/\.?0+e/, 'e').replace('e+', 'e');
  }
  const decimals = Math.max(0, Math.ceil(-Math.log10(a) - 1e-9));
  return v.toFixed(decimals);
}

/** A palette that stays apart for colour-blind readers (Okabe & Ito 2008). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];
