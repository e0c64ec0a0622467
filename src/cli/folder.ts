// `--data DIR` for train, eval, compress and quantize: an ImageFolder directory
// (src/data/folder.ts), its flags, loading with a progress line and the decode
// rate, and the classification scores (top-1, top-5, per class, confusion).
import { existsSync, statSync } from 'node:fs';
import { Svg } from '../util/svg.js';
import { readInputText } from '../io/input.js';
import { encodePng } from '../io/image.js';
import { join } from 'node:path';
import { Tensor, scope } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { train, type Trainable, type TrainOptions } from '../train/trainer.js';
import { getPreset, type VitConfig } from '../nn/presets.js';
import { createModel, withNewHead } from '../nn/model.js';
import type { VisionTransformer } from '../nn/vit.js';
import { pixelStats } from '../data/dataset.js';
import { DEFAULT_RRC } from '../data/preprocess.js';
import { loadDataset } from '../data/mnist.js';
import type { DatasetName } from '../data/dataset.js';
import { FolderError, classMismatch, folderBatches, listFolder, loadFolder, viewOf, type FolderData, type FolderSplit } from '../data/folder.js';
import { ClassMetrics, type ClassScores } from '../data/metrics.js';
import { UsageError, type FlagSet } from './flags.js';
import { forwardLogits, lossText } from './common.js';
import { overflowText } from '../util/overflow.js';
import { Progress } from '../util/progress.js';

export const FOLDER_FLAGS = {
  'val-split': { type: 'number', above: 0, max: 0.9, value: 'F', help: '--data DIR without train/ and val/: hold out this fraction of each class for validation (seeded by --seed)' },
  'no-flip': { type: 'boolean', help: '--data DIR: no random horizontal flip in training' },
  'no-rrc': { type: 'boolean', help: "--data DIR: no random resized crop in training (models with a preprocess config)" },
  'rrc-scale': { type: 'number', above: 0, max: 1, default: DEFAULT_RRC.scale[0], help: '--data DIR: smallest area fraction of the random resized crop (timm: 0.08)' },
} as const satisfies FlagSet;

/** train's and compress's shift augmentation: the built-in data's, and a grey folder model's without a preprocess config (the others crop with --rrc-scale). */
export const CROP_PAD_FLAG = {
  'crop-pad': { type: 'int', min: 0, max: 64, default: 2, help: 'pixels of random shift (augmentation; with --data DIR only for grey models without a preprocessing config)' },
} as const satisfies FlagSet;

/** --crop-pad given (off its default) where no shift is applied: a usage error saying why (`because`), as it was ignored. */
export function refuseCropPad(f: { 'crop-pad'?: number }, because: string): void {
  if (f['crop-pad'] !== undefined && f['crop-pad'] !== CROP_PAD_FLAG['crop-pad'].default) throw new UsageError(`--crop-pad ${because}`);
}

export const BUILTIN_DATA = ['fashion-mnist', 'mnist'] as const;

/**
 * FOLDER_FLAGS given where the data is not an image folder (a built-in
 * dataset, segmentation scenes): a usage error, since they would be ignored.
 * `what` names the data they would not apply to.
 */
export function checkFolderFlags(f: { 'val-split'?: number; 'no-flip'?: boolean; 'no-rrc'?: boolean; 'rrc-scale'?: number }, what: string): void {
  const given = [
    f['val-split'] !== undefined && '--val-split', f['no-flip'] && '--no-flip', f['no-rrc'] && '--no-rrc',
    f['rrc-scale'] !== undefined && f['rrc-scale'] !== FOLDER_FLAGS['rrc-scale'].default && '--rrc-scale',
  ].filter((x): x is string => !!x);
  if (given.length) throw new UsageError(`${given.join(', ')} appl${given.length === 1 ? 'ies' : 'y'} to an image folder (--data DIR), not ${what}`);
}

/** The --data value is an image folder (anything but the built-in names); a missing path is a usage error. */
export function isFolder(data: string | undefined): data is string {
  if (data === undefined || (BUILTIN_DATA as readonly string[]).includes(data)) return false;
  if (!existsSync(data) || !statSync(data).isDirectory()) throw new UsageError(`--data must be fashion-mnist, mnist or an image folder (DIR/<class>/*.png|jpg, or DIR/train and DIR/val), got '${data}': not a directory`);
  return true;
}

