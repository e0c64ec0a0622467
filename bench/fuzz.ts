// Fuzzing the model loader (issue 16): corrupt model files, generated from one
// valid micro model, go through modelFromBytes (the loader every entry point
// uses) and, when accepted, one forward (wrapped for merging when the config
// says so, as the CLI runs it). Every case ends in one of:
//   rejected  a SafetensorsError or ConfigError whose message names the file
//   accepted  loaded and ran, finite logits of the right shape
// and anything else is counted against the loader:
//   crash     another error type (TypeError, RangeError, a bare Error...), or a
//             project error that does not name the file
//   abort     the worker process died (out of memory, a WebAssembly trap
//             escaping, a native abort)
//   hang      a case ran longer than 10 s
//   silent    an invalid config accepted: a case the generator built invalid
//             by construction (issue 16's list, wrong types and ranges) that
//             loaded, or an accepted config failing an independent check of
//             the invariants below (heads divide width, patch divides image,
//             mean/std per channel, std and eps > 0, labels = classes)
// Cases: first every case issue 16's first bullet lists (and the header
// cases of its preamble), then random header, data and config mutations from
// a seeded generator, so a run is reproducible case by case.
//
// Usage: node --import tsx bench/fuzz.ts [cases=5000] [seed=1] [workers=2]
//        writes bench/results/fuzz.json; exit 1 if any crash/abort/hang/silent.
//        node --import tsx bench/fuzz.ts --selftest: the watchdog catches a
//        forced abort and a forced hang (about 40 s).
// test/fuzz.test.ts runs the first 300 cases in-process.
import { scriptArgs } from './args.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { Tensor, scope, setBackend, liveTensorCount } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { createModel } from '../src/nn/model.js';
import { modelFromBytes } from '../src/nn/load-bytes.js';
import { modelFromCheckpoint } from '../src/nn/checkpoint.js';
import { ConfigError } from '../src/nn/validate.js';
import { CaitModel } from '../src/cait/wrap.js';
import { SafetensorsError, writeSafetensors } from '../src/io/safetensors.js';
import type { VitConfig } from '../src/nn/presets.js';
import { environment } from '../src/util/timing.js';
import { quantizeModel } from '../src/quant/int8.js';
import { quantizedFileBytes } from '../src/quant/format.js';

export const FILE = 'fuzz/model.safetensors';
const CONFIG_FILE = 'fuzz/config.json', PRE_FILE = 'fuzz/preprocessor_config.json';
/** The model every case starts from: small enough for thousands of loads, big enough to merge (4x4 grid). */
export const BASE_CONFIG: VitConfig = {
  name: 'fuzz-micro', imgSize: 16, patchSize: 4, inChans: 3, numClasses: 5, embedDim: 32, depth: 2, numHeads: 4,
  mlpRatio: 2, qkvBias: true, eps: 1e-6, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25],
  classes: ['a', 'b', 'c', 'd', 'e'], merge: 'h@1',
};

/** A model file, and for the library layouts the config.json / preprocessor_config.json beside it. */
export interface FuzzCase { index: number; kind: string; bytes: Uint8Array; invalid: boolean; config?: string; pre?: string }
export type Outcome = 'accepted' | 'rejected' | 'crash' | 'silent';
export interface CaseResult { index: number; kind: string; outcome: Outcome; ms: number; error?: string }

/** mulberry32: small, seeded, reproducible. */
class Rand {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
}

