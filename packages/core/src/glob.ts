/**
 * fnmatch(3) patterns (flags 0: `*` and `?` match `/` too, a leading `.` is not special), compiled
 * to tokens and matched by the classic two-pointer algorithm, with no regular expression.
 *
 * Used by unify's exclude rules and by API tokens' container scopes (api/scope.ts).
 *
 * Why no RegExp: exclude rules come from callers. A glob translated to a backtracking regex
 * (`*a*a*a*a*b` → `^.*a.*a.*a.*a.*b$`) takes exponential time on a path that almost matches, and
 * a match that stalls stalls the worker's event loop (heartbeats, lock renewals). Here a mismatch
 * retries from the last `*` only, so a match takes at most (path length + 1) × (token count) steps.
 *
 * Supported: literal characters, `?`, `*`, bracket expressions with ranges, negation (`[!...]` or
 * `[^...]`), the POSIX classes (`[:alpha:]` ...; ASCII), and backslash escapes. An unclosed `[`
 * is a literal `[`; a trailing `\` a literal `\`. Characters are UTF-16 code units, as before.
 */

export interface Matcher {
  /** Whether the whole of `s` matches. */
  test(s: string): boolean;
}

/** A pattern that cannot be compiled (a range whose ends are out of order). */
export class GlobSyntaxError extends Error {
  override name = 'GlobSyntaxError';
}

type Token =
  | { t: 'char'; c: number }
  | { t: 'any' }
  | { t: 'star' }
  /** `ranges` holds [lo, hi] code-unit pairs, inclusive. */
  | { t: 'class'; negate: boolean; ranges: number[] };

/** The POSIX classes as [lo, hi] pairs of characters. */
const CLASSES = new Map(
  Object.entries({
    alnum: 'azAZ09',
    alpha: 'azAZ',
    blank: '  \t\t',
    cntrl: '\x00\x1f\x7f\x7f',
    digit: '09',
    graph: '\x21\x7e',
    lower: 'az',
    print: '\x20\x7e',
    punct: '!/:@[`{~',
    space: '  \t\r',
    upper: 'AZ',
    xdigit: '09AFaf',
  }),
);

/** Compiles `pattern`; `orBelow` also matches every path below a match (`pattern` then `/*`). */
export function compileGlob(pattern: string, opts: { orBelow?: boolean } = {}): Matcher {
  const tokens = tokenize(pattern);
  const below = opts.orBelow ? [...tokens, { t: 'char', c: 0x2f } as const, { t: 'star' } as const] : undefined;
  // Every match holds the pattern's longest run of literal characters: most paths fail that test fast.
  let needle = '';
  let run = '';
  for (const t of tokens) {
    run = t.t === 'char' ? run + String.fromCharCode(t.c) : '';
    if (run.length > needle.length) needle = run;
  }
  return { test: (s) => s.includes(needle) && (matchTokens(tokens, s) || (below !== undefined && matchTokens(below, s))) };
}

function tokenize(p: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (out.at(-1)?.t !== 'star') out.push({ t: 'star' });
    } else if (c === '?') out.push({ t: 'any' });
    else if (c === '\\' && i + 1 < p.length) out.push({ t: 'char', c: p.charCodeAt(++i) });
    else {
      const b = c === '[' ? bracket(p, i) : undefined;
      if (b) {
        out.push(b.token);
        i = b.end;
      } else out.push({ t: 'char', c: p.charCodeAt(i) });
    }
  }
  return out;
}

/** The bracket expression at `start` (`[`) and the index of its `]`, or undefined when it is not closed. */
function bracket(p: string, start: number): { token: Token; end: number } | undefined {
  let i = start + 1;
  const negate = p[i] === '!' || p[i] === '^';
  if (negate) i++;
  const ranges: number[] = [];
  /** The character at `i`, or the one after a `\` there; leaves `i` on the last one read. */
  const single = (): number => (p[i] === '\\' && i + 1 < p.length ? p.charCodeAt(++i) : p.charCodeAt(i));
  for (let first = true; i < p.length; i++, first = false) {
    if (p[i] === ']' && !first) return { token: { t: 'class', negate, ranges }, end: i };
    if (p[i] === '[' && p[i + 1] === ':') {
      const close = p.indexOf(':]', i + 2);
      const cls = close > 0 ? CLASSES.get(p.slice(i + 2, close)) : undefined;
      if (cls !== undefined) {
        for (let k = 0; k < cls.length; k++) ranges.push(cls.charCodeAt(k));
        i = close + 1;
        continue;
      }
    }
    const lo = single();
    if (p[i + 1] === '-' && i + 2 < p.length && p[i + 2] !== ']') {
      i += 2;
      const hi = single();
      if (hi < lo) throw new GlobSyntaxError(`range out of order in "${p}": ${String.fromCharCode(lo)}-${String.fromCharCode(hi)}`);
      ranges.push(lo, hi);
    } else ranges.push(lo, lo);
  }
  return undefined;
}

function matchOne(t: Token, c: number): boolean {
  if (t.t === 'char') return t.c === c;
  if (t.t === 'any') return true;
  if (t.t === 'star') return false;
  let hit = false;
  for (let k = 0; k < t.ranges.length && !hit; k += 2) hit = c >= t.ranges[k]! && c <= t.ranges[k + 1]!;
  return hit !== t.negate;
}

/** Two pointers; on a mismatch, the last `*` takes one more character and the rest is tried again. */
function matchTokens(tokens: readonly Token[], s: string): boolean {
  let ti = 0;
  let si = 0;
  let starTi = -1;
  let starSi = 0;
  while (si < s.length) {
    const t = tokens[ti];
    if (t?.t === 'star') {
      starTi = ti++;
      starSi = si;
    } else if (t !== undefined && matchOne(t, s.charCodeAt(si))) {
      ti++;
      si++;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else return false;
  }
  while (tokens[ti]?.t === 'star') ti++;
  return ti === tokens.length;
}
