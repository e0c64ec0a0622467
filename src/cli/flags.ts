// The command line's one flag spec. Every flag is declared once, with its type,
// default, range and one line of help; each command declares its spec (the
// shared sets below plus its own) and from that alone come parsing, validation
// (before any work starts; every failure a UsageError, exit 2), the typed
// values a command reads, `cait CMD --help`, the global usage and the
// "did you mean" hints. src/cli/main.ts registers the commands.
import { SIMILARITIES } from '../cait/atme.js';
import { SEG_UNMERGES } from '../seg/model.js';
import { LOAD_QUANTIZE } from '../quant/format.js';
import { PRESETS } from '../nn/presets.js';
import { suggest } from '../util/suggest.js';

export class UsageError extends Error {}

interface FlagBase {
  /** One line: what the flag does. */
  help: string;
  /** The value's name in help (NAME, FILE, N); defaults by type. */
  value?: string;
  /** The default as help shows it, where it depends on other flags (no `default` then). */
  defaultText?: string;
  /** Extra validation after the type and range checks: an error message, or nothing. */
  check?: (v: never) => string | undefined;
}
export interface StringFlag extends FlagBase { type: 'string'; default?: string }
export interface IntFlag extends FlagBase { type: 'int'; default?: number; min?: number; max?: number }
/** `above`: exclusive lower bound (a learning rate > 0); `min`/`max` inclusive. */
export interface NumberFlag extends FlagBase { type: 'number'; default?: number; min?: number; max?: number; above?: number }
export interface BooleanFlag extends FlagBase { type: 'boolean' }
/** A flag that may be given more than once (`--model a --model b`): every value, in order; [] when not given. */
export interface StringListFlag extends FlagBase { type: 'strings' }
export interface EnumFlag extends FlagBase { type: 'enum'; choices: readonly string[]; default?: string }
export type Flag = StringFlag | IntFlag | NumberFlag | BooleanFlag | EnumFlag | StringListFlag;
export type FlagSet = Readonly<Record<string, Flag>>;

type Value<F> = F extends { type: 'boolean' } ? boolean
  : F extends { type: 'strings' } ? string[]
  : F extends { type: 'int' | 'number' } ? number
  : F extends { type: 'enum'; choices: readonly (infer C)[] } ? C
  : string;
/** What parsing returns: booleans always present, flags with a default always set, the rest possibly undefined. */
export type Flags<S extends FlagSet> = {
  [K in keyof S]: S[K] extends { type: 'boolean' } ? boolean : S[K] extends { type: 'strings' } ? string[] : S[K] extends { default: unknown } ? Value<S[K]> : Value<S[K]> | undefined
};

export interface Command<S extends FlagSet = FlagSet> {
  name: string;
  /** One line for the global usage. */
  summary: string;
  /** Example invocations, without the leading `cait NAME`. */
  usage: readonly string[];
  /** Paragraphs printed after the flags in `--help`. */
  notes?: string;
  flags: S;
  run(f: Flags<S>): void | Promise<void>;
}

/** Declares a command; `const` keeps the flag literals, so `run` gets typed values. */
export function command<const S extends FlagSet>(c: Command<S>): Command<S> { return c; }

// ------------------------------------------------------------ shared flag sets

/** How a --model file loads (LoadOptions.allowNonFinite, .imgSize); part of MODEL_FLAGS. */
export const LOAD_FLAGS = {
  'allow-nonfinite': { type: 'boolean', help: 'load weights holding NaN or Infinity (for debugging; otherwise an error naming the tensor)' },
  'img-size': { type: 'int', min: 1, max: 4096, value: 'N', help: "run the --model at N x N input: its position embedding is resampled (bicubic, as timm), a message says so", defaultText: "the model's" },
} as const satisfies FlagSet;

/** --preset's choices: the presets' names (src/nn/presets.ts). */
export const PRESET_NAMES: readonly string[] = Object.keys(PRESETS);

