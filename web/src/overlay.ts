// The ATME overlay: the model input with its patch grid, patches tinted and
// outlined by the token they were merged into after a merge step.

/** A distinct colour per token index (golden-angle hues: neighbours differ by ~137 degrees). */
export function groupColour(g: number, alpha: number): string {
  return `hsla(${(g * 137.508) % 360}, 85%, 55%, ${alpha})`;
}

export interface OverlayPanel {
  /** The input, [0, 1] grey, size x size, row-major. */
  input: ArrayLike<number>;
  size: number;
  patch: number;
  /** Patch grid of the input: [rows, cols]. */
  grid: [number, number];
  /** map[t]: the merged token patch t belongs to; null draws the plain patch grid. */
  map: ArrayLike<number> | null;
  /** Canvas pixels per input pixel. */
  scale: number;
  /** Draw the patch grid and the outline (default true). */
  lines?: boolean;
}

export function drawPanel(canvas: HTMLCanvasElement, p: OverlayPanel): void {
  const { input, size: S, patch: P, grid: [gh, gw], map, scale } = p;
  canvas.width = S * scale; canvas.height = S * scale;
  const ctx = canvas.getContext('2d')!;
  const img = new ImageData(S, S);
  for (let i = 0; i < S * S; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, input[i])));
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement('canvas');
  tmp.width = S; tmp.height = S;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, S * scale, S * scale);
  if (p.lines === false) return;
  const cell = P * scale, at = (r: number, c: number) => r * gw + c;
  if (map) {
    for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) {
      ctx.fillStyle = groupColour(map[at(r, c)], 0.38);
      ctx.fillRect(c * cell, r * cell, cell, cell);
    }
  }
  // boundaries: between every patch on the plain grid; between different tokens after merging
  ctx.lineCap = 'square';
  const line = (x0: number, y0: number, x1: number, y1: number) => { ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke(); };
  ctx.strokeStyle = map ? 'rgba(255,255,255,0.95)' : 'rgba(120,170,255,0.55)';
  ctx.lineWidth = map ? 2 : 1;
  for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) {
    if (c + 1 < gw && (!map || map[at(r, c)] !== map[at(r, c + 1)])) line((c + 1) * cell, r * cell, (c + 1) * cell, (r + 1) * cell);
    if (r + 1 < gh && (!map || map[at(r, c)] !== map[at(r + 1, c)])) line(c * cell, (r + 1) * cell, (c + 1) * cell, (r + 1) * cell);
  }
  ctx.strokeStyle = 'rgba(255,255,255,0.9)'; ctx.lineWidth = 2;
  ctx.strokeRect(1, 1, gw * cell - 2, gh * cell - 2);
}
