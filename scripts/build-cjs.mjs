// CommonJS build of the library entry, so that `require('caitjs')` works
// (package.json exports "require" -> dist/cjs/index.cjs, types
// dist/cjs/index.d.cts). One esbuild bundle of src/index.ts; dependencies
// stay external. import.meta.url becomes this file's URL: it sits two
// folders below the package root like every module in dist/<dir>/, so the
// library's `new URL('../../build/...', import.meta.url)` finds the kernels.
// Run by `npm run build:ts` after tsc (which writes dist/index.d.ts and
// dist/serve/index.d.ts).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';

mkdirSync('dist/cjs', { recursive: true });
// require()'s declarations: tsc's, copied under dist/cjs/types, whose
// package.json makes them CommonJS to TypeScript. A .d.cts re-exporting the
// ES declarations instead is refused (TS1479, an ES module required) by
// TypeScript before 5.8 and by --module node16/node18.
rmSync('dist/cjs/types', { recursive: true, force: true });
for (const f of readdirSync('dist', { recursive: true })) {
  if (!f.endsWith('.d.ts') || f.startsWith(`cjs${sep}`)) continue;
  mkdirSync(dirname(join('dist/cjs/types', f)), { recursive: true });
  copyFileSync(join('dist', f), join('dist/cjs/types', f));
}
writeFileSync('dist/cjs/types/package.json', '{ "type": "commonjs" }\n');
// the library, and the server (`caitjs/serve`: apart, so that the library's
// declarations need no @types/node and its import no prom-client)
for (const [entry, name, types] of [['src/index.ts', 'index', './types/index.js'], ['src/serve/index.ts', 'serve', './types/serve/index.js']]) {
  await build({
    entryPoints: [entry], outfile: `dist/cjs/${name}.cjs`, bundle: true, platform: 'node', format: 'cjs', target: 'node20',
    packages: 'external', logLevel: 'warning', legalComments: 'none',
    define: { 'import.meta.url': '__caitModuleUrl' },
    banner: { js: "const __caitModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  // the entry's declarations for require(): the CommonJS copy's
  writeFileSync(`dist/cjs/${name}.d.cts`, `export * from '${types}';\n`);
}
