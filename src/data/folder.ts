// Your own images: a directory in torchvision's ImageFolder layout.
//   DIR/train/<class>/**  and  DIR/val/<class>/**   (two splits; val/ may be
//                                                    named valid/, validation/ or test/), or
//   DIR/<class>/**                                  (one split; a seeded
//                                                    fraction held out with valSplit)
// Classes are the sub-folder names, sorted (ImageFolder's order), and are
// matched to a model's own labels by name when it has them. A class's images
// are every PNG/JPEG below its folder, subfolders included, as ImageFolder's
// os.walk finds them (followed links included, each real folder once).
//
// Every image is decoded and preprocessed once, to the uint8 view the model
// sees at evaluation (src/data/preprocess.ts), and cached per split in
// <cacheDir>/folders/<key>.bin, reused per file while its path, size and
// change time (ctime) are unchanged. Batches are then a table lookup (and, for training,
// timm's random resized crop + flip on the cached view).
//
// Two kinds of model:
//   * with a `preprocess` config, or RGB: each image is the C x S x S view
//     (RGB without a config: a plain bilinear resize to S x S, Pillow-exact);
//     the split is a BatchSource (trainer.ts) that applies the train transform;
//   * grey without a config (the Fashion-MNIST-style models, dataSize inside
//     imgSize): luma resized to dataSize (the float bilinear of imageToInput,
//     rounded to uint8), so the split is an ordinary image split for
//     makeBatch: centred on the canvas, shift and flip augmentation, exactly
//     as the built-in datasets train.
//
// Cache file, little-endian: "CAITIF01" | u32 header length | JSON header
// { version, key, px, entries: [[path, size, ctimeMs], ...] } | n * px bytes.
// ctime, not mtime: cp -p, rsync -a and tar x restore a replaced file's mtime
// (same size, same mtime: stale pixels), but none can set its change time.
import { type Dirent, closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { readImageFile } from '../io/image.js';
import { cleanStaleTemporaries, makeFolder } from '../io/output.js';
import { toGrayFloat } from '../io/resize.js';
import { preprocessOf, type VitConfig } from '../nn/presets.js';
import { Rng } from '../util/rng.js';
import { cacheDir } from './dataset.js';
import { makeBatch as makeGreyBatch, type Batch, type BatchOptions, type ImageSource } from './augment.js';
import { DEFAULT_RRC, normalizePixels, preprocessPixels, trainView, type PixelsU8, type TrainTransform } from './preprocess.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];
/** The validation split's folder beside train/, the first of these found (datasets name it either way). */
export const VAL_DIRS = ['val', 'valid', 'validation', 'test'] as const;

export class FolderError extends Error {
  /** usage: the options do not fit the folder (the CLI exits 2), not its contents. */
  constructor(message: string, readonly usage = false) { super(message); this.name = 'FolderError'; }
}

export interface FolderListing {
  root: string;
  /** 'split': DIR/train and DIR/val; 'flat': DIR/<class> (val = a held-out fraction, or all of it). */
  layout: 'split' | 'flat';
  /** The val split's folder name in the split layout (val, valid, validation or test). */
  valDir?: string;
  /** Whether val holds images train does not: false for a flat folder without valSplit, whose val is its train split. */
  heldOut: boolean;
  /** Folder class names, sorted. */
  classes: string[];
  train: { files: string[]; labels: number[] };
  val: { files: string[]; labels: number[] };
  /** Files skipped for their extension (not PNG or JPEG). */
  skipped: number;
  /** Entries of the class folders skipped for not being files or folders (FIFOs, sockets, devices, broken links). */
  special: number;
}

const isImage = (f: string) => IMAGE_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e));
/** Entries of d (not hidden) that are directories, or files, following symbolic links (class folders are often linked in). */
const readDir = (d: string) => {
  let list: Dirent[];
  try { list = readdirSync(d, { withFileTypes: true }); } catch (e) { throw new FolderError(`${d}: cannot list the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  // a name that is not UTF-8 comes back with U+FFFD in place of its bad bytes, a path that names nothing:
  // an image so named failed later with a bare "ENOENT ... stat", a class folder so named read as empty
  if (list.some((e) => e.name.includes('\uFFFD'))) {
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    for (const raw of readdirSync(d, { encoding: 'buffer' })) {
      if (raw[0] === 0x2e) continue; // hidden: never read
      try { utf8.decode(raw); } catch {
        throw new FolderError(`${d}: the entry named ${JSON.stringify(raw.toString('utf8'))} (bytes ${raw.toString('hex').replace(/(..)(?!$)/g, '$1 ')}) is not valid UTF-8, so it cannot be opened by its name; rename it`);
      }
    }
  }
  return list;
};
/** What a (not hidden) entry is, through a symbolic link; 'other': a FIFO, socket or device, or a broken link. */
function kind(d: string, e: Dirent): 'dir' | 'file' | 'other' {
  let st: { isDirectory(): boolean; isFile(): boolean } = e;
  if (e.isSymbolicLink()) { try { st = statSync(join(d, e.name)); } catch { return 'other'; } }
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}
const visible = (d: string) => readDir(d).filter((e) => !e.name.startsWith('.'));
const subdirs = (d: string) => visible(d).filter((e) => kind(d, e) === 'dir').map((e) => e.name).sort();

/**
 * The PNG and JPEG files under d, as ImageFolder's sorted(os.walk(followlinks=True))
 * visits them: a folder's files (sorted), then its subfolders' in turn; each real
 * folder once (a link back up would loop). skipped: files of other extensions;
 * special: entries that are no file or folder (a FIFO named x.png would block a
 * read forever), and broken links.
 */
export function listImages(d: string): { files: string[]; skipped: number; special: number } {
  const files: string[] = [], seenDirs = new Set<string>();
  let skipped = 0, special = 0;
  const walk = (d: string) => {
    let real: string;
    try { real = realpathSync(d); } catch { special++; return; }
    if (seenDirs.has(real)) return;
    seenDirs.add(real);
    const sub: string[] = [];
    for (const e of visible(d).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const k = kind(d, e);
      if (k === 'file') { if (isImage(e.name)) files.push(join(d, e.name)); else skipped++; }
      else if (k === 'dir') sub.push(join(d, e.name));
      else special++;
    }
    for (const x of sub) walk(x);
  };
  walk(d);
  return { files, skipped, special };
}

function listClasses(dir: string, what: string): { classes: string[]; files: string[][]; skipped: number; special: number } {
  const classes = subdirs(dir);
  if (!classes.length) throw new FolderError(`${what}: no class folders (expected ${what}/<class>/<image>.png|jpg)`);
  // names that differ only in Unicode normalization (NFC 'é' and NFD 'e' + accent) look alike and match one label
  const seen = new Map<string, string>();
  for (const c of classes) {
    const k = c.normalize('NFC'), prev = seen.get(k);
    if (prev !== undefined) throw new FolderError(`${what}: class folders ${JSON.stringify(prev)} and ${JSON.stringify(c)} differ only in Unicode normalization (NFC/NFD); rename one`);
    seen.set(k, c);
  }
  let skipped = 0, special = 0;
  const files = classes.map((c) => {
    const r = listImages(join(dir, c));
    skipped += r.skipped; special += r.special;
    return r.files;
  });
  const empty = classes.filter((_, i) => !files[i].length);
  if (empty.length) throw new FolderError(`${what}: class folder(s) without PNG or JPEG images: ${empty.join(', ')}`);
  return { classes, files, skipped, special };
}

/**
 * The images and labels of an ImageFolder directory. valSplit (flat layout
 * only): the fraction of each class held out for validation, chosen by a
 * shuffle seeded with `seed`; without it a flat folder is one split used for both.
 */
export function listFolder(dir: string, o: { valSplit?: number; seed?: number } = {}): FolderListing {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new FolderError(`--data ${dir}: not a directory`);
  const top = subdirs(root);
  const valDir = top.includes('train') ? VAL_DIRS.find((d) => top.includes(d)) : undefined;
  if (valDir) {
    if (o.valSplit !== undefined) throw new FolderError(`--val-split applies to a folder without train/ and ${valDir}/; ${dir} has both`, true);
    const tr = listClasses(join(root, 'train'), join(dir, 'train')), va = listClasses(join(root, valDir), join(dir, valDir));
    const extra = va.classes.filter((c) => !tr.classes.includes(c));
    if (extra.length) throw new FolderError(`${join(dir, valDir)}: class folder(s) not in ${join(dir, 'train')}: ${extra.join(', ')}`);
    const flat = (l: typeof tr) => ({ files: l.files.flat(), labels: l.files.flatMap((f, i) => f.map(() => tr.classes.indexOf(l.classes[i]))) });
    return { root, layout: 'split', valDir, heldOut: true, classes: tr.classes, train: flat(tr), val: flat(va), skipped: tr.skipped + va.skipped, special: tr.special + va.special };
  }
  // train/ alone would read as a flat folder with one class 'train'
  if (top.includes('train')) throw new FolderError(`${dir}: has train/ but no ${VAL_DIRS.join('/, ')}/ beside it: add one (${dir}/val/<class>/...), or put the class folders at the top (${dir}/<class>/...) and hold some out with --val-split F`);
  const l = listClasses(root, dir);
  const v = o.valSplit;
  if (v !== undefined && !(v > 0 && v < 1)) throw new FolderError(`--val-split must be a fraction in (0, 1), got ${v}`, true);
  const train = { files: [] as string[], labels: [] as number[] }, val = { files: [] as string[], labels: [] as number[] };
  const rng = new Rng(o.seed ?? 0);
  l.files.forEach((files, c) => {
    if (v === undefined) { for (const f of files) { train.files.push(f); train.labels.push(c); val.files.push(f); val.labels.push(c); } return; }
    const order = rng.shuffle(Int32Array.from(files.keys()));
    const k = files.length < 2 ? 0 : Math.min(files.length - 1, Math.max(1, Math.round(v * files.length)));
    const held = new Set(Array.from(order.subarray(0, k)));
    files.forEach((f, i) => { const s = held.has(i) ? val : train; s.files.push(f); s.labels.push(c); });
  });
  if (v !== undefined && !val.files.length) throw new FolderError(`--val-split ${v}: every class of ${dir} has fewer than 2 images, nothing to hold out`);
  return { root, layout: 'flat', heldOut: v !== undefined, classes: l.classes, train, val, skipped: l.skipped, special: l.special };
}

/** The model label a folder class names (a label holding '/', which no folder name can, matches the folder with '_' in its place), or -1. */
const labelOf = (labels: string[], folder: string): number => {
  const norm = (s: string) => s.normalize('NFC').replace(/\//g, '_');
  return labels.findIndex((m) => norm(m) === norm(folder));
};

/**
 * Why the folder classes cannot be mapped onto the model's classes (a folder
 * that names none of its labels; more folders than a model without labels
 * has classes), or null when they can: what matchClasses throws, and what
 * makes `cait train --model` fine-tune with a new head instead.
 */
export function classMismatch(folderClasses: string[], cfg: Pick<VitConfig, 'classes' | 'numClasses' | 'name'>, dir = 'the folder'): string | null {
  if (cfg.classes?.length) {
    const bad = folderClasses.filter((c) => labelOf(cfg.classes!, c) < 0);
    return bad.length ? `${dir}: class folder(s) ${bad.map((b) => `'${b}'`).join(', ')} match none of the model's ${cfg.classes.length} labels ` +
      `(${cfg.classes.map((m) => `'${m}'`).join(', ')})` : null;
  }
  return folderClasses.length > cfg.numClasses ? `${dir}: ${folderClasses.length} class folders, but model '${cfg.name}' has ${cfg.numClasses} classes and no labels to match them by` : null;
}

/**
 * Class id in the model for each folder class: by name when the model has
 * labels (every folder must name one of them), else the folders' sorted
 * order (at most numClasses of them).
 */
export function matchClasses(folderClasses: string[], cfg: Pick<VitConfig, 'classes' | 'numClasses' | 'name'>, dir = 'the folder'): number[] {
  const why = classMismatch(folderClasses, cfg, dir);
  if (why) throw new FolderError(`${why}; rename the folders, or fine-tune the model on this folder first (cait train --model MODEL --data ${dir} gives it a new head for the folder's classes)`);
  return cfg.classes?.length ? folderClasses.map((c) => labelOf(cfg.classes!, c)) : folderClasses.map((_, i) => i);
}

/** How images of a folder become model inputs: the eval view's geometry and the train transform. */
export interface FolderView {
  /** 'grey': luma at dataSize for makeBatch; 'pixels': C x S x S via preprocessPixels. */
  kind: 'grey' | 'pixels';
  channels: 1 | 3;
  /** Side of the cached images (dataSize for grey, imgSize for pixels). */
  side: number;
  preprocess?: VitConfig['preprocess'];
}

export function viewOf(cfg: VitConfig): FolderView {
  if (cfg.inChans !== 1 && cfg.inChans !== 3) throw new FolderError(`image folders feed 1- or 3-channel models, not ${cfg.inChans}`);
  if (!cfg.preprocess && cfg.inChans === 1) return { kind: 'grey', channels: 1, side: cfg.dataSize ?? cfg.imgSize };
  return { kind: 'pixels', channels: cfg.inChans, side: cfg.imgSize, preprocess: preprocessOf(cfg) };
}

function decodeOne(file: string, v: FolderView, maxPixels?: number): Uint8Array {
  const img = readImageFile(file, { maxPixels });
  if (v.kind === 'grey') {
    const g = toGrayFloat(img, v.side), out = new Uint8Array(g.length);
    for (let i = 0; i < g.length; i++) out[i] = Math.round(g[i] * 255);
    return out;
  }
  return preprocessPixels(img, v.preprocess!, v.channels, file).data;
}

const MAGIC = 'CAITIF01', VERSION = 2;   // 2: entries keyed by ctime (1: mtime)

export interface LoadStats { n: number; decoded: number; cached: number; seconds: number; imagesPerSec: number }

/**
 * Decode (or read from the cache) every file to the view `v`: n * px bytes.
 * A cache entry is reused when the file's path, size and change time (ctime) match. The
 * cache file is one per `cacheKey` (a split folder, or a flat folder's splits together; else the file list)
 * and view: it keeps the entries of earlier runs whose files are unchanged,
 * so adding an image or a --limit run decodes only what is new.
 */
export function loadPixels(files: string[], v: FolderView, o: { cacheDir?: string; cacheKey?: string; maxPixels?: number; onProgress?: (done: number, total: number) => void } = {}): { pixels: Uint8Array; stats: LoadStats } {
  const t0 = performance.now();
  const px = v.side * v.side * v.channels;
  const key = createHash('sha256').update(JSON.stringify({ VERSION, v, at: o.cacheKey ?? files })).digest('hex').slice(0, 24);
  const dir = join(cacheDir(o.cacheDir), 'folders'), path = join(dir, `${key}.bin`);
  const stats = files.map((f) => { const s = statSync(f); return [f, s.size, s.ctimeMs] as [string, number, number]; });
  const old = readFolderCache(path, px);
  const pixels = new Uint8Array(files.length * px);
  let decoded = 0;
  files.forEach((f, i) => {
    const hit = old?.index.get(`${f}\0${stats[i][1]}\0${stats[i][2]}`);
    if (hit !== undefined) pixels.set(old!.data.subarray(hit * px, (hit + 1) * px), i * px);
    else { pixels.set(decodeOne(f, v, o.maxPixels), i * px); decoded++; }
    o.onProgress?.(i + 1, files.length);
  });
  // earlier entries this run did not use, whose files are unchanged, stay (within the split bound)
  const mine = new Set(stats.map(([f, sz, m]) => `${f}\0${sz}\0${m}`));
  const kept: Array<[[string, number, number], number]> = [];
  if (old) {
    let room = Math.floor(MAX_FOLDER_BYTES / px) - files.length;
    for (const [k, at] of old.index) {
      if (room <= 0) break;
      if (mine.has(k)) continue;
      const [f, sz, m] = k.split('\0');
      try { const st = statSync(f); if (st.size !== Number(sz) || st.ctimeMs !== Number(m)) continue; } catch { continue; }
      kept.push([[f, Number(sz), Number(m)], at]); room--;
    }
  }
  if (decoded || !old || old.index.size !== files.length + kept.length) {
    const all = kept.length ? new Uint8Array((files.length + kept.length) * px) : pixels;
    if (kept.length) { all.set(pixels); kept.forEach(([, at], j) => all.set(old!.data.subarray(at * px, (at + 1) * px), (files.length + j) * px)); }
    try { writeFolderCache(path, { version: VERSION, key, px, entries: [...stats, ...kept.map(([e]) => e)] }, all); } catch { /* a read-only cache dir only costs the next run a decode */ }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { pixels, stats: { n: files.length, decoded, cached: files.length - decoded, seconds, imagesPerSec: files.length / Math.max(seconds, 1e-9) } };
}

function readFolderCache(path: string, px: number): { index: Map<string, number>; data: Uint8Array } | null {
  if (!existsSync(path)) return null;
  try {
    const buf = readFileSync(path);
    if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) return null;
    const hl = buf.readUInt32LE(8);
    const hd = JSON.parse(buf.toString('utf8', 12, 12 + hl)) as { version: number; px: number; entries: Array<[string, number, number]> };
    if (hd.version !== VERSION || hd.px !== px || buf.length !== 12 + hl + hd.entries.length * px) return null;
    const index = new Map(hd.entries.map(([f, s, m], i) => [`${f}\0${s}\0${m}`, i]));
    return { index, data: new Uint8Array(buf.buffer, buf.byteOffset + 12 + hl, hd.entries.length * px) };
  } catch { return null; }
}

function writeFolderCache(path: string, header: object, pixels: Uint8Array): void {
  makeFolder(join(path, '..'), path);
  const hj = Buffer.from(JSON.stringify(header), 'utf8'), pre = Buffer.alloc(12);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(hj.length, 8);
  cleanStaleTemporaries(path);   // left by a run killed while writing (hundreds of MB each)
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const part of [pre, hj, pixels]) { let off = 0; while (off < part.length) off += writeSync(fd, part, off, part.length - off); }
    fsyncSync(fd); closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* closed */ }
    try { unlinkSync(tmp); } catch { /* gone */ }
    throw e;
  }
}