interface Parts { header: Record<string, any>; data: Uint8Array; label: string }
const split = (bytes: Uint8Array, label: string): Parts => {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.slice(8 + n), label };
};
/** The float file, and the same model as an int8 file (src/quant/format.ts: I8 weights, F32 scales, __metadata__.quant). */
function baseParts(): { float: Parts; int8: Parts } {
  setBackend(loadWasmSync('relaxed'));
  const m = createModel(BASE_CONFIG, 7);
  const tensors = new Map(m.namedParameters().map(([n, p]) => [n, { shape: p.shape, data: p.toArray() }]));
  const float = split(writeSafetensors(tensors, { format: 'pt', config: JSON.stringify(BASE_CONFIG) }), '');
  const qm = quantizeModel(m);
  const int8 = split(quantizedFileBytes(m, qm), 'int8 ');
  qm.dispose?.();
  m.dispose();
  return { float, int8 };
}
function assemble(headerText: string, data: Uint8Array, lengthField?: number): Uint8Array {
  const h = new TextEncoder().encode(headerText), pad = Math.ceil(h.length / 8) * 8;
  const out = new Uint8Array(8 + pad + data.length), dv = new DataView(out.buffer);
  const len = lengthField ?? pad;
  dv.setUint32(0, len % 2 ** 32, true); dv.setUint32(4, Math.floor(len / 2 ** 32), true);
  out.set(h, 8); out.fill(0x20, 8 + h.length, 8 + pad); out.set(data, 8 + pad);
  return out;
}
const withCfg = (p: Parts, cfgText: string): string => JSON.stringify({ ...p.header, __metadata__: { ...p.header.__metadata__, config: cfgText } });
const cfgWith = (p: Parts, patch: Record<string, unknown>): string => withCfg(p, JSON.stringify({ ...BASE_CONFIG, ...patch }));
const tensorNames = (p: Parts): string[] => Object.keys(p.header).filter((k) => k !== '__metadata__');

