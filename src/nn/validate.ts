// The one config validator every loader runs (loadModel, modelFromBytes,
// modelFromCheckpoint: the CLI, the library and the web page) before anything
// is allocated: each VitConfig field's type and range, the fields' mutual
// consistency, and an estimate of the bytes a load and one forward take,
// checked against a limit. A config that passes builds a model whose forward
// cannot fail on the config's account.
//
// Limits are generous bounds on what a ViT in a browser or a 2-core machine
// can be, not taste: anything they refuse would exhaust memory or time long
// before it produced a result. The byte limit (default 2 GiB) is overridable
// per call (ValidateOptions.maxBytes, LoadOptions.maxBytes) and by the
// environment variable CAIT_MAX_MODEL_BYTES (a byte count, e.g. 8e9).
//
// Unknown fields are kept and ignored (a newer writer may add some).
import { parseSchedule, scheduleMisfit } from './schedule.js';
import { findDuplicateKey } from '../io/safetensors.js';
import { showValue } from '../util/suggest.js';
import { SEG_UNMERGES, blockWidths, numPrefixTokens, type VitConfig } from './presets.js';

/** A config value that cannot be right: names the file, the field, what was expected and what was found. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly field: string, readonly expected: string, readonly got: string) {
    super(`${file}: config field '${field}': expected ${expected}, got ${got}`);
    this.name = 'ConfigError';
  }
}

/** Default limit on the bytes a load and one batch-1 forward may take. */
export const DEFAULT_MAX_MODEL_BYTES = 2 * 2 ** 30;

/** The byte limit in force: the option, else CAIT_MAX_MODEL_BYTES, else the default. */
export function maxModelBytes(override?: number): number {
  if (override !== undefined) {
    if (!(override > 0)) throw new RangeError(`maxBytes must be a positive number of bytes, got ${override}`);
    return override;
  }
  const env = typeof process !== 'undefined' ? process.env?.CAIT_MAX_MODEL_BYTES : undefined;
  if (env !== undefined && env !== '') {
    const v = Number(env);
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`CAIT_MAX_MODEL_BYTES must be a positive number of bytes, got '${env}'`);
    return v;
  }
  return DEFAULT_MAX_MODEL_BYTES;
}

export interface ValidateOptions {
  /** Limit for estimateBytes (see maxModelBytes). */
  maxBytes?: number;
  /** Batch the estimate assumes (default 1). */
  batch?: number;
}

// showValue: bounded in depth and length (JSON.stringify, and String after it, of a value
// 200,000 arrays deep overflowed the stack: a RangeError instead of the ConfigError)
const show = (v: unknown): string => (v === undefined ? 'nothing (field absent)' : showValue(v));
const fmtBytes = (n: number): string => n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;

// Bounds (see the header comment).
const MAX_IMG = 4096, MAX_DIM = 16384, MAX_DEPTH = 256, MAX_CLASSES = 100_000, MAX_CHANS = 16, MAX_ITEMS = 64;

/**
 * The normalization's bounds: (x - mean) / std of pixels in 0..1 stays within
 * about 1e12 in magnitude. A std of 1e-300 passed a check of `> 0` but is 0
 * in f32: every model input became Infinity and predict printed NaN%.
 */
const MAX_NORM = 1e6, MIN_STD = 1e-6;
export const NORM_RANGE = { mean: 'a finite number in [-1e6, 1e6]', std: 'a finite number in [1e-6, 1e6]' } as const;
/** Whether x is a usable per-channel mean or std (NORM_RANGE says which values are). */
export function normOk(k: 'mean' | 'std', x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && (k === 'mean' ? Math.abs(x) <= MAX_NORM : x >= MIN_STD && x <= MAX_NORM);
}

/** Arrays and objects nested deeper than this in a config are refused (a real config nests 3 or 4 deep). */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether a parsed JSON value holds arrays or objects nested deeper than
 * `max`: null if not, else the top-level field they are in ('' for the value
 * itself). Iterative, so no stack to overflow.
 */
function tooDeep(v: unknown, max: number): string | null {
  const stack: Array<[unknown, string, number]> = [[v, '', 0]];
  while (stack.length) {
    const [x, field, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d >= max) return field;
    for (const [k, y] of Object.entries(x)) stack.push([y, d > 0 ? field : Array.isArray(x) ? `[${k}]` : `.${k}`, d + 1]);
  }
  return null;
}

/**
 * JSON.parse that also rejects duplicate keys (JSON.parse lets the last one
 * win silently), naming the file and the key, and values nested deeper than
 * MAX_JSON_DEPTH (JSON.parse reads 200,000 arrays deep, but structuredClone,
 * JSON.stringify and String of such a value overflow the stack: a RangeError
 * in place of the ConfigError, at the load or at the next save). `what` says
 * which JSON it is.
 */
