// Preprocessing against Pillow (../shared/fixtures/preprocess, made with Pillow
// 9.4.0, timm's and transformers' transforms): every PNG case within one grey
// level before normalisation; the JPEG's decoded pixels within 3 levels, then
// the pipelines within the fixture's tolerance. Also: the Pillow resampler's
// fixed-point details, the training transform, the committed models' inputs,
// and the header pixel limit of both decoders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsFile } from '../src/io/safetensors-file.js';
import { ImageError, decodeImage, encodePng, chunk, crc32, readImageFile, type RgbaImage } from '../src/io/image.js';
import { resizeU8, resizePlanes, toGrayFloat } from '../src/io/resize.js';
import { imageToInput, preprocessPixels, pyRound, rrcParams, trainView, convertImage, type PixelsU8 } from '../src/data/preprocess.js';
import { getPreset, type Preprocess, type VitConfig } from '../src/nn/presets.js';
import { Rng } from '../src/util/rng.js';

const FIX = new URL('../../shared/fixtures/preprocess/', import.meta.url).pathname;
const meta = JSON.parse(readFileSync(join(FIX, 'meta.json'), 'utf8')) as {
  images: Record<string, string>;
  pipelines: Record<string, { kind: string; input_size?: number; crop_pct?: number; interpolation?: string; crop_mode?: string; size?: { height: number; width: number }; resample?: number; do_center_crop?: boolean; crop_size?: { height: number; width: number }; mean: number[]; std: number[] }>;
};
const expected = readSafetensorsFile(join(FIX, 'expected.safetensors')).tensors;

/** The fixture's pipeline description as a config `preprocess`. */
function toPreprocess(p: (typeof meta.pipelines)[string]): Preprocess {
  if (p.kind === 'timm eval transform') {
    return { kind: 'timm', size: p.input_size!, interpolation: p.interpolation as 'bicubic', cropPct: p.crop_pct, cropMode: (p.crop_mode ?? 'center') as 'center', mean: p.mean, std: p.std };
  }
  const interp = ({ 2: 'bilinear', 3: 'bicubic' } as Record<number, 'bilinear' | 'bicubic'>)[p.resample!];
  const crop = p.do_center_crop !== false && !!p.crop_size;
  return { kind: 'hf', size: crop ? p.crop_size!.height : p.size!.height, interpolation: interp, resize: { height: p.size!.height, width: p.size!.width }, crop, mean: p.mean, std: p.std };
}

/** Model input back to 0..255 pixel units: (x * std + mean) * 255. */
function toPixels(x: ArrayLike<number>, mean: number[], std: number[], hw: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) { const c = Math.floor(i / hw); out[i] = (x[i] * std[c] + mean[c]) * 255; }
  return out;
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  assert.is(a.length, b.length, 'length');
  let max = 0, at = 0;
  for (let i = 0; i < a.length; i++) { const d = Math.abs(a[i] - b[i]); if (d > max) { max = d; at = i; } }
  return { max, at };
}
/** Pillow's decoded pixels [H, W, 3] (0..255 floats) as an RGBA image. */
function pillowDecoded(name: string): { width: number; height: number; data: Uint8Array } {
  const t = expected.get(`decoded.${name}`)!;
  const [h, w] = t.shape, data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) { for (let c = 0; c < 3; c++) data[4 * i + c] = t.data[3 * i + c]; data[4 * i + 3] = 255; }
  return { width: w, height: h, data };
}

const pngs = Object.keys(meta.images).filter((n) => n.endsWith('.png'));
const jpgs = Object.keys(meta.images).filter((n) => n.endsWith('.jpg'));

test('fixture: the four pipelines and four images are all there', () => {
  assert.is(Object.keys(meta.pipelines).length, 4);
  assert.is(pngs.length, 3);
  assert.is(jpgs.length, 1);
});

test('PNG decoding equals Pillow exactly (RGBA: alpha dropped, grey: replicated)', () => {
  for (const name of pngs) {
    const img = readImageFile(join(FIX, name)), want = expected.get(`decoded.${name}`)!;
    const rgb = convertImage(img, 3).data;
    const d = maxDiff(rgb, want.data);
    console.log(`  decoded ${name}: max |diff| ${d.max}`);
    assert.is(d.max, 0, `${name}: pixel ${d.at} differs`);
  }
});

for (const [pname, p] of Object.entries(meta.pipelines)) {
  test(`${pname}: every PNG within one grey level of Pillow`, () => {
    const pp = toPreprocess(p);
    const cfg = { ...getPreset('deit_tiny_patch16_224'), imgSize: pp.size, mean: p.mean, std: p.std, preprocess: pp };
    for (const name of pngs) {
      const want = expected.get(`${pname}.${name}`)!;
      assert.equal(want.shape, [3, pp.size, pp.size]);
      const x = imageToInput(readImageFile(join(FIX, name)), cfg);
      const hw = pp.size * pp.size, d = maxDiff(toPixels(x, p.mean, p.std, hw), toPixels(want.data, p.mean, p.std, hw));
      console.log(`  ${pname} ${name}: max |diff| ${d.max.toFixed(4)} grey levels`);
      assert.ok(d.max <= 1 + 1e-3, `${pname} ${name}: ${d.max.toFixed(3)} grey levels at element ${d.at}`);
    }
  });
}

