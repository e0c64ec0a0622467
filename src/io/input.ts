// Reading an input file without trusting it (the other side of output.ts):
//   - only a regular file is read: a device or a FIFO may never end (`cait
//     predict --image /dev/zero` grew to 4.5 GB before this check);
//   - its size is checked against the caller's limit before a byte is read;
//   - every error names the file and says what was expected.
// Formats-level: imports nothing above io/.
import { readFileSync, statSync, type Stats } from 'node:fs';
import { FileError } from './errors.js';

export class InputError extends FileError { override name = 'InputError'; }

/** What a file that is not a regular one is, for messages (also output.ts). */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** readFileSync's own ceiling (Node's buffer.constants.MAX_LENGTH for one read is 2 GiB - 1 here). */
export const MAX_READ_BYTES = 2 ** 31 - 1;

const fmtBytes = (n: number): string => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} bytes`);

/** statSync of an input that must be a regular file of at most `limit` bytes; `what` says what it is for. */
export function statInput(path: string, what: string, limit: number = MAX_READ_BYTES): Stats {
  let st: Stats;
  try { st = statSync(path); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(path, code === 'ENOENT' ? `not found (the ${what})` : `the ${what} cannot be read (${code ?? (e as Error).message})`, { cause: e });
  }
  if (st.isDirectory()) throw new InputError(path, `is a folder; expected the ${what} file`);
  if (!st.isFile()) throw new InputError(path, `is ${kindOf(st)}; the ${what} must be a regular file`);
  const max = Math.min(limit, MAX_READ_BYTES);
  if (st.size > max) throw new InputError(path, `the ${what} is ${fmtBytes(st.size)}, over the limit of ${fmtBytes(max)}`);
  return st;
}

/** The bytes of a checked input (statInput), with read errors naming the file. */
export function readInput(path: string, what: string, limit: number = MAX_READ_BYTES): Buffer {
  statInput(path, what, limit);
  try { return readFileSync(path); } catch (e) {
    throw new InputError(path, `the ${what} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

/** readInput as UTF-8 text. */
export function readInputText(path: string, what: string, limit: number = MAX_READ_BYTES): string {
  return readInput(path, what, limit).toString('utf8');
}