/** issue 16's list (first bullet) and the header cases of its preamble: all invalid. */
function listedCases(p: Parts): Array<{ kind: string; bytes: Uint8Array }> {
  const c = (kind: string, headerText: string, data = p.data) => ({ kind, bytes: assemble(headerText, data) });
  const cfg = (kind: string, patch: Record<string, unknown>) => c(kind, cfgWith(p, patch));
  const scenes = { data: 'fashion-mnist', size: 32, minItems: 2, maxItems: 4, threshold: 32, seed: 0 };
  const out = [
    cfg('listed: dataSize 1e9', { dataSize: 1e9 }), cfg('listed: depth 1e6', { depth: 1e6 }), cfg('listed: embedDim 1e9', { embedDim: 1e9 }),
    cfg('listed: numHeads 3 with embedDim 32', { numHeads: 3 }), cfg('listed: numHeads 3 embedDim 64', { numHeads: 3, embedDim: 64 }),
    cfg('listed: eps -1', { eps: -1 }), cfg('listed: std [0]', { std: [0, 0.25, 0.25] }), cfg('listed: mean []', { mean: [] }),
    cfg('listed: depth 3 on a 2-block file', { depth: 3 }), c('listed: config null', withCfg(p, 'null')), cfg('listed: merge 42', { merge: 42 }),
    cfg('listed: imgSize 1e9', { imgSize: 1e9 }), cfg('listed: patchSize 0', { patchSize: 0 }), cfg('listed: patchSize -1', { patchSize: -1 }),
    cfg('listed: inChans -1', { inChans: -1 }), cfg('listed: embedDim -4', { embedDim: -4 }), cfg('listed: numClasses -1', { numClasses: -1 }),
    cfg('listed: mlpRatio -1', { mlpRatio: -1 }), cfg('listed: scenes.maxItems 1e9', { imgSize: 32, task: 'segment', segHead: 'linear', scenes: { ...scenes, size: 32, maxItems: 1e9 } }),
    c('listed: duplicate config key', withCfg(p, JSON.stringify(BASE_CONFIG).replace('"depth":2', '"depth":2,"depth":3'))),
    c('listed: duplicate __metadata__ key', JSON.stringify(p.header).replace('"__metadata__":{', '"__metadata__":{"config":"{}",')),
    c('listed: duplicate __metadata__', JSON.stringify(p.header).replace(/^\{/, '{"__metadata__":{"format":"pt"},')),
  ];
  for (const dt of ['I32', 'U32']) {
    const h = structuredClone(p.header);
    h['blocks.0.attn.qkv.weight'].dtype = dt;
    out.push(c(`listed: F32 relabelled ${dt}`, JSON.stringify(h)));
  }
  const nan = p.data.slice(), off = p.header['head.weight'].data_offsets[0];
  new DataView(nan.buffer).setFloat32(off + 8, NaN, true);
  out.push(c('listed: one NaN weight', JSON.stringify(p.header), nan));
  const inf = p.data.slice();
  new DataView(inf.buffer).setFloat32(p.header['pos_embed'].data_offsets[0], -Infinity, true);
  out.push(c('listed: one -Infinity weight', JSON.stringify(p.header), inf));
  const full = assemble(JSON.stringify(p.header), p.data);
  out.push({ kind: 'listed: truncated by one byte', bytes: full.subarray(0, full.length - 1) });
  out.push({ kind: 'listed: header length lies (+8)', bytes: assemble(JSON.stringify(p.header), p.data, Math.ceil(JSON.stringify(p.header).length / 8) * 8 + 8) });
  out.push({ kind: 'listed: header length 2^40', bytes: assemble(JSON.stringify(p.header), p.data, 2 ** 40) });
  const bad = structuredClone(p.header);
  bad['norm.bias'].data_offsets = [0, 4 * 32];
  out.push(c('listed: overlapping offsets', JSON.stringify(bad)));
  return out;
}

const VALUES: unknown[] = [0, -1, 1, 2, 3, 1.5, 1e9, 1e308, -1e-9, '', 'x', null, true, false, [], [0], [1, 2, 3], {}, { a: 1 }, 2 ** 31, 2 ** 53 + 2, 'h@0', 'v@1,h@0', 'h@9', 0.5, 4, 8, 16, 64];
const INT_FIELDS = ['imgSize', 'patchSize', 'inChans', 'numClasses', 'embedDim', 'depth', 'numHeads', 'dataSize'];
const FIELDS = [...INT_FIELDS, 'mlpRatio', 'qkvBias', 'eps', 'mean', 'std', 'classes', 'widths', 'merge', 'task', 'segHead', 'segUnmerge', 'scenes', 'distilled', 'distillHead', 'preprocess', 'name'];

/** Is `v` as field `k` wrong by its type and range alone (independent of the validator)? null: cannot tell. */
function invalidByType(k: string, v: unknown): boolean | null {
  if (v === undefined) return ['imgSize', 'patchSize', 'inChans', 'numClasses', 'embedDim', 'depth', 'numHeads', 'mlpRatio', 'qkvBias', 'eps', 'mean', 'std', 'name'].includes(k) ? true : null;
  if (INT_FIELDS.includes(k)) return !(typeof v === 'number' && Number.isInteger(v) && v >= 1) ? true : null;
  if (k === 'mlpRatio' || k === 'eps') return !(typeof v === 'number' && v > 0) ? true : null;
  if (k === 'qkvBias' || k === 'distilled' || k === 'distillHead') return typeof v !== 'boolean' ? true : null;
  if (k === 'mean' || k === 'std') return !(Array.isArray(v) && v.length === 3) ? true : null;
  if (k === 'classes') return !(Array.isArray(v) && v.length === 5 && v.every((s) => typeof s === 'string')) ? true : null;
  if (k === 'merge') return typeof v !== 'string' ? true : null;
  if (k === 'task') return v !== 'classify' && v !== 'segment' ? true : null;
  if (k === 'name') return typeof v !== 'string' ? true : null;
  if (k === 'segHead') return v !== 'linear' ? true : null;
  if (k === 'segUnmerge') return v !== 'residual' && v !== 'copy' ? true : null;
  if (k === 'scenes' || k === 'preprocess' || k === 'widths') return v === null || typeof v !== 'object' ? true : null;
  return null;
}

/** The transformers and timm fixtures (../shared/fixtures): weights and configs, read once. */
interface Library { name: string; weights: Uint8Array; config: Record<string, unknown>; pre?: Record<string, unknown> }
let libraries: Library[] | null = null;
function libraryFixtures(): Library[] {
  if (libraries) return libraries;
  const dir = fileURLToPath(new URL('../../shared/fixtures/', import.meta.url));
  const json = (f: string) => existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown> : undefined;
  libraries = ['hf-vit', 'hf-deit-distilled', 'timm-deit-distilled'].filter((d) => existsSync(`${dir}${d}/model.safetensors`)).map((d) => ({
    name: d, weights: new Uint8Array(readFileSync(`${dir}${d}/model.safetensors`)), config: json(`${dir}${d}/config.json`)!, pre: json(`${dir}${d}/preprocessor_config.json`),
  }));
  return libraries;
}
const LIB_VALUES: unknown[] = [...VALUES, 'gelu_new', 'relu', 'bicubic', 'squash', [3, 48, 48], [3, 32, 32], { height: 48, width: 48 }, { height: 56, width: 40 }, { shortest_edge: 48 }, { '0': 'a' }, ['a'], -0.5];
/** Set a value at a random key of a JSON object, at most 2 levels down (or delete it). */
function mutateJson(o: Record<string, unknown>, r: Rand): { text: string; what: string } {
  const c = structuredClone(o);
  let target: Record<string, unknown> = c, path = '';
  const keys = Object.keys(c), k0 = r.pick(keys), v0 = c[k0];
  let k = k0;
  if (v0 && typeof v0 === 'object' && !Array.isArray(v0) && Object.keys(v0).length && r.int(2)) { target = v0 as Record<string, unknown>; path = `${k0}.`; k = r.pick(Object.keys(target)); }
  const v = r.int(8) === 0 ? undefined : r.pick(LIB_VALUES);
  if (v === undefined) delete target[k]; else target[k] = v;
  return { text: JSON.stringify(c), what: `${path}${k} = ${v === undefined ? '(removed)' : JSON.stringify(v)}` };
}

/** One random mutation of the base file. */
function randomCase(p: Parts, r: Rand): { kind: string; bytes: Uint8Array; invalid: boolean; config?: string; pre?: string } {
  const headerText = JSON.stringify(p.header), names = tensorNames(p);
  const op = r.int(16);
  if (op >= 14) { // a transformers or timm folder with a damaged config.json or preprocessor_config.json
    const libs = libraryFixtures();
    if (libs.length) {
      const lib = r.pick(libs), onPre = !!lib.pre && r.int(3) === 0;
      const m = mutateJson(onPre ? lib.pre! : lib.config, r);
      return { kind: `library ${lib.name}: ${onPre ? 'preprocessor_config' : 'config'}.${m.what}`, bytes: lib.weights, invalid: false,
        config: onPre ? JSON.stringify(lib.config) : m.text, pre: onPre ? m.text : lib.pre && JSON.stringify(lib.pre) };
    }
  }
  switch (op) {
    case 0: { // flip bits of a header byte
      const b = assemble(headerText, p.data), i = 8 + r.int(headerText.length);
      b[i] ^= 1 << r.int(8);
      return { kind: 'header: bit flip', bytes: b, invalid: false };
    }
    case 1: { // a JSON-significant character somewhere in the header
      const b = assemble(headerText, p.data), i = 8 + r.int(headerText.length);
      b[i] = '{}[]",:0123456789-eE. '.charCodeAt(r.int(22));
      return { kind: 'header: structural byte', bytes: b, invalid: false };
    }
    case 2: { // truncation
      const b = assemble(headerText, p.data);
      return { kind: 'file: truncated', bytes: b.subarray(0, r.int(b.length)), invalid: true };
    }
    case 3: { // the length prefix lies
      const n = Math.ceil(headerText.length / 8) * 8;
      const v = r.pick([0, 1, 7, n - 8, n + 8, n * 2, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53, r.int(2 ** 31)]);
      return { kind: 'header: length field', bytes: assemble(headerText, p.data, v), invalid: v !== n };
    }
    case 4: { // data_offsets
      const h = structuredClone(p.header), t = h[r.pick(names)], [b0, e0] = t.data_offsets;
      t.data_offsets = r.pick([[b0 + 4, e0 + 4], [b0 - 4, e0 - 4], [e0, b0], [b0, e0 + 4], [-4, e0], [b0, 2 ** 53], [b0 + 0.5, e0], [b0], 'x', null, [b0, e0, 0]]);
      return { kind: 'header: data_offsets', bytes: assemble(JSON.stringify(h), p.data), invalid: true };
    }
    case 5: { // shape
      const h = structuredClone(p.header), t = h[r.pick(names)], s = t.shape.slice();
      const v = r.pick<unknown>([0, -1, 2 ** 31, 1.5, 'x', null, s[0] * 2, s[0] + 1]);
      const how = r.int(3);
      if (how === 0) s[r.int(s.length)] = v; else if (how === 1) s.push(1); else s.pop();
      const changed = JSON.stringify(s) !== JSON.stringify(t.shape); // e.g. [32, 64] with s[1] = 2 * s[0] is no change
      t.shape = s;
      // adding or removing a trailing 1 keeps the byte size; the name's expected shape still differs
      return { kind: 'header: shape', bytes: assemble(JSON.stringify(h), p.data), invalid: changed };
    }
    case 6: { // dtype
      const h = structuredClone(p.header), t = h[r.pick(names)], was = t.dtype;
      t.dtype = r.pick<unknown>(['I32', 'U32', 'I8', 'U8', 'BOOL', 'F16', 'BF16', 'F64', 'I64', 'F4', '', null, 7, 'f32']);
      return { kind: `header: dtype ${was} -> ${JSON.stringify(t.dtype)}`, bytes: assemble(JSON.stringify(h), p.data), invalid: t.dtype !== was };
    }
    case 7: { // duplicate keys: a tensor entry, the metadata, a config key
      const name = r.pick(names), entry = JSON.stringify(p.header[name]);
      const text = r.int(2) ? headerText.replace(/^\{/, `{${JSON.stringify(name)}:${entry},`) : withCfg(p, JSON.stringify(BASE_CONFIG).replace('{', `{${JSON.stringify(r.pick(Object.keys(BASE_CONFIG)))}:1,`));
      return { kind: 'header: duplicate key', bytes: assemble(text, p.data), invalid: true };
    }
    case 8: { // a tensor removed (its bytes left as a gap), renamed, or an extra one
      const h = structuredClone(p.header), name = r.pick(names), how = r.int(3);
      if (how === 0) delete h[name];
      else if (how === 1) { h[`${name}x`] = h[name]; delete h[name]; }
      else { const e = p.data.length; h.extra = { dtype: 'F32', shape: [1], data_offsets: [e, e + 4] }; return { kind: 'header: extra tensor', bytes: assemble(JSON.stringify(h), new Uint8Array([...p.data, 0, 0, 128, 63])), invalid: true }; }
      return { kind: 'header: tensor removed/renamed', bytes: assemble(JSON.stringify(h), p.data), invalid: true };
    }
    case 9: { // non-finite values in the data (of a float tensor: I8 bytes are always numbers)
      const floats = names.filter((n) => p.header[n].dtype === 'F32'), [b0, e0] = p.header[r.pick(floats)].data_offsets;
      const d = p.data.slice(), i = (b0 >> 2) + r.int((e0 - b0) >> 2);
      new DataView(d.buffer).setFloat32(4 * i, r.pick([NaN, Infinity, -Infinity]), true);
      return { kind: 'data: non-finite', bytes: assemble(headerText, d), invalid: true };
    }
    case 10: { // random bytes in the data: NaN patterns are rejected, the rest is a valid (if odd) model
      const d = p.data.slice();
      for (let k = 1 + r.int(16); k > 0; k--) d[r.int(d.length)] = r.int(256);
      return { kind: 'data: random bytes', bytes: assemble(headerText, d), invalid: false };
    }
    case 11: case 12: { // one config field set to a value from the pool, or removed
      const k = r.pick(FIELDS), v = r.int(8) === 0 ? undefined : r.pick(VALUES);
      const cfg: Record<string, unknown> = { ...BASE_CONFIG };
      if (v === undefined) delete cfg[k]; else cfg[k] = v;
      return { kind: `config: ${k} = ${v === undefined ? '(removed)' : JSON.stringify(v)}`, bytes: assemble(withCfg(p, JSON.stringify(cfg)), p.data), invalid: invalidByType(k, v) === true };
    }
    default: { // the config text itself damaged
      const t = JSON.stringify(BASE_CONFIG), i = r.int(t.length);
      const text = r.int(2) ? t.slice(0, i) : t.slice(0, i) + r.pick(['{', '}', '"', ',', 'null', '1e999', '-', '[]']) + t.slice(i + 1);
      return { kind: 'config: text damaged', bytes: assemble(withCfg(p, text), p.data), invalid: false };
    }
  }
}

/** Cases [from, to) of the run with `seed`: the listed ones first, then random ones. */
export function* generateCases(from: number, to: number, seed = 1): Generator<FuzzCase> {
  const base = baseParts(), listed = listedCases(base.float), r = new Rand(seed);
  for (let i = 0; i < to; i++) {
    let c: { kind: string; bytes: Uint8Array; invalid: boolean; config?: string; pre?: string };
    if (i < listed.length) c = { ...listed[i], invalid: true };
    else {
      const p = r.int(4) === 0 ? base.int8 : base.float; // one in four random cases mutates the int8 file
      c = randomCase(p, r);
      if (p.label && !c.kind.startsWith('library')) c = { ...c, kind: p.label + c.kind };
    }
    if (i >= from) yield { index: i, ...c };
  }
}

/** The invariants an accepted config must hold, checked apart from the validator. */
function invariantsHold(c: VitConfig, logits: Float32Array): string | null {
  const ok = (b: boolean, what: string) => (b ? null : what);
  return ok(Number.isInteger(c.embedDim / c.numHeads), 'heads divide the width')
    ?? ok(Number.isInteger(c.imgSize / c.patchSize), 'patch divides the image')
    ?? ok(c.mean.length === c.inChans && c.std.length === c.inChans, 'mean/std per channel')
    ?? ok(c.std.every((s) => s > 0 && Number.isFinite(s)) && c.eps > 0 && Number.isFinite(c.eps), 'std and eps positive, finite')
    ?? ok(!c.classes || c.classes.length === c.numClasses, 'labels match the classes')
    ?? ok(logits.length === c.numClasses && logits.every(Number.isFinite), 'finite logits, one per class');
}

/** One case through the loader and a forward. */
export function runCase(c: FuzzCase): CaseResult {
  const t0 = performance.now(), live = liveTensorCount(), warn = console.warn;
  let outcome: Outcome, error: string | undefined;
  console.warn = () => {}; // pos_embed resampling notes for configs that change imgSize: expected, not counted
  try {
    const { model } = c.config === undefined ? modelFromBytes(c.bytes, {}, FILE)
      : modelFromCheckpoint({ weights: c.bytes, config: c.config, preprocessorConfig: c.pre, configName: CONFIG_FILE, preprocessorConfigName: PRE_FILE }, {}, FILE);
    try {
      const cfg = model.cfg, runner = cfg.merge ? new CaitModel(model) : model;
      const x = new Float32Array(cfg.inChans * cfg.imgSize * cfg.imgSize).map((_, i) => Math.sin(i));
      const logits = noGrad(() => scope(() => runner.forward(Tensor.from(x, [1, cfg.inChans, cfg.imgSize, cfg.imgSize])).toArray()));
      const broken = invariantsHold(cfg, logits);
      // random data bytes can make finite but huge weights whose logits overflow: a valid file, not a loader fault
      if (c.invalid || (broken && !(c.kind.endsWith('data: random bytes') && broken.startsWith('finite logits')))) {
        outcome = 'silent'; error = c.invalid ? 'invalid by construction, accepted' : `accepted, but not: ${broken}`;
      } else {
        outcome = 'accepted';
        if (broken) error = `note: ${broken} (finite but huge weights from random bytes overflow)`;
      }
    } finally { model.dispose(); }
  } catch (e) {
    const err = e as Error;
    const project = e instanceof SafetensorsError || e instanceof ConfigError;
    outcome = project && /fuzz\/(model\.safetensors|config\.json|preprocessor_config\.json)/.test(err.message) ? 'rejected' : 'crash';
    error = `${err?.name}: ${String(err?.message).slice(0, 300)}`;
  } finally { console.warn = warn; }
  if (liveTensorCount() !== live && outcome !== 'crash') { outcome = 'crash'; error = `${liveTensorCount() - live} tensor(s) left allocated${error ? ` (${error})` : ''}`; }
  return { index: c.index, kind: c.kind, outcome, ms: performance.now() - t0, ...(error ? { error } : {}) };
}

// ---------------------------------------------------------------- the runner: worker processes under a watchdog

const HANG_MS = 10_000;

/** --selftest: cases the watchdog must catch (CAIT_FUZZ_SELFTEST="abort=I,hang=J"), to show the counts come from a working detector. */
const SELFTEST = Object.fromEntries((process.env.CAIT_FUZZ_SELFTEST ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));

async function worker(from: number, to: number, seed: number): Promise<void> {
  let peak = 0;
  for (const c of generateCases(from, to, seed)) {
    if (c.index === SELFTEST.abort) process.abort();
    if (c.index === SELFTEST.hang) { const end = Date.now() + 60_000; while (Date.now() < end); }
    const r = runCase(c);
    peak = Math.max(peak, process.memoryUsage().rss);
    process.stdout.write(JSON.stringify({ ...r, rss: peak }) + '\n');
  }
}

/** Run [from, to) in a child; on a hang or a death, record it and continue after the case in a new child. */
function supervise(from: number, to: number, seed: number, results: CaseResult[], stats: { peakRss: number }): Promise<void> {
  return new Promise((resolve) => {
    let next = from;
    const start = (): void => {
      if (next >= to) { resolve(); return; }
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', String(next), String(to), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let timer: NodeJS.Timeout | null = null, hung = false, stderr = '';
      const arm = (): void => { if (timer) clearTimeout(timer); timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, HANG_MS + 20_000 /* start-up */); };
      arm();
      child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
      createInterface({ input: child.stdout }).on('line', (line) => {
        let r: CaseResult & { rss?: number };
        try { r = JSON.parse(line); } catch { return; }
        if (r.ms > HANG_MS) r = { ...r, outcome: 'crash', error: `hang: ${r.ms.toFixed(0)} ms` };
        results.push(r);
        stats.peakRss = Math.max(stats.peakRss, r.rss ?? 0);
        next = r.index + 1;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, HANG_MS);
      });
      child.on('exit', (code, signal) => {
        if (timer) clearTimeout(timer);
        if (next < to && (code !== 0 || hung)) {
          results.push({ index: next, kind: '(see error)', outcome: 'crash', ms: 0, error: hung ? `hang: no result in ${HANG_MS} ms` : `abort: worker exited ${code ?? signal}: ${stderr.slice(-300)}` });
          (results[results.length - 1] as CaseResult & { abort?: boolean; hang?: boolean })[hung ? 'hang' : 'abort'] = true;
          next++;
        }
        start();
      });
    };
    start();
  });
}

