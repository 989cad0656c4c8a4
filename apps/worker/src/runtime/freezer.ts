import { readFile, readdir, access } from 'node:fs/promises';
import { join } from 'node:path';

export interface FreezerProbe {
  usable: boolean;
  /** 'v1' (freezer controller), 'v2' (cgroup.freeze), or none. */
  kind: 'v1' | 'v2' | 'none';
  mount?: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether this host can freeze a process tree through a cgroup freezer: a cgroup v1 hierarchy
 * with the `freezer` controller, or cgroup v2 (whose non-root cgroups have `cgroup.freeze`,
 * kernel >= 5.2). Hybrid layouts have both; v1 is reported first since LXC prefers it there.
 */
export async function probeFreezer(mountsFile = '/proc/self/mounts'): Promise<FreezerProbe> {
  let text: string;
  try {
    text = await readFile(mountsFile, 'utf8');
  } catch {
    return { usable: false, kind: 'none' };
  }
  const mounts = text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 4)
    .map((f) => ({ dir: f[1]!.replace(/\\040/g, ' '), type: f[2]!, opts: f[3]!.split(',') }));

  for (const m of mounts) {
    if (m.type === 'cgroup' && m.opts.includes('freezer') && (await exists(join(m.dir, 'tasks')))) {
      return { usable: true, kind: 'v1', mount: m.dir };
    }
  }
  for (const m of mounts) {
    if (m.type !== 'cgroup2') continue;
    try {
      const entries = await readdir(m.dir, { withFileTypes: true });
      for (const e of entries) {
        if (e.isDirectory() && (await exists(join(m.dir, e.name, 'cgroup.freeze')))) {
          return { usable: true, kind: 'v2', mount: m.dir };
        }
      }
    } catch {
      /* unreadable mount: try the next */
    }
  }
  return { usable: false, kind: 'none' };
}
