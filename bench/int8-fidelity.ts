// How far int8 logits sit from float on the trained Fashion-MNIST models, image
// by image, for the int8 row precisions: every row in 7 bits (int8SixBit:
// false) and the default, fc1's, fc2's and attention proj's inputs and
// attention's q and P in 6 bits (src/quant/int8.ts SIX_BIT_LAYERS). Per image:
// max |int8 - float| / max |float| over its logits; reported: mean, p90, p99,
// max over the images, and how many int8 top-1 classes equal float's.
// Images: every 5th of the 10,000 test images (2,000, all classes), as
// `cait eval` preprocesses them (the library's preprocess, the model's own
// normalisation). And the prefix weights' switch: the file `cait quantize
// --prefix-weights off` writes (quantizeModel's prefixWeights: false; one
// weight part for the class token's rows too), loaded from its bytes. Also the ten sample images (web/public/samples, as the
// README's examples read them): each one's error, per model and variant.
// Not a timing: no pinning needed.
// Usage: node --import tsx bench/int8-fidelity.ts [--every 5]   writes bench/results/int8-fidelity.json
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load } from '../src/api/node.js';
import { loadModel } from '../src/nn/model.js';
import { quantizeModel } from '../src/quant/int8.js';
import { quantizedFileBytes } from '../src/quant/format.js';
import { CARRIED } from '../src/cli/quantize.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { environment } from '../src/util/timing.js';
import { scriptArgs } from './args.js';

const every = scriptArgs(process.argv.slice(2), { every: 'number' },
  'node --import tsx bench/int8-fidelity.ts [--every 5]   writes bench/results/int8-fidelity.json').int('every', 5, 1);
const test = loadFashionMnist().test, picks = Array.from({ length: Math.ceil(test.n / every) }, (_, i) => i * every);
const root = fileURLToPath(new URL('../', import.meta.url));
const VARIANTS = { '7-bit': { int8SixBit: false }, 'default (6-bit rows)': {}, 'prefix weights off': { prefixWeights: false } } as const;
/** `cait quantize --prefix-weights off`'s file for the float `file`. */
function onePartBytes(file: string): Uint8Array {
  const { model, metadata } = loadModel(file), qm = quantizeModel(model, { prefixWeights: false });
  const extra = Object.fromEntries(Object.entries(metadata).filter(([k]) => CARRIED(k)));
  try { return quantizedFileBytes(model, qm, extra); } finally { model.dispose(); }
}
const B = 50;
const results: Array<Record<string, unknown>> = [];
for (const name of ['fmnist-dense', 'fmnist-cait']) {
  const file = `${root}models/${name}.safetensors`, float = await load(file);
  const inputs: Float32Array[] = [];
  for (let s = 0; s < picks.length; s += B) {
    const ids = picks.slice(s, s + B), x = new Float32Array(ids.length * float.inputSize);
    ids.forEach((id, j) => {
      const rgba = new Uint8Array(784 * 4);
      for (let p = 0; p < 784; p++) { const v = test.images[id * 784 + p]; rgba.set([v, v, v, 255], 4 * p); }
      x.set(float.preprocess({ width: 28, height: 28, data: rgba }), j * float.inputSize);
    });
    inputs.push(x);
  }
  const logits = async (m: typeof float) => { const out: Float32Array[] = []; for (const x of inputs) out.push(await m.forward(x, x.length / m.inputSize)); return out; };
  const want = await logits(float), C = float.info.config.numClasses;
  for (const [variant, o] of Object.entries(VARIANTS)) {
    const m = 'prefixWeights' in o ? await load(onePartBytes(file)) : await load(file, { quantize: 'int8', ...o }), got = await logits(m), errs: number[] = [];
    let agree = 0, n = 0;
    want.forEach((a, bi) => {
      const b = got[bi];
      for (let i = 0; i < a.length / C; i++) {
        let big = 0, d = 0, ia = 0, ib = 0;
        for (let c = 0; c < C; c++) {
          const u = a[i * C + c], v = b[i * C + c];
          big = Math.max(big, Math.abs(u)); d = Math.max(d, Math.abs(u - v));
          if (u > a[i * C + ia]) ia = c;
          if (v > b[i * C + ib]) ib = c;
        }
        errs.push(d / big); n++; if (ia === ib) agree++;
      }
    });
    const samples: Record<string, number> = {}, dir = `${root}web/public/samples/`;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.png')).sort()) {
      const a = await float.forward(float.preprocess(dir + f)), b = await m.forward(m.preprocess(dir + f));
      let big = 0, d = 0;
      for (let c = 0; c < a.length; c++) { big = Math.max(big, Math.abs(a[c])); d = Math.max(d, Math.abs(a[c] - b[c])); }
      samples[f] = +(100 * d / big).toFixed(2);
    }
    m.dispose();
    errs.sort((p, q) => p - q);
    const q = (f: number) => +(100 * errs[Math.min(errs.length - 1, Math.floor(f * errs.length))]).toFixed(2);
    const row = { model: name, variant, images: n, mean_pct: +(100 * errs.reduce((s, e) => s + e, 0) / n).toFixed(3), p90_pct: q(0.9), p99_pct: q(0.99), max_pct: q(1), top1_agree: agree, top1_agree_frac: +(agree / n).toFixed(4), samples_pct: samples };
    results.push(row);
    const sv = Object.values(samples);
    console.log(`${name} ${variant}: mean ${row.mean_pct}%, p90 ${row.p90_pct}%, p99 ${row.p99_pct}%, max ${row.max_pct}%; top-1 = float's on ${agree}/${n}; samples ${Math.min(...sv)}-${Math.max(...sv)}%`);
  }
  float.dispose();
}
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}int8-fidelity.json`, JSON.stringify({
  what: 'bench/int8-fidelity.ts: the Fashion-MNIST models quantized as they load (the committed int8 files\' values), per test image max |int8 - float| / max |float| of the logits, and top-1 agreement with float',
  env: environment(), every, results,
}, null, 2) + '\n');
console.log(`wrote ${dir}int8-fidelity.json`);
