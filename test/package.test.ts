// The package as a user gets it: `npm pack`, the tarball installed into an
// empty project without optional dependencies (at most 25 MB installed), then
// a 5-line ES module program and the same through require() classify a
// sample PNG with the committed CAIT model and must print `cait predict`'s
// top-1 label (the installed package's own CLI); both module kinds type-check
// against the shipped declarations; no source maps ship; LICENSE and the
// README's images do. dist/ is rebuilt (tsc + the CommonJS bundle) when a
// source file is newer than it. The install takes runtime dependencies from
// the npm cache when it can (--prefer-offline), else from the registry.
import { suite } from 'uvu';
import { checkPromises, readmeBlocks } from './readme-blocks.js';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, tscIfStale } from './pack.js';

const MAX_INSTALLED = 25 * 1024 * 1024;
const SAMPLE = join(ROOT, 'web/public/samples/08-bag.png');
const test = suite('package');
const work = mkdtempSync(join(tmpdir(), 'cait-package-'));
const proj = join(work, 'app');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function duBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    if (f.isDirectory()) n += duBytes(p); else if (f.isFile()) n += statSync(p).size;
  }
  return n;
}

const run = (cmd: string, args: string[], cwd: string): string => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

let tarball = '';

test.before(() => {
  for (const f of ['cait.simd.wasm', 'cait.relaxed.wasm']) assert.ok(existsSync(join(ROOT, 'build', f)), `build/${f} missing: run npm run build:wasm`);
  const built = existsSync(join(ROOT, 'dist/index.js')) && existsSync(join(ROOT, 'dist/cjs/index.cjs')) ? statSync(join(ROOT, 'dist/cjs/index.cjs')).mtimeMs : 0;
  if (tscIfStale('package', built)) run(process.execPath, ['scripts/build-cjs.mjs'], ROOT);
  const out = JSON.parse(run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  tarball = join(work, out[0].filename);
  const files = out[0].files.map((f) => f.path);
  assert.equal(files.filter((f) => f.endsWith('.map')), [], 'no source maps in the package');
  for (const f of ['LICENSE', 'README.md', 'dist/index.js', 'dist/cjs/index.cjs', 'dist/cjs/index.d.cts', 'dist/browser.js', 'build/cait.relaxed.wasm', 'models/fmnist-cait.safetensors', 'docs/tradeoff.svg']) {
    assert.ok(files.includes(f), `the package ships ${f}`);
  }
  console.log(`  package: ${out[0].filename} ${(out[0].size / 1e6).toFixed(2)} MB packed, ${(out[0].unpackedSize / 1e6).toFixed(2)} MB unpacked, ${files.length} files`);
  writeFileSync(join(work, 'package.json'), '{}');   // keeps npm from walking up to a parent project
  execFileSync('mkdir', ['-p', proj]);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'app', private: true, version: '1.0.0' }));
  run(NPM, ['install', tarball, '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], proj);
  copyFileSync(SAMPLE, join(proj, 'sample.png'));
});

test.after(() => { rmSync(work, { recursive: true, force: true }); });

test('installed without optional dependencies: at most 25 MB, no datasets', () => {
  const nm = join(proj, 'node_modules'), bytes = duBytes(nm);
  console.log(`  package: installed node_modules ${(bytes / 1024 / 1024).toFixed(1)} MB (${readdirSync(nm).filter((d) => !d.startsWith('.')).join(', ')})`);
  assert.ok(bytes <= MAX_INSTALLED, `installed ${bytes} bytes > ${MAX_INSTALLED}`);
  for (const d of ['fashion-mnist', 'mnist', 'webgpu']) assert.not.ok(existsSync(join(nm, d)), `${d} is not installed by default`);
});