/**
 * A split of C x S x S uint8 views that assembles its own batches
 * (trainer.ts BatchSource): normalised per channel; with `augment`, timm's
 * random resized crop (when enabled) and the flip coin from its rng.
 */
export class PixelSplit {
  readonly h: number; readonly w: number;
  constructor(readonly images: Uint8Array, readonly labels: Uint8Array | Uint16Array, readonly n: number, readonly view: FolderView,
    readonly mean: number[], readonly std: number[], readonly transform: Omit<TrainTransform, 'flip'>) {
    this.h = this.w = view.side;
  }

  /** Image i as pixels. */
  pixels(i: number): PixelsU8 {
    const S = this.view.side, px = S * S * this.view.channels;
    return { width: S, height: S, channels: this.view.channels, data: this.images.subarray(i * px, (i + 1) * px) };
  }

  makeBatch(indices: ArrayLike<number>, opts: BatchOptions): Batch {
    const B = indices.length, S = this.view.side, C = this.view.channels, per = C * S * S;
    if (opts.pad !== S) throw new RangeError(`image folder: the model takes ${opts.pad}x${opts.pad} input, the cached views are ${S}x${S}`);
    const x = opts.out?.x ?? new Float32Array(B * per), y = opts.out?.y ?? new Int32Array(B);
    const aug = opts.augment;
    for (let b = 0; b < B; b++) {
      const i = indices[b];
      if (!(Number.isInteger(i) && i >= 0 && i < this.n)) throw new RangeError(`image folder: index ${i} out of range [0, ${this.n})`);
      let p = this.pixels(i);
      if (aug) p = trainView(p, S, { ...this.transform, flip: aug.flip }, aug.rng);
      normalizePixels(p, this.mean, this.std, x, b * per);
      y[b] = this.labels[i];
    }
    return { x, y };
  }
}

