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
 *    entered at all, so nothing below it can be included again;
 *  - the default secret rules (SECRET_EXCLUDES) come before every other rule and also match every
 *    path below what they name, so no `+` rule can include a secret (see loadExclusions).
 * Patterns are matched by ./glob.ts, not by regular expressions: rules come from callers, and a
 * hostile pattern must not stall the worker; RULE_LIMITS bounds what one list may ask for.
 */
import { readFile } from 'node:fs/promises';
import { compileGlob, FerryError, GlobSyntaxError, type Matcher } from '@ferry/core';

export type RuleKind = 'include' | 'exclude' | 'skip';

export interface Rule {
  kind: RuleKind;
  pattern: string;
  /** Where the rule came from (`file:line`, `defaults:12`, `options:3`), for explanations. */
  source: string;
  /** Whether a path matches the pattern: at most (path length + 1) × (pattern length + 1) steps, whatever the pattern. */
  matcher: Matcher;
}

export type Decision = 'include' | 'exclude' | 'skip';

/**
 * Like vunify's list, for system containers: virtual and volatile trees are skipped; state that
 * programs rewrite in place, and the identity and secrets of each container, stay its own.
 */
export const GENERAL_EXCLUDES = `# Virtual and volatile trees: never looked at.
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
`;

/**
 * The identity, accounts and secrets of each container. These rules come before the container's
 * and the caller's own, so no `+` rule can include a secret; only leaving the defaults out
 * altogether (`noDefaults`, an explicit option) does.
 */
export const SECRET_EXCLUDES = `# Identity, accounts and secrets of the container: its own even when equal to another's.
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

/** Every default rule, as they apply: the secrets first, then (after the container's and the caller's rules) the rest. */
export const DEFAULT_EXCLUDES = `${SECRET_EXCLUDES}${GENERAL_EXCLUDES}`;

/**
 * Limits on one list (a container's file, the caller's lines; the defaults are well within them):
 * hostile lists must not stall a worker. A path is tested against each rule in at most
 * (path length + 1) × (pattern length + 1) steps, so these bound the work per path.
 */
export const RULE_LIMITS = { patternLength: 256, rulesPerSource: 1000 };

export interface ParseOptions {
  /** Each rule also matches every path below what its pattern matches (the secrets: see SECRET_EXCLUDES). */
  orBelow?: boolean;
  /** The number of the text's first line, in rule sources (default 1). */
  firstLine?: number;
}

/**
 * Parses a list; `source` names it in rule sources and error messages. Refuses (UNIFY_BAD_EXCLUDE,
 * naming the rule by `source:line`) a prefix without a pattern, a range out of order, and a list
 * over RULE_LIMITS.
 */
export function parseRules(text: string, source: string, opts: ParseOptions = {}): Rule[] {
  const rules: Rule[] = [];
  const lines = text.split('\n');
  for (const [n, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const where = `${source}:${n + (opts.firstLine ?? 1)}`;
    const bad = (why: string, details: Record<string, unknown> = {}) =>
      new FerryError('UNIFY_BAD_EXCLUDE', `${where}: ${why}`, { details: { rule: where, ...details } });
    const kind: RuleKind = line[0] === '+' ? 'include' : line[0] === '~' ? 'skip' : 'exclude';
    const pattern = line[0] === '+' || line[0] === '~' || line[0] === '-' ? line.slice(1) : line;
    if (!pattern) throw bad(`a rule needs a pattern after "${line[0]}"`);
    if (rules.length >= RULE_LIMITS.rulesPerSource) throw bad(`more than ${RULE_LIMITS.rulesPerSource} rules in one list`, { limit: RULE_LIMITS.rulesPerSource });
    if (pattern.length > RULE_LIMITS.patternLength) {
      throw bad(`the pattern "${pattern.slice(0, 40)}…" is ${pattern.length} characters long, more than ${RULE_LIMITS.patternLength}`, {
        limit: RULE_LIMITS.patternLength,
        length: pattern.length,
      });
    }
    let matcher: Matcher;
    try {
      matcher = compileGlob(pattern, opts.orBelow ? { orBelow: true } : {});
    } catch (e) {
      if (e instanceof GlobSyntaxError) throw bad(e.message);
      throw e;
    }
    rules.push({ kind, pattern, source: where, matcher });
  }
  return rules;
}

export class Exclusions {
  constructor(readonly rules: readonly Rule[]) {}

  /** The first matching rule, if any (for explanations and tests). */
  match(path: string): Rule | undefined {
    return this.rules.find((r) => r.matcher.test(path));
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
 * The rules for one container (first match wins): the secrets of SECRET_EXCLUDES, then the
 * container's own `unify.exclude`, then the caller's lines, then GENERAL_EXCLUDES. The secrets come
 * first and also match every path below them, so that no `+` rule of a container or a caller
 * includes a secret or anything in a secret directory; `noDefaults` leaves out both default lists.
 * Sources are `defaults:<line of DEFAULT_EXCLUDES>`, `<file>:<line>` and `options:<line>`.
 */
export async function loadExclusions(src: ExclusionSources): Promise<Exclusions> {
  const rules: Rule[] = [];
  if (!src.noDefaults) rules.push(...parseRules(SECRET_EXCLUDES, 'defaults', { orBelow: true }));
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
  if (!src.noDefaults) rules.push(...parseRules(GENERAL_EXCLUDES, 'defaults', { firstLine: SECRET_EXCLUDES.split('\n').length }));
  return new Exclusions(rules);
}
