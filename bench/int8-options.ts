// What each int8 option costs or saves: planned forwards of DeiT-Tiny (random
// weights, batch 1, one thread, pinned: bench/pin.ts) dense and with its 1.7x
// CAIT structure (bench/structure.ts), quantized with quantizeModel's options
// (src/quant/int8.ts) one at a time against the default:
//   default          prefix rows and their weights in two parts, attention's GEMMs in int8, 6-bit rows into qkv, fc1, fc2, proj, q and P
//   prefix-weights-off { prefixWeights: false } (the prefix rows' weights in one part)
//   qkv-7bit         qkv's rows in 7 bits (before the prefix weights, the default)
//   attention-float  { attention: false }
//   prefix-7bit      { prefixRows: false }
//   rows-7bit        { sixBit: false } (every other row 7-bit: no paired dot)
// All plans in one process, interleaved round by round (the order rotating),
// warm-up rounds dropped; per variant the median time, and per round the
// ratio to the default of the same model in the same round, with its median,
// MAD and p10/p90. The logits of each variant against the float model's are
// recorded too (max |diff| / max |float|), as the options trade time for them.
// Usage: node --import tsx bench/int8-options.ts [--rounds 40] [--warmup 5] [--cpu K|none] [--out bench/results/int8-options.json]
//   (npm run bench:int8-options) writes --out
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend, Tensor, scope } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { quantizeModel, SIX_BIT_LAYERS, type QuantizeOptions } from '../src/quant/int8.js';
import { CaitModel } from '../src/cait/wrap.js';
import { InferencePlan } from '../src/plan.js';
import { environment } from '../src/util/timing.js';
import { scriptArgs } from './args.js';
import { chosenStructure } from './structure.js';
import { pinToOneCpu } from './pin.js';

const cli = scriptArgs(process.argv.slice(2), { rounds: 'number', warmup: 'number', cpu: 'string', out: 'string' },
  `node --import tsx bench/int8-options.ts [--rounds 40] [--warmup 5] [--cpu K|none] [--out bench/results/int8-options.json]   (npm run bench:int8-options)
  Writes --out (by default over the committed bench/results/int8-options.json).`);
const R = cli.int('rounds', 40, 1), WARM = cli.int('warmup', 5, 0);
const out = resolve((cli.flags.out as string | undefined) ?? fileURLToPath(new URL('./results/int8-options.json', import.meta.url)));
const pinning = cli.check(() => pinToOneCpu(cli.flags.cpu as string | undefined, 1));
const be = loadWasmSync('auto');
setBackend(be);
const cfg = getPreset('deit_tiny_patch16_224'), s = chosenStructure(cfg, 1.7);
const shape = [1, 3, 224, 224], x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i));
const VARIANTS: Record<string, QuantizeOptions> = { default: {}, 'prefix-weights-off': { prefixWeights: false }, 'qkv-7bit': { sixBitLayers: (n: string) => SIX_BIT_LAYERS.test(n) && !n.endsWith('.attn.qkv') }, 'attention-float': { attention: false }, 'prefix-7bit': { prefixRows: false }, 'rows-7bit': { sixBit: false } };
type Fwd = { forward(t: Tensor): Tensor };
/** The model, quantized with `o` (none: float) before ATME wraps it. */
const build = (model: string, o?: QuantizeOptions): { fwd: Fwd; dispose(): void } => {
  const v = model === 'dense' ? createModel(cfg, 0) : createModel({ ...cfg, widths: s.widths, merge: s.merge }, 0);
  if (o) quantizeModel(v, o);
  return { fwd: model === 'dense' ? v : new CaitModel(v, { merge: s.merge }), dispose: () => v.dispose() };
};
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const plans: Record<string, InferencePlan> = {}, logitError: Record<string, number> = {};
for (const model of ['dense', 'cait']) {
  const f = build(model), float = noGrad(() => scope(() => f.fwd.forward(Tensor.from(x, shape)).toArray()));
  f.dispose();
  for (const [name, o] of Object.entries(VARIANTS)) {
    const m = build(model, o);
    const key = `${model} ${name}`;
    plans[key] = InferencePlan.capture(be, x, shape, (t) => m.fwd.forward(t));
    const y = plans[key].run(x);
    let d = 0;
    for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i] - float[i]));
    logitError[key] = d / maxAbs(float);
  }
}
const names = Object.keys(plans), t: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < R + WARM; r++) {
  for (let j = 0; j < names.length; j++) {
    const n = names[(j + r) % names.length], t0 = performance.now();
    plans[n].run(x);
    if (r >= WARM) t[n].push(performance.now() - t0);
  }
}
const sorted = (v: number[]) => [...v].sort((a, b) => a - b);
const q = (v: number[], p: number) => { const w = sorted(v); return w[Math.min(w.length - 1, Math.max(0, Math.round(p * (w.length - 1))))]; };
const median = (v: number[]) => q(v, 0.5);
const results = names.map((n) => {
  const [model, variant] = n.split(' '), base = t[`${model} default`], ratios = t[n].map((v, i) => v / base[i]);
  const mr = median(ratios), mad = median(ratios.map((r) => Math.abs(r - mr)));
  return { model, variant, options: VARIANTS[variant], median_ms: +median(t[n]).toFixed(3), ratio_to_default: +mr.toFixed(4), ratio_mad: +mad.toFixed(4), ratio_p10: +q(ratios, 0.1).toFixed(4), ratio_p90: +q(ratios, 0.9).toFixed(4), logit_error: +logitError[n].toFixed(5), plan_steps: plans[n].steps };
});
for (const r of results) console.log(`${r.model.padEnd(5)} ${r.variant.padEnd(16)} ${r.median_ms.toFixed(2).padStart(7)} ms  x${r.ratio_to_default.toFixed(3)} of default (p10-p90 ${r.ratio_p10.toFixed(3)}-${r.ratio_p90.toFixed(3)})  logits ${(100 * r.logit_error).toFixed(2)}% of float`);
for (const p of Object.values(plans)) p.dispose();
mkdirSync(dirname(out), { recursive: true });
const report = {
  what: 'bench/int8-options.ts: DeiT-Tiny int8 (random weights, batch 1, one thread, planned), dense and CAIT structure, quantizeModel options against the default, interleaved rounds',
  env: { ...environment(), backend: be.name, pinned_cpu: pinning.cpu, pinning: pinning.why },
  cait_structure: { merge: s.merge, prune: s.prune, keep: s.keep, mac_ratio: s.ratio, source: s.source },
  rounds: R, warmup: WARM, results,
};
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${out}`);
