// cait macs | bench: analytic cost and measured latency of a model, with or
// without ATME merging.
//
// Latency protocol: one process, one input, the same weights; `warmup` rounds
// are run and discarded (JIT tier-up, heap growth), then `runs` rounds are
// timed, each a whole forward (no gradients) of one batch including freeing
// its activations. With --compare the dense model and the merged one alternate
// within every round, in A B / B A order, so a slow patch of a shared machine
// hits both; the median is reported beside min, p10, p90, max and the median
// absolute deviation. Each model is timed through its planned forward
// (src/plan.ts: captured once, replayed from one arena, as a deployment would
// run it; `path: "planned"` in the report), or op by op with --eager or where
// it cannot be planned (`path: "eager"`); WebGPU is always op by op.
import { Tensor, getBackend } from '../tensor.js';
import { createModel, loadModel } from '../nn/model.js';
import { getPreset, type VitConfig } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import { Rng } from '../util/rng.js';
import { countMacs, countParams, denseArchitecture } from '../cait/macs.js';
import { CaitModel } from '../cait/wrap.js';
import { formatSchedule, toSteps } from '../cait/atme.js';
import type { Trainable } from '../train/trainer.js';
import { BACKEND_FLAGS, INT8_FLAGS, JSON_FLAG, MERGE_FLAGS, MODEL_FLAGS, UsageError, command, type Flags } from './flags.js';
import { quantizeForInference, quantizeLoaded } from '../quant/format.js';
import { environment, latencyStats, timeRunners, type LatencyStats } from '../util/timing.js';
export { environment, latencyStats, timeRunners } from '../util/timing.js';
import { checkBatchBytes, emitJson, forwardLogits, int8Of, loadModelFlags, mergeSteps, needModelForLoadFlags, useBackendAsync, withMerging } from './common.js';
import { isSegmentation, modelMacs, segMacs, segModel } from '../seg/model.js';
import { readsAsync } from '../backend/webgpu/index.js';

/**
 * timeRunners for backends that read back asynchronously (WebGPU): the same
 * protocol, each round a whole forward whose logits are awaited (so the GPU
 * work is inside the timing), activations freed included.
 */
async function timeRunnersAsync(runners: Array<Pick<Trainable, 'forward'>>, x: Tensor, runs: number, warmup: number): Promise<number[][]> {
  const times = runners.map(() => [] as number[]);
  for (let r = 0; r < warmup + runs; r++) {
    for (let j = 0; j < runners.length; j++) {
      const k = (j + r) % runners.length;
      const t0 = performance.now();
      await forwardLogits(runners[k], () => x);
      if (r >= warmup) times[k].push(performance.now() - t0);
    }
  }
  return times;
}

function modelConfig(f: Flags<typeof MODEL_FLAGS>): VitConfig {
  needModelForLoadFlags(f);
  if (f.model) {
    // with --model, --preset names the architecture of weights without a config (refused beside one)
    const { model } = loadModelFlags(f.model, f.preset, f);
    model.dispose();   // the config is all macs needs
    return model.cfg;
  }
  if (!f.preset) throw new UsageError('missing --preset NAME or --model FILE');
  return getPreset(f.preset);
}

/** checkBatchBytes on a config before its model exists. */
function checkBatchCfg(cfg: VitConfig, batch: number): VitConfig { checkBatchBytes(cfg, batch, '--batch'); return cfg; }

const MACS_FLAGS = { ...MODEL_FLAGS, merge: MERGE_FLAGS.merge, ...JSON_FLAG } as const;

export const macsCommand = command({
  name: 'macs',
  summary: 'multiply-accumulates and parameters of a model, with or without merging (analytic, no run)',
  usage: ['--preset deit_tiny_patch16_224 --merge h@3,v@6 --json', '--model models/fmnist-cait.safetensors'],
  flags: MACS_FLAGS,
  run: macsRun,
});

function macsRun(f: Flags<typeof MACS_FLAGS>): void {
  const cfg = modelConfig(f);
  // parsed once (a saved schedule was checked with its config); the string is for the report
  const steps = f.merge !== undefined ? mergeSteps(f.merge, cfg) : toSteps(cfg.merge, cfg);
  const merge = formatSchedule(steps), r = countMacs(cfg, steps);
  // dense: the architecture at full width without merging, what compress's mac_ratio is against (a CDCP-compact
  // model was compared with its own widths: 1.00x fewer for a pruned model without merging)
  const full = denseArchitecture(cfg), dense = countMacs(full, ''), params = countParams(cfg);
  // segmentation: the per-token classifier and the upsampling replace the class-token head
  const seg = isSegmentation(cfg) ? { m: segMacs(cfg, merge), d: segMacs(full, '') } : null;
  const total = seg ? seg.m.total : r.total, denseTotal = seg ? seg.d.total : dense.total;
  if (!f.json) {
    console.log(`${cfg.name}${cfg.widths ? ' (compact)' : ''}${merge ? ` merging ${merge}` : ' (no merging)'}: ${(total / 1e9).toFixed(3)} GMACs ` +
      `(dense ${(denseTotal / 1e9).toFixed(3)}, ${(denseTotal / total).toFixed(2)}x fewer), ${(params / 1e6).toFixed(2)} M parameters`);
    console.log(`tokens per block: ${r.tokens.join(' ')}`);
  }
  emitJson(f, {
    model: cfg.name, merge, macs: total, gmacs: total / 1e9, params,
    dense_macs: denseTotal, mac_ratio: denseTotal / total, tokens: r.tokens,
    patch_embed: r.patchEmbed, head: seg ? seg.m.head : r.head,
    ...(seg ? { task: 'segment', upsample: seg.m.upsample } : {}),
    blocks: r.blocks.map((b) => ({ attn_tokens: b.attnTokens, mlp_tokens: b.mlpTokens, grid: b.gridOut, qkv: b.qkv, attn: b.attn, proj: b.proj, mlp: b.mlp, total: b.total })),
  });
}

