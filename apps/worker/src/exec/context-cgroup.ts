import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, parseCgroupMounts, type CgroupDir } from '@ferry/core';
import { cgroupPids } from '../runtime/freezer.js';

/** Where `ferry run` contexts' cgroups go, below each hierarchy used: `<mount>/ferry-run/<host>/<exec id>`. */
export const CONTEXT_CGROUP_DIR = 'ferry-run';

/** v2 controllers enabled for the contexts (where the hierarchy offers them): accounting and limits later. */
const V2_CONTROLLERS = ['cpu', 'memory', 'pids'];

/**
 * The hierarchies a context's cgroup is made in, from /proc/self/mounts (the probing of
 * load/cgroup-reader.ts): the v1 `memory` and `cpuacct` hierarchies where mounted (v1 and hybrid
 * hosts, where LXC keeps its limits too), else the unified (v2) one. Any one of them holds every
 * process of the context; they are the ones ferry already reads use from.
 */
export function contextCgroupRoots(mountsText: string, host: string): CgroupDir[] {
  const m = parseCgroupMounts(mountsText);
  const v1 = [...new Set([m.memory, m.cpuacct].filter((d): d is string => d !== undefined))];
  const dirs: CgroupDir[] = v1.length ? v1.map((d) => ({ kind: 'v1', dir: d })) : m.unified ? [{ kind: 'v2', dir: m.unified }] : [];
  return dirs.map((d) => ({ kind: d.kind, dir: join(d.dir, CONTEXT_CGROUP_DIR, host) }));
}

/**
 * The cgroups of one host's `ferry run` contexts: one per context (its processes join it before
 * anything of theirs runs: fresh-context.ts), emptied with SIGKILL and removed when the context ends,
 * and at the worker's start for contexts a worker that died left behind.
 */
export class ContextCgroups {
  private roots?: Promise<CgroupDir[]>;

  constructor(
    private readonly host: string,
    private readonly mountsFile = '/proc/self/mounts',
  ) {}

  private async probe(): Promise<CgroupDir[]> {
    this.roots ??= readFile(this.mountsFile, 'utf8')
      .catch(() => '')
      .then((t) => contextCgroupRoots(t, this.host));
    return this.roots;
  }

  /** Makes the context's cgroup in every hierarchy used; returns its directories. */
  async create(id: string): Promise<string[]> {
    const roots = await this.probe();
    if (!roots.length) throw new FerryError('CGROUP_UNAVAILABLE', `no cgroup hierarchy is mounted on ${this.host} (cgroup v1 memory/cpuacct or cgroup2): a context cannot be contained`);
    const made: string[] = [];
    try {
      for (const r of roots) {
        await mkdir(r.dir, { recursive: true });
        if (r.kind === 'v2') await this.delegate(r.dir);
        const dir = join(r.dir, id);
        await mkdir(dir);
        made.push(dir);
      }
    } catch (e) {
      await this.destroy(made).catch(() => undefined);
      throw new FerryError('CGROUP_UNAVAILABLE', `cannot make the context's cgroup on ${this.host}: ${(e as Error).message}`, { cause: e });
    }
    return made;
  }

  /**
   * v2: controllers reach a cgroup only when every parent enables them for its children
   * (`cgroup.subtree_control`); best effort, since the cgroup contains its processes without them.
   */
  private async delegate(hostDir: string): Promise<void> {
    for (const dir of [join(hostDir, '..', '..'), join(hostDir, '..')]) {
      const offered = (await readFile(join(dir, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
      const wanted = V2_CONTROLLERS.filter((c) => offered.includes(c));
      if (wanted.length) await writeFile(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' ')).catch(() => undefined);
    }
  }

  /**
   * Kills every process left in the cgroups (SIGKILL; PIDs as this worker sees them) until they are
   * empty, then removes them. Throws CGROUP_NOT_REMOVED when one is still busy after `timeoutMs`.
   */
  async destroy(dirs: readonly string[], timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const dir of dirs) {
      for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
        // v2 (kernel >= 5.14) kills the whole cgroup in one write; elsewhere, one process at a time.
        await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => undefined);
        for (const pid of await cgroupPids(dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone meanwhile */
          }
        }
        try {
          await rmdir(dir);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          // EBUSY: processes still exiting (a dying task stays in its cgroup until it is reaped).
          if (Date.now() > deadline) throw new FerryError('CGROUP_NOT_REMOVED', `cgroup ${dir} could not be removed: ${(e as Error).message}`, { cause: e });
          await sleep(wait);
        }
      }
    }
  }

  /** Destroys every context cgroup of this host (a worker that died left them); returns them. */
  async sweep(): Promise<string[]> {
    const found: string[] = [];
    for (const r of await this.probe()) {
      const entries = await readdir(r.dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory()) found.push(join(r.dir, e.name));
    }
    await this.destroy(found);
    return found;
  }
}