test('ESM and require() programs print cait predict\'s label', () => {
  writeFileSync(join(proj, 'esm.mjs'), `import { load } from 'caitjs';
const model = await load('node_modules/caitjs/models/fmnist-cait.safetensors');
const [top] = await model.classify('sample.png');
console.log(top.label);
model.dispose();
`);
  writeFileSync(join(proj, 'cjs.cjs'), `const { load } = require('caitjs');
load('node_modules/caitjs/models/fmnist-cait.safetensors').then(async (model) => {
  const [top] = await model.classify('sample.png');
  console.log(top.label);
  model.dispose();
});
`);
  const cli = run(join(proj, 'node_modules/.bin/cait'), ['predict', '--model', 'node_modules/caitjs/models/fmnist-cait.safetensors', '--image', 'sample.png', '--json'], proj);
  const want = (JSON.parse(cli.trim().split('\n').pop()!) as { top: Array<{ label: string }> }).top[0].label;
  const esm = run(process.execPath, ['esm.mjs'], proj).trim(), cjs = run(process.execPath, ['cjs.cjs'], proj).trim();
  console.log(`  package: cait predict ${want}, ESM ${esm}, require ${cjs}`);
  assert.is(esm, want);
  assert.is(cjs, want);
});

test('createServer from caitjs/serve in the installed package (ESM and require()) serves the model over HTTP', () => {
  const body = `const s = await createServer({ models: ['node_modules/caitjs/models/fmnist-cait.safetensors'], port: 0 });
  const r = await fetch(s.url + '/v2/models/fmnist-cait/classify?topk=1', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: readFileSync('sample.png') });
  console.log(r.status, (await r.json()).top[0].label);
  await s.close();`;
  writeFileSync(join(proj, 'serve.mjs'), `import { createServer } from 'caitjs/serve';\nimport { readFileSync } from 'node:fs';\n${body}\n`);
  writeFileSync(join(proj, 'serve.cjs'), `const { createServer } = require('caitjs/serve');\nconst { readFileSync } = require('node:fs');\n(async () => {\n${body}\n})();\n`);
  const esm = run(process.execPath, ['serve.mjs'], proj).trim(), cjs = run(process.execPath, ['serve.cjs'], proj).trim();
  console.log(`  package: createServer ESM '${esm}', require '${cjs}'`);
  assert.match(esm, /^200 \S/);
  assert.is(cjs, esm);
});

test('every ```js block of the README runs in the fresh project, its paths under node_modules/caitjs/', () => {
  const blocks = readmeBlocks(join(ROOT, 'README.md')).filter((b) => b.kind === 'js');
  assert.ok(blocks.length >= 3);
  for (const [i, b] of blocks.entries()) {
    const file = join(proj, `readme-${i}.${/\brequire\(/.test(b.code) ? 'cjs' : 'mjs'}`);
    writeFileSync(file, b.code.replace(/(['"])(models\/|web\/public\/samples\/)/g, '$1node_modules/caitjs/$2'));
    checkPromises(b, run(process.execPath, [file], proj), 'README.md (installed)');
  }
  console.log(`  package: ${blocks.length} README blocks run as a user's project`);
});

test('the declarations type-check from ES modules and CommonJS (module nodenext and node16)', () => {
  writeFileSync(join(proj, 'a.mts'), `import { load, type Prediction } from 'caitjs';
const m = await load('m.safetensors', { backend: 'auto', merge: 'none' });
const p: Prediction[] = await m.classify(new Uint8Array(1), { topk: 2 });
console.log(p[0].label, m.info.macs, m.info.merge);
`);
  writeFileSync(join(proj, 'b.cts'), `import caitjs = require('caitjs');
const m: Promise<caitjs.Model> = caitjs.load('m.safetensors');
m.then((x) => x.forward(new Float32Array(1024))).then((z) => console.log(z.length));
`);
  // node16: no require() of ES modules, as TypeScript before 5.8 in any mode,
  // so the CommonJS declarations must be CommonJS themselves
  for (const module of ['nodenext', 'node16']) {
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module, moduleResolution: module, target: 'es2022', strict: true, noEmit: true, types: [] }, files: ['a.mts', 'b.cts'] }));
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], proj);
  }
});

test.run();