interface FolderFlags { seed?: number; 'val-split'?: number; 'no-rrc'?: boolean; 'rrc-scale'?: number; 'crop-pad'?: number; quiet?: boolean; json?: boolean }

/**
 * Decode (or read from the cache) the folder for `cfg`, reporting images/s on
 * stderr, with a progress line while a split of 1000 images or more loads.
 * limits: at most this many images per split (--limit, --eval-limit), picked
 * before decoding as the trainer and the scorers pick them.
 */
export function openFolder(dir: string, cfg: VitConfig, f: FolderFlags, splits: Array<'train' | 'val'> = ['train', 'val'], limits: { train?: number; val?: number } = {}): FolderData {
  // the random resized crop is the 'pixels' view's train transform; a grey model without a
  // preprocess config trains as on the built-in data (shift and flip), where these did nothing
  if (splits.includes('train') && viewOf(cfg).kind === 'grey' && (f['no-rrc'] || (f['rrc-scale'] !== undefined && f['rrc-scale'] !== FOLDER_FLAGS['rrc-scale'].default))) {
    throw new UsageError(`${f['no-rrc'] ? '--no-rrc' : '--rrc-scale'} applies to models with a preprocessing config or RGB input; '${cfg.name}' is grey without one and trains with --crop-pad shifts and flips, as on the built-in data`);
  }
  // and the other way round: the shift is the grey view's; a 'pixels' view ignored it (--crop-pad 0 left the crops on)
  if (splits.includes('train') && viewOf(cfg).kind === 'pixels') {
    refuseCropPad(f, `applies to grey models without a preprocessing config; '${cfg.name}' takes ${cfg.inChans}x${cfg.imgSize}x${cfg.imgSize} views of the folder's images and trains with timm's random resized crop and flip: --rrc-scale X or --no-rrc set the crop, --no-flip the flip`);
  }
  const bars = new Map<string, Progress>();
  const fd = loadFolder(dir, cfg, {
    valSplit: f['val-split'], seed: f.seed ?? 0, splits, limits,
    rrc: f['no-rrc'] ? null : { scale: [f['rrc-scale'] ?? DEFAULT_RRC.scale[0], 1], ratio: DEFAULT_RRC.ratio },
    onProgress: (s, done, total) => {
      if (f.quiet || f.json || total < 1000) return;
      if (!bars.has(s)) bars.set(s, new Progress(`${dir} ${s}`, total, 'img'));
      bars.get(s)!.update(done);
    },
  });
  // warnings go to stderr under --json too (it owns stdout only); --quiet silences them with the rest
  if (!f.quiet) {
    if (splits.includes('train') && splits.includes('val') && !fd.listing.heldOut) {
      process.stderr.write(`${dir}: no held-out images (no val/ folder, no --val-split): the scores after training are on the training images; --val-split 0.2 holds a fifth of each class out\n`);
    }
    for (const s of splits) {
      const st = fd.stats[s];
      if (st.n && !f.json) process.stderr.write(`${dir} ${s}: ${st.n} images, ${fd.listing.classes.length} classes; ${st.decoded} decoded, ${st.cached} from the cache (${st.imagesPerSec.toFixed(0)} img/s)\n`);
    }
    warnSkipped(dir, fd.listing, 'of class folders ');
  }
  return fd;
}

/** What a folder walk left out, on stderr (a warning: under --json too): files of other extensions, and entries that are no file or folder. */
export function warnSkipped(dir: string, l: { skipped: number; special: number }, where = ''): void {
  if (l.skipped) process.stderr.write(`${dir}: skipped ${l.skipped} file(s) that are not PNG or JPEG\n`);
  if (l.special) process.stderr.write(`${dir}: skipped ${l.special} entr${l.special === 1 ? 'y' : 'ies'} ${where}that are neither files nor folders (FIFOs, sockets, devices, broken links)\n`);
}