export function parseJsonStrict(text: string, file: string, what: string): unknown {
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw new ConfigError(file, what, 'valid JSON', `a parse error: ${(e as Error).message}`); }
  const dup = findDuplicateKey(text);
  if (dup !== null) throw new ConfigError(file, `${what}.${dup}`, 'each key once', 'a duplicate key');
  const deep = tooDeep(v, MAX_JSON_DEPTH);
  if (deep !== null) throw new ConfigError(file, `${what}${deep.slice(0, 200)}`, `arrays and objects nested at most ${MAX_JSON_DEPTH} deep`, 'a value nested deeper');
  return v;
}

/**
 * The parameters a config's model has, by timm name, in the model's order,
 * without allocating them: what checkKeys compares a file with before the
 * model exists. Must equal VisionTransformer.namedParameters()'s names and
 * shapes (test/validate.test.ts checks it on every preset and layout).
 */
export function parameterShapes(cfg: VitConfig): Array<[string, number[]]> {
  const C = cfg.embedDim, H = cfg.numHeads, P = cfg.patchSize, grid = cfg.imgSize / P, K = cfg.numClasses;
  // a Module lists its own parameters before its children's: dist_token comes third
  const out: Array<[string, number[]]> = [['cls_token', [1, 1, C]], ['pos_embed', [1, numPrefixTokens(cfg) + grid * grid, C]],
    ...(cfg.distilled ? [['dist_token', [1, 1, C]] as [string, number[]]] : []),
    ['patch_embed.proj.weight', [C, cfg.inChans, P, P]], ['patch_embed.proj.bias', [C]]];
  for (let i = 0; i < cfg.depth; i++) {
    const w = blockWidths(cfg, i), b = `blocks.${i}.`, qkv = H * (2 * w.qk + w.v);
    out.push([`${b}norm1.weight`, [C]], [`${b}norm1.bias`, [C]], [`${b}attn.qkv.weight`, [qkv, C]]);
    if (cfg.qkvBias) out.push([`${b}attn.qkv.bias`, [qkv]]);
    out.push([`${b}attn.proj.weight`, [C, H * w.v]], [`${b}attn.proj.bias`, [C]], [`${b}norm2.weight`, [C]], [`${b}norm2.bias`, [C]],
      [`${b}mlp.fc1.weight`, [w.mlp, C]], [`${b}mlp.fc1.bias`, [w.mlp]], [`${b}mlp.fc2.weight`, [C, w.mlp]], [`${b}mlp.fc2.bias`, [C]]);
  }
  out.push(['norm.weight', [C]], ['norm.bias', [C]], ['head.weight', [K, C]], ['head.bias', [K]]);
  if (cfg.distilled && cfg.distillHead !== false) out.push(['head_dist.weight', [K, C]], ['head_dist.bias', [K]]);
  return out;
}

/**
 * Bytes a load and one forward of `batch` images take, estimated from the
 * config alone: the weights twice (the decoded file and the model), and the
 * largest live activations of a block (residual stream, qkv, attention
 * scores and the MLP hidden layer, with their inputs kept for the next op),
 * f32 throughout.
 */
export function estimateBytes(cfg: VitConfig, batch = 1): number {
  const C = cfg.embedDim, grid = cfg.imgSize / cfg.patchSize, N = numPrefixTokens(cfg) + grid * grid;
  // the parameter count without listing them (a config can claim millions of blocks before this is checked)
  let params = C * cfg.inChans * cfg.patchSize ** 2 + C + (N + numPrefixTokens(cfg)) * C + 2 * C;
  let widest = 0;
  for (let i = 0; i < cfg.depth; i++) {
    const w = blockWidths(cfg, i), H = cfg.numHeads, qkv = H * (2 * w.qk + w.v);
    params += 4 * C + qkv * (C + 1) + (H * w.v + 1) * C + w.mlp * (2 * C + 1) + C;
    widest = Math.max(widest, qkv + H * w.v, w.mlp * 2, H * N);
  }
  params += (C + 1) * cfg.numClasses * (cfg.distilled && cfg.distillHead !== false ? 2 : 1);
  const input = cfg.inChans * cfg.imgSize * cfg.imgSize;
  const acts = input * 2 + N * (4 * C + widest + cfg.numHeads * N);
  return 4 * (2 * params + batch * acts);
}

/**
 * Check `raw` (parsed JSON or an object) as a VitConfig; returns it typed.
 * `file` names the source in errors; every error is a ConfigError naming the
 * field, the expectation and what was found.
 */
