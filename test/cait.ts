// Running `cait` from tests: in-process through main(argv, io) (fast: no
// TypeScript transpile per run), or as a child process of the real entry.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface CaitRun { code: number; stdout: string; stderr: string; json: any }

function lastJson(stdout: string): any {
  const lines = stdout.trim().split('\n');
  try { return JSON.parse(lines[lines.length - 1]); } catch { return null; }
}

/** `cait ...args` in this process: exit code, captured stdout and stderr, the last stdout line parsed. */
export async function cait(...args: string[]): Promise<CaitRun> {
  let stdout = '', stderr = '';
  const code = await main(args, { stdout: (s) => { stdout += s; }, stderr: (s) => { stderr += s; } });
  return { code, stdout, stderr, json: lastJson(stdout) };
}

/** `cait ...args` as a child process of `entry` (the real entry, its exit code). */
export function caitProcess(entry: string, ...args: string[]): CaitRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json: lastJson(r.stdout) };
}