/**
 * The test split `--data` names for scoring: a built-in dataset's test set
 * (checked against the model's class count) or a folder's val split (its
 * held-out part with --val-split), and how to name it in a report
 * (`cait eval`, `cait quantize --data`). classes: the built-in dataset's names.
 */
export function testSplitOf(data: string, cfg: VitConfig, f: FolderFlags & { limit?: number }): { split: FolderSplit; what: string; classes?: string[] } {
  if (isFolder(data)) {
    const fd = openFolder(data, cfg, f, ['val'], { val: f.limit });
    return { split: fd.val, what: [data, fd.listing.layout === 'split' ? fd.listing.valDir : f['val-split'] ? 'held-out' : '', 'images'].filter(Boolean).join(' ') };
  }
  const ds = loadDataset(data as DatasetName);
  if (cfg.numClasses < ds.classes.length) throw new Error(`--data ${data} has ${ds.classes.length} classes; model '${cfg.name}' predicts ${cfg.numClasses}`);
  return { split: ds.test, what: `${data} test images`, classes: ds.classes };
}

/**
 * Scores of `model` on a split, a folder's or a built-in dataset's (no
 * gradients; async read-back on WebGPU): what `cait eval` reports for both.
 * classes: names when the model has none (a built-in dataset's). A progress
 * line on stderr unless quiet (the default).
 */
export async function scoreFolder(model: Pick<Trainable, 'forward' | 'cfg'>, data: FolderSplit,
  o: { batchSize?: number; limit?: number; classes?: string[]; quiet?: boolean; allowNonFinite?: boolean } = {}): Promise<ClassScores> {
  const cfg = model.cfg, m = new ClassMetrics(cfg.numClasses, cfg.classes ?? o.classes ?? []);
  const bar = new Progress('eval', Math.min(o.limit ?? data.n, data.n), 'img', o.quiet ?? true);
  for (const b of folderBatches(data, cfg, o)) {
    const logits = await forwardLogits(model, () => Tensor.from(b.x, b.shape));
    // NaN rows scored as class 0: a model whose weights overflow reported 10% accuracy, exit 0
    if (!o.allowNonFinite && !logits.every(Number.isFinite))
      throw new Error(`model '${cfg.name}' gives non-finite logits on images ${m.count}..${m.count + b.m - 1} of the split: ${overflowText(b.x)}; no scores`);
    m.add(logits, b.y, b.m);
    bar.update(m.count);
  }
  return m.result();
}

/** scoreFolder for the synchronous backends (training and compress run there). */
export function scoreFolderSync(model: Pick<Trainable, 'forward' | 'cfg'>, data: FolderSplit, o: { batchSize?: number; limit?: number } = {}): ClassScores {
  const cfg = model.cfg, m = new ClassMetrics(cfg.numClasses, cfg.classes ?? []);
  for (const b of folderBatches(data, cfg, o)) m.add(noGrad(() => scope(() => model.forward(Tensor.from(b.x, b.shape), false).toArray())), b.y, b.m);
  return m.result();
}

/** The JSON fields of scores: accuracy (= top-1), top5, per_class {name: accuracy}, confusion, classes. */
export function scoresJson(s: ClassScores): Record<string, unknown> {
  const name = (i: number) => s.classes[i] ?? String(i);
  const per: Record<string, number> = {};
  s.perClass.forEach((a, i) => { if (a !== null) per[name(i)] = a; });
  return { accuracy: s.top1, top1: s.top1, top5: s.top5, n: s.n, per_class: per, classes: s.perClass.map((_, i) => name(i)), confusion: s.confusion };
}

/** Human-readable scores: top-1/top-5 and each class's accuracy. */
export function printFolderScores(s: ClassScores, what: string): void {
  console.log(`top-1 ${(100 * s.top1).toFixed(2)}%, top-5 ${(100 * s.top5).toFixed(2)}% on ${s.n} ${what}`);
  s.perClass.forEach((a, i) => { if (a !== null) console.log(`  ${(s.classes[i] ?? String(i)).padEnd(20)} ${(100 * a).toFixed(2)}%`); });
}

