// CommonJS build of the library entry, so that `require('caitjs')` works
// (package.json exports "require" -> dist/cjs/index.cjs, types
// dist/cjs/index.d.cts). One esbuild bundle of src/index.ts; dependencies
// stay external. import.meta.url becomes this file's URL: it sits two
// folders below the package root like every module in dist/<dir>/, so the
// library's `new URL('../../build/...', import.meta.url)` finds the kernels.
// Run by `npm run build:ts` after tsc (which writes dist/index.d.ts).
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';

mkdirSync('dist/cjs', { recursive: true });
await build({
  entryPoints: ['src/index.ts'], outfile: 'dist/cjs/index.cjs', bundle: true, platform: 'node', format: 'cjs', target: 'node20',
  packages: 'external', logLevel: 'warning', legalComments: 'none',
  define: { 'import.meta.url': '__caitModuleUrl' },
  banner: { js: "const __caitModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// the same declarations for require(): the ES entry's, re-exported
writeFileSync('dist/cjs/index.d.cts', "export * from '../index.js';\n");
