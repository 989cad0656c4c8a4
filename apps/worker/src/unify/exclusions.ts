/**
 * Exclusion lists in vunify's format: one fnmatch(3) pattern a line (flags 0, so `*` also matches
 * `/`), `#` starts a comment line. A `+` prefix includes, `-` or no prefix excludes, `~` skips.
 * Patterns match the path relative to the rootfs with a leading `/` (`/etc/hostname`).
 *
 * Semantics, decided per path in a depth-first walk:
 *  - the first rule that matches the path decides;
 *  - no rule matches: the path inherits its directory's decision (the rootfs is included), so
 *    `-/var/lib` excludes everything below it unless a `+` rule names a descendant first;
 *  - `~` (skip): the path is not even considered: not counted, and a skipped directory is not
 *    entered at all, so nothing below it can be included again.
 */
import { readFile } from 'node:fs/promises';
import { FerryError } from '@ferry/core';

export type RuleKind = 'include' | 'exclude' | 'skip';

export interface Rule {
  kind: RuleKind;
  pattern: string;
  /** Where the rule came from (`file:line`, `defaults:12`, `options:3`), for explanations. */
  source: string;
  regex: RegExp;
}

export type Decision = 'include' | 'exclude' | 'skip';

/**
 * Like vunify's list, for system containers: virtual and volatile trees are skipped; state that
 * programs rewrite in place, and the identity and secrets of each container, stay its own.
 */
export const DEFAULT_EXCLUDES = `# Virtual and volatile trees: never looked at.
~/proc
~/sys
~/dev
~/run
~/tmp
~/var/tmp
~/var/run
~/var/lock
~/var/log
~/var/cache
~/var/spool
~/var/mail
~/lost+found
# Users' data is not the system's.
~/home
~/root
~/srv
# State that programs rewrite in place.
-/var/lib
-/var/backups
# Identity, accounts and secrets of the container: its own even when equal to another's.
-/etc/ssh/*key*
-/etc/ssl/private
-/etc/passwd*
-/etc/shadow*
-/etc/group*
-/etc/gshadow*
-/etc/subuid*
-/etc/subgid*
-/etc/sudoers
-/etc/hostname
-/etc/hosts
-/etc/mailname
-/etc/machine-id
-/etc/resolv.conf
-/etc/fstab
-/etc/mtab
-/etc/adjtime
-/etc/network/interfaces
-/etc/crypttab
-*.pem
-*.key
`;

/** Translates an fnmatch(3) pattern (flags 0) to an anchored RegExp. */
export function fnmatchRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const cls = bracket(pattern, i);
      if (cls) {
        re += cls.re;
        i = cls.end;
      } else re += '\\[';
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

const CLASSES: Record<string, string> = {
  alnum: 'a-zA-Z0-9',
  alpha: 'a-zA-Z',
  blank: ' \\t',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '\\x21-\\x7e',
  lower: 'a-z',
  print: '\\x20-\\x7e',
  punct: '!-\\/:-@\\[-`{-~',
  space: ' \\t\\n\\r\\f\\v',
  upper: 'A-Z',
  xdigit: '0-9A-Fa-f',
};

/** A bracket expression starting at `start` (`[`), or undefined when it is not closed. */
function bracket(p: string, start: number): { re: string; end: number } | undefined {
  let i = start + 1;
  let negate = false;
  if (p[i] === '!' || p[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  let first = true;
  for (; i < p.length; i++) {
    const c = p[i]!;
    if (c === ']' && !first) return { re: `[${negate ? '^' : ''}${body}]`, end: i };
    first = false;
    if (c === '[' && p[i + 1] === ':') {
      const close = p.indexOf(':]', i + 2);
      const name = close > 0 ? p.slice(i + 2, close) : '';
      if (CLASSES[name] !== undefined) {
        body += CLASSES[name];
        i = close + 1;
        continue;
      }
    }
    if (c === '\\' && i + 1 < p.length) body += `\\${p[++i]}`;
    else if (c === '-' && body && p[i + 1] !== ']') body += '-';
    else body += /[\\\]^[-]/.test(c) ? `\\${c}` : c;
  }
  return undefined;
}

/** Parses a list; `source` names it in rule sources and error messages. */
export function parseRules(text: string, source: string): Rule[] {
  const rules: Rule[] = [];
  text.split('\n').forEach((raw, n) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const kind: RuleKind = line[0] === '+' ? 'include' : line[0] === '~' ? 'skip' : 'exclude';
    const pattern = line[0] === '+' || line[0] === '~' || line[0] === '-' ? line.slice(1) : line;
    if (!pattern) throw new FerryError('UNIFY_BAD_EXCLUDE', `${source}:${n + 1}: a rule needs a pattern after "${line[0]}"`);
    rules.push({ kind, pattern, source: `${source}:${n + 1}`, regex: fnmatchRegex(pattern) });
  });
  return rules;
}

export class Exclusions {
  constructor(readonly rules: readonly Rule[]) {}

  /** The first matching rule, if any (for explanations and tests). */
  match(path: string): Rule | undefined {
    return this.rules.find((r) => r.regex.test(path));
  }

  /** The decision for `path` (`/`-rooted) whose directory was decided `parent`. */
  decide(path: string, parent: Decision = 'include'): Decision {
    return this.match(path)?.kind ?? parent;
  }
}

export interface ExclusionSources {
  /** The container's directory: `<dir>/unify.exclude` is read when present. */
  containerDir?: string;
  /** Run-wide lines from the caller. */
  lines?: readonly string[];
  /** Leave out DEFAULT_EXCLUDES (default false). */
  noDefaults?: boolean;
}

/**
 * The rules for one container, most specific first (first match wins): the container's own
 * `unify.exclude`, then the caller's lines, then the defaults.
 */
export async function loadExclusions(src: ExclusionSources): Promise<Exclusions> {
  const rules: Rule[] = [];
  if (src.containerDir) {
    const file = `${src.containerDir}/unify.exclude`;
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) rules.push(...parseRules(text, file));
  }
  if (src.lines?.length) rules.push(...parseRules(src.lines.join('\n'), 'options'));
  if (!src.noDefaults) rules.push(...parseRules(DEFAULT_EXCLUDES, 'defaults'));
  return new Exclusions(rules);
}
