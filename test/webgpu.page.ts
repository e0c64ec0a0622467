// Browser half of test/webgpu.test.ts: bundled (esbuild) and served from
// 127.0.0.1 to headless Chromium, it runs the WebGPU backend under
// navigator.gpu and the WASM backend (fetched from /build/) on the same
// random-weight models and POSTs the logit differences to /result.
import { createWebGpuBackend } from '../src/backend/webgpu/index.js';
import { loadWasm } from '../src/backend/wasm.js';
import type { Backend } from '../src/backend/backend.js';
import { Tensor, setBackend, scope, readTensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd.js';
import { VisionTransformer } from '../src/nn/vit.js';
import { getPreset, type VitConfig } from '../src/nn/presets.js';
import { CaitModel } from '../src/cait/wrap.js';
import { Rng } from '../src/util/rng.js';

interface Row { what: string; maxDiff: number; maxLogit: number }

async function main(): Promise<Record<string, unknown>> {
  let gpu;
  try { gpu = await createWebGpuBackend(); } catch (e) { return { noAdapter: String((e as Error).message ?? e) }; }
  const wasm = await loadWasm(new URL('/build/', location.href));
  const cfg: VitConfig = { ...getPreset('micro'), name: 'page', imgSize: 32, patchSize: 4, depth: 3 };
  const make = (be: Backend) => {
    setBackend(be);
    const rng = new Rng(21);
    return new VisionTransformer(cfg, { truncNormal: (s) => rng.truncNormal(s), uniform: (lo, hi) => rng.uniform(lo, hi) });
  };
  const cpu = make(wasm), g = make(gpu);
  const rng = new Rng(5), x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.normal());
  const rows: Row[] = [];
  for (const merge of ['', 'h@0,v@1']) {
    const rc = merge ? new CaitModel(cpu, { merge }) : cpu, rg = merge ? new CaitModel(g, { merge }) : g;
    setBackend(wasm);
    const want = noGrad(() => scope(() => rc.forward(Tensor.from(x, [2, 3, 32, 32], wasm)).toArray()));
    setBackend(gpu);
    const y = noGrad(() => scope(() => rg.forward(Tensor.from(x, [2, 3, 32, 32], gpu))));
    const got = await readTensor(y);
    y.dispose();
    let maxDiff = 0, maxLogit = 0;
    for (let i = 0; i < want.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]) || (Number.isNaN(got[i]) ? Infinity : 0)); maxLogit = Math.max(maxLogit, Math.abs(want[i])); }
    rows.push({ what: merge ? `merged ${merge}` : 'dense', maxDiff, maxLogit });
  }
  const info = gpu.info;
  g.dispose();
  gpu.destroy();
  return { adapter: info, rows };
}

let result: Record<string, unknown>;
try { result = await main(); } catch (e) { result = { error: String((e as Error)?.stack ?? e) }; }
await fetch('/result', { method: 'POST', body: JSON.stringify(result) });