export interface BenchOptions {
  batch: number; runs: number; warmup: number; compare: boolean; seed: number; eager?: boolean;
  /** The int8 scheme whose kernels the model runs (an int8 file), reported as `quant`. */
  quant?: string | null;
  /** Another model timed in the same rounds (e.g. the dense model a compressed one came from). */
  baseline?: { file: string; vit: VisionTransformer; runner: Trainable; quant?: string | null };
}

/**
 * The bench report for `model` (and, with compare, for its dense self on the
 * same weights; with a baseline, for that model, speedup = its median / this one's).
 */
export async function benchModel(vit: VisionTransformer, runner: Trainable, o: BenchOptions): Promise<Record<string, unknown>> {
  let paths: string[] = [];
  const time = async (rs: Array<Pick<Trainable, 'forward'>>, x: Tensor): Promise<number[][]> => {
    if (readsAsync(getBackend())) { paths = rs.map(() => 'eager'); return timeRunnersAsync(rs, x, o.runs, o.warmup); }
    const t = timeRunners(rs, x, o.runs, o.warmup, { planned: !o.eager });
    paths = t.paths;
    return t;
  };
  const cfg = vit.cfg, S = cfg.imgSize, B = o.batch;
  const rng = new Rng(o.seed + 1), data = new Float32Array(B * cfg.inChans * S * S);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  const x = Tensor.from(data, [B, cfg.inChans, S, S]);
  const merge = runner.cfg.merge ?? '';
  const macs = modelMacs(cfg, merge), denseMacs = modelMacs(cfg, '');
  const opts = runner instanceof CaitModel ? { similarity: runner.options.similarity, prop_attn: runner.options.propAttn } : {};
  const common = {
    model: cfg.name, backend: getBackend().name, threads: (getBackend() as { threads?: number }).threads ?? 1, batch: B, warmup: o.warmup, merge, ...opts, quant: o.quant ?? null,
    ...(o.quant ? { int8_dot: getBackend().int8Dot ?? null } : {}),
    ...(isSegmentation(cfg) ? { task: 'segment' } : {}),
  };
  let report: Record<string, unknown>;
  if (o.baseline) {
    const b = o.baseline, bc = b.vit.cfg, bMerge = b.runner.cfg.merge ?? '', bMacs = modelMacs(bc, bMerge);
    if (bc.imgSize !== cfg.imgSize || bc.inChans !== cfg.inChans) throw new UsageError(`--baseline ${b.file} takes ${bc.inChans}x${bc.imgSize}x${bc.imgSize} input, the model ${cfg.inChans}x${cfg.imgSize}x${cfg.imgSize}`);
    const [tm, tb] = await time([runner, b.runner], x);
    const sm = latencyStats(tm), sb = latencyStats(tb);
    report = {
      ...common, ...sm, path: paths[0], macs, gmacs: macs / 1e9, params: vit.numParams(), images_per_sec: +(1000 * B / sm.median_ms).toFixed(2),
      baseline: { file: b.file, model: bc.name, merge: bMerge, quant: b.quant ?? null, ...sb, path: paths[1], macs: bMacs, gmacs: bMacs / 1e9, params: b.vit.numParams(), images_per_sec: +(1000 * B / sb.median_ms).toFixed(2) },
      speedup: +(sb.median_ms / sm.median_ms).toFixed(3), mac_ratio: +(bMacs / macs).toFixed(3),
    };
  } else if (o.compare) {
    if (!merge) throw new UsageError('--compare needs a merge schedule (--merge, or a model saved with one)');
    // a segmentation model's dense self keeps its segmentation head
    const [tm, td] = await time([runner, isSegmentation(cfg) ? segModel(vit) : vit], x);
    const sm = latencyStats(tm), sd = latencyStats(td);
    report = {
      ...common, ...sm, path: paths[0], macs, gmacs: macs / 1e9, images_per_sec: +(1000 * B / sm.median_ms).toFixed(2),
      dense: { ...sd, path: paths[1], macs: denseMacs, gmacs: denseMacs / 1e9, images_per_sec: +(1000 * B / sd.median_ms).toFixed(2) },
      speedup: +(sd.median_ms / sm.median_ms).toFixed(3), mac_ratio: +(denseMacs / macs).toFixed(3),
    };
  } else {
    const [t] = await time([runner], x);
    const st = latencyStats(t);
    report = { ...common, ...st, path: paths[0], macs, gmacs: macs / 1e9, images_per_sec: +(1000 * B / st.median_ms).toFixed(2) };
  }
  x.dispose();
  // the worker pool's calibration (dispatch cost per split call, thresholds) and split counts
  const pool = (getBackend() as { poolStats?: () => unknown }).poolStats?.();
  return { ...report, ...(pool ? { pool } : {}), env: environment() };
}

