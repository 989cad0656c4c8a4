/**
 * Which host directories may be bind-mounted into a container on this host: the operator's
 * allowlist of mount roots (`--mount-root`, FERRY_MOUNT_ROOTS; none by default), never `/`, the
 * system's own trees, the LXC path (other containers' root filesystems) or the worker's state dir.
 * Sources are resolved (symbolic links followed) before they are checked, so a link inside a root
 * that points out of it does not pass.
 */
import { readFile, realpath } from 'node:fs/promises';
import { run } from '@ferry/infra';
import { basename, dirname, join, resolve } from 'node:path';
import { isUnder } from './paths.js';

/**
 * Trees a mount root may neither be, contain nor lie under: the kernel's (`/proc`, `/sys`, `/dev`),
 * the host's configuration, secrets and boot files, and runtime state.
 */
export const FORBIDDEN_TREES = ['/proc', '/sys', '/dev', '/run', '/boot', '/etc', '/root'] as const;

export interface BindPolicy {
  /** Allowed source roots (absolute, normalized). Empty: no host directory may be bind-mounted. */
  roots: readonly string[];
  /** This host's LXC path: nothing below it (other containers' root filesystems) is a source. */
  lxcPath: string;
  /** Further directories never to share (the worker's state dir). */
  protectedDirs: readonly string[];
}

const overlaps = (a: string, b: string) => isUnder(a, b) || isUnder(b, a);

/**
 * Problems with a list of mount roots (empty: fine). A root must be absolute and normalized, and
 * may not be `/`, nor be, contain or lie under a forbidden tree, the LXC path or a protected dir.
 */
export function mountRootProblems(roots: readonly string[], lxcPath: string, protectedDirs: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const r of roots) {
    if (!r.startsWith('/') || resolve(r) !== r) {
      out.push(`mount root ${r} is not a normalized absolute path`);
      continue;
    }
    if (r === '/') {
      out.push('mount root / would share the whole host');
      continue;
    }
    const bad = [...FORBIDDEN_TREES, lxcPath, ...protectedDirs].find((t) => overlaps(r, t));
    if (bad) out.push(`mount root ${r} overlaps ${bad}${bad === lxcPath ? ' (the LXC path: other containers)' : ''}`);
  }
  return out;
}

/** Mount roots from a colon- or comma-separated list (FERRY_MOUNT_ROOTS), blanks left out. */
export function splitMountRoots(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  const parts = typeof v === 'string' ? [v] : v;
  return parts.flatMap((p) => p.split(/[:,]/)).map((p) => p.trim()).filter(Boolean);
}

/**
 * The real path of `p`: symbolic links resolved in every component that exists; the missing rest
 * (a source that is not there yet) appended as it is, after `..` and `.` are normalized away.
 */
export async function realpathLoose(p: string): Promise<string> {
  const abs = resolve('/', p);
  try {
    return await realpath(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code !== 'ENOENT' && code !== 'ENOTDIR') || abs === '/') throw e;
    return join(await realpathLoose(dirname(abs)), basename(abs));
  }
}

/**
 * Why `source` may not be bind-mounted on this host (null: it may), checked on its real path:
 * it must lie under an allowed root (also resolved), and neither under the LXC path nor a
 * protected dir nor a forbidden tree. `real` is the resolved path to mount.
 */
export async function checkBindSource(source: string, policy: BindPolicy): Promise<{ real: string; refused: string | null }> {
  const real = await realpathLoose(source);
  const named = real !== resolve('/', source) ? `${source} (it resolves to ${real})` : source;
  const lxc = await realpathLoose(policy.lxcPath);
  if (real === '/') return { real, refused: `${named} is the host's root` };
  if (isUnder(real, lxc)) return { real, refused: `${named} lies in the LXC path ${policy.lxcPath} (containers' own files)` };
  for (const d of policy.protectedDirs) {
    if (isUnder(real, await realpathLoose(d))) return { real, refused: `${named} lies in ${d}, the worker's own state` };
  }
  const forbidden = FORBIDDEN_TREES.find((t) => isUnder(real, t));
  if (forbidden) return { real, refused: `${named} lies in ${forbidden}` };
  if (!policy.roots.length) {
    return { real, refused: `${named}: no mount roots are allowed on this host (ferry worker --mount-root DIR, or FERRY_MOUNT_ROOTS)` };
  }
  for (const r of policy.roots) {
    if (isUnder(real, await realpathLoose(r))) return { real, refused: null };
  }
  return { real, refused: `${named} is not under an allowed mount root (${policy.roots.join(', ')})` };
}

/** Per-mount options of the mount at exactly `path` in /proc/self/mountinfo (the top one), or undefined. */
export function mountOptionsAt(mountinfo: string, path: string): string[] | undefined {
  let found: string[] | undefined;
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const at = f[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (at === path) found = f[5]!.split(',');
  }
  return found;
}

/**
 * Makes every mount root a mount of its own with `nosuid,nodev` (a bind of itself onto itself,
 * then a remount), so that every bind mount of a directory below it inherits both: LXC 5.0 applies
 * `nosuid,nodev` from a config line only to read-only binds (it skips the remount of a read-write
 * one, measured with 5.0.2), the kernel copies a bind's flags from its source's mount. Idempotent;
 * roots that do not exist are returned, not created.
 */
export async function secureMountRoots(roots: readonly string[]): Promise<{ secured: string[]; missing: string[] }> {
  const secured: string[] = [];
  const missing: string[] = [];
  for (const root of roots) {
    let real: string;
    try {
      real = await realpath(root);
    } catch {
      missing.push(root);
      continue;
    }
    const opts = mountOptionsAt(await readFile('/proc/self/mountinfo', 'utf8'), real);
    if (opts?.includes('nosuid') && opts.includes('nodev')) continue;
    if (!opts) await run('mount', ['--bind', '--', real, real], { timeoutMs: 10_000 });
    await run('mount', ['-o', 'remount,bind,nosuid,nodev', '--', real], { timeoutMs: 10_000 });
    secured.push(real);
  }
  return { secured, missing };
}