/** The folder flags trainFolder reads besides the trainer options train.ts builds. */
export interface TrainFolderFlags extends FolderFlags { data?: string; limit?: number; 'no-flip'?: boolean; preset?: string; seed: number; 'crop-pad': number; 'eval-limit'?: number; val?: number; quiet: boolean; json: boolean }

/**
 * `cait train --data DIR`: fine-tune --model on the folder (its labels matched
 * by name; folders its classes do not cover give it a new head for the
 * folder's classes, JSON `new_head`), or a new --preset model (default vit_fmnist) whose classes are
 * the folder names; grey presets take the train split's pixel mean/std. Then
 * top-1/top-5, per class, on the validation split.
 */
export function trainFolder(f: TrainFolderFlags, loaded: { model: VisionTransformer; metadata: Record<string, string> } | undefined,
  wrap: (m: VisionTransformer, metadata: Record<string, string>) => Trainable, opts: Omit<TrainOptions, 'cropPad' | 'flip' | 'mean' | 'std'>,
  header: (runner: Trainable, vit: VisionTransformer, train: number, val: number, heldOut: boolean) => void = () => {}): Record<string, unknown> {
  const dir = f.data!;
  if (f.val !== undefined) throw new UsageError('--val N holds out built-in dataset images; an image folder has its own val/ split, or use --val-split F');
  let model: VisionTransformer, metadata: Record<string, string> = {};
  let fd: FolderData;
  let newHead = false;
  if (loaded) {
    ({ model, metadata } = loaded);
    // folders the model's classes do not cover: fine-tune with a new head for the folder's classes (labels: the folder names);
    // a model without labels keeps its head only for as many folders as it has classes, which take their names (ImageFolder's order)
    const classes = listFolder(dir, { valSplit: f['val-split'], seed: f.seed }).classes, cfg = model.cfg, unlabelled = !cfg.classes?.length;
    const why = !unlabelled ? classMismatch(classes, cfg, dir)
      : classes.length !== cfg.numClasses ? `${dir}: ${classes.length} class folder${classes.length === 1 ? '' : 's'}, but model '${cfg.name}' has ${cfg.numClasses} classes and no labels` : null;
    if (!why && unlabelled) {
      cfg.classes = [...classes];
      if (!f.quiet) process.stderr.write(`${dir}: model '${cfg.name}' has no labels: its ${cfg.numClasses} classes take the folder names in sorted order (${classes.map((c) => `'${c}'`).join(', ')})\n`);
    }
    if (why) {
      if (classes.length < 2) throw new FolderError(`${why}; a new classifier head needs at least two class folders (${dir}/<class>/<image>.png|jpg)`);
      if (!f.quiet) process.stderr.write(`${why}: fine-tuning with a new classifier head for the folder's ${classes.length} classes (${classes.map((c) => `'${c}'`).join(', ')}), labels from the folder names; the model's own head is dropped\n`);
      model = withNewHead(model, classes, f.seed);
      newHead = true;
    }
    fd = openFolder(dir, model.cfg, f, ['train', 'val'], { train: f.limit, val: f['eval-limit'] });
    if (fd.listing.classes.length === 1 && !f.quiet) process.stderr.write(`${dir}: one class folder ('${fd.listing.classes[0]}'): fine-tuning on it teaches the model to answer that class for everything\n`);
  } else {
    const cfg = getPreset(f.preset ?? 'vit_fmnist');
    const classes = listFolder(dir, { valSplit: f['val-split'], seed: f.seed }).classes;
    // one class: every softmax is 1 and every loss 0, so nothing would be learnt
    if (classes.length < 2) throw new FolderError(`${dir}: one class folder ('${classes[0]}'); a new classifier needs at least two (${dir}/<class>/<image>.png|jpg)`);
    Object.assign(cfg, { classes, numClasses: classes.length });
    fd = openFolder(dir, cfg, f, ['train', 'val'], { train: f.limit, val: f['eval-limit'] });
    // the folder's own statistics; images of one grey level have no spread to divide by (std 1 then)
    if (!cfg.preprocess && cfg.inChans === 1) { const { mean, std } = pixelStats(fd.train as { images: Uint8Array }); cfg.mean = [mean]; cfg.std = [std > 1e-3 ? std : 1]; }
    model = createModel(cfg, f.seed);
  }
  const runner = wrap(model, metadata);
  header(runner, model, Math.min(fd.train.n, f.limit ?? Infinity), Math.min(fd.val.n, f['eval-limit'] ?? Infinity), fd.listing.heldOut);
  // a held-out split is scored after every epoch too (log.jsonl's valAccuracy, as --val N on the built-in data)
  const validate = fd.listing.heldOut ? () => { const r = scoreFolderSync(runner, fd.val, { limit: f['eval-limit'] }); return { accuracy: r.top1, n: r.n }; } : undefined;
  const logs = train(runner, fd.train, { ...opts, cropPad: f['crop-pad'], flip: !f['no-flip'], mean: model.cfg.mean[0], std: model.cfg.std[0], validate });
  const s = scoreFolderSync(runner, fd.val, { limit: f['eval-limit'] });
  const last = logs[logs.length - 1], merge = runner.cfg.merge ?? '', file = join(opts.outDir, 'model.safetensors');
  if (!f.json) {
    console.log(`trained ${logs.length} epoch(s) on ${fd.train.n} images of ${dir}${merge ? ` merging ${merge}` : ''}: ${lossText(last)}; model in ${file}`);
    printFolderScores(s, fd.listing.heldOut ? `${dir} ${fd.listing.valDir ?? 'held-out'} images` : `${dir} training images (none held out)`);
  }
  return { model: file, held_out: fd.listing.heldOut, new_head: newHead, epochs: last?.epoch ?? 0, loss: last?.loss ?? null, ...scoresJson(s), images_per_sec: last?.imagesPerSec ?? null, decode_images_per_sec: fd.stats.train.imagesPerSec, merge, skipped: logs.reduce((k, l) => k + (l.skipped ?? 0), 0) };
}