export function validateConfig(raw: unknown, file: string, opts: ValidateOptions = {}): VitConfig {
  const bad = (field: string, expected: string, got: unknown): never => { throw new ConfigError(file, field, expected, show(got)); };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad('(config)', 'a JSON object', raw);
  const c = raw as Record<string, unknown>;
  const int = (k: string, lo: number, hi: number, req = true): number | undefined => {
    const v = c[k];
    if (v === undefined && !req) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(k, `an integer in ${lo}..${hi}`, v);
    return v as number;
  };
  const pos = (k: string, hi: number): number => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0) || v > hi) bad(k, `a finite number in (0, ${hi}]`, v);
    return v as number;
  };
  if (typeof c.name !== 'string') bad('name', 'a string', c.name);
  const imgSize = int('imgSize', 1, MAX_IMG)!;
  const patchSize = int('patchSize', 1, imgSize)!;
  if (imgSize % patchSize !== 0) bad('patchSize', `a divisor of imgSize ${imgSize}`, patchSize);
  const inChans = int('inChans', 1, MAX_CHANS)!;
  const numClasses = int('numClasses', 1, MAX_CLASSES)!;
  const embedDim = int('embedDim', 1, MAX_DIM)!;
  const depth = int('depth', 1, MAX_DEPTH)!;
  const numHeads = int('numHeads', 1, embedDim)!;
  if (embedDim % numHeads !== 0) bad('numHeads', `a divisor of embedDim ${embedDim}`, numHeads);
  const mlpRatio = pos('mlpRatio', 64);
  const mlp = embedDim * mlpRatio;
  if (Math.abs(mlp - Math.round(mlp)) > 1e-6 * mlp || Math.round(mlp) < 1) bad('mlpRatio', `a ratio giving a whole MLP width (embedDim ${embedDim} x mlpRatio)`, mlpRatio);
  if (typeof c.qkvBias !== 'boolean') bad('qkvBias', 'true or false', c.qkvBias);
  pos('eps', 1);
  if (c.dataSize !== undefined) int('dataSize', 1, imgSize);
  for (const k of ['mean', 'std'] as const) {
    const v = c[k];
    if (!Array.isArray(v) || v.length !== inChans) bad(k, `an array of ${inChans} number(s) (one per input channel)`, v);
    (v as unknown[]).forEach((x, i) => { if (!normOk(k, x)) bad(`${k}[${i}]`, NORM_RANGE[k], x); });
  }
  if (c.classes !== undefined) {
    if (!Array.isArray(c.classes) || c.classes.length !== numClasses) bad('classes', `an array of ${numClasses} class names (numClasses)`, Array.isArray(c.classes) ? `${c.classes.length} names` : c.classes);
    (c.classes as unknown[]).forEach((x, i) => { if (typeof x !== 'string') bad(`classes[${i}]`, 'a string', x); });
  }
  if (c.distilled !== undefined && typeof c.distilled !== 'boolean') bad('distilled', 'true or false', c.distilled);
  if (c.distillHead !== undefined && (typeof c.distillHead !== 'boolean' || !c.distilled)) bad('distillHead', 'true or false, with distilled true', c.distillHead);
  const denseD = embedDim / numHeads;
  if (c.widths !== undefined) {
    if (!Array.isArray(c.widths) || c.widths.length !== depth) bad('widths', `an array of ${depth} block widths (depth)`, Array.isArray(c.widths) ? `${c.widths.length} entries` : c.widths);
    (c.widths as unknown[]).forEach((w, i) => {
      if (w === null || typeof w !== 'object') bad(`widths[${i}]`, '{qk, v, mlp}', w);
      const o = w as Record<string, unknown>;
      for (const [k, hi] of [['qk', denseD], ['v', denseD], ['mlp', Math.round(mlp)]] as const) {
        const x = o[k];
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > hi) bad(`widths[${i}].${k}`, `an integer in 1..${hi} (the dense width)`, x);
      }
    });
  }
  const grid = imgSize / patchSize;
  if (c.merge !== undefined) {
    if (typeof c.merge !== 'string') bad('merge', 'a schedule string such as "h@3,v@6"', c.merge);
    let steps;
    try { steps = parseSchedule(c.merge as string); } catch (e) { return bad('merge', 'AXIS@BLOCK steps, one per block', `${show(c.merge)} (${(e as Error).message})`); }
    for (const st of steps) if (st.block >= depth) bad('merge', `blocks 0..${depth - 1} (depth ${depth})`, `${show(c.merge)} (block ${st.block})`);
    const misfit = scheduleMisfit(steps, grid);
    if (misfit) bad('merge', `steps that fit the ${grid}x${grid} token grid`, `${show(c.merge)} (${misfit})`);
  }
  if (c.task !== undefined && c.task !== 'classify' && c.task !== 'segment') bad('task', "'classify' or 'segment'", c.task);
  if (c.segHead !== undefined && c.segHead !== 'linear') bad('segHead', "'linear'", c.segHead);
  if (c.segUnmerge !== undefined && !(SEG_UNMERGES as readonly unknown[]).includes(c.segUnmerge)) bad('segUnmerge', SEG_UNMERGES.map((u) => `'${u}'`).join(', '), c.segUnmerge);
  if (c.task === 'segment' && c.distilled) bad('distilled', 'false for a segmentation model', c.distilled);
  if (c.scenes !== undefined) {
    const s = c.scenes as Record<string, unknown>;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) bad('scenes', 'an object', s);
    if (s.data !== 'fashion-mnist' && s.data !== 'mnist') bad('scenes.data', "'fashion-mnist' or 'mnist'", s.data);
    const sint = (k: string, lo: number, hi: number): number => {
      const v = s[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(`scenes.${k}`, `an integer in ${lo}..${hi}`, v);
      return v as number;
    };
    sint('size', 28, Math.max(28, imgSize)); // the canvas holds 28x28 items
    const lo = sint('minItems', 1, MAX_ITEMS);
    sint('maxItems', lo, MAX_ITEMS);
    sint('threshold', 1, 255);
    sint('seed', 0, 2 ** 32 - 1);
  }
  if (c.preprocess !== undefined) validatePreprocess(c.preprocess, c as unknown as VitConfig, bad);
  const cfg = c as unknown as VitConfig;
  const limit = maxModelBytes(opts.maxBytes), need = estimateBytes(cfg, opts.batch ?? 1);
  if (need > limit) {
    throw new ConfigError(file, '(model size)', `at most ${fmtBytes(limit)} for the weights and one forward (raise with CAIT_MAX_MODEL_BYTES or maxBytes)`,
      `an estimated ${fmtBytes(need)} (imgSize ${imgSize}, embedDim ${embedDim}, depth ${depth}, ${numClasses} classes)`);
  }
  return cfg;
}

