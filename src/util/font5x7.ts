// A 5x7 bitmap font for labels drawn into PNGs (the `cait segment` legend):
// upper-case letters, digits and a few signs; lower case is drawn upper case,
// anything else as a blank. Glyphs in the style of the classic HD44780 LCD
// character set, drawn here row by row ('#' = ink).
const GLYPHS: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '####. #...# #...# #...# #...# #...# ####.',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  0: '.###. #...# #..## #.#.# ##..# #...# .###.',
  1: '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  2: '.###. #...# ....# ...#. ..#.. .#... #####',
  3: '##### ...#. ..#.. ...#. ....# #...# .###.',
  4: '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  5: '##### #.... ####. ....# ....# #...# .###.',
  6: '..##. .#... #.... ####. #...# #...# .###.',
  7: '##### ....# ...#. ..#.. .#... .#... .#...',
  8: '.###. #...# #...# .###. #...# #...# .###.',
  9: '.###. #...# #...# .#### ....# ...#. .##..',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... .##.. ..#.. .#...',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
};

export const GLYPH_W = 5, GLYPH_H = 7, ADVANCE = 6;

const ROWS = new Map<string, number[]>(Object.entries(GLYPHS).map(([ch, g]) => {
  const rows = g.split(' ');
  if (rows.length !== GLYPH_H || rows.some((r) => r.length !== GLYPH_W)) throw new Error(`font5x7: glyph '${ch}' is not ${GLYPH_W}x${GLYPH_H}`);
  return [ch, rows.map((r) => [...r].reduce((bits, c, i) => bits | (c === '#' ? 1 << (GLYPH_W - 1 - i) : 0), 0))];
}));

/** Bit rows of a character (bit 4 = leftmost column); blank for characters the font lacks. */
export function glyph(ch: string): number[] { return ROWS.get(ch.toUpperCase()) ?? [0, 0, 0, 0, 0, 0, 0]; }

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number { return text.length ? (text.length * ADVANCE - 1) * scale : 0; }

/** Draw `text` into an RGBA image (width `W`) with its top-left at (x, y), clipped to the image. */
export function drawText(rgba: Uint8Array, W: number, H: number, x: number, y: number, text: string, colour: readonly [number, number, number], scale = 1): void {
  for (let i = 0; i < text.length; i++) {
    const rows = glyph(text[i]), gx = x + i * ADVANCE * scale;
    for (let r = 0; r < GLYPH_H; r++) {
      for (let c = 0; c < GLYPH_W; c++) {
        if (!(rows[r] & (1 << (GLYPH_W - 1 - c)))) continue;
        for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
          const px = gx + c * scale + dx, py = y + r * scale + dy;
          if (px < 0 || py < 0 || px >= W || py >= H) continue;
          const o = (py * W + px) * 4;
          rgba[o] = colour[0]; rgba[o + 1] = colour[1]; rgba[o + 2] = colour[2]; rgba[o + 3] = 255;
        }
      }
    }
  }
}
