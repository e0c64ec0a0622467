#!/usr/bin/env node
// cait: the command line. Each command declares its flags once (src/cli/flags.ts);
// parsing, validation, `--help`, the usage and the hints come from that spec.
// Output: readable text and, with --json, one JSON object as the last line of
// stdout. Exit codes: 0 success, 1 bad data or a failed run, 2 usage error.
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getBackend, setBackend } from '../tensor.js';
import { FolderError } from '../data/folder.js';
import { UsageError, commandHelp, globalUsage, parseFlags, suggest, type Command } from './flags.js';
import { trainCommand } from './train.js';
import { evalCommand, forwardCommand, predictCommand } from './infer.js';
import { benchCommand, macsCommand } from './bench.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';
import { compressCommand } from './compress.js';
import { plotCommand } from './plot.js';
import { segmentCommand } from './segment.js';
import { serveCommand } from './serve.js';
import { quantizeCommand } from './quantize.js';
import { convertCommand } from './convert.js';

export const COMMANDS: Array<Command<any>> = [
  trainCommand, evalCommand, segmentCommand, predictCommand, forwardCommand, demoCommand, compressCommand,
  macsCommand, benchCommand, plotCommand, exportCommand, serveCommand, quantizeCommand, convertCommand,
];

export const SCHEDULE_HELP = 'SCHEDULE: ATME token merging, e.g. h@3,v@6 (halve the columns in block 3, the rows in block 6; 0-based), none to turn a saved one off;' +
  '\n  with it: --similarity keys|features|fixed (default keys), --no-prop-attn';

export function usage(): string { return `${globalUsage(COMMANDS)}\n\n${SCHEDULE_HELP}`; }

/** The package version, from package.json (two levels up from src/cli/ and from dist/cli/). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Where a run's text goes; by default the process's streams. */
export interface Io { stdout(s: string): void; stderr(s: string): void }

function unknownCommand(cmd: string): string {
  const near = suggest(cmd, COMMANDS.map((c) => c.name));
  return `cait: unknown command '${cmd}'${near ? ` (did you mean '${near}'?)` : ''}; cait --help lists the commands`;
}

async function dispatch(argv: readonly string[], io: Io): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) { io.stderr(usage() + '\n'); return 2; }
  if (cmd === '--help' || cmd === '-h') { io.stdout(usage() + '\n'); return 0; }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') { io.stdout(`cait ${version()}\n`); return 0; }
  if (cmd === 'help') {
    if (!rest.length) { io.stdout(usage() + '\n'); return 0; }
    const c = COMMANDS.find((k) => k.name === rest[0]);
    if (!c) { io.stderr(unknownCommand(rest[0]) + '\n'); return 2; }
    io.stdout(commandHelp(c) + '\n');
    return 0;
  }
  const c = COMMANDS.find((k) => k.name === cmd);
  if (!c) { io.stderr(unknownCommand(cmd) + '\n'); return 2; }
  try {
    const p = parseFlags(rest, c.flags, c.name);
    if (p.help) { io.stdout(commandHelp(c) + '\n'); return 0; }
    await c.run(p.flags);
    return 0;
  } catch (e) {
    // a folder's option that does not fit it (--val-split on train/ + val/) is usage too
    if (e instanceof UsageError || (e instanceof FolderError && e.usage)) { io.stderr(`cait ${cmd}: ${e.message}\nusage: ${`cait ${c.name} ${c.usage[0]}`.trimEnd()}\n       cait ${c.name} --help for every flag\n`); return 2; }
    io.stderr(`cait ${cmd}: ${(e as Error).message}\n`);
    if (process.env.CAIT_DEBUG) io.stderr(`${(e as Error).stack}\n`);
    return 1;
  }
}

/**
 * Runs one `cait` command line and returns its exit code. With `io`, the run
 * is in-process (tests): everything written to stdout and stderr goes to io,
 * and the backend in use before is restored afterwards.
 */
export async function main(argv: readonly string[], io?: Io): Promise<number> {
  if (!io) return dispatch(argv, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
  const out = process.stdout.write, err = process.stderr.write, before = getBackend();
  const capture = (sink: (s: string) => void) => ((chunk: string | Uint8Array, ...more: unknown[]) => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const cb = more.find((m) => typeof m === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture(io.stdout);
  process.stderr.write = capture(io.stderr);
  try {
    return await dispatch(argv, io);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    // a thread pool made for this run stops its workers (they would keep the process alive)
    const used = getBackend() as { threads?: number; close?: () => Promise<void> };
    if (used !== before && (used.threads ?? 1) > 1) await used.close?.();
    setBackend(before);
  }
}

const entry = process.argv[1];
let isEntry = false;
try { isEntry = !!entry && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url)); } catch { /* not a file: imported */ }
if (isEntry) process.exitCode = await main(process.argv.slice(2));
