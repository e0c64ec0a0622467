// `npm run web`: builds the demo page (web/build.ts) and serves it from
// 127.0.0.1 with the headers that make it cross-origin isolated
// (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy:
// require-corp), so that SharedArrayBuffer, and with it the threaded WASM
// backend, is available to the page.
//
// Usage: node --import tsx web/serve.ts [--port 8080] [--host 127.0.0.1] [--models DIR] [--results demo.json] [--no-build]
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWeb, WEB_DIST } from './build.js';
import { parseArgs } from '../src/cli/args.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream', '.ico': 'image/x-icon',
};

/** Headers on every response: cross-origin isolation, and no caching (a dev server). */
export const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/** A static file server for `root`; resolves with the server once it listens (port 0: any free port). */
export function serveStatic(root: string, port = 8080, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET, HEAD' }).end(); return; }
    let path: string;
    try { path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname); } catch { res.writeHead(400).end(); return; }
    let file = resolve(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) { res.writeHead(403).end(); return; }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file) || !statSync(file).isFile()) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${path}\n`); return; }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    if (req.method === 'HEAD') { res.end(); return; }
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const a = server.address() as { port: number };
      ok({ server, url: `http://${host}:${a.port}/` });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { flags } = parseArgs(process.argv.slice(2), { port: 'number', host: 'string', models: 'string', results: 'string', 'no-build': 'boolean', out: 'string' });
  const out = (flags.out as string | undefined) ?? WEB_DIST;
  try {
    if (!flags['no-build']) await buildWeb({ out, modelsDir: flags.models as string | undefined, results: flags.results as string | undefined });
    else if (!existsSync(join(out, 'index.html'))) throw new Error(`${out} has no index.html: build it first (npm run build:web)`);
    const { url } = await serveStatic(out, (flags.port as number | undefined) ?? 8080, (flags.host as string | undefined) ?? '127.0.0.1');
    console.log(`caitjs demo: ${url}  (cross-origin isolated: COOP/COEP set; Ctrl-C to stop)`);
  } catch (e) {
    console.error(`web: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
