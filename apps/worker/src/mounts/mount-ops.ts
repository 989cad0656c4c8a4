import { lstat, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  FerryError,
  PreconditionError,
  type BindMountInfo,
  type ContainerDetails,
  type MountChange,
  type MountJob,
  type UmountJob,
} from '@ferry/core';
import type { LxcRuntime } from '../runtime/lxc.js';
import { mountLines, mountPoints, withBindEntry, withoutLines } from './bind-mounts.js';
import { liveBindMount, liveMountUnsupported, liveUnmount } from './live-mount.js';

export interface BindMountOpsOptions {
  runtime: LxcRuntime;
  host: string;
  log: Logger;
  /** Migration holding the container, if any (`MigrationStore.lockHolder`). */
  lockHolder?: (container: string) => Promise<string | null>;
  /** Perl for the live mount helper (tests). */
  perl?: string;
}

/** A precondition failure: bad input, nothing changed (the CLI exits 2). */
function bad(code: string, message: string): PreconditionError {
  return new PreconditionError(code, message);
}

/**
 * `ferry mount` / `ferry umount` / `ferry show` on the host that has the container. Every check is
 * made before anything changes; a change to a running container is made live first and written to
 * the config only once it worked (and undone if the config cannot be written), so a failure leaves
 * both as they were. One operation per container at a time.
 */
export class BindMountOps {
  private readonly queue = new Map<string, Promise<unknown>>();

