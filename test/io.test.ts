// Tests for src/io: safetensors read/write/validation and PNG/JPEG decoding.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { InputError } from '../src/io/input.js';
import { loadModel } from '../src/nn/model.js';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { SafetensorsError, CheckpointMismatchError, readSafetensors, readSafetensorsHeader, writeSafetensors, checkKeys, findDuplicateKey } from '../src/io/safetensors.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/safetensors-file.js';
import {
  ImageError, decodeImage, encodePng, chunk, crc32, readImageFile, toGrayFloat, toRgbFloatNCHW, resizePlanes,
} from '../src/io/image.js';
import { randn, close } from './util.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = [join(repoRoot, 'shared/fixtures/micro-vit'), join(repoRoot, '../shared/fixtures/micro-vit')].find((d) => existsSync(d));

/** Raw safetensors bytes from a header object/string and a data buffer, bypassing the writer's checks. */
function rawSt(header: unknown, data: Uint8Array | number[] = [], headerLen?: number): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function u16le(vals: number[]): Uint8Array {
  const b = new Uint8Array(2 * vals.length);
  vals.forEach((v, i) => { b[2 * i] = v & 0xff; b[2 * i + 1] = v >> 8; });
  return b;
}

/** Assert fn throws an instance of cls whose message contains every string in `has`. */
function throwsWith(fn: () => unknown, cls: new (...a: never[]) => Error, has: string[], what = ''): Error {
  try { fn(); } catch (e) {
    assert.instance(e, cls, `${what}: threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    for (const s of has) assert.ok((e as Error).message.includes(s), `${what}: message ${JSON.stringify((e as Error).message)} lacks ${JSON.stringify(s)}`);
    return e as Error;
  }
  assert.unreachable(`${what}: did not throw`);
  throw new Error('unreachable');
}

const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && new Uint8Array(a.buffer, a.byteOffset, a.byteLength).every((v, i) => v === new Uint8Array(b.buffer, b.byteOffset, b.byteLength)[i]);

// ---------------------------------------------------------------- safetensors

const st = suite('safetensors');
let tmp = '';
st.before(() => { tmp = mkdtempSync(join(tmpdir(), 'caitjs-io-')); });
st.after(() => { rmSync(tmp, { recursive: true, force: true }); });

st('F32 round trip is bit-exact, metadata and shapes preserved', () => {
  const special = new Float32Array([0, -0, 1, -1.5, Infinity, -Infinity, NaN, 1e-45, 3.4028234663852886e38, 1 / 3]);
  const tensors = {
    'a.weight': { shape: [3, 4], data: randn(12, 7) },
    special: { shape: [10], data: special },
    scalar: { shape: [], data: new Float32Array([42]) },
    empty: { shape: [0, 5], data: new Float32Array(0) },
  };
  const meta = { format: 'pt', note: 'ünïcode ✓' };
  const bytes = writeSafetensors(tensors, meta);
  const r = readSafetensors(bytes, 'rt.safetensors');
  assert.equal(r.metadata, meta);
  assert.equal([...r.tensors.keys()].sort(), Object.keys(tensors).sort());
  for (const [k, t] of Object.entries(tensors)) {
    const got = r.tensors.get(k)!;
    assert.is(got.dtype, 'F32');
    assert.equal(got.shape, t.shape, k);
    assert.ok(sameBits(got.data, t.data), `${k} bits differ`);
  }
});

st('writer: header padded with spaces to 8 bytes, keys sorted, output deterministic', () => {
  const a = new Float32Array([1, 2]), b = new Float32Array([3]);
  const x = writeSafetensors({ zeta: { shape: [2], data: a }, alpha: { shape: [1], data: b } });
  const y = writeSafetensors(new Map([['alpha', { shape: [1], data: b }], ['zeta', { shape: [2], data: a }]]));
  assert.equal(Array.from(x), Array.from(y));
  const n = Number(new DataView(x.buffer).getBigUint64(0, true));
  assert.is(n % 8, 0);
  const text = new TextDecoder().decode(x.subarray(8, 8 + n));
  assert.ok(/^\{.*\} *$/.test(text), text);
  assert.ok(text.indexOf('"alpha"') < text.indexOf('"zeta"'));
  const h = readSafetensorsHeader(x);
  assert.equal(h.entries.map((e) => [e.name, e.begin, e.end]), [['alpha', 0, 4], ['zeta', 4, 12]]);
  assert.is(h.dataStart, 8 + n);
});

st('F16 decoding: normals, subnormals, signed zero, inf, NaN', () => {
  const cases: Array<[number, number]> = [
    [0x0000, 0], [0x8000, -0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
    [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)], [0x0400, 2 ** -14],
    [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN], [0xfe01, NaN],
  ];
  const bytes = rawSt({ h: { dtype: 'F16', shape: [cases.length], data_offsets: [0, 2 * cases.length] } }, u16le(cases.map((c) => c[0])));
  const t = readSafetensors(bytes).tensors.get('h')!;
  assert.is(t.dtype, 'F16');
  cases.forEach(([bits, want], i) => assert.ok(Object.is(t.data[i], Math.fround(want)), `0x${bits.toString(16)} -> ${t.data[i]}, want ${want}`));
});

st('BF16 decoding: top half of float32 incl. subnormal, -0, inf, NaN', () => {
  const cases: Array<[number, number]> = [
    [0x3f80, 1], [0xc049, -3.140625], [0x3e80, 0.25], [0x8000, -0], [0x0001, 2 ** -133],
    [0x7f80, Infinity], [0xff80, -Infinity], [0x7fc0, NaN], [0x7f7f, 3.3895313892515355e38],
  ];
  const bytes = rawSt({ b: { dtype: 'BF16', shape: [cases.length], data_offsets: [0, 2 * cases.length] } }, u16le(cases.map((c) => c[0])));
  const t = readSafetensors(bytes).tensors.get('b')!;
  cases.forEach(([bits, want], i) => assert.ok(Object.is(t.data[i], Math.fround(want)), `0x${bits.toString(16)} -> ${t.data[i]}, want ${want}`));
});

st('F64, integer, BOOL and FP8 dtypes convert to float32', () => {
  const f64 = new Float64Array([1.5, -2.25, 1e300]);
  const i32 = new Int32Array([-7, 2147483647]);
  const i64 = new BigInt64Array([-5n, 1n << 40n]);
  const parts: Array<[string, string, Uint8Array]> = [
    ['d', 'F64', new Uint8Array(f64.buffer)], ['i', 'I32', new Uint8Array(i32.buffer)], ['l', 'I64', new Uint8Array(i64.buffer)],
    ['u', 'U8', new Uint8Array([0, 255])], ['s', 'I8', new Uint8Array([0xff, 0x7f])], ['z', 'BOOL', new Uint8Array([0, 1, 2])],
    ['e4', 'F8_E4M3', new Uint8Array([0x38, 0x7e, 0x01, 0xb8, 0x7f])], ['e5', 'F8_E5M2', new Uint8Array([0x3c, 0x7c, 0x01])],
  ];
  const header: Record<string, unknown> = {};
  let off = 0;
  const sizes: Record<string, number> = { F64: 8, I32: 4, I64: 8, U8: 1, I8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };
  for (const [name, dtype, b] of parts) { header[name] = { dtype, shape: [b.length / sizes[dtype]], data_offsets: [off, off + b.length] }; off += b.length; }
  const data = new Uint8Array(off);
  off = 0;
  for (const [, , b] of parts) { data.set(b, off); off += b.length; }
  const r = readSafetensors(rawSt(header, data)).tensors;
  assert.equal(Array.from(r.get('d')!.data), [1.5, -2.25, Infinity]); // 1e300 overflows f32
  assert.equal(Array.from(r.get('i')!.data), [-7, 2147483648]);
  assert.equal(Array.from(r.get('l')!.data), [-5, 2 ** 40]);
  assert.equal(Array.from(r.get('u')!.data), [0, 255]);
  assert.equal(Array.from(r.get('s')!.data), [-1, 127]);
  assert.equal(Array.from(r.get('z')!.data), [0, 1, 1]);
  const e4 = Array.from(r.get('e4')!.data);
  assert.equal(e4.slice(0, 4), [1, 448, 2 ** -9, -1]);
  assert.ok(Number.isNaN(e4[4]));
  assert.equal(Array.from(r.get('e5')!.data), [1, Infinity, 2 ** -16]);
});

const fixture = FIXTURES ? st : (st.skip as unknown as typeof st);
fixture('micro-vit fixtures load with the expected keys, shapes and dtype', () => {
  const model = readSafetensorsFile(join(FIXTURES!, 'model.safetensors'));
  const input = readSafetensorsFile(join(FIXTURES!, 'input.safetensors'));
  const expected = readSafetensorsFile(join(FIXTURES!, 'expected.safetensors'));
  assert.is(model.tensors.size, 32);
  const shapes: Record<string, number[]> = {
    cls_token: [1, 1, 48], pos_embed: [1, 17, 48], 'patch_embed.proj.weight': [48, 3, 8, 8],
    'blocks.0.attn.qkv.weight': [144, 48], 'blocks.1.mlp.fc2.weight': [48, 192], 'head.weight': [10, 48], 'head.bias': [10],
  };
  for (const [k, s] of Object.entries(shapes)) assert.equal(model.tensors.get(k)?.shape, s, k);
  assert.equal(input.tensors.get('pixel_values')?.shape, [2, 3, 32, 32]);
  assert.equal(Array.from(input.tensors.get('labels')!.data).every((l) => Number.isInteger(l) && l >= 0 && l < 10), true);
  assert.equal(expected.tensors.get('logits')?.shape, [2, 10]);
  assert.equal(expected.tensors.get('loss')?.shape, [1]);
  assert.equal(expected.tensors.get('grad.head.weight')?.shape, [10, 48]);
  for (const f of [model, input, expected]) {
    for (const [k, t] of f.tensors) {
      assert.is(t.dtype, 'F32', k);
      assert.ok(t.data.every(Number.isFinite), `${k} has non-finite values`);
    }
  }
  // Every parameter has a gradient of the same shape: checkKeys must accept the pairing.
  const grads = new Map([...expected.tensors].filter(([k]) => k.startsWith('grad.')).map(([k, t]) => [k.slice(5), t]));
  checkKeys('expected.safetensors', new Map([...model.tensors].map(([k, t]) => [k, t.shape])), grads);
  // Re-serializing keeps every value bit-exact.
  const again = readSafetensors(writeSafetensors(model.tensors));
  for (const [k, t] of model.tensors) assert.ok(sameBits(again.tensors.get(k)!.data, t.data), k);
});

const good = () => rawSt({ __metadata__: { a: 'b' }, 'w.x': { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, 'w.y': { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12));

st('corrupt files throw SafetensorsError naming the file (and tensor)', () => {
  const F = 'bad.safetensors';
  const t = (bytes: Uint8Array, has: string[], what: string) => throwsWith(() => readSafetensors(bytes, F), SafetensorsError, [F, ...has], what);
  readSafetensors(good(), F); // the base case is valid
  t(new Uint8Array(5), ['shorter than'], 'short');
  t(rawSt({}, [], 1000), ['exceeds the file size'], 'header > file');
  t(rawSt({}, [], 2 ** 40), ['absurd'], 'absurd header');
  t(rawSt({}, [], 200_000_000), ['absurd'], '200MB header');
  const badUtf8 = rawSt('{"a":1}'); badUtf8[10] = 0xff;
  t(badUtf8, ['UTF-8'], 'bad utf8');
  t(rawSt('{"a": '), ['not valid JSON'], 'bad json');
  t(rawSt('[1,2]'), ['not a JSON object'], 'array header');
  t(rawSt('null'), ['not a JSON object'], 'null header');
  t(good().subarray(0, good().length - 3), ["tensor 'w.y'", '[8,12]', 'truncated'], 'truncated data');
  t(rawSt({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, new Uint8Array(8)), ["tensor 'w'", 'begin > end'], 'begin > end');
  t(rawSt({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(12)), ["tensor 'w'", '[2,2]', '16 bytes'], 'size mismatch');
  t(rawSt({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), ['overlap', "'a'", "'b'"], 'overlap');
  t(rawSt({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12)), ['gap', "'b'"], 'gap');
  t(rawSt({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)), ['trailing'], 'trailing bytes');
  t(rawSt({ q: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), ["tensor 'q'", 'dtype "Q8"'], 'unknown dtype');
  t(rawSt({ q: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), ["tensor 'q'", 'dtype'], 'missing dtype');
  for (const shape of [[-1], [1.5], '3', null, [2, 'x']]) {
    t(rawSt({ s: { dtype: 'F32', shape, data_offsets: [0, 4] } }, new Uint8Array(4)), ["tensor 's'", 'bad shape'], `shape ${JSON.stringify(shape)}`);
  }
  for (const offs of [[0], [0, -4], 'x', [0, 4.5]]) {
    t(rawSt({ s: { dtype: 'F32', shape: [1], data_offsets: offs } }, new Uint8Array(4)), ["tensor 's'", 'data_offsets'], `offsets ${JSON.stringify(offs)}`);
  }
  t(rawSt({ s: [1, 2] }), ["tensor 's'", 'not an object'], 'entry not object');
  t(rawSt({ __metadata__: { n: 3 } }), ['__metadata__', 'not a string'], 'metadata value');
  t(rawSt({ s: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 4] } }, new Uint8Array(4)), ["tensor 's'", 'too many elements'], 'numel overflow');
});

st('every truncation and many byte flips give SafetensorsError, never a RangeError', () => {
  const full = writeSafetensors({ a: { shape: [3, 2], data: randn(6, 3) }, b: { shape: [5], data: randn(5, 4) } }, { k: 'v' });
  let errors = 0;
  for (let n = 0; n < full.length; n++) {
    try { readSafetensors(full.subarray(0, n), 'cut'); } catch (e) { assert.instance(e, SafetensorsError, `cut at ${n}: ${e}`); errors++; }
  }
  assert.is(errors, full.length, 'every proper prefix is invalid');
  const rnd = randn(4000, 11);
  for (let i = 0; i < 2000; i++) {
    const b = full.slice();
    const pos = Math.floor(Math.abs(rnd[2 * i]) * b.length);
    b[pos] ^= 1 + Math.floor(Math.abs(rnd[2 * i + 1]) * 254);
    try { readSafetensors(b, 'flip'); } catch (e) { assert.instance(e, SafetensorsError, `flip at ${pos}: ${e}`); }
  }
});

st('readSafetensorsFile names the path in its errors', () => {
  const p = join(tmp, 'corrupt.safetensors');
  writeFileSync(p, good().subarray(0, 20));
  throwsWith(() => readSafetensorsFile(p), SafetensorsError, [p], 'file');
});

st('writer rejects invalid tensors before producing bytes', () => {
  throwsWith(() => writeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } }), SafetensorsError, ["tensor 'w'", '[2,3]', '6 elements', '5'], 'numel');
  throwsWith(() => writeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } }), SafetensorsError, ["tensor 'w'", 'bad shape'], 'shape');
  throwsWith(() => writeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }), SafetensorsError, ['__metadata__'], 'reserved name');
  throwsWith(() => writeSafetensors({ w: { shape: [1], data: [1] as unknown as Float32Array } }), SafetensorsError, ['Float32Array'], 'plain array');
  throwsWith(() => writeSafetensors({}, { n: 1 as unknown as string }), SafetensorsError, ["metadata['n']"], 'metadata');
});

st('writeSafetensorsFile is atomic: no temp files, failures keep the old file', () => {
  const dir = join(tmp, 'atomic');
  mkdirSync(dir);
  const p = join(dir, 'ckpt.safetensors');
  const v1 = { w: { shape: [4], data: new Float32Array([1, 2, 3, 4]) } };
  writeSafetensorsFile(p, v1, { step: '1' });
  assert.equal(readdirSync(dir), ['ckpt.safetensors']);
  const before = readFileSync(p);
  assert.equal(readSafetensorsFile(p).metadata, { step: '1' });

  // Overwrite succeeds and replaces content.
  writeSafetensorsFile(p, { w: { shape: [2], data: new Float32Array([9, 8]) } }, { step: '2' });
  assert.equal(Array.from(readSafetensorsFile(p).tensors.get('w')!.data), [9, 8]);
  assert.equal(readdirSync(dir), ['ckpt.safetensors']);
  writeSafetensorsFile(p, v1, { step: '1' });

  // Bad data: error, old file untouched, nothing left behind.
  throwsWith(() => writeSafetensorsFile(p, { w: { shape: [3], data: new Float32Array(4) } }), SafetensorsError, [p, "tensor 'w'"], 'bad data');
  assert.equal(readFileSync(p), before);
  assert.equal(readdirSync(dir), ['ckpt.safetensors']);

  // Missing folders are made (as export, quantize and compress always did); a file on the way is refused before writing.
  const missing = join(dir, 'no', 'such', 'x.safetensors');
  writeSafetensorsFile(missing, v1);
  assert.equal(readdirSync(join(dir, 'no', 'such')), ['x.safetensors']);
  rmSync(join(dir, 'no'), { recursive: true });
  const under = join(dir, 'ckpt.safetensors', 'x.safetensors');
  throwsWith(() => writeSafetensorsFile(under, v1), SafetensorsError, [under, 'ckpt.safetensors\' is a file, not a folder'], 'file on the way');
  assert.equal(readdirSync(dir), ['ckpt.safetensors']);
  assert.equal(readFileSync(p), before);

  // Rename fails (target is a non-empty directory) after the temp file was written: temp removed.
  const asDir = join(dir, 'taken');
  mkdirSync(asDir);
  writeFileSync(join(asDir, 'keep'), 'x');
  throwsWith(() => writeSafetensorsFile(asDir, v1), SafetensorsError, [asDir, 'could not write'], 'rename fails');
  assert.equal(readdirSync(dir).sort(), ['ckpt.safetensors', 'taken']);
  assert.equal(readdirSync(asDir), ['keep']);
});

st('checkKeys lists every missing, unexpected and mismatched tensor in one error', () => {
  const expected = new Map<string, number[]>([['a', [2, 3]], ['b', [4]], ['c', [1]], ['blocks.0.attn.qkv.weight', [96, 48]]]);
  const got = new Map<string, { shape: number[] }>([['a', { shape: [2, 3] }], ['blocks.0.attn.qkv.weight', { shape: [144, 48] }], ['x', { shape: [1] }], ['y', { shape: [] }]]);
  const e = throwsWith(() => checkKeys('m.safetensors', expected, got), CheckpointMismatchError,
    ['m.safetensors', "'b'", "'c'", "'x'", "'y'", "tensor 'blocks.0.attn.qkv.weight' has shape [144,48], expected [96,48]", 'missing 2', 'unexpected 2'], 'all') as CheckpointMismatchError;
  assert.instance(e, SafetensorsError);
  assert.equal(e.missing, ['b', 'c']);
  assert.equal(e.unexpected, ['x', 'y']);
  assert.equal(e.mismatched, [{ name: 'blocks.0.attn.qkv.weight', shape: [144, 48], expected: [96, 48] }]);
  // Allowing missing and unexpected still reports the shape mismatch, and only it.
  const e2 = throwsWith(() => checkKeys('m', expected, got, { allowMissing: true, allowUnexpected: true }), CheckpointMismatchError, ['[144,48]'], 'shape only');
  assert.not.ok(e2.message.includes('missing'));
  assert.not.ok(e2.message.includes('unexpected'));
  got.set('blocks.0.attn.qkv.weight', { shape: [96, 48] });
  checkKeys('m', expected, got, { allowMissing: true, allowUnexpected: true });
  throwsWith(() => checkKeys('m', expected, got, { allowMissing: true }), CheckpointMismatchError, ["'x'"], 'unexpected only');
  checkKeys('m', { a: [1] }, { a: { shape: [1] } });
  throwsWith(() => checkKeys('m', { a: [1] }, { a: { shape: [1, 1] } }), CheckpointMismatchError, ['[1,1], expected [1]'], 'rank');
});

st('duplicate keys in the header are an error (JSON.parse would keep the last; the reference rejects them)', () => {
  const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', data = [0, 0, 128, 63];
  throwsWith(() => readSafetensors(rawSt(`{"a":${entry},"a":${entry}}`, data), 'd.safetensors'), SafetensorsError, ['d.safetensors', "header has the key 'a' twice"], 'tensor');
  throwsWith(() => readSafetensors(rawSt(`{"__metadata__":{"k":"1","k":"2"},"a":${entry}}`, data), 'd'), SafetensorsError, ["'__metadata__.k' twice"], 'metadata key');
  throwsWith(() => readSafetensors(rawSt(`{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, data), 'd'), SafetensorsError, ["'a.dtype' twice"], 'entry field');
  // equal keys in different objects, or inside string values, are fine
  const ok = readSafetensors(rawSt(`{"__metadata__":{"a":"{\\"x\\":1,\\"x\\":2}"},"a":${entry}}`, data), 'ok');
  assert.equal(Array.from(ok.tensors.get('a')!.data), [1]);
  assert.is(findDuplicateKey('{"a":[{"b":1},{"b":2}],"b":{"a":1}}'), null);
  assert.is(findDuplicateKey('{"a\\u0062":1,"ab":2}'), 'ab', 'keys compared after unescaping');
});

