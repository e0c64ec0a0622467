// safetensors files on disk (Node): ./safetensors.ts's format, read within
// io/input.ts's checks and written through io/output.ts's atomic write. Apart
// from the format so that the browser build, which parses model bytes, pulls
// in no node: module.
import { closeSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic, type NamedInput } from './output.js';
import { readInput, statInput } from './input.js';
import { SafetensorsError, headerLength, readSafetensors, writeSafetensors, type SafetensorsContents, type TensorMap } from './safetensors.js';

/**
 * A safetensors file's bytes, checked before they are read: a regular file of
 * at most `limit` bytes (io/input.ts) whose 8-byte prefix gives a header
 * length that fits the file (a 2 GB file claiming a 1 TiB header is refused
 * after 8 bytes, not after reading it all). `what` names it in errors.
 */
export function readSafetensorsBytes(path: string, what = 'safetensors file', limit?: number): Uint8Array {
  const size = statInput(path, what, limit).size;
  const prefix = new Uint8Array(Math.min(8, size));
  const fd = openSync(path, 'r');
  try { readSync(fd, prefix, 0, prefix.length, 0); } finally { closeSync(fd); }
  headerLength(prefix, size, (msg) => { throw new SafetensorsError(path, msg); });
  return readInput(path, what, limit);
}

export function readSafetensorsFile(path: string, what?: string, limit?: number): SafetensorsContents {
  return readSafetensors(readSafetensorsBytes(path, what, limit), path);
}

/**
 * Write atomically: serialize fully in memory, write to a temp file in the
 * same directory, fsync, rename over the target (rename within a directory is
 * atomic on POSIX), then fsync the directory so the rename itself is durable.
 * A crash leaves either the old file or the new one, never a torn checkpoint.
 */
export function writeSafetensorsFile(path: string, tensors: TensorMap, metadata?: Record<string, string>, inputs?: readonly NamedInput[]): void {
  const bytes = writeSafetensors(tensors, metadata, path);
  // output.ts: refuses inputs and non-regular files, follows symlinks, temporary file + fsync + rename
  try { writeFileAtomic(path, bytes, inputs); } catch (e) {
    throw new SafetensorsError(path, `could not write the file: ${(e as Error).message.replace(`${path}: `, '')}`, { cause: e });
  }
}
