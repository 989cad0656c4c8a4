/**
 * Reading and rewriting LXC container config files (`<lxcPath>/<name>/config`).
 * Pure text functions: no I/O here, so they are easy to test.
 */

export interface ConfigLine {
  key: string;
  value: string;
}

/** `key = value` lines, in order; comments and blank lines are skipped. */
export function parseConfig(text: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

/** Last value of a key (LXC lets later lines override earlier ones for single-valued keys). */
export function configValue(lines: readonly ConfigLine[], key: string): string | undefined {
  let v: string | undefined;
  for (const l of lines) if (l.key === key) v = l.value;
  return v;
}

export function configValues(lines: readonly ConfigLine[], key: string): string[] {
  return lines.filter((l) => l.key === key).map((l) => l.value);
}

/** The path part of `lxc.rootfs.path` (`dir:/x/rootfs` or `/x/rootfs`); undefined for other backends. */
export function rootfsPathOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.startsWith('/')) return value;
  const m = /^dir:(\/.*)$/.exec(value);
  return m?.[1];
}

/** fstab-style field unescaping (`\040` = space, `\011` = tab, ...). */
function unescapeFstab(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string[];
}

/** Parses an `lxc.mount.entry` value: `source target fstype options [dump [pass]]`. */
export function parseMountEntry(value: string): MountEntry | undefined {
  const f = value.split(/[ \t]+/).filter(Boolean);
  if (f.length < 3) return undefined;
  return {
    source: unescapeFstab(f[0]!),
    target: unescapeFstab(f[1]!),
    fstype: f[2]!,
    options: (f[3] ?? 'defaults').split(','),
  };
}

/** Whether `p` is `dir` itself or lies below it. */
export function isUnder(p: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return p === d || p.startsWith(`${d}/`);
}

/**
 * Host directories a container bind-mounts: sources of `lxc.mount.entry` lines that are absolute
 * paths outside the container's own directory. Entries marked `optional` are left out: LXC
 * starts the container without them.
 */
export function bindMountSources(lines: readonly ConfigLine[], containerDir: string): string[] {
  const out = new Set<string>();
  for (const v of configValues(lines, 'lxc.mount.entry')) {
    const e = parseMountEntry(v);
    if (!e || !e.source.startsWith('/')) continue;
    if (!e.options.includes('bind') && !e.options.includes('rbind')) continue;
    if (e.options.includes('optional')) continue;
    if (isUnder(e.source, containerDir)) continue;
    out.add(e.source.replace(/\/+$/, '') || '/');
  }
  return [...out].sort();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replaces every occurrence of the path `from` (as a whole path component sequence: preceded by
 * start, whitespace, `=` or `:`, followed by `/`, whitespace, `:` or end) with `to`, on
 * non-comment lines. Idempotent when `to` does not contain `from` as such a prefix.
 */
export function rewritePaths(text: string, from: string, to: string): string {
  const f = from.replace(/\/+$/, '');
  const t = to.replace(/\/+$/, '');
  if (!f || f === t) return text;
  const re = new RegExp(`(^|[\\s=:])${escapeRegExp(f)}(?=$|[/\\s:])`, 'g');
  return text
    .split('\n')
    .map((line) => (line.trimStart().startsWith('#') ? line : line.replace(re, (_m, pre: string) => `${pre}${t}`)))
    .join('\n');
}
