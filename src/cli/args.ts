// The older, untyped parser, kept for the scripts in bench/ and web/ (their own
// small flag lists); the `cait` commands declare typed specs in ./flags.ts.
import { UsageError } from './flags.js';
export { UsageError };

export interface FlagSpec { [name: string]: 'string' | 'number' | 'boolean' }

export function parseArgs(argv: string[], spec: FlagSpec): { flags: Record<string, string | number | boolean | undefined>; rest: string[] } {
  const flags: Record<string, string | number | boolean | undefined> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { rest.push(a); continue; }
    let [name, val] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag --${name}; expected one of: ${Object.keys(spec).map((k) => '--' + k).join(' ')}`);
    if (kind === 'boolean') { flags[name] = val === undefined ? true : val !== 'false'; continue; }
    if (val === undefined) {
      val = argv[++i];
      if (val === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (kind === 'number') {
      const v = Number(val);
      if (!Number.isFinite(v)) throw new UsageError(`--${name} expects a number, got '${val}'`);
      flags[name] = v;
    } else flags[name] = val;
  }
  return { flags, rest };
}
