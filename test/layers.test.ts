// Layers point down: a module may import from its own layer and the layers
// below it, never from one above. LAYERS is the one definition of the order;
// every relative import (static, re-export, dynamic, type-only alike) of every
// file under src/ is checked against it, and every file must belong to a layer.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Bottom to top. An entry is a directory under src/ or a single file; files
 * in one entry list may import each other.
 */
export const LAYERS: ReadonlyArray<readonly string[]> = [
  ['backend'],                                          // kernels, heaps, the worker pool
  ['io'],                                               // file formats only (safetensors, ONNX protobuf, images)
  ['tensor.ts', 'autograd.ts', 'ops', 'plan.ts'],       // tensors, the tape, differentiable ops, planned replay
  ['util'],                                             // timing, progress, rng, svg
  ['nn'],                                               // ViT/DeiT modules, presets, checkpoints
  ['data'],                                             // datasets and preprocessing (for a model's config)
  ['train'],                                            // trainer, optimizers, schedules
  ['cait'],                                             // ATME, CDCP, compression, the ViT/ATME ONNX graph
  ['seg', 'quant'],                                     // segmentation head, int8 models
  ['api'],                                              // the library's load/classify API
  ['serve', 'cli'],                                     // the server and the command line
  ['index.ts', 'browser.ts'],                           // package entry points
];

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const test = suite('layers: no import from a lower layer to a higher one');

/** The layer of a path relative to src/ (its first segment), or -1. */
function layerOf(rel: string): number {
  const top = rel.split('/')[0];
  return LAYERS.findIndex((l) => l.includes(top));
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : f.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of a source file: import/export ... from '...', import('...'). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of noComments.matchAll(/(?:^|[;\s])(?:import|export)\s[^;'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith('.')) out.push(spec);
  }
  return out;
}

test('every file under src/ belongs to a layer', () => {
  const loose = files(SRC).map((p) => relative(SRC, p)).filter((r) => layerOf(r) < 0);
  assert.equal(loose, [], `not in LAYERS (test/layers.test.ts): ${loose.join(', ')}`);
});

test('the import scanner sees static, type-only, re-export and dynamic imports', () => {
  const got = importsOf(`import { a } from './a.js';\nimport type { B } from "../b.js";\nexport * from './c.js';\nconst d = await import('./d.js');\nimport './e.js';\n// import { x } from './commented.js';\nimport fs from 'node:fs';`);
  assert.equal(got, ['./a.js', '../b.js', './c.js', './d.js', './e.js']);
});

test('no upward import', () => {
  const bad: string[] = [];
  for (const p of files(SRC)) {
    const rel = relative(SRC, p), from = layerOf(rel);
    for (const spec of importsOf(readFileSync(p, 'utf8'))) {
      const target = relative(SRC, resolve(dirname(p), spec)).replace(/\.js$/, '.ts');
      if (target.startsWith('..')) continue;   // outside src/ (build artefacts)
      const to = layerOf(target);
      if (to < 0) bad.push(`${rel} imports ${target}, which is in no layer`);
      else if (to > from) bad.push(`${rel} (${LAYERS[from].join(', ')}) imports ${target} (${LAYERS[to].join(', ')})`);
    }
  }
  assert.equal(bad, [], `upward imports:\n  ${bad.join('\n  ')}`);
});

test.run();
