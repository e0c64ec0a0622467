// "Did you mean": the nearest known name to a typed one, for the CLI's flags
// and commands and the library's option names.

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean": `trian` is 1 from `train`. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The nearest of `names` to `word`, if near enough to be a likely typo. */
export function suggest(word: string, names: Iterable<string>): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const n of names) {
    const d = editDistance(word, n);
    if (d < bestD) { best = n; bestD = d; }
  }
  return best !== undefined && bestD <= Math.max(1, Math.min(3, Math.ceil(best.length / 3))) ? best : undefined;
}

/**
 * Refuses option objects that are not objects, and keys not in `known` (a
 * typo such as { thread: 4 } would otherwise run silently with the default),
 * naming the nearest known key. `where` prefixes the message ('load: ').
 */
export function checkOptionKeys(o: unknown, known: readonly string[], where: string): void {
  if (o === undefined) return;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new TypeError(`${where}options must be an object, got ${o === null ? 'null' : Array.isArray(o) ? 'an array' : `${typeof o} ${JSON.stringify(o)}`}`);
  }
  for (const k of Object.keys(o)) {
    if (known.includes(k)) continue;
    const near = suggest(k, known);
    throw new TypeError(`${where}unknown option '${k}'${near ? ` (did you mean '${near}'?)` : ''}; options: ${known.join(', ')}`);
  }
}

/** How deep showValue shows a nested value. */
const SHOW_DEPTH = 3;

/**
 * A value as an error message shows it: strings quoted (so '2' is not read
 * as the number 2), numbers as they print (NaN, Infinity), arrays and objects
 * as JSON to SHOW_DEPTH levels (`[...]`, `{...}` below), cut at `max`
 * characters. Bounded: JSON.stringify recurses through the whole value, and
 * a request field 200,000 arrays deep (which JSON.parse reads) overflowed the
 * stack; a million-entry array costs no more than a short one.
 */
export function showValue(v: unknown, max = 80): string {
  let out = '';
  const put = (x: unknown, depth: number): void => {
    if (typeof x === 'string') { out += JSON.stringify(x.slice(0, max + 1)); return; }
    if (typeof x !== 'object' || x === null) { out += String(x); return; }
    const arr = Array.isArray(x);
    if (depth >= SHOW_DEPTH) { out += arr ? '[...]' : '{...}'; return; }
    const keys = arr ? null : Object.keys(x), n = arr ? x.length : keys!.length;
    out += arr ? '[' : '{';
    for (let i = 0; i < n && out.length <= max; i++) {
      if (i) out += ',';
      if (keys) out += JSON.stringify(keys[i].slice(0, max + 1)) + ':';
      put(arr ? (x as unknown[])[i] : (x as Record<string, unknown>)[keys![i]], depth + 1);
    }
    out += arr ? ']' : '}';
  };
  put(v, 0);
  return out.length > max ? `${out.slice(0, max)}...` : out;
}