export const MODEL_FLAGS = {
  model: { type: 'string', value: 'FILE', help: 'model file (.safetensors with its config)' },
  preset: { type: 'enum', choices: PRESET_NAMES, value: 'NAME', help: 'preset architecture: a new model, or the config of a file without one' },
  ...LOAD_FLAGS,
} as const satisfies FlagSet;

/** Whether and how a --model runs int8 (LoadOptions.quantize, .int8Attention, .int8SixBit); part of the inference commands' flags. */
export const INT8_FLAGS = {
  quantize: { type: 'enum', choices: LOAD_QUANTIZE, value: 'int8', help: 'quantize a float --model as it loads (int8: the model cait quantize would write, run by the int8 kernels; wasm or reference backend); an int8 file is int8 already', defaultText: 'none' },
  'int8-attention': { type: 'enum', choices: ['on', 'off'], default: 'on', help: "an int8 model's attention GEMMs: int8 (on), or float (off: closer to the float model on unusual inputs, about 1.1x the time)" },
  'int8-six-bit': { type: 'enum', choices: ['on', 'off'], default: 'on', help: "an int8 model's qkv, fc1, fc2 and attention proj inputs and attention's q and P in 6 bits (on: faster where the engine has no fused int8 dot, Node 20 and 22), or every row in 7 bits (off: closer to the float model's logits)" },
} as const satisfies FlagSet;
/** INT8_FLAGS' values as LoadOptions.int8Attention and .int8SixBit (quantizeLoaded's attention and sixBit). */
export const int8AttentionOf = (f: { 'int8-attention'?: 'on' | 'off' }): boolean => f['int8-attention'] !== 'off';
export const int8SixBitOf = (f: { 'int8-six-bit'?: 'on' | 'off' }): boolean => f['int8-six-bit'] !== 'off';

export const BACKEND_FLAGS = {
  backend: { type: 'enum', choices: ['wasm', 'wasm-simd', 'wasm-relaxed', 'reference', 'webgpu'], default: 'wasm', help: 'compute backend (webgpu: inference only)' },
  threads: { type: 'int', min: 1, max: 64, default: 1, help: 'threads of a WASM pool over one shared memory' },
} as const satisfies FlagSet;

export const MERGE_FLAGS = {
  merge: { type: 'string', value: 'SCHEDULE', help: "ATME token merging, e.g. h@3,v@6 (halve columns in block 3, rows in block 6; 0-based); 'none' turns a saved schedule off", defaultText: "the model's saved schedule" },
  similarity: { type: 'enum', choices: SIMILARITIES, help: 'how merge partners are compared (needs a schedule)', defaultText: 'keys, or as saved' },
  'no-prop-attn': { type: 'boolean', help: "don't weight attention by merged-token size (needs a schedule)" },
} as const satisfies FlagSet;

/** Flags of train, eval and compress for segmentation scenes. */
export const SEG_FLAGS = {
  task: { type: 'enum', choices: ['classify', 'segment'], help: 'classification or segmentation scenes', defaultText: "the model's task, else classify" },
  scenes: { type: 'int', min: 1, max: 10_000_000, value: 'N', help: 'training scenes (segmentation; drawn as needed, an epoch order holds one index each)', defaultText: '20000' },
  'test-scenes': { type: 'int', min: 1, max: 10_000_000, value: 'N', help: 'test scenes (segmentation)', defaultText: '2000' },
  'scene-seed': { type: 'int', min: 0, value: 'S', help: 'seed of the generated scenes (a different seed makes different scenes)', defaultText: 'as saved' },
  unmerge: { type: 'enum', choices: SEG_UNMERGES, help: 'how a segmentation model with merging returns to the full grid', defaultText: 'as saved (residual)' },
} as const satisfies FlagSet;

export const OUTPUT_FLAGS = {
  json: { type: 'boolean', help: 'print one JSON object as the last line of stdout' },
  quiet: { type: 'boolean', help: 'no progress bars' },
} as const satisfies FlagSet;

export const JSON_FLAG = { json: OUTPUT_FLAGS.json } as const satisfies FlagSet;

// ------------------------------------------------------------ parsing