  constructor(private readonly o: BindMountOpsOptions) {}

  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queue.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.queue.set(name, settled);
    void settled.then(() => {
      if (this.queue.get(name) === settled) this.queue.delete(name);
    });
    return next;
  }

  private configFile(name: string): string {
    return join(this.o.runtime.containerDir(name), 'config');
  }

  private async writeConfig(name: string, text: string): Promise<void> {
    const file = this.configFile(name);
    const st = await stat(file);
    const tmp = `${file}.ferry-tmp`;
    await writeFile(tmp, text, { mode: st.mode & 0o7777 });
    await rename(tmp, file);
  }

  private async container(name: string) {
    const info = await this.o.runtime.info(name);
    if (!info) throw bad('CONTAINER_MISSING', `container ${name} does not exist on ${this.o.host}`);
    return info;
  }

  private async notMigrating(name: string): Promise<void> {
    const holder = await this.o.lockHolder?.(name);
    if (holder) {
      throw bad('CONTAINER_BUSY', `container ${name} is being migrated (${holder}); change its mounts once that is over (ferry status ${holder})`);
    }
  }

  /** Mount points in the container's own view, when it runs. */
  private async activeTargets(pid: number | undefined): Promise<Set<string> | undefined> {
    if (!pid) return undefined;
    try {
      return new Set(mountPoints(await readFile(`/proc/${pid}/mountinfo`, 'utf8')));
    } catch {
      return undefined;
    }
  }

  async show(name: string): Promise<ContainerDetails> {
    const info = await this.container(name);
    const [text, net] = await Promise.all([readFile(this.configFile(name), 'utf8'), this.o.runtime.network(name).catch(() => ({}) as { ip?: string; mac?: string })]);
    const active = await this.activeTargets(info.pid);
    const rootfs = this.o.runtime.rootfsDir(name);
    const mounts: BindMountInfo[] = mountLines(text, rootfs)
      .filter((m) => m.bind)
      .map((m) => ({
        source: m.entry.source,
        target: m.target ?? m.entry.target,
        readOnly: m.entry.options.includes('ro'),
        optional: m.entry.options.includes('optional'),
        ...(active && m.target ? { active: active.has(m.target) } : {}),
      }));
    return {
      name,
      host: this.o.host,
      state: info.state,
      ...(info.pid ? { pid: info.pid } : {}),
      ...(net.ip ? { ip: net.ip } : {}),
      ...(net.mac ? { mac: net.mac } : {}),
      mounts,
    };
  }

  /**
   * Checks `target` below the rootfs as LXC will see it at start: no component may be a symbolic
   * link (LXC 5 refuses to mount through one, even one that stays inside: the container would no
   * longer start, and its `create=dir` would already have made directories wherever the link points),
   * and every existing component must be a directory.
   */
  private async checkTargetPath(name: string, target: string): Promise<void> {
    const rootfs = this.o.runtime.rootfsDir(name);
    try {
      if (!(await stat(rootfs)).isDirectory()) throw new Error('not a directory');
    } catch {
      throw bad('ROOTFS_MISSING', `the rootfs of ${name} (${rootfs}) is not a directory on ${this.o.host}`);
    }
    let at = '';
    for (const c of target.split('/').filter(Boolean)) {
      at += `/${c}`;
      let st;
      try {
        st = await lstat(join(rootfs, at));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // the rest is created (create=dir)
        throw e;
      }
      if (st.isSymbolicLink()) {
        throw bad(
          'MOUNT_PATH_SYMLINK',
          `${at} in ${name} is a symbolic link: a mount path must not go through one (LXC refuses it at start, and a link can lead out of the container); give the real directory`,
        );
      }
      if (!st.isDirectory()) throw bad('MOUNT_PATH_NOT_DIR', `${at} in ${name} exists and is not a directory`);
    }
  }

  mount(job: MountJob): Promise<MountChange> {
    return this.serial(job.container, async () => {
      const { container: name, hostDir, path: target, readOnly } = job;
      await this.notMigrating(name);
      const info = await this.container(name);
      let src;
      try {
        src = await stat(hostDir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw bad('BIND_SOURCE_MISSING', `host directory ${hostDir} does not exist on ${this.o.host}`);
        throw e;
      }
      if (!src.isDirectory()) throw bad('BIND_SOURCE_NOT_DIR', `${hostDir} on ${this.o.host} is not a directory`);
      await this.checkTargetPath(name, target);

      const text = await readFile(this.configFile(name), 'utf8');
      const same = mountLines(text, this.o.runtime.rootfsDir(name)).filter((m) => m.target === target);
      const base = { container: name, host: this.o.host, source: hostDir, target, readOnly };
      const identical = same.length === 1 && same[0]!.bind && same[0]!.entry.source === hostDir && same[0]!.entry.options.includes('ro') === readOnly;
      if (same.length && !identical) {
        const e = same[0]!.entry;
        throw bad('MOUNT_PATH_TAKEN', `${name} already has a mount at ${target} (${e.source}, ${e.fstype} ${e.options.join(',')}); ferry umount it first`);
      }
      const active = await this.activeTargets(info.pid);
      if (identical) {
        // Already in the config: make sure it is also in the running container.
        if (!active) return { ...base, configChanged: false, live: 'not-running' };
        if (active.has(target)) return { ...base, configChanged: false, live: 'unchanged' };
        await this.live(() => liveBindMount(info.pid!, hostDir, target, readOnly, this.o.perl));
        return { ...base, configChanged: false, live: 'applied' };
      }
      if (active?.has(target)) {
        throw bad('MOUNT_PATH_BUSY', `something is already mounted at ${target} in the running ${name} (not from its config); unmount it there first`);
      }
      if (!active) {
        await this.writeConfig(name, withBindEntry(text, hostDir, target, readOnly));
        this.o.log.info({ container: name, source: hostDir, target, readOnly }, 'bind mount added (applies at the next start)');
        return { ...base, configChanged: true, live: 'not-running' };
      }
      await this.live(() => liveBindMount(info.pid!, hostDir, target, readOnly, this.o.perl));
      try {
        await this.writeConfig(name, withBindEntry(text, hostDir, target, readOnly));
      } catch (e) {
        await liveUnmount(info.pid!, target, this.o.perl).catch((err: unknown) => this.o.log.error({ err }, 'could not undo the live mount'));
        throw e;
      }
      this.o.log.info({ container: name, source: hostDir, target, readOnly }, 'bind mount added and mounted');
      return { ...base, configChanged: true, live: 'applied' };
    });
  }

  umount(job: UmountJob): Promise<MountChange> {
    return this.serial(job.container, async () => {
      const { container: name, path: target } = job;
      await this.notMigrating(name);
      const info = await this.container(name);
      const text = await readFile(this.configFile(name), 'utf8');
      const same = mountLines(text, this.o.runtime.rootfsDir(name)).filter((m) => m.target === target);
      if (!same.length) throw bad('MOUNT_NOT_FOUND', `${name} has no bind mount at ${target} in its config (see ferry show ${name})`);
      const notBind = same.find((m) => !m.bind);
      if (notBind) {
        throw bad('MOUNT_NOT_BIND', `the mount at ${target} in ${name} is ${notBind.entry.fstype} ${notBind.entry.source}, not a bind mount: ferry umount removes bind mounts only`);
      }
      const base = { container: name, host: this.o.host, source: same[0]!.entry.source, target, readOnly: same[0]!.entry.options.includes('ro') };
      const active = await this.activeTargets(info.pid);
      let live: MountChange['live'] = 'not-running';
      if (active?.has(target)) {
        await this.live(() => liveUnmount(info.pid!, target, this.o.perl));
        live = 'applied';
      } else if (active) live = 'unchanged';
      try {
        await this.writeConfig(name, withoutLines(text, same.map((m) => m.line)));
      } catch (e) {
        if (live === 'applied') {
          await liveBindMount(info.pid!, base.source, target, base.readOnly, this.o.perl).catch((err: unknown) => this.o.log.error({ err }, 'could not undo the live umount'));
        }
        throw e;
      }
      this.o.log.info({ container: name, target, live }, 'bind mount removed');
      return { ...base, configChanged: true, live };
    });
  }

  /** Runs a live (un)mount; an environment without the means to do it is said so plainly. */
  private async live(fn: () => Promise<void>): Promise<void> {
    const why = liveMountUnsupported();
    if (why) throw new FerryError('LIVE_MOUNT_UNSUPPORTED', `${why}; stop the container, change the mount, start it again`);
    await fn();
  }
}
