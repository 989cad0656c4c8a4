/**
 * Reading and rewriting LXC container config files (`<lxcPath>/<name>/config`).
 * Pure text functions: no I/O here, so they are easy to test.
 */
import { PreconditionError } from '@ferry/core';
import { isUnder } from './paths.js';

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

/** Whether a non-comment line sets `key` (`key = value`, spaces around `=` optional). */
function setsKey(line: string, key: string): boolean {
  const t = line.trim();
  if (!t || t.startsWith('#')) return false;
  const eq = t.indexOf('=');
  return eq >= 0 && t.slice(0, eq).trim() === key;
}

/**
 * Sets a key to the given values: every line setting it is removed and `key = value` lines for
 * the values are put where the first one was (appended at the end when the key was absent).
 * An empty `values` just removes the key. Comments are left alone; idempotent.
 */
export function setConfigValues(text: string, key: string, values: readonly string[]): string {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => setsKey(l, key));
  const fresh = values.map((v) => `${key} = ${v}`);
  if (first < 0) {
    if (!fresh.length) return text;
    // Keep a trailing newline at the very end.
    const endsWithNewline = lines.length > 0 && lines[lines.length - 1] === '';
    const body = endsWithNewline ? lines.slice(0, -1) : lines;
    return [...body, ...fresh, ...(endsWithNewline ? [''] : [])].join('\n');
  }
  const out: string[] = [];
  lines.forEach((l, i) => {
    if (i === first) out.push(...fresh);
    else if (!setsKey(l, key)) out.push(l);
  });
  return out.join('\n');
}

/** The template LXC recorded when it created the container (`# Template used to create this container: PATH`). */
export function templateOf(text: string): string | undefined {
  const m = /^#\s*Template used to create this container:\s*(\S+)\s*$/m.exec(text);
  return m?.[1];
}

export interface CloneIdentity {
  /** `lxc.uts.name`. */
  hostname: string;
  /** `lxc.net.0.hwaddr`. */
  mac: string;
  /** `lxc.net.0.ipv4.address` (the source's prefix length is kept); absent → static addresses removed. */
  ip?: string;
}

export interface IdentityEdit {
  text: string;
  /** The address line written (`ip/prefix` or `ip`), when one was. */
  ipv4?: string;
  /** What else was changed, for the log (other interfaces' MACs, IPv6 addresses removed). */
  notes: string[];
}

/** Network types whose interface has an address and a MAC of its own. */
const ADDRESSED = new Set(['veth', 'macvlan', 'ipvlan', 'vlan', 'phys']);

/**
 * The config of a copy with its own identity: `lxc.uts.name`, `lxc.net.0.hwaddr` and
 * `lxc.net.0.ipv4.address` (every static address of the interface is replaced by one, keeping the
 * first one's prefix length; none given → all removed so the copy does not collide), static IPv6
 * addresses of `lxc.net.0` removed, and other interfaces that pinned a MAC get `otherMac()`.
 * Throws CLONE_NO_NETWORK when an IP is asked for but `lxc.net.0` is not an interface with an address.
 */
export function withIdentity(text: string, id: CloneIdentity, otherMac: () => string): IdentityEdit {
  const lines = parseConfig(text);
  const notes: string[] = [];
  let out = setConfigValues(text, 'lxc.uts.name', [id.hostname]);
  const type = configValue(lines, 'lxc.net.0.type');
  const addressed = type !== undefined && ADDRESSED.has(type);
  if (id.ip && !addressed) {
    throw new PreconditionError(
      'CLONE_NO_NETWORK',
      `cannot give the copy ${id.ip}: its lxc.net.0 is ${type ?? 'not configured'}, not an interface with an address`,
    );
  }
  let ipv4: string | undefined;
  if (addressed) {
    out = setConfigValues(out, 'lxc.net.0.hwaddr', [id.mac]);
    const old = configValues(lines, 'lxc.net.0.ipv4.address');
    if (id.ip) {
      const prefix = old.map((v) => /\/(\d{1,2})$/.exec(v)?.[1]).find((p) => p !== undefined);
      ipv4 = prefix !== undefined ? `${id.ip}/${prefix}` : id.ip;
      out = setConfigValues(out, 'lxc.net.0.ipv4.address', [ipv4]);
    } else {
      out = setConfigValues(out, 'lxc.net.0.ipv4.address', []);
    }
    if (old.length > 1) notes.push(`lxc.net.0 had ${old.length} IPv4 addresses; the copy has ${ipv4 ? 'one' : 'none'}`);
    if (configValues(lines, 'lxc.net.0.ipv6.address').length) {
      out = setConfigValues(out, 'lxc.net.0.ipv6.address', []);
      notes.push('static IPv6 addresses of lxc.net.0 removed (they would collide with the source)');
    }
  }
  const others = [...new Set(lines.map((l) => /^lxc\.net\.(\d+)\.hwaddr$/.exec(l.key)?.[1]).filter((x): x is string => !!x && x !== '0'))];
  for (const n of others) {
    const mac = otherMac();
    out = setConfigValues(out, `lxc.net.${n}.hwaddr`, [mac]);
    notes.push(`lxc.net.${n}.hwaddr set to ${mac}`);
  }
  return { text: out, ...(ipv4 ? { ipv4 } : {}), notes };
}
