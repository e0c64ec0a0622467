// The benchmark scripts' command line (bench/*.ts): src/cli/args.ts's
// parseArgs, plus --help and usage errors that end the process (exit 2) before
// any work, as the cait commands answer. Kept here, not in the package: it exits.
import { parseArgs, UsageError, type FlagSpec } from '../src/cli/args.js';

/** A script's command line (bench/): its flags, and the ways it refuses one. */
export interface ScriptArgs {
  flags: Record<string, string | number | boolean | undefined>;
  rest: string[];
  /** Prints `message` and the usage on stderr and exits 2 (a usage error, as `cait` gives). */
  fail(message: string): never;
  /** `fn()`, with a UsageError it throws (bench/pin.ts's --cpu) turned into fail. */
  check<T>(fn: () => T): T;
  /** The integer flag `name` (`def` when not given), refused below `min`. */
  int(name: string, def: number, min: number): number;
  /** The comma-separated list flag `name` (`def` when not given), each item refused unless in `known`. */
  list(name: string, def: readonly string[], known?: readonly string[]): string[];
}

/**
 * parseArgs for a script: `--help` (or -h) prints `usage` and exits 0; an
 * unknown flag, a missing or non-numeric value, and whatever the script
 * refuses through `fail`, `int` or `list` print the message and the usage on
 * stderr and exit 2, before any work starts.
 */
export function scriptArgs(argv: string[], spec: FlagSpec, usage: string): ScriptArgs {
  const text = usage.trim().replace(/^(?!usage:)/i, 'usage: ');
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(`${text}\n`); process.exit(0); }
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n${text}\n`);
    process.exit(2);
  };
  const check = <T>(fn: () => T): T => {
    try { return fn(); } catch (e) { if (e instanceof UsageError) return fail(e.message); throw e; }
  };
  const { flags, rest } = check(() => parseArgs(argv, spec));
  return {
    flags, rest, fail, check,
    int(name, def, min) {
      const v = flags[name] ?? def;
      if (!(typeof v === 'number' && Number.isInteger(v) && v >= min)) fail(`--${name}: an integer >= ${min}, got ${flags[name]}`);
      return v as number;
    },
    list(name, def, known) {
      const v = flags[name] === undefined ? [...def] : String(flags[name]).split(',').map((s) => s.trim()).filter(Boolean);
      if (!v.length) fail(`--${name}: an empty list`);
      for (const k of v) if (known && !known.includes(k)) fail(`--${name}: unknown '${k}' (known: ${known.join(', ')})`);
      return v;
    },
  };
}
