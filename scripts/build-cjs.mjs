// CommonJS build of the library entry, so that `require('caitjs')` works
// (package.json exports "require" -> dist/cjs/index.cjs, types
// dist/cjs/index.d.cts). One esbuild bundle of src/index.ts; dependencies
// stay external. import.meta.url becomes this file's URL: it sits two
// folders below the package root like every module in dist/<dir>/, so the
// library's `new URL('../../build/...', import.meta.url)` finds the kernels.
// Run by `npm run build:ts` after tsc (which writes dist/index.d.ts and
// dist/serve/index.d.ts).
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';

mkdirSync('dist/cjs', { recursive: true });
// the library, and the server (`caitjs/serve`: apart, so that the library's
// declarations need no @types/node and its import no prom-client)
for (const [entry, name, types] of [['src/index.ts', 'index', '../index.js'], ['src/serve/index.ts', 'serve', '../serve/index.js']]) {
  await build({
    entryPoints: [entry], outfile: `dist/cjs/${name}.cjs`, bundle: true, platform: 'node', format: 'cjs', target: 'node20',
    packages: 'external', logLevel: 'warning', legalComments: 'none',
    define: { 'import.meta.url': '__caitModuleUrl' },
    banner: { js: "const __caitModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  // the same declarations for require(): the ES entry's, re-exported
  writeFileSync(`dist/cjs/${name}.d.cts`, `export * from '${types}';\n`);
}