test('JPEG: decoded within 3 levels of Pillow; pipelines within 1 level on Pillow\'s pixels and within 3 on ours', () => {
  for (const name of jpgs) {
    const ours = readImageFile(join(FIX, name)), want = expected.get(`decoded.${name}`)!;
    const d = maxDiff(convertImage(ours, 3).data, want.data);
    console.log(`  decoded ${name}: max |diff| ${d.max} levels`);
    assert.ok(d.max <= 3, `${name}: decoded pixel ${d.at} differs by ${d.max}`);
    const pil = pillowDecoded(name);
    for (const [pname, p] of Object.entries(meta.pipelines)) {
      const pp = toPreprocess(p), hw = pp.size * pp.size;
      const cfg = { ...getPreset('deit_tiny_patch16_224'), imgSize: pp.size, mean: p.mean, std: p.std, preprocess: pp };
      const ref = toPixels(expected.get(`${pname}.${name}`)!.data, p.mean, p.std, hw);
      const a = maxDiff(toPixels(imageToInput(pil, cfg), p.mean, p.std, hw), ref);
      const b = maxDiff(toPixels(imageToInput(ours, cfg), p.mean, p.std, hw), ref);
      console.log(`  ${pname} ${name}: from Pillow's pixels ${a.max.toFixed(4)}, from ours ${b.max.toFixed(4)} grey levels`);
      assert.ok(a.max <= 1 + 1e-3, `${pname} ${name} (Pillow's decode): ${a.max}`);
      assert.ok(b.max <= 3 + 1e-3, `${pname} ${name} (our decode): ${b.max}`);
    }
  }
});

test('resizeU8: Pillow fixed point (identity, constant images, clipping of bicubic overshoot)', () => {
  const src = Uint8Array.from({ length: 7 * 5 * 3 }, (_, i) => (i * 37) % 256);
  assert.equal(Array.from(resizeU8(src, 3, 7, 5, 7, 5, 'bicubic')), Array.from(src), 'same size is a copy');
  const flat = new Uint8Array(11 * 9).fill(200);
  for (const f of ['bilinear', 'bicubic', 'box', 'hamming', 'lanczos'] as const) {
    assert.ok(resizeU8(flat, 1, 11, 9, 4, 13, f).every((v) => v === 200), `${f}: a constant image stays constant`);
  }
  // a step 0 | 255 upsampled with bicubic overshoots; Pillow clips to 0..255
  const step = Uint8Array.from([0, 0, 255, 255]);
  const up = resizeU8(step, 1, 4, 1, 16, 1, 'bicubic');
  assert.ok(up.some((v) => v === 255) && up.some((v) => v === 0), 'clipped at both ends');
  // 2 -> 1 bilinear is the rounded mean: (10 + 13) / 2 = 11.5 -> 12 (half rounds up in fixed point)
  assert.equal(Array.from(resizeU8(Uint8Array.from([10, 13]), 1, 2, 1, 1, 1, 'bilinear')), [12]);
});

test('pyRound rounds half to even (torchvision centre-crop offsets)', () => {
  assert.equal([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 3].map(pyRound), [0, 2, 2, -0, 2, 3, 3]);
});

test('timm center: shorter side to floor(size / crop_pct), odd offsets by round-half-even', () => {
  // 301x217 -> shorter 256, longer int(256*301/217) = 355 -> offset round(65.5) = 66
  const img = readImageFile(join(FIX, 'rgb-301x217.png'));
  const p: Preprocess = { kind: 'timm', size: 224, interpolation: 'bicubic', cropPct: 0.875, mean: [0, 0, 0], std: [1, 1, 1] };
  const px = preprocessPixels(img, p, 3);
  assert.is(px.width, 224); assert.is(px.height, 224);
  const squash = preprocessPixels(img, { ...p, cropMode: 'squash' }, 3), border = preprocessPixels(img, { ...p, cropMode: 'border', mean: [0.5, 0.5, 0.5] }, 3);
  assert.is(squash.data.length, 224 * 224 * 3);
  // border: the 301x217 image fits in 256 wide -> 256x185, padded to 224 high with round(255 * 0.5) = 128
  assert.is(border.data[0], 128, 'border padding is the mean colour');
});

/** imageToInput as it was defined in src/io/image.ts before `preprocess` existed (commit 3069366): what the committed grey models were trained and tested with. */
function previousImageToInput(img: RgbaImage, cfg: VitConfig): Float32Array {
  const S = cfg.imgSize;
  const inner = cfg.dataSize ?? S, off = (S - inner) >> 1;
  const g = toGrayFloat(img, inner), x = new Float32Array(S * S).fill((0 - cfg.mean[0]) / cfg.std[0]);
  for (let r = 0; r < inner; r++) for (let c = 0; c < inner; c++) x[(r + off) * S + c + off] = (g[r * inner + c] - cfg.mean[0]) / cfg.std[0];
  return x;
}