st.run();

// ---------------------------------------------------------------- images

const im = suite('image');
let itmp = '';
im.before(() => { itmp = mkdtempSync(join(tmpdir(), 'caitjs-img-')); });
im.after(() => { rmSync(itmp, { recursive: true, force: true }); });

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG from IHDR fields, already-filtered scanline bytes and extra chunks placed before IDAT. */
function buildPng(w: number, h: number, depth: number, colorType: number, scanlines: Uint8Array, pre: Uint8Array[] = [], interlace = 0): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w); dv.setUint32(4, h);
  ihdr.set([depth, colorType, 0, 0, interlace], 8);
  const parts = [new Uint8Array(SIG), chunk('IHDR', ihdr), ...pre, chunk('IDAT', deflateSync(scanlines)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
const rgbaOfGray = (g: number[]): number[] => g.flatMap((v) => [v, v, v, 255]);

/** Test-local filter (spec §9.2) written independently of the decoder. */
function filterRow(ft: number, cur: number[], prev: number[] | null, bpp: number): number[] {
  const up = (x: number) => (prev ? prev[x] : 0), left = (x: number) => (x >= bpp ? cur[x - bpp] : 0), ul = (x: number) => (prev && x >= bpp ? prev[x - bpp] : 0);
  return cur.map((v, x) => {
    const a = left(x), b = up(x), c = ul(x);
    let pred = 0;
    if (ft === 1) pred = a;
    else if (ft === 2) pred = b;
    else if (ft === 3) pred = Math.floor((a + b) / 2);
    else if (ft === 4) { const p = a + b - c; const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
    return (v - pred + 256) % 256;
  });
}

im('crc32 matches the standard check value', () => {
  assert.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
});

im('PNG encode -> decode round trip (RGBA, odd size, noise and gradients)', () => {
  for (const [w, h] of [[1, 1], [37, 23], [64, 3]]) {
    const d = new Uint8Array(w * h * 4);
    const r = randn(d.length, w * 31 + h);
    for (let i = 0; i < d.length; i++) d[i] = i % 3 === 0 ? Math.floor((r[i] + 1) * 127.9) : (i * 7 + Math.floor(i / (w * 4)) * 13) & 255;
    const png = encodePng(w, h, d);
    const img = decodeImage(png, 'rt.png');
    assert.is(img.width, w); assert.is(img.height, h);
    assert.equal(Array.from(img.data), Array.from(d), `${w}x${h}`);
  }
  throwsWith(() => encodePng(2, 2, new Uint8Array(15)), RangeError, ['16 bytes'], 'size check');
});

im('hand-built 8-bit grayscale PNG with all five filter types', () => {
  const w = 6, rows = [[0, 10, 20, 30, 40, 255], [5, 5, 200, 0, 17, 99], [255, 254, 1, 2, 128, 127], [9, 80, 160, 240, 30, 60], [33, 66, 99, 132, 165, 198],
    // Paeth ties (§9.4 order a, b, c): at x=1 and x=3, pa == pc < pb, so the left byte must win.
    [100, 110, 50, 60, 200, 10], [80, 7, 30, 9, 1, 2]];
  const fts = [0, 1, 2, 3, 4, 0, 4];
  const lines: number[] = [];
  rows.forEach((r, y) => lines.push(fts[y], ...filterRow(fts[y], r, y ? rows[y - 1] : null, 1)));
  const img = decodeImage(buildPng(w, rows.length, 8, 0, new Uint8Array(lines)), 'gray.png');
  assert.equal(Array.from(img.data), rgbaOfGray(rows.flat()));
  // Same pixels as RGB with Paeth on every row (bpp 3 exercises the left offset).
  const rgbRows = rows.map((r) => r.flatMap((v) => [v, 255 - v, (v * 3) & 255]));
  const rgbLines: number[] = [];
  rgbRows.forEach((r, y) => rgbLines.push(4, ...filterRow(4, r, y ? rgbRows[y - 1] : null, 3)));
  const rgb = decodeImage(buildPng(w, rows.length, 8, 2, new Uint8Array(rgbLines)), 'rgb.png');
  assert.equal(Array.from(rgb.data), rows.flat().flatMap((v) => [v, 255 - v, (v * 3) & 255, 255]));
});

im('palette PNG: 8-bit with tRNS and 2-bit packed rows', () => {
  const plte = chunk('PLTE', new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]));
  const trns = chunk('tRNS', new Uint8Array([0, 128]));
  const idx = [0, 1, 2, 3, 1, 3, 2, 1, 0, 2];
  const pal = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], alpha = [0, 128, 255, 255];
  const want = idx.flatMap((i) => [...pal[i], alpha[i]]);
  const lines8 = new Uint8Array([0, ...idx.slice(0, 5), 0, ...idx.slice(5)]);
  assert.equal(Array.from(decodeImage(buildPng(5, 2, 8, 3, lines8, [plte, trns]), 'p8.png').data), want);
  // 2 bits per index, MSB first, each row padded to a byte boundary (§7.2).
  const lines2 = new Uint8Array([0, 0b00011011, 0b01000000, 0, 0b11100100, 0b10000000]);
  assert.equal(Array.from(decodeImage(buildPng(5, 2, 2, 3, lines2, [plte, trns]), 'p2.png').data), want);
});

