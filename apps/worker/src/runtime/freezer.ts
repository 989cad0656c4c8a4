import { readFile, readdir, access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

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

/**
 * The freezer cgroup directory of `pid` under the probed mount, from `/proc/<pid>/cgroup`
 * (`6:freezer:/lxc.payload.c1` on v1, `0::/lxc.payload.c1` on v2); undefined when not found.
 */
export async function freezerDirOf(pid: number, probe: FreezerProbe, procRoot = '/proc'): Promise<string | undefined> {
  if (!probe.usable || !probe.mount) return undefined;
  const text = await readFile(join(procRoot, String(pid), 'cgroup'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(\/.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    const v1 = probe.kind === 'v1' && controllers!.split(',').includes('freezer');
    const v2 = probe.kind === 'v2' && controllers === '';
    if (!v1 && !v2) continue;
    const dir = join(probe.mount, path);
    // The path comes from the kernel, but a container cannot be allowed to point us at the root.
    if (path === '/' || !dir.startsWith(`${probe.mount}/`)) return undefined;
    return (await exists(join(dir, v1 ? 'freezer.state' : 'cgroup.freeze'))) ? dir : undefined;
  }
  return undefined;
}

/**
 * Freezes a cgroup and returns once every task in it is frozen, polling every few ms (liblxc's
 * lxc-freeze sleeps a whole second when its first look finds the cgroup still FREEZING, and the
 * container is down for all of it). v1: FROZEN into freezer.state, until it reads FROZEN; v2: 1
 * into cgroup.freeze, until cgroup.events says `frozen 1`.
 */
export async function freezeCgroup(dir: string, kind: 'v1' | 'v2', timeoutMs: number): Promise<void> {
  const [control, value, stateFile, done] =
    kind === 'v1' ? ['freezer.state', 'FROZEN', 'freezer.state', (s: string) => s.trim() === 'FROZEN'] : ['cgroup.freeze', '1', 'cgroup.events', (s: string) => /^frozen 1$/m.test(s)];
  const deadline = Date.now() + timeoutMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    // v1 may stay FREEZING when a task was busy at the write: writing again retries it.
    await writeFile(join(dir, control), value);
    if (done(await readFile(join(dir, stateFile), 'utf8'))) return;
    if (Date.now() > deadline) throw new Error(`${dir} did not freeze within ${timeoutMs} ms`);
    await sleep(wait);
  }
}

/** Every process in a cgroup and the cgroups below it. */
export async function cgroupPids(dir: string): Promise<number[]> {
  const out: number[] = [];
  const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const l of text.split('\n')) if (/^\d+$/.test(l)) out.push(Number(l));
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await cgroupPids(join(dir, e.name))));
  }
  return out;
}

/** Thaws a cgroup frozen by freezeCgroup (v1: THAWED into freezer.state; v2: 0 into cgroup.freeze). */
export async function thawCgroup(dir: string, kind: 'v1' | 'v2'): Promise<void> {
  await writeFile(join(dir, kind === 'v1' ? 'freezer.state' : 'cgroup.freeze'), kind === 'v1' ? 'THAWED' : '0');
}