test('committed Fashion-MNIST models: imageToInput unchanged (grey, dataSize 28 centred, padding -mean/std)', () => {
  const cfg = getPreset('vit_fmnist');
  const rgba = new Uint8Array(28 * 28 * 4);
  for (let i = 0; i < 28 * 28; i++) { const v = (i * 13) % 256; rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = v; rgba[4 * i + 3] = 255; }
  const img = { width: 28, height: 28, data: rgba };
  const a = imageToInput(img, cfg), b = previousImageToInput(img, cfg);
  assert.equal(Array.from(a), Array.from(b), 'identical to the previous definition');
  assert.is(a[0], Math.fround((0 - cfg.mean[0]) / cfg.std[0]), 'padding is pixel 0 normalised');
  assert.is(a[2 * 32 + 3], Math.fround((Math.fround(13 / 255) - cfg.mean[0]) / cfg.std[0]), 'image starts at (2, 2)');
  // a 56x56 image: float bilinear to 28 as before
  const big = { width: 56, height: 56, data: new Uint8Array(56 * 56 * 4).map((_, i) => (i * 7) % 256) };
  assert.equal(Array.from(imageToInput(big, cfg)), Array.from(previousImageToInput(big, cfg)));
  assert.equal(Array.from(toGrayFloat(big, 28)), Array.from(resizePlanes(toGrayFloat(big), 1, 56, 56, 28, 28)));
});

test('training transform: random resized crop within the image, flip mirrors, seeded', () => {
  const rng = new Rng(3);
  for (let i = 0; i < 200; i++) {
    const [l, t, w, h] = rrcParams(40, 30, rng, [0.08, 1], [3 / 4, 4 / 3]);
    assert.ok(l >= 0 && t >= 0 && w > 0 && h > 0 && l + w <= 40 && t + h <= 30, `crop ${l},${t},${w},${h}`);
    assert.ok(w * h <= 40 * 30);
  }
  const p: PixelsU8 = { width: 2, height: 2, channels: 1, data: Uint8Array.from([1, 2, 3, 4]) };
  const flips = new Set<string>();
  const r = new Rng(0);
  for (let i = 0; i < 20; i++) flips.add(Array.from(trainView(p, 2, { rrc: null, flip: true, interpolation: 'bilinear' }, r).data).join(','));
  assert.equal([...flips].sort(), ['1,2,3,4', '2,1,4,3']);
  const v1 = trainView(p, 2, { rrc: { scale: [0.5, 1], ratio: [0.5, 2] }, flip: true, interpolation: 'bicubic' }, new Rng(9));
  const v2 = trainView(p, 2, { rrc: { scale: [0.5, 1], ratio: [0.5, 2] }, flip: true, interpolation: 'bicubic' }, new Rng(9));
  assert.equal(Array.from(v1.data), Array.from(v2.data), 'same seed, same view');
});

/** A minimal baseline JPEG header (SOI, SOF0 claiming w x h, EOI): enough for the size check. */
function fakeJpeg(w: number, h: number): Uint8Array {
  return Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    0xff, 0xc0, 0, 17, 8, h >> 8, h & 255, w >> 8, w & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]);
}
function fakePng(w: number, h: number): Uint8Array {
  const ihdr = new Uint8Array(13), dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w); dv.setUint32(4, h); ihdr[8] = 8; ihdr[9] = 6;
  const parts = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Uint8Array.from([0x78, 0x9c, 3, 0, 0, 0, 0, 1])), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0; for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

test('decoders check the header against the pixel limit before decoding (9999x9999 PNG and JPEG)', () => {
  for (const [kind, bytes] of [['JPEG', fakeJpeg(9999, 9999)], ['PNG', fakePng(9999, 9999)]] as const) {
    const t0 = performance.now();
    try { decodeImage(bytes, `huge.${kind.toLowerCase()}`); assert.unreachable('accepted'); } catch (e) {
      assert.instance(e, ImageError);
      const m = (e as Error).message;
      assert.ok(m.includes(`huge.${kind.toLowerCase()}`) && m.includes('9999x9999') && m.includes('40.0 MP limit (the decoder\'s limit for any image; downscale it first)'), m);
    }
    assert.ok(performance.now() - t0 < 200, `${kind}: rejected without decoding`);
  }
  // the option raises or lowers the limit: a 64x64 claim passes the check (then fails as the fake it is)
  try { decodeImage(fakeJpeg(64, 64), 'small.jpg', { maxPixels: 100 }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /64x64.*0\.0 MP limit \(maxPixels\)/); }
  const real = encodePng(3, 2, new Uint8Array(24).fill(9));
  assert.is(decodeImage(real, 'ok.png').width, 3);
  assert.is(crc32(new Uint8Array(0)), 0);
});

test.run();