// ------------------------------------------------------------ confusion matrix figure (cait plot --confusion)

/** `confusion` and `classes` from `cait eval --json` output (the JSON line, or a whole captured stdout). */
export function readConfusion(path: string): { confusion: number[][]; classes: string[] } {
  const lines = readInputText(path, 'confusion file', 64 * 2 ** 20).split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).reverse();
  for (const line of lines) {
    let o: { confusion?: unknown; classes?: unknown };
    try { o = JSON.parse(line) as typeof o; } catch { continue; }
    const c = o.confusion;
    if (!Array.isArray(c)) continue;
    const K = c.length;
    // counts past 2^53 (1e308) are no counts: the shares made of them drew 'Infinity%'
    if (!K || !c.every((r) => Array.isArray(r) && r.length === K && r.every((v) => Number.isSafeInteger(v) && v >= 0))) throw new Error(`${path}: 'confusion' must be a square matrix of counts (integers in 0..2^53-1)`);
    const classes = Array.isArray(o.classes) && o.classes.length === K ? o.classes.map(String) : Array.from({ length: K }, (_, i) => String(i));
    return { confusion: c as number[][], classes };
  }
  throw new Error(`${path}: no JSON object with a 'confusion' matrix (the output of cait eval --data DIR --json)`);
}

/**
 * The confusion matrix as an SVG heat map: rows the true class, columns the
 * predicted one, each cell shaded by its share of the row (so classes of
 * different sizes compare) and labelled with its count; the diagonal's share
 * (per-class accuracy) at the right. Past CONFUSION_CELLS classes a cell per
 * class would not be readable nor small (1000 classes made a 183 MB SVG in 1.9
 * GB of memory; 2000 ran out of memory): the matrix is then one pixel per cell
 * in an embedded PNG, without labels.
 */
export const CONFUSION_CELLS = 60, CONFUSION_MAX = 4096;

