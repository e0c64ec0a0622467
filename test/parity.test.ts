// Parity with the float64 PyTorch oracle in ../shared/fixtures/micro-vit:
// logits, loss and every parameter gradient, read through our own safetensors
// loader, on the reference backend and on both WASM builds.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { loadModel } from '../src/nn/model.js';
import { Tensor, scope, setBackend, liveTensorCount } from '../src/tensor.js';
import { backward, zeroGrad } from '../src/autograd.js';
import { crossEntropy } from '../src/ops/index.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import type { Backend } from '../src/backend/backend.js';
import { diff } from './util.js';

const FIX = fileURLToPath(new URL('../../shared/fixtures/micro-vit/', import.meta.url));
const test = suite('parity: micro-vit vs PyTorch float64');

const backends: Array<[string, () => Backend]> = [
  ['reference', () => new ReferenceBackend()],
  ['wasm-simd', () => loadWasmSync('simd')],
  ['wasm-relaxed', () => loadWasmSync('relaxed')],
];

test('fixture present and config as documented', () => {
  assert.ok(existsSync(FIX + 'model.safetensors'), `missing ${FIX}model.safetensors`);
  const meta = JSON.parse(readFileSync(FIX + 'meta.json', 'utf8'));
  assert.equal([meta.img_size, meta.patch_size, meta.embed_dim, meta.depth, meta.num_heads], [32, 8, 48, 2, 3]);
});

for (const [name, make] of backends) {
  test(`${name}: logits, loss and all parameter gradients`, () => {
    setBackend(make());
    const inp = readSafetensorsFile(FIX + 'input.safetensors').tensors;
    const exp = readSafetensorsFile(FIX + 'expected.safetensors').tensors;
    const { model } = loadModel(FIX + 'model.safetensors', { preset: 'micro' });
    const before = liveTensorCount();
    const pv = inp.get('pixel_values')!, labels = Array.from(inp.get('labels')!.data);
    scope(() => {
      const x = Tensor.from(pv.data, pv.shape);
      const logits = model.forward(x);
      const loss = crossEntropy(logits, labels);
      const dl = diff(logits.toArray(), exp.get('logits')!.data);
      assert.ok(dl.maxAbs <= 1e-4, `logits: max |diff| ${dl.maxAbs} at ${dl.at}`);
      const dloss = Math.abs(loss.item() - exp.get('loss')!.data[0]);
      assert.ok(dloss <= 1e-4, `loss: |diff| ${dloss}`);
      backward(loss);
    });
    let worst = 0, worstName = '';
    for (const [pname, p] of model.namedParameters()) {
      const want = exp.get(`grad.${pname}`);
      assert.ok(want, `expected.safetensors lacks grad.${pname}`);
      assert.ok(p.grad, `no gradient reached ${pname}`);
      const d = diff(p.grad!.toArray(), want!.data);
      const rel = d.maxAbs / Math.max(d.maxRef, 1e-12);
      if (rel > worst) { worst = rel; worstName = pname; }
      assert.ok(rel <= 1e-3, `grad.${pname}: max |diff| ${d.maxAbs.toExponential(3)} = ${rel.toExponential(3)} of max |grad| ${d.maxRef.toExponential(3)}`);
    }
    assert.ok(worst <= 1e-3, `worst gradient ${worstName}`);
    zeroGrad(model.parameters());
    model.dispose();
    assert.is(liveTensorCount(), before - model.parameters().length, 'tensors leaked by forward/backward');
  });
}

test.run();