im('1-bit and 4-bit grayscale, gray+alpha, 16-bit RGB with tRNS key', () => {
  const one = decodeImage(buildPng(10, 1, 1, 0, new Uint8Array([0, 0b10110000, 0b01000000])), 'g1.png');
  assert.equal(Array.from(one.data), rgbaOfGray([1, 0, 1, 1, 0, 0, 0, 0, 0, 1].map((b) => b * 255)));
  const four = decodeImage(buildPng(3, 1, 4, 0, new Uint8Array([0, 0x0f, 0x50])), 'g4.png');
  assert.equal(Array.from(four.data), rgbaOfGray([0, 255, 85]));
  const ga = decodeImage(buildPng(2, 1, 8, 4, new Uint8Array([0, 10, 20, 30, 40])), 'ga.png');
  assert.equal(Array.from(ga.data), [10, 10, 10, 20, 30, 30, 30, 40]);
  const key = chunk('tRNS', new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]));
  const px = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x12, 0x35, 0x56, 0x78, 0x9a, 0xbc];
  const rgb16 = decodeImage(buildPng(2, 1, 16, 2, new Uint8Array([0, ...px]), [key]), 'rgb16.png');
  // High bytes; the first pixel equals the key exactly (transparent), the second differs in a low byte.
  assert.equal(Array.from(rgb16.data), [0x12, 0x56, 0x9a, 0, 0x12, 0x56, 0x9a, 255]);
});

