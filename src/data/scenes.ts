// Segmentation scenes (issue #7): square canvases holding 2 to 4 Fashion-MNIST
// or MNIST items at random non-overlapping positions, with a per-pixel label.
//
// The definition is fixed (changing any of it changes every scene, the test
// scenes included):
// - Scene i of a split is drawn by its own generator, Rng(sceneSeed(seed,
//   split, i)), so it is the same whatever the scene count and whichever
//   scenes are asked for, in any order.
// - Training scenes take items only from the dataset's train split, test
//   scenes only from its test split (the fixed splits of fashion-mnist.ts and
//   mnist.ts), so no item is seen in both.
// - k = minItems + rng.int(maxItems - minItems + 1) slots. For each slot, up to
//   ITEM_TRIES items j = rng.int(n) are drawn; an item is cropped to the
//   bounding box of its non-zero pixels and placed at a top-left chosen
//   uniformly, valid[rng.int(valid.length)], among the positions (row-major)
//   where that box lies on the canvas and shares no pixel with a box already
//   placed (boxes may touch). An item with no valid position is replaced by
//   the next draw; a slot whose ITEM_TRIES draws all fail stays empty. A
//   scene left with fewer than minItems items is drawn again, continuing the
//   same generator. (On 64x64, of the first 2,000 scenes of each split, 0.6%
//   of Fashion-MNIST scenes end one item short of k and no MNIST scene does;
//   crowded scenes favour narrower items slightly.)
// - Label of a pixel: 0 (background), or 1 + the item's class where the
//   item's pixel is >= threshold (default 32 of 255, one eighth of full
//   scale; the fainter fringe of an item is background). Class ids are
//   therefore 0 = background, 1..10 = the dataset's classes 0..9.
// - The image is the canvas of raw 0..255 pixels, zero outside the items.
import { Rng } from '../util/rng.js';
import { normLut, type Batch, type BatchOptions, type ImageSource } from './augment.js';

export interface SceneSpec {
  /** Canvas side in pixels. */
  size: number;
  minItems: number;
  maxItems: number;
  /** Item pixels >= threshold (0..255) are labelled with the item's class, the rest background. */
  threshold: number;
  seed: number;
}

export const SCENE_DEFAULTS: Readonly<SceneSpec> = { size: 64, minItems: 2, maxItems: 4, threshold: 32, seed: 0 };
/** Item draws per slot before the slot is left empty. */
export const ITEM_TRIES = 8;
/** Default scene counts of `cait train|eval|compress --task segment`. */
export const TRAIN_SCENES = 20000, TEST_SCENES = 2000;

export type SceneSplit = 'train' | 'test';

/** One placed item: its index in the item split, its class (0..9), its box on the canvas. */
export interface PlacedItem { index: number; label: number; top: number; left: number; height: number; width: number }

export interface Scene {
  /** size*size raw pixels 0..255, row-major. */
  image: Uint8Array;
  /** size*size class ids: 0 background, 1 + item class. */
  label: Uint8Array;
  items: PlacedItem[];
}

/** murmur3's fmix32; fmix32(0) = 0. */
function fmix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A 32-bit seed for scene i of a split (murmur3's finaliser over the three
 * numbers). The seed is mixed first: XOR-ed in raw, seed s would give scene
 * i the stream of seed 0's scene s ^ i (seed 1 = seed 0's scenes swapped in
 * pairs). fmix32(0) = 0 keeps the default seed's scenes as they were.
 */
