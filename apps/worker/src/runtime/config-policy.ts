/**
 * What a target accepts of an LXC config that came from a peer (a migrated or cloned copy), before
 * it is ever started here. The peer is not trusted: a config can run programs on the host (hooks,
 * network scripts), read or write any host file (bind mounts, includes, log and console files, a
 * rootfs elsewhere), take host resources (a physical NIC, devices, host namespaces, host-wide
 * sysctls) or switch off confinement. So every line is checked against an allowlist of keys:
 *
 * - **refused** (CONFIG_NOT_ALLOWED, naming the line and key; nothing is started, the migration
 *   rolls back): anything not on the list, and on it, values that reach outside the container;
 * - **dropped** (the line is commented out with a `# ferry:` note and logged): settings that only
 *   loosen confinement, where the target's own defaults take over (an `unconfined` AppArmor
 *   profile, raw AppArmor rules, a seccomp policy from outside the system's LXC config dir).
 *
 * The check runs on the config after the source's paths were rewritten to this host's.
 */
import { lstat } from 'node:fs/promises';
import { PreconditionError } from '@ferry/core';
import { containerTarget } from './lxc-mounts.js';
import { parseMountEntry, rootfsPathOf } from './lxc-config.js';
import { checkBindSource, realpathLoose, type BindPolicy } from './mount-roots.js';
import { isUnder } from './paths.js';

/** The system's LXC config snippets: the only files a peer's config may include. */
export const SYSTEM_CONFIG_DIR = '/usr/share/lxc/config';

/** Read-only bind mounts of host system dirs that LXC's own busybox template writes. */
export const SYSTEM_RO_BINDS = ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/sys/kernel/security'] as const;

/** File systems a mount entry other than a bind may mount (none takes a host path). */
const VIRTUAL_FS = new Set(['tmpfs', 'mqueue', 'devpts', 'proc', 'sysfs', 'cgroup', 'cgroup2']);

/** Network types that create an interface of the container's own (`phys` would take a host NIC). */
const NET_TYPES = new Set(['veth', 'macvlan', 'ipvlan', 'vlan', 'empty', 'none']);

/**
 * Char devices a peer's config may allow in the devices cgroup: null, zero, full, random, urandom,
 * tty, console, ptmx, pts, tun, fuse. Anything else (block devices, /dev/mem, `a`, wildcards)
 * would hand the container the host's hardware.
 */
const DEVICES = new Set(['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:1', '5:2', '136:*', '10:200', '10:229']);

/** Keys accepted as they are (exact names, or prefixes ending in `.`). */
const PLAIN_KEYS = [
  'lxc.uts.name',
  'lxc.arch',
  'lxc.autodev',
  'lxc.autodev.tmpfs.size',
  'lxc.mount.auto',
  'lxc.tty.max',
  'lxc.tty.dir',
  'lxc.pty.max',
  'lxc.console.size',
  'lxc.console.buffer.size',
  'lxc.console.rotate',
  'lxc.signal.',
  'lxc.cap.drop',
  'lxc.cap.keep',
  'lxc.sysctl.net.',
  'lxc.start.',
  'lxc.group',
  'lxc.log.level',
  'lxc.log.syslog',
  'lxc.init.cmd',
  'lxc.init.cwd',
  'lxc.init.uid',
  'lxc.init.gid',
  'lxc.execute.cmd',
  'lxc.environment',
  'lxc.ephemeral',
  'lxc.no_new_privs',
  'lxc.idmap',
  'lxc.rootfs.options',
  'lxc.rootfs.managed',
  'lxc.prlimit.',
  'lxc.seccomp.allow_nesting',
  'lxc.apparmor.allow_nesting',
  'lxc.selinux.context',
  'lxc.monitor.unshare',
  'lxc.monitor.signal.pdeath',
  'lxc.keyring.session',
];

const plain = (key: string) => PLAIN_KEYS.some((k) => (k.endsWith('.') ? key.startsWith(k) : key === k));

export interface ScreenContext {
  /** This container's dir and rootfs on this host (after the rewrite). */
  containerDir: string;
  rootfs: string;
  /** Where bind-mount sources may come from on this host. */
  policy: BindPolicy;
}

export interface ScreenResult {
  text: string;
  /** One line per dropped setting, for the log. */
  dropped: string[];
}

type Verdict = { ok: true } | { drop: string } | { refuse: string };
const OK: Verdict = { ok: true };

function notAllowed(line: number, raw: string, why: string): PreconditionError {
  const key = raw.slice(0, raw.indexOf('=')).trim();
  return new PreconditionError('CONFIG_NOT_ALLOWED', `config line ${line} (${key}) is not accepted from a peer: ${why}: ${raw.trim()}`, { line, key });
}

/** A file LXC writes as root: inside the container's dir, and not a link (a link could lead anywhere). */
async function ownFile(path: string, c: ScreenContext): Promise<Verdict> {
  if (!path.startsWith('/')) return { refuse: 'a relative path' };
  if (!isUnder(await realpathLoose(path), await realpathLoose(c.containerDir))) return { refuse: `${path} is outside the container's dir ${c.containerDir}` };
  const st = await lstat(path).catch(() => null);
  if (st && !st.isFile()) return { refuse: `${path} exists and is not a regular file` };
  return OK;
}