im('Adam7 interlaced PNG decodes to the same pixels as the plain one', () => {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  for (const [w, h] of [[11, 9], [1, 1], [3, 2]]) {
    const px = Array.from({ length: w * h * 4 }, (_, i) => (i * 29 + 7) & 255);
    const lines: number[] = [];
    for (const [x0, y0, dx, dy] of passes) {
      for (let y = y0; y < h; y += dy) {
        const row: number[] = [];
        for (let x = x0; x < w; x += dx) row.push(...px.slice((y * w + x) * 4, (y * w + x) * 4 + 4));
        if (row.length) lines.push(0, ...row);
      }
    }
    const img = decodeImage(buildPng(w, h, 8, 6, new Uint8Array(lines), [], 1), 'adam7.png');
    assert.equal(Array.from(img.data), px, `${w}x${h}`);
  }
});

im('JPEG encoded by jpeg-js decodes approximately', () => {
  const w = 32, h = 24;
  const d = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d.set([x * 8, y * 10, 128, 255], (y * w + x) * 4);
  const enc = jpeg.encode({ width: w, height: h, data: d }, 95).data;
  const p = join(itmp, 'g.jpg');
  writeFileSync(p, enc);
  const img = readImageFile(p);
  assert.is(img.width, w); assert.is(img.height, h);
  assert.ok(img.data instanceof Uint8Array);
  let sum = 0;
  for (let i = 0; i < d.length; i++) sum += Math.abs(img.data[i] - d[i]);
  close(img.data, d, 12, 0, 'jpeg');
  assert.ok(sum / d.length < 2, `mean abs error ${sum / d.length}`);
});