export type FolderSplit = ImageSource | PixelSplit;

export interface FolderData {
  listing: FolderListing;
  /** Model class id of each folder class. */
  classIds: number[];
  train: FolderSplit;
  val: FolderSplit;
  stats: { train: LoadStats; val: LoadStats };
}

export interface FolderOptions {
  valSplit?: number;
  seed?: number;
  cacheDir?: string;
  maxPixels?: number;
  /** Which splits to decode (eval needs only val). */
  splits?: Array<'train' | 'val'>;
  /**
   * At most this many images of a split, spread over it as the trainer's and
   * the scorers' limits pick them (image floor(i n / limit)), chosen before
   * anything is decoded: `eval --limit 10` on 20,000 files decodes 10.
   */
  limits?: { train?: number; val?: number };
  /** Random resized crop for training pixel views (default timm's scale [0.08, 1], ratio [3/4, 4/3]); null = off. */
  rrc?: { scale: [number, number]; ratio: [number, number] } | null;
  onProgress?: (what: string, done: number, total: number) => void;
}

/** Decoded images of one split, at most (readFileSync and one write() stop at 2 GiB, so the cache would not work past it). */
export const MAX_FOLDER_BYTES = 2 ** 31 - 2 ** 20;

/** `limit` entries of a split listing, spread evenly (all of them without a limit). */
function spread(l: { files: string[]; labels: number[] }, limit?: number): { files: string[]; labels: number[] } {
  const n = l.files.length;
  if (limit === undefined || limit >= n) return l;
  const pick = Array.from({ length: limit }, (_, i) => Math.floor((i * n) / limit));
  return { files: pick.map((i) => l.files[i]), labels: pick.map((i) => l.labels[i]) };
}