export function confusionSvg(m: { confusion: number[][]; classes: string[] }, o: { title?: string; width?: number } = {}): { svg: string; points: number } {
  const K = m.confusion.length;
  if (K > CONFUSION_MAX) throw new Error(`the confusion matrix has ${K} classes; at most ${CONFUSION_MAX} are drawn`);
  if (K > CONFUSION_CELLS) return confusionRaster(m, o);
  const labelW = Math.min(180, 12 + 7 * Math.max(...m.classes.map((c) => c.length)));
  const W = o.width ?? Math.max(420, labelW + 70 + K * 44), cell = Math.max(14, Math.floor((W - labelW - 80) / K));
  const top = (o.title ? 44 : 16) + labelW * 0.72, left = labelW + 24;
  const H = top + K * cell + 40;
  const svg = new Svg(W, H, { background: '#ffffff', title: o.title ?? 'confusion matrix' });
  if (o.title) svg.text(W / 2, 26, o.title, { 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 600, fill: '#1d2330' });
  const rows = m.confusion.map((r) => r.reduce((a, b) => a + b, 0));
  m.classes.forEach((c, i) => {
    svg.text(left - 8, top + i * cell + cell / 2 + 4, c, { 'text-anchor': 'end', fill: '#1d2330' });
    const x = left + i * cell + cell / 2;
    svg.text(x, top - 8, c, { 'text-anchor': 'start', fill: '#1d2330', transform: `rotate(-45 ${x} ${top - 8})` });
  });
  m.confusion.forEach((r, i) => r.forEach((v, j) => {
    const share = rows[i] ? v / rows[i] : 0, [r_, g, b] = cellRgb(share, i === j);
    svg.rect(left + j * cell, top + i * cell, cell, cell, { fill: `rgb(${r_},${g},${b})`, stroke: '#e3e6ec' });
    if (v && cell >= 18) svg.text(left + j * cell + cell / 2, top + i * cell + cell / 2 + 4, String(v), { 'text-anchor': 'middle', 'font-size': Math.min(12, cell / 2.2), fill: share > 0.6 ? '#ffffff' : '#1d2330' });
  }));
  m.confusion.forEach((r, i) => { if (rows[i]) svg.text(left + K * cell + 6, top + i * cell + cell / 2 + 4, `${((100 * r[i]) / rows[i]).toFixed(0)}%`, { fill: '#5b6475', 'font-size': 11 }); });
  svg.text(left + (K * cell) / 2, H - 14, 'predicted class (rows: true class; shade: share of the row)', { 'text-anchor': 'middle', fill: '#5b6475' });
  return { svg: svg.toString(), points: K * K };
}

/** A cell's colour for its share of the row: green on the diagonal, red off it. */
function cellRgb(share: number, diagonal: boolean): [number, number, number] {
  const shade = Math.round(255 - 200 * share);
  return diagonal ? [shade, Math.round(255 - 120 * share), shade] : [255, shade, shade];
}

/** confusionSvg for many classes: the cells as one K x K PNG scaled without smoothing. */
function confusionRaster(m: { confusion: number[][] }, o: { title?: string; width?: number }): { svg: string; points: number } {
  const K = m.confusion.length, rgba = new Uint8Array(K * K * 4);
  m.confusion.forEach((r, i) => {
    const total = r.reduce((a, b) => a + b, 0);
    r.forEach((v, j) => {
      const px = cellRgb(total ? v / total : 0, i === j), at = (i * K + j) * 4;
      rgba[at] = px[0]; rgba[at + 1] = px[1]; rgba[at + 2] = px[2]; rgba[at + 3] = 255;
    });
  });
  const png = Buffer.from(encodePng(K, K, rgba)).toString('base64');
  const W = o.width ?? 760, side = Math.max(K, Math.floor((W - 80) / K) * K), left = 40, top = o.title ? 52 : 24, H = top + side + 44;
  const svg = new Svg(Math.max(W, side + 80), H, { background: '#ffffff', title: o.title ?? 'confusion matrix' });
  if (o.title) svg.text(left + side / 2, 30, o.title, { 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 600, fill: '#1d2330' });
  svg.el('image', { x: left, y: top, width: side, height: side, href: `data:image/png;base64,${png}`, style: 'image-rendering:pixelated', preserveAspectRatio: 'none' });
  svg.rect(left, top, side, side, { fill: 'none', stroke: '#d6dbe3' });
  svg.text(left + side / 2, H - 14, `predicted class (rows: true class, ${K} classes in order; shade: share of the row)`, { 'text-anchor': 'middle', fill: '#5b6475' });
  return { svg: svg.toString(), points: K * K };
}
