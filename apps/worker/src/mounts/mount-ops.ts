import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  capabilityMissing,
  PreconditionError,
  type BindMountInfo,
  type ContainerDetails,
  type MountChange,
  type MountJob,
  type UmountJob,
} from '@ferry/core';
import type { Runtime } from '../runtime/runtime.js';
import { checkBindSource, type BindPolicy } from '../runtime/mount-roots.js';

export interface BindMountOpsOptions {
  /** Any runtime: the operations are refused (MOUNTS_UNSUPPORTED) where capabilities().mounts is not set. */
  runtime: Runtime;
  host: string;
  log: Logger;
  /** Migration holding the container, if any (`OperationStore.lockHolder`). */
  lockHolder?: (container: string) => Promise<string | null>;
  /** Which host directories may be shared (the worker's mount roots; none: every mount refused). */
  policy: BindPolicy;
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

  /** Refuses every operation on a runtime that does not declare bind mounts. */
  private async supported(what: string): Promise<void> {
    const caps = await this.o.runtime.capabilities();
    if (!caps.mounts) throw capabilityMissing(caps, 'mounts', what, this.o.host);
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

  async show(name: string): Promise<ContainerDetails> {
    await this.supported(`ferry show ${name}`);
    const info = await this.container(name);
    const [configured, net] = await Promise.all([this.o.runtime.configMounts(name), this.o.runtime.network(name).catch(() => ({}) as { ip?: string; mac?: string })]);
    const active = await this.o.runtime.liveMounts(info);
    const mounts: BindMountInfo[] = configured
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
   * Checks `target` below the rootfs as the runtime will see it at start: no component may be a
   * symbolic link (LXC 5 refuses to mount through one, even one that stays inside: the container
   * would no longer start, and its `create=dir` would already have made directories wherever the
   * link points), and every existing component must be a directory.
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
      const { container: name, path: target, readOnly } = job;
      await this.supported(`ferry mount ${name}`);
      await this.notMigrating(name);
      const info = await this.container(name);
      // Only below an allowed mount root, resolved (a link inside a root cannot lead out of it);
      // checked before the directory is even looked at, and the resolved path is what is mounted.
      const allowed = await checkBindSource(job.hostDir, this.o.policy);
      if (allowed.refused) throw bad('BIND_SOURCE_NOT_ALLOWED', `not shared: ${allowed.refused} (on ${this.o.host})`);
      const hostDir = allowed.real;
      let src;
      try {
        src = await stat(hostDir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw bad('BIND_SOURCE_MISSING', `host directory ${hostDir} does not exist on ${this.o.host}`);
        throw e;
      }
      if (!src.isDirectory()) throw bad('BIND_SOURCE_NOT_DIR', `${hostDir} on ${this.o.host} is not a directory`);
      await this.checkTargetPath(name, target);

      const rt = this.o.runtime;
      const same = (await rt.configMounts(name)).filter((m) => m.target === target);
      const bind = { source: hostDir, target, readOnly };
      const base = { container: name, host: this.o.host, source: hostDir, target, readOnly };
      const identical = same.length === 1 && same[0]!.bind && same[0]!.entry.source === hostDir && same[0]!.entry.options.includes('ro') === readOnly;
      if (same.length && !identical) {
        const e = same[0]!.entry;
        throw bad('MOUNT_PATH_TAKEN', `${name} already has a mount at ${target} (${e.source}, ${e.fstype} ${e.options.join(',')}); ferry umount it first`);
      }
      const active = await rt.liveMounts(info);
      if (identical) {
        // Already in the config: make sure it is also in the running container.
        if (!active) return { ...base, configChanged: false, live: 'not-running' };
        if (active.has(target)) return { ...base, configChanged: false, live: 'unchanged' };
        await rt.liveBindMount(info, bind);
        return { ...base, configChanged: false, live: 'applied' };
      }
      if (active?.has(target)) {
        throw bad('MOUNT_PATH_BUSY', `something is already mounted at ${target} in the running ${name} (not from its config); unmount it there first`);
      }
      if (!active) {
        await rt.addConfigMount(name, bind);
        this.o.log.info({ container: name, source: hostDir, target, readOnly }, 'bind mount added (applies at the next start)');
        return { ...base, configChanged: true, live: 'not-running' };
      }
      await rt.liveBindMount(info, bind);
      try {
        await rt.addConfigMount(name, bind);
      } catch (e) {
        await rt.liveUnmount(info, target).catch((err: unknown) => this.o.log.error({ err }, 'could not undo the live mount'));
        throw e;
      }
      this.o.log.info({ container: name, source: hostDir, target, readOnly }, 'bind mount added and mounted');
      return { ...base, configChanged: true, live: 'applied' };
    });
  }

  umount(job: UmountJob): Promise<MountChange> {
    return this.serial(job.container, async () => {
      const { container: name, path: target } = job;
      await this.supported(`ferry umount ${name}`);
      await this.notMigrating(name);
      const info = await this.container(name);
      const rt = this.o.runtime;
      const same = (await rt.configMounts(name)).filter((m) => m.target === target);
      if (!same.length) throw bad('MOUNT_NOT_FOUND', `${name} has no bind mount at ${target} in its config (see ferry show ${name})`);
      const notBind = same.find((m) => !m.bind);
      if (notBind) {
        throw bad('MOUNT_NOT_BIND', `the mount at ${target} in ${name} is ${notBind.entry.fstype} ${notBind.entry.source}, not a bind mount: ferry umount removes bind mounts only`);
      }
      const base = { container: name, host: this.o.host, source: same[0]!.entry.source, target, readOnly: same[0]!.entry.options.includes('ro') };
      const active = await rt.liveMounts(info);
      let live: MountChange['live'] = 'not-running';
      if (active?.has(target)) {
        await rt.liveUnmount(info, target);
        live = 'applied';
      } else if (active) live = 'unchanged';
      try {
        await rt.removeConfigMounts(name, target);
      } catch (e) {
        if (live === 'applied') {
          await rt.liveBindMount(info, { source: base.source, target, readOnly: base.readOnly }).catch((err: unknown) => this.o.log.error({ err }, 'could not undo the live umount'));
        }
        throw e;
      }
      this.o.log.info({ container: name, target, live }, 'bind mount removed');
      return { ...base, configChanged: true, live };
    });
  }

}