const BENCH_FLAGS = {
  ...MODEL_FLAGS,
  batch: { type: 'int', min: 1, max: 256, default: 1, help: 'images per forward (bounded: the activations of a large batch take gigabytes)' },
  runs: { type: 'int', min: 1, max: 100000, default: 30, help: 'timed rounds' },
  warmup: { type: 'int', min: 0, max: 100000, default: 5, help: 'untimed rounds first (JIT tier-up, heap growth)' },
  compare: { type: 'boolean', help: 'also time the same weights with merging off, interleaved' },
  baseline: { type: 'string', value: 'FILE', help: 'also time another model (as saved), interleaved; speedup = its median / this one' },
  eager: { type: 'boolean', help: 'op by op instead of the planned forward' },
  seed: { type: 'int', min: 0, default: 0, help: 'seed of the random input (and of the weights of a --preset)' },
  ...BACKEND_FLAGS, ...MERGE_FLAGS, ...INT8_FLAGS, ...JSON_FLAG,
} as const;

export const benchCommand = command({
  name: 'bench',
  summary: 'measured latency of a model (median and spread; against its dense self or a baseline in the same run)',
  usage: ['--preset deit_tiny_patch16_224 --merge h@3,v@6 --compare --batch 1 --json', '--model models/fmnist-cait.safetensors --baseline models/fmnist-dense.safetensors --json'],
  flags: BENCH_FLAGS,
  run: benchRun,
});

async function benchRun(f: Flags<typeof BENCH_FLAGS>): Promise<void> {
  if (f.baseline && f.compare) throw new UsageError('give --compare (the same weights with merging off) or --baseline FILE (another model), not both');
  const { batch, runs, warmup } = f;
  await useBackendAsync(f.backend, f.threads);
  let vit: VisionTransformer, metadata: Record<string, string> = {};
  const int8 = int8Of(f);
  needModelForLoadFlags(f);
  if (f.model) {
    ({ model: vit, metadata } = loadModelFlags(f.model, f.preset, f));
    checkBatchBytes(vit.cfg, batch, '--batch');   // before any activation is allocated
  } else {
    if (!f.preset) throw new UsageError('missing --preset NAME or --model FILE');
    vit = createModel(checkBatchCfg(getPreset(f.preset), batch), f.seed);   // random weights: latency does not depend on them
  }
  // an int8 file (or, with --quantize int8, a float model) times its int8 kernels, as predict runs it
  const quant = quantizeForInference(vit, metadata, int8)?.kernels ?? null;
  const runner = withMerging(vit, f, metadata);
  let baseline: BenchOptions['baseline'];
  if (f.baseline) {
    // the baseline runs as saved (its own schedule, if any); the merge flags apply to --model
    const file = f.baseline, b = loadModel(file);
    checkBatchBytes(b.model.cfg, batch, '--batch');
    baseline = { file, vit: b.model, runner: withMerging(b.model, {}, b.metadata), quant: quantizeLoaded(b.model, b.metadata, { attention: int8.attention, sixBit: int8.sixBit })?.kernels ?? null };
  }
  const r = await benchModel(vit, runner, { batch, runs, warmup, compare: f.compare, seed: f.seed, eager: f.eager, baseline, quant });
  if (!f.json) {
    const line = (name: string, s: LatencyStats | Record<string, unknown>) => {
      const t = s as LatencyStats;
      return `${name}: median ${t.median_ms.toFixed(2)} ms (min ${t.min_ms.toFixed(2)}, p90 ${t.p90_ms.toFixed(2)}, max ${t.max_ms.toFixed(2)}, MAD ${t.mad_ms.toFixed(2)})`;
    };
    console.log(`${r.model}${quant ? ` (${quant}, ${r.int8_dot} dot)` : ''}, batch ${batch}, ${r.threads} thread${r.threads === 1 ? '' : 's'}, ${r.backend} (${r.path}), ${runs} runs after ${warmup} warm-up`);
    if (r.dense) console.log(line('dense', r.dense as LatencyStats));
    if (r.baseline) console.log(line(`baseline ${(r.baseline as { file: string }).file}`, r.baseline as LatencyStats));
    console.log(line(r.baseline ? String(f.model ?? f.preset) : r.merge ? `merge ${r.merge}` : 'dense', r as unknown as LatencyStats));
    if (r.speedup) console.log(`speedup ${r.speedup}x (MACs ${r.mac_ratio}x fewer)`);
  }
  emitJson(f, r);
}