const typeName = (f: Flag): string => f.type === 'enum' ? f.choices.join('|') : f.type;

function fmtNum(v: number): string { return String(v); }

/** The range part of a message or of help: "an integer in 1..64", "a number > 0". */
function rangeText(f: Flag): string {
  if (f.type === 'int') {
    if (f.min !== undefined && f.max !== undefined) return `an integer in ${f.min}..${f.max}`;
    if (f.min !== undefined) return `an integer >= ${f.min}`;
    if (f.max !== undefined) return `an integer <= ${f.max}`;
    return 'an integer';
  }
  if (f.type === 'number') {
    const parts: string[] = [];
    if (f.above !== undefined) parts.push(`> ${fmtNum(f.above)}`);
    if (f.min !== undefined) parts.push(`>= ${fmtNum(f.min)}`);
    if (f.max !== undefined) parts.push(`<= ${fmtNum(f.max)}`);
    if (f.min !== undefined && f.max !== undefined && f.above === undefined) return `a number in ${fmtNum(f.min)}..${fmtNum(f.max)}`;
    return `a number${parts.length ? ' ' + parts.join(' and ') : ''}`;
  }
  return '';
}

function choicesText(c: readonly string[]): string {
  return c.length === 2 ? `${c[0]} or ${c[1]}` : `one of ${c.join(', ')}`;
}

/** Turns one raw value into the flag's type, or throws a UsageError naming the flag, expected and got. */
export function convert(name: string, f: Flag, raw: string): string | number | boolean {
  let v: string | number | boolean;
  switch (f.type) {
    case 'boolean':
      if (raw !== 'true' && raw !== 'false') throw new UsageError(`--${name} is a switch: give --${name} (or --${name}=false), got '${raw}'`);
      v = raw === 'true';
      break;
    case 'int': {
      const n = Number(raw);
      if (!/^[-+]?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max))
        throw new UsageError(`--${name} must be ${rangeText(f)}, got '${raw}'`);
      v = n;
      break;
    }
    case 'number': {
      // decimal only: Number() also reads 0x10 (16), 0b1 and 0o7, which no one means as a learning rate
      const n = /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || (f.above !== undefined && !(n > f.above)) || (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max))
        throw new UsageError(`--${name} must be ${rangeText(f)}, got '${raw}'`);
      v = n;
      break;
    }
    case 'enum':
      if (!f.choices.includes(raw)) {
        const near = suggest(raw, f.choices);
        throw new UsageError(`--${name} must be ${choicesText(f.choices)}, got '${raw}'${near ? ` (did you mean '${near}'?)` : ''}`);
      }
      v = raw;
      break;
    default:
      if (raw === '') throw new UsageError(`--${name} needs a value, got ''`);
      v = raw;
  }
  const msg = f.check?.(v as never);
  if (msg) throw new UsageError(`--${name} ${msg}`);
  return v;
}

export { editDistance, suggest } from '../util/suggest.js';

export interface Parsed<S extends FlagSet> { flags: Flags<S>; help: boolean }

/**
 * `--flag value`, `--flag=value`, a switch `--flag`; `--help`/`-h` asks for
 * help. Positional words, unknown flags, a flag given twice or without its
 * value are usage errors. Defaults fill flags not given.
 */
