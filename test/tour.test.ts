// docs/tour.md cannot rot: every relative link in it points at a file of the
// repository (a .md anchor at one of its headings), every `symbol` named right
// after a link to a code file is defined in that file, every link into src/
// or assembly/ names at least one symbol, the tour visits the layers in its
// reading order, and the README links it. Failures list every broken stop.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOUR = join(ROOT, 'docs', 'tour.md');
const test = suite('tour');

interface Stop { line: number; target: string; file: string; anchor: string; symbols: string[] }

const IDENT = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?$/;

/**
 * Relative links of a markdown text (files resolved against `base`), each
 * with the backticked identifiers that follow it on its line, separated by
 * spaces or commas: [`src/plan.ts`](../src/plan.ts) `InferencePlan` `capture`.
 */
function stops(md: string, base: string): Stop[] {
  const out: Stop[] = [];
  for (const m of md.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
    const target = m[1];
    if (/^[a-z][a-z+.-]*:/i.test(target) || target.startsWith('#')) continue; // web links, same-page anchors
    const [path, anchor = ''] = target.split('#');
    const symbols: string[] = [];
    let rest = md.slice(m.index! + m[0].length);
    for (let s = /^[ \t,]*`([^`\n]+)`/.exec(rest); s && IDENT.test(s[1]); s = /^[ \t,]*`([^`\n]+)`/.exec(rest)) {
      symbols.push(s[1]);
      rest = rest.slice(s[0].length);
    }
    out.push({ line: md.slice(0, m.index).split('\n').length, target, file: resolve(base, decodeURIComponent(path)), anchor, symbols });
  }
  return out;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const MODS = '(?:(?:export|default|declare|abstract|async|public|private|protected|static|readonly|override|get|set)\\s+)*';

/** Where `name` is declared at the start of a line (function, class, const, let, var, interface, type, enum); -1 if nowhere. */
function declaredAt(src: string, name: string): number {
  const m = new RegExp(`^[ \\t]*${MODS}(?:function\\*?|class|const|let|var|interface|type|enum)\\s+${esc(name)}\\b`, 'm').exec(src);
  return m ? m.index : -1;
}

/** Whether `name` is a method or property defined in src from `from` on (a line opening with `name(` or `name:` that is not a call statement). */
function memberIn(src: string, name: string, from = 0): boolean {
  const re = new RegExp(`^[ \\t]*${MODS}${esc(name)}\\s*(?:<[^>\\n]*>)?\\s*[?!]?\\s*([(:])(.*)$`, 'gm');
  re.lastIndex = from;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const line = m[0].trimEnd();
    if (m[1] === ':' || !/[;)]$/.test(line)) return true;
  }
  return false;
}

/** Whether file text `src` defines `symbol` (a declaration, a member, or Owner.member). */
function defines(src: string, symbol: string): boolean {
  const [owner, member] = symbol.split('.');
  if (member !== undefined) {
    const at = declaredAt(src, owner);
    return at >= 0 && memberIn(src, member, at);
  }
  return declaredAt(src, symbol) >= 0 || memberIn(src, symbol);
}