async function main(): Promise<void> {
  const cli = scriptArgs(process.argv.slice(2), {}, `node --import tsx bench/fuzz.ts [cases=5000] [seed=1] [workers=2]
  Writes bench/results/fuzz.json (the committed file). --selftest: the supervisor's own check.`);
  const num = (i: number, name: string, def: number, min: number) => {
    const v = cli.rest[i] === undefined ? def : Number(cli.rest[i]);
    if (!(Number.isInteger(v) && v >= min)) cli.fail(`${name}: an integer >= ${min}, got '${cli.rest[i]}'`);
    return v;
  };
  if (cli.rest.length > 3) cli.fail(`at most three arguments (cases, seed, workers), got ${cli.rest.length}`);
  const total = num(0, 'cases', 5000, 1), seed = num(1, 'seed', 1, 0), workers = num(2, 'workers', 2, 1);
  const results: CaseResult[] = [], stats = { peakRss: 0 }, t0 = performance.now();
  const per = Math.ceil(total / workers);
  await Promise.all(Array.from({ length: workers }, (_, w) => supervise(w * per, Math.min(total, (w + 1) * per), seed, results, stats)));
  results.sort((a, b) => a.index - b.index);
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  const aborts = results.filter((r) => (r as { abort?: boolean }).abort).length, hangs = results.filter((r) => /^hang/.test(r.error ?? '')).length;
  const byKind: Record<string, Record<string, number>> = {}, examples: Record<string, string> = {};
  for (const r of results) {
    const k = r.kind.startsWith('config: ') && !r.kind.startsWith('config: text') ? 'config: field' : r.kind.startsWith('listed: ') ? 'listed (issue 16)'
      : r.kind.startsWith('library ') ? `${r.kind.split(':')[0]}: ${r.kind.split(': ')[1].split('.')[0]} field`
      : r.kind.replace(/^(int8 )?config: (?!text).*/, '$1config: field').replace(/dtype .*/, 'dtype');
    byKind[k] ??= {}; byKind[k][r.outcome] = (byKind[k][r.outcome] ?? 0) + 1;
    if (r.error && !examples[k]) examples[k] = `${r.kind}: ${r.error}`;
  }
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const summary = {
    cases: results.length, seed, rejected: count('rejected'), accepted: count('accepted'),
    crashes: count('crash') - aborts - hangs, aborts, hangs_over_10s: hangs, silently_accepted_invalid: count('silent'),
    accepted_with_nonfinite_logits: results.filter((r) => r.outcome === 'accepted' && r.error).length,
    max_case_ms: +ms[ms.length - 1].toFixed(1), median_case_ms: +ms[ms.length >> 1].toFixed(2), peak_rss_mb: +(stats.peakRss / 2 ** 20).toFixed(0),
    wall_s: +((performance.now() - t0) / 1000).toFixed(1),
  };
  console.log(JSON.stringify(summary));
  for (const r of results.filter((x) => x.outcome === 'crash' || x.outcome === 'silent').slice(0, 20)) console.log(`  #${r.index} ${r.kind}: ${r.outcome}: ${r.error}`);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}fuzz.json`, JSON.stringify({
    env: { ...environment(), note: 'shared machine (other jobs running): times are indicative' },
    model: BASE_CONFIG, summary, by_kind: byKind,
    failures: results.filter((r) => r.outcome === 'crash' || r.outcome === 'silent'),
    listed: results.filter((r) => r.kind.startsWith('listed: ')).map((r) => `${r.kind} -> ${r.outcome}: ${r.error}`),
    examples,
    accepted_config_mutations: [...new Set(results.filter((r) => r.outcome === 'accepted' && /^(config|library)/.test(r.kind)).map((r) => r.kind))].sort(),
  }, null, 2) + '\n');
  process.exitCode = summary.crashes + summary.aborts + summary.hangs_over_10s + summary.silently_accepted_invalid > 0 ? 1 : 0;
}

/** The watchdog itself: one worker aborting at case 5 and hanging at case 12 of 20 must give 1 abort, 1 hang and 18 results. */
async function selftest(): Promise<void> {
  process.env.CAIT_FUZZ_SELFTEST = 'abort=5,hang=12';
  const results: CaseResult[] = [];
  await supervise(0, 20, 1, results, { peakRss: 0 });
  const aborts = results.filter((r) => /^abort/.test(r.error ?? '')), hangs = results.filter((r) => /^hang/.test(r.error ?? ''));
  const ok = results.length === 20 && aborts.length === 1 && aborts[0].index === 5 && hangs.length === 1 && hangs[0].index === 12;
  console.log(JSON.stringify({ selftest: ok ? 'pass' : 'FAIL', results: results.length, aborts: aborts.map((r) => r.index), hangs: hangs.map((r) => r.index) }));
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--worker') await worker(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
  else if (process.argv[2] === '--selftest') await selftest();
  else await main();
}