export function parseFlags<S extends FlagSet>(argv: readonly string[], spec: S, cmd?: string): Parsed<S> {
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  const see = cmd ? ` (see cait ${cmd} --help)` : '';
  // help wins over any other flag, valid or not (`cait train --epochs 0 --help` shows the help)
  if (argv.some((a) => a === '--help' || a === '-h')) return { flags: out as Flags<S>, help: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}': flags are --name value${see}`);
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    let raw = eq < 0 ? undefined : a.slice(eq + 1);
    const f = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (!f) {
      const near = suggest(name, Object.keys(spec));
      throw new UsageError(`unknown flag --${name}${near ? ` (did you mean --${near}?)` : ''}${see}`);
    }
    if (seen.has(name) && f.type !== 'strings') throw new UsageError(`--${name} given twice`);
    seen.add(name);
    if (f.type === 'boolean') { out[name] = raw === undefined ? true : convert(name, f, raw); continue; }
    if (raw === undefined) {
      raw = argv[++i];
      if (raw === undefined || raw === '--help') throw new UsageError(`--${name} needs a value (${f.value ?? typeName(f)})`);
      // a value that looks like a flag is a forgotten value (--model --foo read a file '--foo'); --name=--x gives one on purpose
      if (raw.startsWith('--') && raw.length > 2) throw new UsageError(`--${name} needs a value (${f.value ?? typeName(f)}), got the flag ${raw.split('=')[0]}; write --${name}=${raw} for a value that starts with --`);
    }
    out[name] = f.type === 'strings' ? [...((out[name] as string[] | undefined) ?? []), convert(name, f, raw)] : convert(name, f, raw);
  }
  for (const [name, f] of Object.entries(spec)) {
    if (out[name] !== undefined) continue;
    if (f.type === 'boolean') out[name] = false;
    else if (f.type === 'strings') out[name] = [];
    else if (f.default !== undefined) out[name] = f.default;
  }
  return { flags: out as Flags<S>, help: false };
}

/**
 * Which of `names` a parsed `f` holds other than as its default (a switch:
 * on), as --name: the flags a mode would ignore, for its usage error. A flag
 * given at its default value reads as not given.
 */
export function flagsSet<S extends FlagSet>(f: Flags<S>, spec: S, names: ReadonlyArray<keyof S & string>): string[] {
  return names.filter((n) => {
    const v = (f as Record<string, unknown>)[n], d = spec[n];
    return d.type === 'boolean' ? v === true : d.type === 'strings' ? (v as string[]).length > 0 : v !== undefined && v !== d.default;
  }).map((n) => `--${n}`);
}

// ------------------------------------------------------------ help

function defaultOf(f: Flag): string | undefined {
  if (f.defaultText !== undefined) return f.defaultText;
  if (f.type === 'boolean') return 'off';
  if (f.type === 'strings') return undefined;
  return f.default === undefined ? undefined : String(f.default);
}

/** `cait NAME --help`: summary, examples, every flag with its type, default and help. */
export function commandHelp(c: Command): string {
  const rows = Object.entries(c.flags).map(([name, f]) => {
    const left = `--${name}${f.type === 'boolean' ? '' : ' ' + (f.value ?? (f.type === 'int' ? 'N' : f.type === 'number' ? 'X' : f.type === 'enum' ? 'WORD' : 'VALUE'))}`;
    const type = f.type === 'enum' ? `${f.choices.join('|')}` : f.type === 'int' || f.type === 'number' ? `${f.type === 'int' ? 'int' : 'number'}${rangeText(f).replace(/^an? (integer|number)/, '')}` : f.type === 'strings' ? 'string; repeatable' : f.type;
    const d = defaultOf(f);
    return { left, text: `${f.help} [${type}${d !== undefined ? `; default ${d}` : ''}]` };
  });
  const w = Math.min(28, Math.max(...rows.map((r) => r.left.length)) + 2);
  const lines = [
    `cait ${c.name}: ${c.summary}`, '', 'usage:',
    ...c.usage.map((u) => `  cait ${c.name} ${u}`), '', 'flags:',
    ...rows.map((r) => r.left.length + 2 > w ? `  ${r.left}\n  ${' '.repeat(w)}${r.text}` : `  ${r.left.padEnd(w)}${r.text}`),
    `  ${'--help, -h'.padEnd(w)}this help`,
  ];
  if (c.notes) lines.push('', c.notes);
  return lines.join('\n');
}

/** The global usage: every command's summary and first example. */
export function globalUsage(commands: readonly Command[]): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'usage: cait <command> [flags]', '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`), '',
    'cait <command> --help (or cait help <command>) lists its flags with type, default and help; cait --version prints the version.',
    'With --json a command prints one JSON object as the last line of stdout (and only then).',
    'Exit codes: 0 success, 1 bad data or failure (file, training), 2 usage error (flags, arguments).',
  ].join('\n');
}