im('files over their size limit are refused before a byte is read (sparse files: nothing is allocated)', () => {
  const big = join(itmp, 'big.png'), cfgDir = join(itmp, 'cfg-model'), cfg = join(cfgDir, 'config.json');
  writeFileSync(big, ''); truncateSync(big, 300 * 2 ** 20);
  throwsWith(() => readImageFile(big), InputError, [big, 'the image is 300.0 MiB, over the limit of 256.0 MiB'], 'image');
  mkdirSync(cfgDir);
  copyFileSync(join(ROOT, 'models/fmnist-cait.safetensors'), join(cfgDir, 'model.safetensors'));
  writeFileSync(cfg, ''); truncateSync(cfg, 17 * 2 ** 20);
  throwsWith(() => loadModel(cfgDir), InputError, [cfg, 'the model config is 17.0 MiB, over the limit of 16.0 MiB'], 'config');
});

im('corrupt and unsupported images throw ImageError naming the file', () => {
  const good = encodePng(3, 2, new Uint8Array(24).fill(77));
  const t = (bytes: Uint8Array, has: string[], what: string) => throwsWith(() => decodeImage(bytes, 'x.img'), ImageError, ['x.img', ...has], what);
  t(new Uint8Array(0), ['unrecognized'], 'empty');
  t(new TextEncoder().encode('hello world'), ['unrecognized', '68 65 6c'], 'text');
  t(new TextEncoder().encode('GIF89a.....'), ['GIF'], 'gif');
  t(good.subarray(0, 5), ['truncated PNG'], 'short signature');
  t(good.subarray(0, good.length - 20), ['truncated PNG'], 'cut');
  const badCrc = good.slice(); badCrc[20] ^= 1;
  t(badCrc, ['CRC mismatch', 'IHDR'], 'crc');
  t(buildPng(2, 1, 8, 0, new Uint8Array([7, 1, 2])), ['invalid filter type 7'], 'filter');
  t(buildPng(2, 1, 8, 0, new Uint8Array(200_000)), ['inflates past the 3 bytes 2x1 needs (a decompression bomb?)'], 'bomb');
  t(buildPng(2, 1, 8, 0, new Uint8Array([0, 1])), ['truncated PNG', 'inflates to 2'], 'short data');
  t(buildPng(2, 1, 3, 0, new Uint8Array([0, 1])), ['bit depth 3'], 'depth');
  t(buildPng(2, 1, 8, 3, new Uint8Array([0, 0, 5]), [chunk('PLTE', new Uint8Array(6))]), ['palette index 5'], 'palette index');
  t(buildPng(2, 1, 8, 3, new Uint8Array([0, 0, 0])), ['without PLTE'], 'no PLTE');
  t(buildPng(2, 1, 8, 0, new Uint8Array([0, 1, 2]), [chunk('ABCD', new Uint8Array(1))]), ["critical PNG chunk 'ABCD'"], 'critical chunk');
  const zbad = good.slice(); // corrupt the zlib header inside IDAT and fix up the chunk's CRC
  const idatAt = 8 + 25;
  zbad[idatAt + 8] = 0x00;
  const len = new DataView(zbad.buffer).getUint32(idatAt);
  new DataView(zbad.buffer).setUint32(idatAt + 8 + len, crc32(zbad, idatAt + 4, idatAt + 8 + len));
  t(zbad, ['zlib'], 'zlib');
  const j = jpeg.encode({ width: 8, height: 8, data: new Uint8Array(256).fill(100) }, 90).data;
  t(j.subarray(0, 40), ['JPEG'], 'jpeg truncated');
  const jj = Uint8Array.from(j); jj.fill(0xee, 4, 60);
  t(jj, ['JPEG'], 'jpeg garbage');
  // Only IEND missing is tolerated (as common decoders do): all image data is there.
  assert.equal(decodeImage(good.subarray(0, good.length - 12), 'noiend.png').data, new Uint8Array(24).fill(77));
  // No shorter prefix of a valid PNG decodes or escapes as another error type.
  for (let n = 0; n < good.length - 12; n++) {
    try { decodeImage(good.subarray(0, n), 'cut.png'); assert.unreachable(`prefix ${n} decoded`); }
    catch (e) { assert.instance(e, ImageError, `prefix ${n}: ${e}`); }
  }
});

