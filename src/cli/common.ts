// Shared CLI plumbing: backend choice, model loading, image to input tensor, output.
import { Tensor, getBackend, scope, setBackend } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { readsAsync } from '../backend/webgpu/index.js';
import { loadWasmSync } from '../backend/wasm.js';
import { loadThreadedWasmSync } from '../backend/threads.js';
import { ReferenceBackend } from '../backend/reference/index.js';
import { existsSync } from 'node:fs';
import { checkpointPaths, loadModel, type LoadedModel, type LoadOptions } from '../nn/model.js';
import { ConfigError, estimateBytes, maxModelBytes } from '../nn/validate.js';
import type { VitConfig } from '../nn/presets.js';
import type { VisionTransformer } from '../nn/vit.js';
import type { Trainable } from '../train/trainer.js';
import { CaitModel, atmeOptionsFromMetadata } from '../cait/wrap.js';
import { toSteps, type AtmeOptions, type MergeStep, type Similarity } from '../cait/atme.js';
import { isSegmentation, segModel, SEG_UNMERGES, type SegUnmerge } from '../seg/model.js';
import { UsageError, int8AttentionOf, int8SixBitOf } from './flags.js';
import type { WasmBackend } from '../backend/wasm.js';
import { checkOutput, OutputError, type NamedInput } from '../io/output.js';
import { quantizeForInference, quantizeRefusal, quantScheme, type LoadQuantize } from '../quant/format.js';

// One WASM instance per variant per process: a command run in-process (tests,
// src/cli/main.ts's `main`) reuses it rather than compiling another.
const wasmCache = new Map<string, WasmBackend>();
const wasm = (v: 'auto' | 'simd' | 'relaxed'): WasmBackend => {
  let b = wasmCache.get(v);
  if (!b) { b = loadWasmSync(v); wasmCache.set(v, b); }
  return b;
};

/**
 * Sets the backend named by --backend; with --threads N > 1, a pool of N
 * threads over one shared memory (src/backend/threads.ts; WASM builds only).
 */