/** GitHub's heading anchors: lower case, punctuation other than '-' and '_' dropped, spaces to '-'. */
function anchors(md: string): Set<string> {
  return new Set([...md.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)].map((h) =>
    h[1].toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')));
}

const tour = existsSync(TOUR) ? readFileSync(TOUR, 'utf8') : '';
const all = stops(tour, dirname(TOUR));
const rel = (f: string): string => relative(ROOT, f).split('\\').join('/');

test('docs/tour.md exists and links the code', () => {
  assert.ok(tour, 'docs/tour.md is missing');
  assert.ok(all.filter((s) => s.symbols.length).length >= 20, `only ${all.filter((s) => s.symbols.length).length} links name symbols`);
});

test('every linked file exists inside the repository, every anchor is a heading', () => {
  const bad: string[] = [];
  for (const s of all) {
    const where = `docs/tour.md:${s.line} (${s.target})`;
    if (rel(s.file).startsWith('..')) { bad.push(`${where}: outside the repository`); continue; }
    if (!existsSync(s.file) || !statSync(s.file).isFile()) { bad.push(`${where}: no file ${rel(s.file)}`); continue; }
    if (s.anchor && s.file.endsWith('.md') && !anchors(readFileSync(s.file, 'utf8')).has(s.anchor)) bad.push(`${where}: no heading #${s.anchor} in ${rel(s.file)}`);
  }
  assert.equal(bad, [], `broken links in docs/tour.md:\n  ${bad.join('\n  ')}`);
});

test('every symbol named after a link is defined in that file; links into src/ and assembly/ name one', () => {
  const missing: string[] = [];
  for (const s of all) {
    if (!existsSync(s.file) || !statSync(s.file).isFile()) continue; // reported above
    const file = rel(s.file), src = readFileSync(s.file, 'utf8');
    if (!s.symbols.length && /^(src|assembly)\/.*\.ts$/.test(file)) missing.push(`docs/tour.md:${s.line}: the link to ${file} names no symbol`);
    if (s.symbols.length && !/\.(ts|js|mjs)$/.test(file)) missing.push(`docs/tour.md:${s.line}: symbols after a link to ${file}, which is not code`);
    for (const sym of s.symbols) if (!defines(src, sym)) missing.push(`docs/tour.md:${s.line}: \`${sym}\` is not defined in ${file}`);
  }
  assert.equal(missing, [], `missing in docs/tour.md:\n  ${missing.join('\n  ')}`);
});

test('the tour reads the layers in order: kernel and reference, table, op and tape, ViT, ATME, CDCP, extraction, plan', () => {
  const order = ['assembly/', 'src/backend/reference/', 'src/backend/kernels.ts', 'src/ops/', 'src/autograd.ts', 'src/nn/layers.ts',
    'src/nn/vit.ts', 'src/cait/atme.ts', 'src/backend/reference/atme.ts', 'src/cait/masked.ts', 'src/cait/cdcp.ts', 'src/cait/macs.ts',
    'src/cait/extract.ts', 'src/plan.ts'];
  const files = all.map((s) => rel(s.file));
  const first = order.map((p) => files.findIndex((f) => f.startsWith(p)));
  const absent = order.filter((_, i) => first[i] < 0);
  assert.equal(absent, [], `the tour never links: ${absent.join(', ')}`);
  const outOfOrder = order.slice(1).flatMap((p, i) => (first[i + 1] < first[i] ? [`${p} first linked before ${order[i]}`] : []));
  assert.equal(outOfOrder, [], `out of reading order: ${outOfOrder.join('; ')}`);
});

test('the README links docs/tour.md', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.ok(/\]\((?:\.\/)?docs\/tour\.md(?:#[^)]*)?\)/.test(readme), 'README.md has no link to docs/tour.md');
});

test('the checker itself: finds symbols, refuses what is not defined', () => {
  const md = 'See [`a`](../src/plan.ts) `InferencePlan`, `capture` `h@3` and [b](../x.ts) `Y`.\n[`c`](x.md#two-words) `z`';
  const got = stops(md, join(ROOT, 'docs'));
  assert.equal(got.map((s) => [rel(s.file), s.anchor, s.symbols]), [['src/plan.ts', '', ['InferencePlan', 'capture']], ['x.ts', '', ['Y']], ['docs/x.md', 'two-words', ['z']]]);
  const src = 'export class Foo {\n  private bar(x: number): void {\n    baz(x);\n  }\n  readonly qux: number;\n}\nimport { type Gone } from "y";\nconst k = {\n  method(a) { return a; },\n};';
  for (const s of ['Foo', 'Foo.bar', 'Foo.qux', 'k', 'method']) assert.ok(defines(src, s), s);
  for (const s of ['baz', 'Gone', 'Foo.nope', 'Nope.bar']) assert.not.ok(defines(src, s), s);
  assert.ok(anchors('## Two words\n# A `code` stop: here').has('two-words'));
  assert.ok(anchors('# A `code` stop: here').has('a-code-stop-here'));
});

test.run();