export function sceneSeed(seed: number, split: SceneSplit, i: number): number {
  let h = fmix32(seed >>> 0) ^ (split === 'train' ? 0x5bd1e995 : 0x1b873593);
  for (const v of [i >>> 0, 0x9e3779b9]) {
    h = Math.imul(h ^ v, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** Bounding boxes [top, height, left, width] of the non-zero pixels of every item (an all-zero item gets height 0). */
function itemBoxes(items: ImageSource): Int16Array {
  const { h, w, images, n } = items, px = h * w, boxes = new Int16Array(n * 4);
  for (let j = 0; j < n; j++) {
    let r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let r = 0; r < h; r++) {
      const o = j * px + r * w;
      for (let c = 0; c < w; c++) {
        if (images[o + c]) { if (r < r0) r0 = r; if (r > r1) r1 = r; if (c < c0) c0 = c; if (c > c1) c1 = c; }
      }
    }
    if (r1 >= 0) boxes.set([r0, r1 - r0 + 1, c0, c1 - c0 + 1], j * 4);
  }
  return boxes;
}

/**
 * The scenes of one split: `n` scenes made from `items` (the matching split of
 * a dataset). Scenes are drawn on demand, so a set costs no memory; makeBatch
 * makes it a trainer data source (src/train/trainer.ts).
 */
export class SceneSet {
  readonly spec: Readonly<SceneSpec>;
  private boxes: Int16Array | null = null;

  constructor(readonly items: ImageSource, readonly split: SceneSplit, readonly n: number, spec: Partial<SceneSpec> = {}) {
    const s = { ...SCENE_DEFAULTS, ...spec };
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`scenes: count must be an integer >= 1, got ${n}`);
    if (!Number.isInteger(s.size) || s.size < Math.max(items.h, items.w)) throw new RangeError(`scenes: canvas size ${s.size} is smaller than the ${items.h}x${items.w} items`);
    if (!(Number.isInteger(s.minItems) && Number.isInteger(s.maxItems) && s.minItems >= 1 && s.maxItems >= s.minItems))
      throw new RangeError(`scenes: items per scene ${s.minItems}..${s.maxItems}: expected integers 1 <= min <= max`);
    if (!(Number.isInteger(s.threshold) && s.threshold >= 1 && s.threshold <= 255)) throw new RangeError(`scenes: threshold ${s.threshold}: expected an integer in 1..255`);
    if (items.n < 1) throw new RangeError('scenes: no items');
    this.spec = s;
  }

  get size(): number { return this.spec.size; }

  /** Scene i (the same every time for the same spec, split and items). */
  scene(i: number): Scene {
    if (!(Number.isInteger(i) && i >= 0 && i < this.n)) throw new RangeError(`scene ${i} out of range [0, ${this.n})`);
    const rng = new Rng(sceneSeed(this.spec.seed, this.split, i));
    for (let attempt = 0; attempt < 1000; attempt++) {
      const items = this.place(rng);
      if (items.length >= this.spec.minItems) return this.render(items);
    }
    throw new Error(`scene ${i}: could not place ${this.spec.minItems} items on a ${this.size}x${this.size} canvas in 1000 attempts`);
  }

  private place(rng: Rng): PlacedItem[] {
    const { size: S, minItems, maxItems } = this.spec;
    this.boxes ??= itemBoxes(this.items);
    const boxes = this.boxes, k = minItems + rng.int(maxItems - minItems + 1), placed: PlacedItem[] = [];
    for (let slot = 0; slot < k; slot++) {
      for (let t = 0; t < ITEM_TRIES; t++) {
        const j = rng.int(this.items.n), h = boxes[j * 4 + 1], w = boxes[j * 4 + 3];
        if (h === 0) continue;   // an empty item has nothing to place
        const valid: number[] = [];
        for (let r = 0; r + h <= S; r++) {
          for (let c = 0; c + w <= S; c++) {
            let free = true;
            for (const p of placed) if (r < p.top + p.height && p.top < r + h && c < p.left + p.width && p.left < c + w) { free = false; break; }
            if (free) valid.push(r * S + c);
          }
        }
        if (!valid.length) continue;
        const v = valid[rng.int(valid.length)];
        placed.push({ index: j, label: this.items.labels[j], top: Math.floor(v / S), left: v % S, height: h, width: w });
        break;
      }
    }
    return placed;
  }

  private render(items: PlacedItem[]): Scene {
    const S = this.size, { h: ih, w: iw, images } = this.items, thr = this.spec.threshold, boxes = this.boxes!;
    const image = new Uint8Array(S * S), label = new Uint8Array(S * S);
    for (const it of items) {
      const r0 = boxes[it.index * 4], c0 = boxes[it.index * 4 + 2];
      for (let r = 0; r < it.height; r++) {
        const src = it.index * ih * iw + (r0 + r) * iw + c0, dst = (it.top + r) * S + it.left;
        for (let c = 0; c < it.width; c++) {
          const v = images[src + c];
          image[dst + c] = v;
          if (v >= thr) label[dst + c] = it.label + 1;
        }
      }
    }
    return { image, label, items };
  }

  /**
   * Scenes `indices` as a batch: x [B, 1, S, S] normalised (pixel/255 - mean)/std,
   * y [B * S * S] pixel labels. Augmentation: with `augment.flip`, each scene
   * is mirrored left-right (image and labels) when rng.next() < 0.5; cropPad
   * is not used (scene positions are already random).
   */
  makeBatch(indices: ArrayLike<number>, opts: BatchOptions): Batch {
    const S = this.size, B = indices.length, P = S * S;
    if (opts.pad !== S) throw new RangeError(`scenes are ${S}x${S}, but the model takes ${opts.pad}x${opts.pad} input`);
    const x = opts.out?.x ?? new Float32Array(B * P), y = opts.out?.y ?? new Int32Array(B * P);
    if (x.length < B * P || y.length < B * P) throw new RangeError(`scene batch: out buffers too small for ${B}x${S}x${S}`);
    const lut = normLut(opts.mean, opts.std);
    for (let b = 0; b < B; b++) {
      const sc = this.scene(indices[b]);
      const flip = !!opts.augment?.flip && opts.augment.rng.next() < 0.5;
      for (let r = 0; r < S; r++) {
        for (let c = 0; c < S; c++) {
          const src = r * S + (flip ? S - 1 - c : c), dst = b * P + r * S + c;
          x[dst] = lut[sc.image[src]];
          y[dst] = sc.label[src];
        }
      }
    }
    return { x, y };
  }

  /** Pixel/255 mean and population std over the first `count` scenes (the input normalisation). */
  pixelStats(count = Math.min(this.n, 1000)): { mean: number; std: number } {
    const hist = new Float64Array(256);
    for (let i = 0; i < count; i++) { const im = this.scene(i).image; for (let p = 0; p < im.length; p++) hist[im[p]]++; }
    let s = 0, s2 = 0, n = 0;
    for (let v = 0; v < 256; v++) { s += hist[v] * v / 255; s2 += hist[v] * (v / 255) ** 2; n += hist[v]; }
    const mean = s / n;
    return { mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)) };
  }
}

/** Train and test scenes of a dataset: train scenes from its train items only, test scenes from its test items only. */
export function makeScenes(ds: { train: ImageSource; test: ImageSource }, counts: { train?: number; test?: number } = {}, spec: Partial<SceneSpec> = {}): { train: SceneSet; test: SceneSet } {
  return {
    train: new SceneSet(ds.train, 'train', counts.train ?? TRAIN_SCENES, spec),
    test: new SceneSet(ds.test, 'test', counts.test ?? TEST_SCENES, spec),
  };
}

/** Pixel class names: background first, then the dataset's classes. */
export function sceneClasses(itemClasses: readonly string[]): string[] { return ['background', ...itemClasses]; }
