// A segmentation as a picture: the input, the predicted mask in class colours
// (and the true mask, when known) side by side, each pixel drawn as a
// scale x scale block, with a legend of the classes shown (colour, name,
// share of the predicted pixels). RGBA bytes, for encodePng (src/io/image.ts).
import { drawText, textWidth, GLYPH_H } from '../util/font5x7.js';

export type Rgb = readonly [number, number, number];

/** Class 0 (background) near-black, then Tableau 10 for the item classes, repeating past 11. */
export const SEG_COLOURS: readonly Rgb[] = [
  [24, 24, 28],
  [78, 121, 167], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79],
  [237, 201, 72], [176, 122, 161], [255, 157, 167], [156, 117, 95], [186, 176, 172],
];
export const segColour = (id: number): Rgb => (id === 0 ? SEG_COLOURS[0] : SEG_COLOURS[1 + ((id - 1) % (SEG_COLOURS.length - 1))]);

export interface SegPicture {
  /** S*S grey values of the input, 0..1. */
  input: Float32Array;
  /** S*S predicted class ids. */
  pred: ArrayLike<number>;
  /** S*S true class ids, if known. */
  truth?: ArrayLike<number>;
  size: number;
  classes: readonly string[];
  /** Screen pixels per image pixel (default 4). */
  scale?: number;
}

export interface LegendEntry { id: number; label: string; pixels: number; fraction: number }

const INK: Rgb = [29, 35, 48], TEXT_SCALE = 2, MARGIN = 10, GAP = 10;

/** Pixel counts of each class id in the prediction. */
export function classPixels(pred: ArrayLike<number>, K: number): number[] {
  const n = new Array<number>(K).fill(0);
  for (let i = 0; i < pred.length; i++) n[pred[i]]++;
  return n;
}

export function renderSegmentation(p: SegPicture): { width: number; height: number; rgba: Uint8Array; legend: LegendEntry[] } {
  const S = p.size, s = p.scale ?? 4, K = p.classes.length, side = S * s;
  if (!(Number.isInteger(s) && s >= 1 && s <= 32)) throw new RangeError(`render: scale ${s} must be an integer in 1..32`);
  for (const [what, a] of [['input', p.input], ['prediction', p.pred], ['truth', p.truth]] as const)
    if (a && a.length !== S * S) throw new RangeError(`render: ${what} has ${a.length} pixels, expected ${S}x${S}`);
  const counts = classPixels(p.pred, K), inTruth = p.truth ? classPixels(p.truth, K) : new Array<number>(K).fill(0);
  const legend: LegendEntry[] = [];
  for (let id = 0; id < K; id++) if (counts[id] || inTruth[id]) legend.push({ id, label: p.classes[id] ?? String(id), pixels: counts[id], fraction: counts[id] / (S * S) });
  const panels: Array<[string, (i: number) => Rgb]> = [
    ['INPUT', (i) => { const g = Math.round(255 * Math.min(1, Math.max(0, p.input[i]))); return [g, g, g]; }],
    ['PREDICTION', (i) => segColour(p.pred[i])],
  ];
  if (p.truth) { const t = p.truth; panels.push(['TRUTH', (i) => segColour(t[i])]); }
  const lineH = GLYPH_H * TEXT_SCALE, rowH = lineH + 8, swatch = lineH;
  const text = (e: LegendEntry) => `${e.label} ${(100 * e.fraction).toFixed(1)}%`;
  const legendW = Math.max(...legend.map((e) => swatch + 8 + textWidth(text(e), TEXT_SCALE)));
  const top = MARGIN + lineH + 8;
  const width = MARGIN + panels.length * (side + GAP) + legendW + MARGIN;
  const height = Math.max(top + side, top + legend.length * rowH) + MARGIN;
  const rgba = new Uint8Array(width * height * 4).fill(255);
  const put = (x: number, y: number, c: Rgb) => { const o = (y * width + x) * 4; rgba[o] = c[0]; rgba[o + 1] = c[1]; rgba[o + 2] = c[2]; };
  panels.forEach(([title, colour], k) => {
    const x0 = MARGIN + k * (side + GAP);
    drawText(rgba, width, height, x0, MARGIN, title, INK, TEXT_SCALE);
    for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) {
      const col = colour(r * S + c);
      for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) put(x0 + c * s + dx, top + r * s + dy, col);
    }
  });
  const lx = MARGIN + panels.length * (side + GAP);
  legend.forEach((e, j) => {
    const y = top + j * rowH;
    for (let dy = 0; dy < swatch; dy++) for (let dx = 0; dx < swatch; dx++) put(lx + dx, y + dy, segColour(e.id));
    drawText(rgba, width, height, lx + swatch + 8, y, text(e), INK, TEXT_SCALE);
  });
  return { width, height, rgba, legend };
}
