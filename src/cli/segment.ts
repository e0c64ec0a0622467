// Segmentation on the command line (issue #7): the `--task segment` plumbing
// shared by train, eval and compress (which scenes, from which flags), and
// `cait segment`, which writes a coloured mask with a legend as a PNG.
import { writeFileAtomic } from '../io/output.js';
import { loadDataset } from '../data/mnist.js';
import { makeScenes, SCENE_DEFAULTS, TEST_SCENES, TRAIN_SCENES, type SceneSet, type SceneSpec } from '../data/scenes.js';
import { SEG_UNMERGES, type VitConfig } from '../nn/presets.js';
import type { Trainable } from '../train/trainer.js';
import { Tensor, getBackend } from '../tensor.js';
import { readImageFile, encodePng } from '../io/image.js';
import { imageToInput } from '../data/preprocess.js';
import { argmaxRows, SegMeter, type SegScores } from '../seg/metrics.js';
import { isSegmentation } from '../seg/model.js';
import { renderSegmentation } from '../seg/render.js';
import { BACKEND_FLAGS, JSON_FLAG, LOAD_FLAGS, MERGE_FLAGS, SEG_FLAGS, UsageError, command, flagsSet, type Flags } from './flags.js';
import { checkOutputFlag, emitJson, forwardLogits, modelInputs, need, openRunner, useBackendAsync } from './common.js';
import { overflowText } from '../util/overflow.js';
import { Progress } from '../util/progress.js';
import { subset } from '../train/trainer.js';

export type Task = 'classify' | 'segment';
export type SceneData = NonNullable<VitConfig['scenes']>['data'];

export { SEG_FLAGS } from './flags.js';

/** The scene flags as parsed (SEG_FLAGS plus --data). */
export interface SceneFlags { task?: Task; data?: string; scenes?: number; 'test-scenes'?: number; 'scene-seed'?: number }

/** The task from --task, else the model's config; a model of the other task is a usage error. */
export function taskOf(f: SceneFlags, cfg?: VitConfig): Task {
  const t = f.task;
  const own: Task | undefined = cfg ? (isSegmentation(cfg) ? 'segment' : 'classify') : undefined;
  if (t && own && t !== own) throw new UsageError(`--task ${t}, but model '${cfg!.name}' is a ${own === 'segment' ? 'segmentation' : 'classification'} model`);
  return t ?? own ?? 'classify';
}

/** The scene flags (SEG_FLAGS) that choose scenes. */
export const SCENE_FLAGS = ['scenes', 'test-scenes', 'scene-seed'] as const;

/**
 * Scene flags given where they choose nothing (a classification task: all of
 * them; eval: the training scenes) are a usage error naming them, with `what`
 * the reason (they were ignored without a word).
 */
export function refuseSceneFlags(f: SceneFlags, names: ReadonlyArray<typeof SCENE_FLAGS[number]>, what: string): void {
  const given = flagsSet(f as Flags<typeof SEG_FLAGS>, SEG_FLAGS, names);
  if (given.length) throw new UsageError(`${given.join(', ')} appl${given.length === 1 ? 'ies' : 'y'} to ${what}`);
}

export function dataFlag(f: SceneFlags, fallback: SceneData = 'fashion-mnist'): SceneData {
  const d = f.data ?? fallback;
  if (d !== 'fashion-mnist' && d !== 'mnist') throw new UsageError(`--data must be fashion-mnist or mnist, got '${d}'`);
  return d;
}