function validatePreprocess(p: unknown, cfg: VitConfig, bad: (f: string, e: string, g: unknown) => never): void {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) bad('preprocess', 'an object', p);
  const o = p as Record<string, unknown>;
  if (o.kind !== 'timm' && o.kind !== 'hf' && o.kind !== 'fixed') bad('preprocess.kind', "'timm', 'hf' or 'fixed'", o.kind);
  if (o.size !== cfg.imgSize) bad('preprocess.size', `the model input size imgSize ${cfg.imgSize}`, o.size);
  if (o.interpolation !== 'nearest' && o.interpolation !== 'bilinear' && o.interpolation !== 'bicubic') bad('preprocess.interpolation', "'nearest', 'bilinear' or 'bicubic'", o.interpolation);
  if (o.kind === 'timm') {
    // the resize side floor(size / cropPct) under the same cap as a transformers resize
    if (typeof o.cropPct !== 'number' || !(o.cropPct > 0 && o.cropPct <= 1) || Math.floor(cfg.imgSize / o.cropPct) > MAX_IMG) {
      bad('preprocess.cropPct', `a number in (0, 1] with floor(imgSize / cropPct) <= ${MAX_IMG} (the resize before the crop)`, o.cropPct);
    }
    if (o.cropMode !== undefined && o.cropMode !== 'center' && o.cropMode !== 'squash' && o.cropMode !== 'border') bad('preprocess.cropMode', "'center', 'squash' or 'border'", o.cropMode);
  }
  if (o.kind === 'hf') {
    const r = o.resize as Record<string, unknown> | undefined;
    const side = (k: string) => { const v = r![k]; if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_IMG) bad(`preprocess.resize.${k}`, `an integer in 1..${MAX_IMG}`, v); return v as number; };
    if (r === null || typeof r !== 'object') bad('preprocess.resize', '{height, width} or {shortestEdge}', r);
    if ('shortestEdge' in r!) side('shortestEdge');
    else { side('height'); side('width'); }
    if (o.crop !== undefined && typeof o.crop !== 'boolean') bad('preprocess.crop', 'true or false', o.crop);
    if (!o.crop && !('shortestEdge' in r!) && (r!.height !== cfg.imgSize || r!.width !== cfg.imgSize)) bad('preprocess.resize', `${cfg.imgSize}x${cfg.imgSize} (imgSize) without a crop`, r);
    if (o.crop && ('shortestEdge' in r! ? (r!.shortestEdge as number) < cfg.imgSize : ((r!.height as number) < cfg.imgSize || (r!.width as number) < cfg.imgSize))) bad('preprocess.resize', `at least the crop ${cfg.imgSize}`, r);
  }
  for (const k of ['mean', 'std'] as const) {
    const v = o[k], want = cfg[k];
    if (!Array.isArray(v) || v.length !== want.length || v.some((x, i) => x !== want[i])) bad(`preprocess.${k}`, `the config's ${k} ${show(want)}`, v);
  }
}
