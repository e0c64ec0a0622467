// Builds the browser demo into a static folder (default web/dist/):
//   index.html, bench.html,     from web/public/
//   style.css
//   main.js, worker.js          the demo (web/src/) bundled by esbuild (ES modules, browser)
//   bench.js, bench-worker.js   the benchmark page (bench/suite.ts in a worker)
//   wasm/cait.*.wasm            the kernels from build/ (plain and shared builds)
//   models/*.safetensors        whichever of the demo models exist (src/cli/demo.ts's list)
//   samples/                    Fashion-MNIST test images (web/public/samples/, committed)
//   manifest.json               what the page loads: models (label, file, bytes, accuracy if known;
//                               from bench/results/demo.json, the committed `cait demo --json`,
//                               when the models are the committed ones in models/)
// Any static server can host the folder; `npm run web` (web/serve.ts) also
// sends the COOP/COEP headers that make the page cross-origin isolated, which
// the threaded WASM backend needs (SharedArrayBuffer).
//
// Usage: node --import tsx web/build.ts [--out DIR] [--models DIR] [--results demo.json] [--no-minify]
//   --results: the JSON line of `cait demo --json`, to show test accuracy beside each model
//              (default: bench/results/demo.json for the committed models).
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { DEMO_MODELS } from '../src/cli/demo.js';
import { parseArgs } from '../src/cli/args.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const WEB_DIST = join(ROOT, 'web', 'dist');
export const MODELS_DIR = join(ROOT, 'models');
/** `cait demo --json` of the committed models: their test accuracy. */
export const DEMO_RESULTS = join(ROOT, 'bench', 'results', 'demo.json');
const WASM_FILES = ['cait.simd.wasm', 'cait.relaxed.wasm', 'cait.simd.shared.wasm', 'cait.relaxed.shared.wasm'];

export interface WebBuildOptions {
  /** Output folder (emptied first). */
  out?: string;
  /** Where the demo models are looked for (default models/). */
  modelsDir?: string;
  /** Explicit [label, path] list instead of the demo models in modelsDir. */
  models?: Array<[label: string, path: string]>;
  /** `cait demo --json` output (file), for the accuracy column. */
  results?: string;
  minify?: boolean;
  quiet?: boolean;
}

export interface ManifestModel { label: string; file: string; bytes: number; accuracy?: number; testImages?: number }
export interface Manifest { models: ManifestModel[]; wasm: string[]; built: string }

/**
 * The library's modules import node: builtins at the top (file I/O beside the
 * byte-level functions the page uses); in the bundle they become empty
 * CommonJS modules, so the browser code paths, which never call them, load.
 */
const stubNodeBuiltins: Plugin = {
  name: 'stub-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path, namespace: 'node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/** Test accuracy per model file from `cait demo --json` output (its last JSON line). */
function readResults(file: string): Map<string, { accuracy: number; n: number }> {
  const lines = readFileSync(file, 'utf8').trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const j = JSON.parse(line) as { models?: Array<{ file?: string; accuracy?: number; n?: number }> };
      if (!Array.isArray(j.models)) continue;
      return new Map(j.models.filter((m) => m.file && typeof m.accuracy === 'number').map((m) => [basename(m.file!), { accuracy: m.accuracy!, n: m.n ?? 0 }]));
    } catch { /* not the JSON line */ }
  }
  throw new Error(`${file}: no {"models": [...]} JSON line (the output of \`cait demo --json\`)`);
}

export async function buildWeb(o: WebBuildOptions = {}): Promise<{ out: string; manifest: Manifest }> {
  const out = o.out ?? WEB_DIST, modelsDir = o.modelsDir ?? MODELS_DIR;
  const say = (s: string) => { if (!o.quiet) console.log(s); };
  const missingWasm = WASM_FILES.slice(0, 2).filter((f) => !existsSync(join(ROOT, 'build', f)));
  if (missingWasm.length) throw new Error(`build/${missingWasm[0]} not found: run \`npm run build:wasm\``);

  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'wasm'), { recursive: true });
  mkdirSync(join(out, 'models'), { recursive: true });
  cpSync(join(ROOT, 'web', 'public'), out, { recursive: true });

  await build({
    entryPoints: {
      main: join(ROOT, 'web/src/main.ts'), worker: join(ROOT, 'web/src/worker.ts'),
      bench: join(ROOT, 'web/src/bench.ts'), 'bench-worker': join(ROOT, 'web/src/bench-worker.ts'),
    },
    outdir: out, bundle: true, format: 'esm', platform: 'browser', target: 'es2022',
    minify: o.minify ?? true, sourcemap: 'linked', logLevel: 'warning', plugins: [stubNodeBuiltins],
    legalComments: 'none',
  });

  const wasm: string[] = [];
  for (const f of WASM_FILES) {
    const src = join(ROOT, 'build', f);
    if (existsSync(src)) { copyFileSync(src, join(out, 'wasm', f)); wasm.push(f); }
  }
  if (!wasm.some((f) => f.includes('.shared.'))) say('web: no shared-memory wasm builds in build/: the page will run single-threaded');

  // the committed accuracies belong to the committed model files only (stand-ins share their names)
  const resultsFile = o.results ?? (!o.models && resolve(modelsDir) === resolve(MODELS_DIR) && existsSync(DEMO_RESULTS) ? DEMO_RESULTS : undefined);
  const results = resultsFile ? readResults(resultsFile) : null;
  const list = o.models ?? DEMO_MODELS.map(([label, file]) => [label, join(modelsDir, file)] as [string, string]);
  const models: ManifestModel[] = [];
  for (const [label, path] of list) {
    if (!existsSync(path)) continue;
    const file = basename(path);
    copyFileSync(path, join(out, 'models', file));
    const r = results?.get(file);
    models.push({ label, file, bytes: statSync(path).size, ...(r ? { accuracy: r.accuracy, testImages: r.n } : {}) });
  }
  if (!models.length) say(`web: no models found in ${modelsDir}; the page will say so (train one, or pass --models DIR)`);
  const manifest: Manifest = { models, wasm, built: new Date().toISOString() };
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  say(`web: built ${out} (${models.map((m) => m.file).join(', ') || 'no models'})`);
  return { out, manifest };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { flags } = parseArgs(process.argv.slice(2), { out: 'string', models: 'string', results: 'string', 'no-minify': 'boolean' });
  try {
    await buildWeb({ out: flags.out as string | undefined, modelsDir: flags.models as string | undefined, results: flags.results as string | undefined, minify: !flags['no-minify'] });
  } catch (e) {
    console.error(`web build: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