im('toGrayFloat: BT.601 luma in [0,1], antialiased resize', () => {
  const d = new Uint8Array([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255, 255, 0]);
  const g = toGrayFloat({ width: 2, height: 2, data: d });
  close(g, new Float32Array([0.299, 0.587, 0.114, 1]), 1e-6, 0, 'R, G, B, white luma (alpha ignored)');
  // 1-pixel stripes shrunk 10x average to grey (point sampling would give 0 or 1).
  const W = 280, stripes = new Uint8Array(W * W * 4);
  for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) stripes.fill(x % 2 ? 255 : 0, (y * W + x) * 4, (y * W + x) * 4 + 3);
  const s = toGrayFloat({ width: W, height: W, data: stripes }, 28);
  assert.is(s.length, 28 * 28);
  close(s, new Float32Array(28 * 28).fill(0.5), 0.03, 0, 'stripes');
});

im('resizePlanes follows the Pillow BILINEAR kernel', () => {
  // Up 2 -> 4: half-pixel centres, edges clamped.
  close(resizePlanes(new Float32Array([0, 1]), 1, 2, 1, 4, 1), new Float32Array([0, 0.25, 0.75, 1]), 1e-6, 0, 'up');
  // Down 4 -> 2: triangle support widened to 2 input pixels: (3a+3b+c)/7, (b+3c+3d)/7.
  const [a, b, c, dd] = [1, 2, 4, 8];
  close(resizePlanes(new Float32Array([a, b, c, dd]), 1, 4, 1, 2, 1), new Float32Array([(3 * a + 3 * b + c) / 7, (b + 3 * c + 3 * dd) / 7]), 1e-6, 0, 'down');
  // Separable and per-plane: a constant plane stays constant at any size.
  const two = new Float32Array(2 * 5 * 3); two.fill(0.25, 0, 15); two.fill(0.75, 15);
  const r = resizePlanes(two, 2, 5, 3, 7, 2);
  close(r, new Float32Array(28).fill(0.25, 0, 14).fill(0.75, 14), 1e-6, 0, 'planes');
});

im('toRgbFloatNCHW: CHW layout and per-channel normalisation', () => {
  const w = 2, h = 2;
  const d = new Uint8Array([255, 0, 51, 255, 0, 255, 102, 255, 255, 0, 51, 0, 0, 255, 102, 255]);
  const mean = [0.5, 0.25, 0.1], std = [0.5, 0.25, 0.2];
  const x = toRgbFloatNCHW({ width: w, height: h, data: d }, 2, mean, std);
  const want = new Float32Array(12);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 4; i++) want[c * 4 + i] = (d[4 * i + c] / 255 - mean[c]) / std[c];
  close(x, want, 1e-6, 0, 'nchw');
  const small = toRgbFloatNCHW({ width: w, height: h, data: d }, 1, [0, 0, 0], [1, 1, 1]);
  close(small, new Float32Array([0.5, 0.5, 0.3]), 1e-6, 0, 'downscaled means');
  throwsWith(() => toRgbFloatNCHW({ width: w, height: h, data: d }, 2, [0, 0], [1, 1, 1]), RangeError, ['3 means'], 'mean length');
});

im.run();
