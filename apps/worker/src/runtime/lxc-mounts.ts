/**
 * Bind mounts in an LXC container's config: `lxc.mount.entry = <host dir> <path below the rootfs>
 * none bind,create=dir[,ro] 0 0`. LXC applies such lines at every start (and a migration carries
 * them along: they are in the config, with absolute host paths that the target's preflight checks).
 * Pure text functions here; I/O in LxcRuntime (lxc.ts).
 */
import { parseMountEntry, type MountEntry } from './lxc-config.js';
import { isUnder } from './paths.js';

/** fstab-style escaping for a field (LXC reads the entry with getmntent: `\040` space, `\011` tab, `\134` backslash). */
export function escapeField(s: string): string {
  return s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * The config line value for a bind mount of `source` at absolute container path `target`: always
 * nosuid,nodev (a set-uid file or a device node in a shared dir gives nothing in the container).
 */
export function bindEntryValue(source: string, target: string, readOnly: boolean): string {
  const rel = target.replace(/^\/+/, '');
  return `${escapeField(source)} ${escapeField(rel)} none bind,create=dir,nosuid,nodev${readOnly ? ',ro' : ''} 0 0`;
}

/**
 * Where an entry's target is in the container, as an absolute normalized path. LXC takes a relative
 * target as below the rootfs, and an absolute one as a host path that must lie in the rootfs.
 * undefined when an absolute target lies outside `rootfs`.
 */
export function containerTarget(target: string, rootfs: string): string | undefined {
  let t = target;
  if (t.startsWith('/')) {
    if (!isUnder(t, rootfs)) return undefined;
    t = t.slice(rootfs.replace(/\/+$/, '').length);
  }
  const parts = t.split('/').filter((c) => c !== '' && c !== '.');
  return `/${parts.join('/')}`;
}

export interface ConfigMount {
  /** Index of the config line. */
  line: number;
  entry: MountEntry;
  /** Absolute path in the container (undefined: an absolute target outside the rootfs). */
  target: string | undefined;
  bind: boolean;
}

/** Every `lxc.mount.entry` line of a config, with its line index. */
export function mountLines(text: string, rootfs: string): ConfigMount[] {
  const out: ConfigMount[] = [];
  text.split('\n').forEach((raw, line) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return;
    const eq = t.indexOf('=');
    if (eq < 0 || t.slice(0, eq).trim() !== 'lxc.mount.entry') return;
    const entry = parseMountEntry(t.slice(eq + 1).trim());
    if (!entry) return;
    out.push({
      line,
      entry,
      target: containerTarget(entry.target, rootfs),
      bind: entry.options.includes('bind') || entry.options.includes('rbind'),
    });
  });
  return out;
}

/** The config with a bind mount line appended (keeping a final newline). */
export function withBindEntry(text: string, source: string, target: string, readOnly: boolean): string {
  const line = `lxc.mount.entry = ${bindEntryValue(source, target, readOnly)}`;
  const body = text.endsWith('\n') || text === '' ? text : `${text}\n`;
  return `${body}${line}\n`;
}

/** The config without the given lines. */
export function withoutLines(text: string, lines: readonly number[]): string {
  const drop = new Set(lines);
  return text
    .split('\n')
    .filter((_, i) => !drop.has(i))
    .join('\n');
}