async function mountEntry(value: string, c: ScreenContext): Promise<Verdict> {
  const e = parseMountEntry(value);
  if (!e) return { refuse: 'not a mount entry (source target fstype options)' };
  if (e.target.split('/').includes('..')) return { refuse: `target ${e.target} holds '..'` };
  if (containerTarget(e.target, c.rootfs) === undefined) return { refuse: `target ${e.target} is outside the container's rootfs` };
  const bind = e.options.includes('bind') || e.options.includes('rbind');
  if (!bind) {
    if (!VIRTUAL_FS.has(e.fstype)) return { refuse: `file system ${e.fstype} (only ${[...VIRTUAL_FS].join(', ')} and bind mounts)` };
    return OK;
  }
  if (!e.source.startsWith('/')) return { refuse: `bind source ${e.source} is not an absolute path` };
  if ((SYSTEM_RO_BINDS as readonly string[]).includes(e.source)) {
    return e.options.includes('ro') ? OK : { refuse: `${e.source} may only be bound read-only` };
  }
  // The container's own files (e.g. <dir>/data), resolved: a link in the copy cannot lead out.
  const real = await realpathLoose(e.source);
  if (isUnder(real, await realpathLoose(c.containerDir))) return OK;
  const { refused } = await checkBindSource(e.source, c.policy);
  return refused ? { refuse: `bind source ${refused}` } : OK;
}

function devicesAllow(value: string): Verdict {
  const m = /^c\s+(\S+)\s+([rwm]+)$/.exec(value.trim());
  if (m && (DEVICES.has(m[1]!) || m[2] === 'm')) return OK;
  return { refuse: `device access ${value.trim()} (only the basic char devices: ${[...DEVICES].join(' ')}; or mknod alone)` };
}

async function include(value: string): Promise<Verdict> {
  if (!value.startsWith('/') || value.split('/').includes('..')) return { refuse: `${value} is not a plain absolute path` };
  const real = await realpathLoose(value);
  return isUnder(real, SYSTEM_CONFIG_DIR) && real !== SYSTEM_CONFIG_DIR ? OK : { refuse: `${value} is outside ${SYSTEM_CONFIG_DIR}` };
}

async function verdict(key: string, value: string, c: ScreenContext): Promise<Verdict> {
  if (plain(key)) return OK;
  if (key.startsWith('lxc.hook.') || key === 'lxc.hook') return { refuse: 'hooks run programs on the host' };
  const net = /^lxc\.net\.\d+\.(.+)$/.exec(key);
  if (net) {
    const sub = net[1]!;
    if (sub.startsWith('script.')) return { refuse: 'network scripts run programs on the host' };
    if (sub === 'type' && !NET_TYPES.has(value)) return { refuse: `network type ${value} (only ${[...NET_TYPES].join(', ')}: phys would take a host NIC)` };
    return OK;
  }
  if (key === 'lxc.rootfs.path') {
    const p = rootfsPathOf(value);
    if (p === undefined) return { refuse: `${value} is not a directory rootfs` };
    return (await realpathLoose(p)) === (await realpathLoose(c.rootfs)) ? OK : { refuse: `the rootfs must be the container's own ${c.rootfs}, not ${p}` };
  }
  if (key === 'lxc.mount.entry') return mountEntry(value, c);
  if (key === 'lxc.include') return include(value);
  if (key === 'lxc.log.file' || key === 'lxc.console.logfile') return ownFile(value, c);
  if (key === 'lxc.console.path') return value === 'none' || value === 'auto' ? OK : { refuse: `console ${value} (only none or auto)` };
  const cg = /^lxc\.cgroup2?\.([a-z_]+)\.([a-z_.]+)$/.exec(key);
  if (cg) {
    if (cg[1] === 'dir' || cg[1] === 'relative') return { refuse: 'the cgroup is placed by the host' };
    if (cg[1] === 'devices' && cg[2] === 'allow') return devicesAllow(value);
    return OK;
  }
  if (key === 'lxc.apparmor.profile') {
    return value === 'unconfined' ? { drop: 'an unconfined AppArmor profile (the host default applies)' } : OK;
  }
  if (key === 'lxc.apparmor.raw' || key === 'lxc.apparmor.allow_incomplete') return { drop: `${key} loosens AppArmor (the host default applies)` };
  if (key === 'lxc.seccomp.profile') {
    return 'ok' in (await include(value)) ? OK : { drop: `a seccomp policy from outside ${SYSTEM_CONFIG_DIR} (the host default applies)` };
  }
  return { refuse: 'not a key ferry accepts from a peer' };
}

/**
 * The config as this host will start it: every non-comment line checked (see above); throws
 * CONFIG_NOT_ALLOWED on the first refused line. Idempotent: dropped lines become comments.
 */
export async function screenConfig(text: string, c: ScreenContext): Promise<ScreenResult> {
  const lines = text.split('\n');
  const dropped: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const t = raw.trim();
    if (!t || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq < 0) throw notAllowed(i + 1, `${t} =`, 'not a key = value line');
    const key = t.slice(0, eq).trim();
    const value = t.slice(eq + 1).trim();
    const v = await verdict(key, value, c);
    if ('refuse' in v) throw notAllowed(i + 1, t, v.refuse);
    if ('drop' in v) {
      lines[i] = `# ferry: dropped, not accepted from a peer (${v.drop}): ${t}`;
      dropped.push(`config line ${i + 1} dropped: ${t} (${v.drop})`);
    }
  }
  return { text: lines.join('\n'), dropped };
}