const count = (f: SceneFlags, flag: 'scenes' | 'test-scenes', dflt: number): number => {
  const v = f[flag] ?? dflt;
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${flag} must be an integer >= 1, got ${v}`);
  return v;
};

/**
 * The scene spec a segmentation model works with: the one saved in its
 * config, else the defaults at its input size; --data and --scene-seed
 * override (a different seed makes different scenes).
 */
export function sceneSpecOf(cfg: VitConfig, f: SceneFlags): NonNullable<VitConfig['scenes']> {
  const saved = cfg.scenes;
  const spec = { ...SCENE_DEFAULTS, size: cfg.imgSize, ...(saved ?? {}), data: dataFlag(f, saved?.data) };
  if (f['scene-seed'] !== undefined) spec.seed = f['scene-seed'];
  if (spec.size !== cfg.imgSize) throw new UsageError(`model '${cfg.name}' takes ${cfg.imgSize}x${cfg.imgSize} input, its scenes are ${spec.size}x${spec.size}`);
  return spec;
}

/** Train and test scenes for `spec`: --scenes training scenes, --test-scenes test scenes. */
export function scenesFor(spec: NonNullable<VitConfig['scenes']>, f: SceneFlags): { train: SceneSet; test: SceneSet; classes: string[] } {
  const ds = loadDataset(spec.data);
  const { data: _d, ...sceneSpec } = spec;
  const s = makeScenes(ds, { train: count(f, 'scenes', TRAIN_SCENES), test: count(f, 'test-scenes', TEST_SCENES) }, sceneSpec as SceneSpec);
  return { ...s, classes: ds.classes };
}

/**
 * Scores on test scenes through forwardLogits, so WebGPU's asynchronous
 * read-back works too; the same scenes, batches and meter as the synchronous
 * evaluateSegmentation (src/seg/metrics.ts) that compress uses.
 */
export async function evaluateScenes(model: Pick<Trainable, 'forward' | 'cfg'>, scenes: SceneSet, o: { limit?: number; batchSize?: number; quiet?: boolean }): Promise<SegScores> {
  const cfg = model.cfg, S = cfg.imgSize, n = Math.min(o.limit ?? scenes.n, scenes.n), B = o.batchSize ?? 50;
  const meter = new SegMeter(cfg.numClasses), pick = subset(scenes.n, n), bar = new Progress('eval', n, 'img', o.quiet);
  for (let s = 0; s < n; s += B) {
    const idx = pick.subarray(s, Math.min(n, s + B)), m = idx.length;
    const batch = scenes.makeBatch(idx, { pad: S, mean: cfg.mean[0], std: cfg.std[0] });
    const logits = await forwardLogits(model, () => Tensor.from(batch.x, [m, 1, S, S]));
    meter.addLogits(logits, batch.y, m);
    bar.update(s + m);
  }
  return meter.scores();
}

/** The JSON of a segmentation evaluation (`cait eval --task segment`). */
export function scoresJson(r: SegScores): { miou: number; per_class_iou: Array<number | null>; pixel_accuracy: number; n: number } {
  return { miou: r.miou, per_class_iou: r.perClassIou, pixel_accuracy: r.pixelAccuracy, n: r.n };
}

export function printScores(r: SegScores, classes: readonly string[], what: string): void {
  console.log(`mean IoU ${(100 * r.miou).toFixed(2)}%, pixel accuracy ${(100 * r.pixelAccuracy).toFixed(2)}% on ${r.n} ${what}`);
  r.perClassIou.forEach((v, id) => console.log(`  ${String(id).padStart(2)} ${(classes[id] ?? String(id)).padEnd(12)} ${v === null ? '   -' : (100 * v).toFixed(2).padStart(6) + '%'}`));
}

const SEGMENT_FLAGS = {
  model: { type: 'string', value: 'FILE', help: 'segmentation model file (required)' },
  image: { type: 'string', value: 'FILE', help: 'a PNG or JPEG to segment' },
  scene: { type: 'int', min: 0, max: 1_000_000, value: 'I', help: "test scene I of the model's scenes, drawn beside its true mask" },
  data: { type: 'string', value: 'NAME', help: 'dataset of the scenes (fashion-mnist or mnist)', defaultText: 'as saved' },
  'scene-seed': { type: 'int', min: 0, value: 'S', help: 'seed of the generated scenes', defaultText: 'as saved' },
  out: { type: 'string', value: 'MASK.png', help: 'the coloured mask with a legend (required)' },
  scale: { type: 'int', min: 1, max: 32, default: 4, help: 'pixels per input pixel in the picture' },
  unmerge: { type: 'enum', choices: SEG_UNMERGES, help: 'how merged tokens return to the full grid', defaultText: 'as saved' },
  ...LOAD_FLAGS, ...JSON_FLAG, ...BACKEND_FLAGS, ...MERGE_FLAGS,
} as const;

export const segmentCommand = command({
  name: 'segment',
  summary: 'segment an image (or a test scene) with a segmentation model: a coloured mask with a legend',
  usage: ['--model models/seg-cait.safetensors --image scene.png --out mask.png', '--model models/seg-cait.safetensors --scene 2 --out mask.png --json'],
  flags: SEGMENT_FLAGS,
  run: segmentRun,
});

async function segmentRun(f: Flags<typeof SEGMENT_FLAGS>): Promise<void> {
  const inputs = [...modelInputs(f.model), { flag: '--image', path: f.image }];
  const out = need(f.out, 'out'), file = need(f.model, 'model');
  checkOutputFlag('out', out, inputs);
  // usage first: a GPU device is not started for a command line that cannot run
  if (f.image !== undefined && f.scene !== undefined) throw new UsageError('give --image or --scene, not both');
  if (f.image === undefined && f.scene === undefined) throw new UsageError('give --image FILE.png|jpg, or --scene I (test scene I of the model\'s scenes)');
  // they choose the test scene; an image was segmented as it is, without a word about them
  const sceneOnly = [f.data !== undefined && '--data', f['scene-seed'] !== undefined && '--scene-seed'].filter((x): x is string => !!x);
  if (f.image !== undefined && sceneOnly.length) throw new UsageError(`${sceneOnly.join(', ')} appl${sceneOnly.length === 1 ? 'ies' : 'y'} to --scene (which test scene), not to --image`);
  await useBackendAsync(f.backend, f.threads);
  const model = openRunner(file, undefined, f);
  const cfg = model.cfg, S = cfg.imgSize;
  if (!isSegmentation(cfg)) throw new UsageError(`model '${f.model}' is a classification model (config task '${cfg.task ?? 'classify'}'): use cait predict`);
  if (cfg.inChans !== 1) throw new UsageError(`segment draws grey inputs; model '${cfg.name}' takes ${cfg.inChans} channels`);
  let x: Float32Array, grey: Float32Array, truth: Uint8Array | undefined, source: string;
  if (f.image !== undefined) {
    source = f.image;
    x = imageToInput(readImageFile(source), cfg, source);
    grey = x.map((v) => v * cfg.std[0] + cfg.mean[0]);
  } else {
    const i = f.scene!, spec = sceneSpecOf(cfg, f);
    const { test } = scenesFor(spec, { 'test-scenes': Math.max(TEST_SCENES, i + 1) });
    const sc = test.scene(i);
    source = `${spec.data} test scene ${i}`;
    x = test.makeBatch([i], { pad: S, mean: cfg.mean[0], std: cfg.std[0] }).x;
    grey = Float32Array.from(sc.image, (v) => v / 255);
    truth = sc.label;
  }
  const logits = await forwardLogits(model, () => Tensor.from(x, [1, 1, S, S]));
  // NaN logits drew every pixel as background, exit 0
  if (!f['allow-nonfinite'] && !logits.every(Number.isFinite)) throw new Error(`${source}: gives non-finite logits: ${overflowText(x)}; nothing written`);
  const pred = argmaxRows(logits, cfg.numClasses);
  const classes = cfg.classes ?? Array.from({ length: cfg.numClasses }, (_, k) => (k ? String(k - 1) : 'background'));
  const pic = renderSegmentation({ input: grey, pred, truth, size: S, classes, scale: f.scale });
  writeFileAtomic(out, encodePng(pic.width, pic.height, pic.rgba), inputs);
  let scores: SegScores | undefined;
  if (truth) { const m = new SegMeter(cfg.numClasses); m.add(pred, truth, 1); scores = m.scores(); }
  if (!f.json) {
    console.log(`${source}: wrote ${out} (${pic.width}x${pic.height})${scores ? `, mean IoU ${(100 * scores.miou).toFixed(2)}% against the true mask` : ''}`);
    for (const e of pic.legend) console.log(`  ${String(e.id).padStart(2)} ${e.label.padEnd(12)} ${(100 * e.fraction).toFixed(1).padStart(5)}%`);
  }
  emitJson(f, {
    out, source, width: pic.width, height: pic.height, merge: cfg.merge ?? '', backend: getBackend().name,
    classes: pic.legend.map((e) => ({ id: e.id, label: e.label, pixels: e.pixels, fraction: e.fraction })),
    ...(scores ? { miou: scores.miou, pixel_accuracy: scores.pixelAccuracy } : {}),
  });
}
