// Writing an output file without harming anything else (issue 16):
//   - the output must not be any input of the same command: compared by real
//     path (symlinks resolved) and by device + inode (hard links);
//   - only regular files are written: a directory, device, FIFO or socket at
//     the path is refused (as root, `--out /dev/full` used to replace the device);
//   - a symlink is followed: its target is replaced, the link stays;
//   - a missing folder on the way is made (a file on the way is refused at the check);
//   - the bytes go to `<target>.tmp-<pid>-<random>` first, are fsynced and then
//     renamed over the target, so a reader (or a kill) sees the old file or the
//     new one, never half of one; temporaries of the same target left by dead
//     processes are removed first.
// Formats-level: imports nothing above io/.
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, renameSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FileError } from './errors.js';
import { kindOf } from './input.js';

export class OutputError extends FileError { override name = 'OutputError'; }

/** An input of the command: its path and the flag (or role) that named it, for the message. */
export interface NamedInput { path: string | undefined; flag: string }

/** Where writing `path` lands: the file itself, or the end of its chain of symlinks (which may not exist yet). */
export function outputTarget(path: string): string {
  let p = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    let st: Stats;
    try { st = lstatSync(p); } catch { break; }   // does not exist: a new file here
    if (!st.isSymbolicLink()) break;
    p = resolve(dirname(p), readlinkSync(p));
  }
  // the directory part through its own symlinks, so two spellings of one place compare equal
  try { return join(realpathSync(dirname(p)), basename(p)); } catch { return p; }
}

const statOrNull = (p: string): Stats | null => { try { return statSync(p); } catch { return null; } };

/**
 * `mkdir -p dir`, one level at a time from the nearest folder that exists:
 * Node 20's mkdirSync(dir, { recursive: true }) spins forever where a parent
 * reports ENOENT to mkdir although it exists (/proc/x/y, /sys/x/y). Errors
 * are OutputErrors naming `forPath` (the output the folder is for) and the
 * level that failed.
 */
export function makeFolder(dir: string, forPath = dir): void {
  const missing: string[] = [];
  let d = resolve(dir), st = statOrNull(d);
  while (!st) {
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
    st = statOrNull(d);
  }
  if (st && !st.isDirectory()) throw new OutputError(forPath, `${d} is ${st.isFile() ? 'a file' : kindOf(st)}, not a folder: cannot make a folder in it`);
  for (const m of missing.reverse()) {
    try { mkdirSync(m); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statOrNull(m)?.isDirectory()) continue;
      throw new OutputError(forPath, `could not make the folder ${m} (${code ?? (e as Error).message})`, { cause: e });
    }
  }
}

/**
 * Checks that `path` may be written: it resolves to no input (real path, or
 * the same device and inode) and is a regular file or nothing yet. Returns
 * the target to write (a symlink's final target). Throws an OutputError
 * naming the output and the input or the kind of file.
 */
export function checkOutput(path: string, inputs: readonly NamedInput[] = []): string {
  const target = outputTarget(path);
  const st = statOrNull(target);
  if (st && !st.isFile()) throw new OutputError(path, `${kindOf(st)}; an output must be a regular file (or a new one)`);
  // a missing folder is made at the write; one that cannot be (a file on the way) is refused now, before any work
  if (!st) {
    for (let d = dirname(target); ; d = dirname(d)) {
      const ds = statOrNull(d);
      if (ds && !ds.isDirectory()) throw new OutputError(path, `'${d}' is ${ds.isFile() ? 'a file' : kindOf(ds)}, not a folder`);
      if (ds || dirname(d) === d) break;
    }
  }
  for (const inp of inputs) {
    if (!inp.path) continue;
    const ist = statOrNull(inp.path);
    if (!ist) continue;
    let same = st !== null && st.dev === ist.dev && st.ino === ist.ino;
    if (!same) { try { same = realpathSync(inp.path) === target; } catch { /* gone */ } }
    if (same) throw new OutputError(path, `is the input ${inp.flag} ${inp.path}; refusing to overwrite an input (choose another output path)`);
  }
  return target;
}

const TMP = /^(.*)\.tmp-(\d+)-[0-9a-f]+$/;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Removes `<target>.tmp-PID-*` files whose process is gone (left by a kill during a write). Returns the names removed. */
export function cleanStaleTemporaries(target: string): string[] {
  const dir = dirname(target), base = basename(target), removed: string[] = [];
  let names: string[];
  try { names = readdirSync(dir); } catch { return removed; }
  for (const name of names) {
    const m = TMP.exec(name);
    if (!m || m[1] !== base || alive(Number(m[2]))) continue;
    try { unlinkSync(join(dir, name)); removed.push(name); } catch { /* raced with another cleaner */ }
  }
  return removed;
}

/**
 * Writes `bytes` to `path` as described at the top: checked against
 * `inputs`, through a temporary file and a rename, symlinks followed. The
 * mode of an existing file is kept (0644 for a new one).
 */
export function writeFileAtomic(path: string, bytes: Uint8Array, inputs: readonly NamedInput[] = []): void {
  const target = checkOutput(path, inputs);
  cleanStaleTemporaries(target);
  const mode = statOrNull(target)?.mode ?? 0o644;
  makeFolder(dirname(target), path);
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx', mode & 0o777);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, target);
  } catch (e) {
    if (fd !== null) try { closeSync(fd); } catch { /* already failing */ }
    try { unlinkSync(tmp); } catch { /* never created or already renamed */ }
    throw new OutputError(path, `could not write: ${(e as Error).message}`, { cause: e });
  }
  // Directory fsync is not supported everywhere (e.g. Windows); the data is already safe.
  try { const dfd = openSync(dirname(target), 'r'); try { fsyncSync(dfd); } finally { closeSync(dfd); } } catch { /* best effort */ }
}