export function useBackend(name: string | undefined, threads?: number): void {
  const n = threads ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--threads must be an integer in 1..64, got ${threads}`);
  if (n > 1) {
    const variants: Record<string, 'auto' | 'simd' | 'relaxed'> = { wasm: 'auto', 'wasm-simd': 'simd', 'wasm-relaxed': 'relaxed' };
    const variant = variants[name ?? 'wasm'];
    if (!variant) throw new UsageError(`--threads ${n} needs a WASM backend (wasm, wasm-simd, wasm-relaxed), not '${name}'`);
    setBackend(loadThreadedWasmSync({ threads: n, variant }));
    return;
  }
  switch (name ?? 'wasm') {
    case 'wasm': setBackend(wasm('auto')); break;
    case 'wasm-simd': setBackend(wasm('simd')); break;
    case 'wasm-relaxed': setBackend(wasm('relaxed')); break;
    case 'reference': setBackend(new ReferenceBackend()); break;
    case 'webgpu': throw new UsageError('--backend webgpu runs the inference commands (eval, predict, forward, bench, segment, serve): this one (training, quantizing, compressing, the demo) reads tensors back on the host synchronously, which WebGPU cannot');
    default: throw new UsageError(`unknown --backend '${name}' (wasm, wasm-simd, wasm-relaxed, reference, webgpu)`);
  }
}

/**
 * useBackend, plus `webgpu` for the inference commands: a GPU through dawn
 * (the optional `webgpu` package), else a software adapter (SwiftShader or
 * llvmpipe; see src/backend/webgpu/node.ts and scripts/setup-webgpu.sh).
 * Which adapter was found goes to stderr; the device is released at exit.
 */
export async function useBackendAsync(name: string | undefined, threads?: number): Promise<void> {
  if (name !== 'webgpu') return useBackend(name, threads);
  if ((threads ?? 1) !== 1) throw new UsageError('--threads applies to the WASM backends, not webgpu');
  const { createNodeWebGpu } = await import('../backend/webgpu/node.js');
  let g;
  try { g = await createNodeWebGpu(); } catch (e) { throw new Error(`--backend webgpu: ${(e as Error).message}`); }
  setBackend(g.backend);
  process.stderr.write(`webgpu: ${g.adapter}\n`);
  process.once('beforeExit', () => g.backend.destroy());
}

/**
 * Logits of one no-gradient forward of `input()`, read back: a synchronous copy
 * on WASM and the reference backend (as before), an awaited read-back on WebGPU.
 */
export async function forwardLogits(model: Pick<Trainable, 'forward'>, input: () => Tensor): Promise<Float32Array> {
  const be = getBackend();
  if (!readsAsync(be)) return noGrad(() => scope(() => model.forward(input()).toArray()));
  const y = noGrad(() => scope(() => model.forward(input())));
  try { return await be.readAsync(y.ptr, y.size); } finally { y.dispose(); }
}

export function need<T>(v: T | undefined, flag: string): T {
  if (v === undefined || v === '') throw new UsageError(`missing --${flag}`);
  return v;
}

/** --merge SCHEDULE as steps for the model `cfg` (its depth and patch grid): parsed once, here at the edge; a bad schedule is a usage error. */
export function mergeSteps(schedule: string | undefined, cfg: VitConfig): MergeStep[] {
  try { return toSteps(schedule, cfg); } catch (e) { throw new UsageError(`--merge: ${(e as Error).message}`); }
}

/** The merge flags as parsed (MERGE_FLAGS, and SEG_FLAGS' --unmerge). */
export interface MergeFlagValues { merge?: string; similarity?: Similarity; 'no-prop-attn'?: boolean; unmerge?: SegUnmerge }

/**
 * The model to run: the ViT itself, or a CaitModel around it when a schedule
 * applies (--merge, else the config's own `merge`; `--merge none` turns a
 * saved schedule off). Switches: the flags, else those saved with the model.
 * A segmentation model (config task 'segment') is always wrapped, with its
 * segmentation head (src/seg/model.ts), merging or not.
 */
export function withMerging(vit: VisionTransformer, f: MergeFlagValues, metadata: Record<string, string> = {}): Trainable {
  const sim = f.similarity;   // an enum flag: checked by the parser
  // --merge is parsed here, once; a saved schedule was checked with its config when the model loaded
  const steps = f.merge !== undefined ? mergeSteps(f.merge, vit.cfg) : toSteps(vit.cfg.merge ?? '', vit.cfg);
  if (!steps.length && (sim !== undefined || f['no-prop-attn'])) throw new UsageError('--similarity and --no-prop-attn need a merge schedule (--merge, or a model saved with one)');
  const seg = isSegmentation(vit.cfg);
  applyUnmergeFlag(vit.cfg, f);
  // without merging every token is on the grid already: --unmerge did nothing
  if (!steps.length && f.unmerge !== undefined) throw new UsageError(`--unmerge ${f.unmerge} needs a merge schedule (--merge, or a model saved with one): without merging no token returns to the grid`);
  if (!steps.length && !vit.cfg.merge) return seg ? segModel(vit) : vit;
  const o: Partial<AtmeOptions> = { ...atmeOptionsFromMetadata(metadata) };
  if (sim !== undefined) o.similarity = sim;
  if (f['no-prop-attn']) o.propAttn = false;
  return seg ? segModel(vit, { ...o, merge: steps }) : new CaitModel(vit, { ...o, merge: steps });
}

/**
 * --unmerge residual|copy: how a segmentation model with merging returns to
 * the full grid (VitConfig.segUnmerge); set on the config so that the wrapper,
 * and a model saved from it, use it.
 */
export function applyUnmergeFlag(cfg: VitConfig, f: MergeFlagValues): void {
  const u = f.unmerge;
  if (u === undefined) return;
  if (!isSegmentation(cfg)) throw new UsageError('--unmerge applies to segmentation models');
  if (!SEG_UNMERGES.includes(u)) throw new UsageError(`--unmerge must be ${SEG_UNMERGES.join(' or ')}, got '${u}'`);
  cfg.segUnmerge = u;
}

/** The load flags as parsed (MODEL_FLAGS' --allow-nonfinite and --img-size). */
export interface LoadFlagValues { 'allow-nonfinite'?: boolean; 'img-size'?: number }

/** LoadOptions from --preset and the load flags. */
export function loadOptionsOf(preset: string | undefined, f: LoadFlagValues): LoadOptions {
  return { preset, ...(f['allow-nonfinite'] ? { allowNonFinite: true } : {}), ...(f['img-size'] !== undefined ? { imgSize: f['img-size'] } : {}) };
}

/**
 * loadModel with the load flags. A config that does not fit the size asked
 * for by --img-size (a patch that does not divide it, a saved schedule or a
 * preprocessing that no longer fits, a model over the byte limit) is a usage
 * error naming the flag, as is --preset beside a model with its own config;
 * any other ConfigError stays a data error (exit 1)
 * naming the file and the field.
 */
export function loadModelFlags(file: string, preset: string | undefined, f: LoadFlagValues): LoadedModel {
  try { return loadModel(file, loadOptionsOf(preset, f)); } catch (e) {
    presetUsage(e, preset);
    if (e instanceof ConfigError && f['img-size'] !== undefined && /^(imgSize|patchSize|merge|preprocess|dataSize|scenes|\(model size\))/.test(e.field.replace(/^.*\[/, '')))
      throw new UsageError(`--img-size ${f['img-size']}: ${e.message}`);
    throw e;
  }
}

/** A loader's refusal of a preset beside a model with its own config is the flag's fault, not the file's: a usage error naming --preset. */
export function presetUsage(e: unknown, preset: string | undefined): void {
  if (e instanceof ConfigError && e.field === '(preset)') throw new UsageError(`--preset ${preset}: ${e.message}`);
}

/** --img-size resamples a loaded model's position embedding: without --model there is nothing to resample. */
export function needModelForLoadFlags(f: LoadFlagValues & { model?: unknown }): void {
  if (f['img-size'] !== undefined && !f.model) throw new UsageError(`--img-size runs a loaded model at another input size (its position embedding resampled): it needs --model`);
  if (f['allow-nonfinite'] && !f.model) throw new UsageError('--allow-nonfinite applies to a loaded model\'s weights: it needs --model');
}

const fmtBytes = (n: number): string => n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;

/**
 * A batch chosen by the user (`flag` names where it came from) checked before
 * any activation is allocated: the weights and one forward of `batch` images
 * (src/nn/validate.ts estimateBytes) must fit the byte limit
 * (CAIT_MAX_MODEL_BYTES, default 2 GiB). A usage error naming the flag, with
 * the largest batch that fits.
 */
export function checkBatchBytes(cfg: VitConfig, batch: number, flag: string): number {
  const limit = maxModelBytes(), need = estimateBytes(cfg, batch);
  if (need <= limit) return batch;
  let fits = 0;
  for (let lo = 1, hi = batch; lo <= hi;) {
    const mid = (lo + hi) >> 1;
    if (estimateBytes(cfg, mid) <= limit) { fits = mid; lo = mid + 1; } else hi = mid - 1;
  }
  throw new UsageError(`${flag} ${batch}: the weights and a forward of ${batch} images of ${cfg.name} (${cfg.imgSize}x${cfg.imgSize}) take an estimated ${fmtBytes(need)}, over the limit ${fmtBytes(limit)} (CAIT_MAX_MODEL_BYTES); ` +
    (fits ? `at most ${fits} fit` : 'not even one image fits'));
}

/**
 * An int8 file given to a command that trains or rewrites its weights (train,
 * compress): the loaders hand it over dequantized, so say on stderr that the
 * work is in float and what the output is.
 */
export function noteInt8Input(cmd: string, file: string, metadata: Record<string, string>, output: string): void {
  const s = quantScheme(metadata);
  if (s) process.stderr.write(`cait ${cmd}: ${file} is an int8 file (${s}): ${cmd} works on its dequantized weights in float; ${output}\n`);
}

/** A model file, wrapped for merging as `withMerging` says; the load flags apply. */
export function openRunner(file: string, preset: string | undefined, f: MergeFlagValues & LoadFlagValues & Int8FlagValues): Trainable {
  const o = int8Of(f);
  const { model, metadata } = loadModelFlags(file, preset, f);
  // an int8 file (or a float one with --quantize int8) runs the int8 kernels (src/quant/), attention's too unless --int8-attention off
  quantizeForInference(model, metadata, o);
  return withMerging(model, f, metadata);
}

/** INT8_FLAGS' values. */
export interface Int8FlagValues { quantize?: LoadQuantize; 'int8-attention'?: 'on' | 'off'; 'int8-six-bit'?: 'on' | 'off' }
/**
 * INT8_FLAGS as quantizeForInference's options, checked against the current
 * backend before anything loads (a usage error, exit 2: quantizeRefusal).
 */
export function int8Of(f: Int8FlagValues): { attention: boolean; sixBit: boolean; quantize?: LoadQuantize } {
  const why = quantizeRefusal(f.quantize, getBackend());
  if (why) throw new UsageError(`--${why}`);
  return { attention: int8AttentionOf(f), sixBit: int8SixBitOf(f), ...(f.quantize ? { quantize: f.quantize } : {}) };
}

export { imageToInput } from '../data/preprocess.js';

export function softmax(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z)), e = Array.from(z, (v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Print the one JSON object scripts read, as the last line of stdout: only with --json. */
export function emitJson(f: { json?: boolean }, obj: unknown): void { if (f.json) process.stdout.write(JSON.stringify(obj) + '\n'); }

/**
 * The files a --model source stands for, as inputs no output of the command
 * may replace: its weights (a folder's model.safetensors, not the folder) and
 * the config files beside them. A source that does not exist is left to the
 * loader's error.
 */
export function modelInputs(source: string | undefined): NamedInput[] {
  if (source === undefined || !existsSync(source)) return [{ flag: '--model', path: source }];
  const p = checkpointPaths(source);
  return [{ flag: '--model', path: p.weights }, { flag: '--model (config.json)', path: p.config }, { flag: '--model (preprocessor_config.json)', path: p.preprocessorConfig }];
}

/**
 * An output flag's path checked before any work, by io/output.ts's rules (not
 * an input of the command, a regular file or a new one): a usage error if not.
 */
export function checkOutputFlag(flag: string, path: string, inputs: readonly NamedInput[] = []): string {
  try { checkOutput(path, inputs); } catch (e) {
    if (e instanceof OutputError) throw new UsageError(`--${flag} ${e.message}`);
    throw e;
  }
  return path;
}

/** The last epoch's loss for the summary line; a resumed run that had no epoch left says so. */
export const lossText = (last: { loss: number } | undefined): string => (last ? `loss ${last.loss.toFixed(4)}` : 'no epoch left to run (the checkpoint is at --epochs)');