/** An ImageFolder directory as train/val splits for the model `cfg` (labels already mapped to the model's ids). */
export function loadFolder(dir: string, cfg: VitConfig, o: FolderOptions = {}): FolderData {
  const listing = listFolder(dir, o);
  const classIds = matchClasses(listing.classes, cfg, dir);
  const maxId = classIds.reduce((a, b) => Math.max(a, b), 0);
  if (maxId > 65535) throw new FolderError(`${dir}: class ids above 65535 are not supported (labels are stored as uint16), got ${maxId}`);
  const Labels = maxId > 255 ? Uint16Array : Uint8Array;
  const view = viewOf(cfg);
  const want = new Set(o.splits ?? ['train', 'val']);
  const empty: LoadStats = { n: 0, decoded: 0, cached: 0, seconds: 0, imagesPerSec: 0 };
  const make = (s: 'train' | 'val'): { split: FolderSplit; stats: LoadStats } => {
    const l = spread(listing[s], o.limits?.[s]), files = want.has(s) ? l.files : [];
    // decoded views live in one array and one cache file: bounded before anything is decoded
    const bytes = files.length * view.side * view.side * view.channels;
    if (bytes > MAX_FOLDER_BYTES) {
      throw new FolderError(`${dir} ${s}: ${files.length} images of ${view.channels}x${view.side}x${view.side} make ${(bytes / 2 ** 30).toFixed(2)} GiB decoded, over the ${(MAX_FOLDER_BYTES / 2 ** 30).toFixed(0)} GiB a split may take; ` +
        `use at most ${Math.floor(MAX_FOLDER_BYTES / (view.side * view.side * view.channels))} (--limit, or a smaller folder)`);
    }
    // one cache file per split folder; a flat folder's splits share one, whatever --val-split and
    // --seed draw from it (keyed by them, each new draw decoded the folder again, into a file of its own)
    const cacheKey = listing.layout === 'flat' ? `${resolve(dir)}\0flat` : `${resolve(dir)}\0${s}`;
    const { pixels, stats } = files.length ? loadPixels(files, view, { ...o, cacheKey, onProgress: (d, t) => o.onProgress?.(s, d, t) }) : { pixels: new Uint8Array(0), stats: empty };
    const labels = Labels.from(want.has(s) ? l.labels.map((c) => classIds[c]) : []);
    const n = labels.length;
    if (view.kind === 'grey') return { split: { images: pixels, labels, n, h: view.side, w: view.side }, stats };
    const rrc = o.rrc === undefined ? DEFAULT_RRC : o.rrc;
    return { split: new PixelSplit(pixels, labels, n, view, cfg.mean, cfg.std, { rrc, interpolation: view.preprocess!.interpolation }), stats };
  };
  const tr = make('train'), va = make('val');
  return { listing, classIds, train: tr.split, val: va.split, stats: { train: tr.stats, val: va.stats } };
}

/** Evaluation batches of any folder split: x [m, C, S, S] normalised, no augmentation. */
export function* folderBatches(data: FolderSplit, cfg: Pick<VitConfig, 'imgSize' | 'inChans' | 'mean' | 'std'>, o: { batchSize?: number; limit?: number } = {}): Generator<{ x: Float32Array; y: Int32Array; m: number; shape: number[] }> {
  const n = Math.min(o.limit ?? data.n, data.n), B = o.batchSize ?? 100, S = cfg.imgSize;
  // limit: spread over the split (it is stored class by class)
  const pick = Int32Array.from({ length: n }, (_, i) => Math.floor((i * data.n) / n));
  for (let s = 0; s < n; s += B) {
    const idx = pick.subarray(s, Math.min(n, s + B)), m = idx.length;
    const opts: BatchOptions = { pad: S, mean: cfg.mean[0], std: cfg.std[0] };
    const b = data instanceof PixelSplit ? data.makeBatch(idx, opts) : makeGreyBatch(data, idx, opts);
    yield { x: b.x, y: b.y, m, shape: [m, cfg.inChans, S, S] };
  }
}
