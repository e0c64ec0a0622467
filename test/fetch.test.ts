// Fetching over HTTP without trusting the server (src/api/fetch.ts): bodies
// over the limit refused (announced or streamed without a length), servers
// that stop sending given up after the idle time, 404 as "missing" only where
// asked, and load() and classify() going through it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { fetchBytes } from '../src/api/fetch.js';
import { load } from '../src/api/node.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const open = new Set<ServerResponse>();
/** Routes by path; every response is remembered so that after() can end the stalled ones. */
const server = createServer((req, res) => {
  open.add(res);
  res.on('close', () => open.delete(res));
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === '/ok') {   // three chunks, no length
    res.writeHead(200);
    res.write(new Uint8Array([1, 2, 3]));
    setTimeout(() => { res.write(new Uint8Array([4, 5])); res.end(new Uint8Array([6])); }, 20);
  } else if (path === '/sized') {   // the same six bytes in two chunks, with a length
    res.writeHead(200, { 'content-length': '6' });
    res.write(new Uint8Array([1, 2, 3]));
    setTimeout(() => res.end(new Uint8Array([4, 5, 6])), 20);
  } else if (path === '/big') {   // announces a gigabyte, sends nothing
    res.writeHead(200, { 'content-length': String(2 ** 30) });
    res.flushHeaders();
  } else if (path === '/endless' || path === '/endless/model.safetensors') {   // chunked, no length, never ends
    res.writeHead(200);
    const tick = () => { if (!res.destroyed) { res.write(new Uint8Array(4096)); setTimeout(tick, 1); } };
    tick();
  } else if (path === '/silent') {   // never answers
  } else if (path === '/stall') {   // headers and some bytes, then nothing
    res.writeHead(200, { 'content-length': '100' });
    res.write(new Uint8Array(10));
  } else if (path === '/model') {
    res.writeHead(200).end(readFileSync(`${ROOT}models/fmnist-cait.safetensors`));
  } else if (path === '/fail') {
    res.writeHead(500, 'Broken').end();
  } else {
    res.writeHead(404).end();
  }
});
let base = '';
test.before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after(async () => {
  for (const r of open) r.destroy();
  await new Promise((r) => server.close(r));
});

const fails = async (p: Promise<unknown>, re: RegExp) => {
  try { await p; } catch (e) { assert.match((e as Error).message, re); return; }
  assert.unreachable(`expected an error matching ${re}`);
};

test('fetchBytes: the body in chunks (with and without a length), whole; 404 null only with missingOk; other statuses an error naming the URL', async () => {
  assert.equal([...await fetchBytes(new URL(`${base}/ok`), { what: 'test', limit: 6 })], [1, 2, 3, 4, 5, 6]);
  assert.equal([...await fetchBytes(new URL(`${base}/sized`), { what: 'test', limit: 6 })], [1, 2, 3, 4, 5, 6], 'into one buffer of the announced length');
  assert.is(await fetchBytes(new URL(`${base}/none`), { what: 'test', limit: 10, missingOk: true }), null);
  await fails(fetchBytes(new URL(`${base}/none`), { what: 'test', limit: 10 }), new RegExp(`^${base}/none: HTTP 404`));
  await fails(fetchBytes(new URL(`${base}/fail`), { what: 'test', limit: 10, missingOk: true }), new RegExp(`^${base}/fail: HTTP 500 Broken`));
});

test('fetchBytes: over the limit refused, by Content-Length before a byte is read, or while streaming', async () => {
  await fails(fetchBytes(new URL(`${base}/ok`), { what: 'image', limit: 5 }), new RegExp(`^${base}/ok: more than 6 bytes of image, over the limit of 5 bytes; not downloaded`));
  const t = Date.now();
  await fails(fetchBytes(new URL(`${base}/big`), { what: 'model weights', limit: 2 ** 20 }), /\/big: 1024\.0 MiB of model weights, over the limit of 1\.0 MiB; not downloaded/);
  await fails(fetchBytes(new URL(`${base}/endless`), { what: 'model weights', limit: 2 ** 20 }), /\/endless: more than 1\.0 MiB of model weights, over the limit of 1\.0 MiB/);
  assert.ok(Date.now() - t < 20_000, 'refused without waiting for the idle time');
});

test('fetchBytes: a server that stops sending is given up after the idle time (before the headers, or mid-body)', async () => {
  for (const path of ['/silent', '/stall']) {
    const t = Date.now();
    await fails(fetchBytes(new URL(`${base}${path}`), { what: 'model weights', limit: 2 ** 20, idleMs: 300 }), new RegExp(`^${base}${path}: nothing received for 0\\.3 s; gave up on the model weights`));
    const took = Date.now() - t;
    assert.ok(took >= 250 && took < 10_000, `${path}: gave up after ${took} ms (idle 300)`);
  }
});

test('load(url) and classify(url) go through it: maxBytes bounds the download, images their file limit', async () => {
  await fails(load(`${base}/big`, { maxBytes: 4096 }), /\/big: 1024\.0 MiB of model weights, over the limit of 4096 bytes; not downloaded/);
  await fails(load(`${base}/endless/`, { maxBytes: 2 ** 20 }), /\/endless\/model\.safetensors: more than 1\.0 MiB of model weights, over the limit of 1\.0 MiB/);
  const m = await load(`${base}/model`);
  try {
    assert.is(m.info.labels.length, 10);
    await fails(m.classify(`${base}/big`), /\/big: 1024\.0 MiB of image, over the limit of 256\.0 MiB; not downloaded/);
  } finally { m.dispose(); }
});

test.run();
