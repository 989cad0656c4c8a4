import { stat, statfs } from 'node:fs/promises';
import { FerryError, PreconditionError, type PreflightInput, type PreflightOutput } from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import { runtimeMissing } from '../runtime/errors.js';
import { isUnder } from '../runtime/paths.js';
import { isActive } from '../runtime/state.js';
import { readMarker } from '../ownership/target-ownership.js';
import { sshCheck, sshTargetFor } from '../transfer/ssh.js';
import { diskUsage } from '../transfer/disk-usage.js';
import { checkBindSource } from '../runtime/mount-roots.js';
import { SYSTEM_RO_BINDS } from '../runtime/config-policy.js';
import { readCheckpoint } from '../checkpoint/on-disk.js';

/** Free space the target must have beyond the container's size: 5 % plus 64 MiB. */
export function requiredFreeBytes(sizeBytes: number, alreadyThere = 0): number {
  return Math.ceil(Math.max(0, sizeBytes - alreadyThere) * 1.05) + 64 * 1024 * 1024;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function source(ctx: StepContext, input: PreflightInput): Promise<PreflightOutput> {
  const { runtime } = ctx;
  const name = input.container;
  const i = await runtime.info(name).catch((e: unknown) => {
    throw runtimeMissing(e);
  });
  if (!i) {
    throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist on ${ctx.host.name}`, { container: name });
  }
  const dir = runtime.containerDir(name);
  const rootfs = runtime.rootfsDir(name);
  if (!isUnder(rootfs, dir)) {
    throw new PreconditionError(
      'ROOTFS_OUTSIDE_CONTAINER_DIR',
      `container ${name}: rootfs ${rootfs} lies outside ${dir}; ferry copies only the container's directory`,
    );
  }
  if (input.refuseRunning && isActive(i.state)) {
    throw new PreconditionError(
      'CONTAINER_RUNNING',
      `container ${name} is ${i.state} on ${ctx.host.name}: stop it first, or pass --freeze to copy it frozen (a copy of a running container can be inconsistent)`,
      { container: name, state: i.state },
    );
  }
  if (input.requireCheckpoint && (i.state !== 'STOPPED' || !(await readCheckpoint(runtime, name)))) {
    throw new PreconditionError('NOT_CHECKPOINTED', `container ${name} is not checkpointed on ${ctx.host.name} (it is ${i.state}${i.state === 'STOPPED' ? ', with no complete checkpoint' : ''})`, {
      container: name,
      state: i.state,
    });
  }
  if (!input.requireCheckpoint && i.state === 'STOPPED' && (await readCheckpoint(runtime, name))) {
    // Moved or copied as a stopped container it would start cold elsewhere, its images left
    // behind or copied along: a checkpointed container goes with `ferry restore --to`.
    throw new PreconditionError('CONTAINER_CHECKPOINTED', `container ${name} is checkpointed on ${ctx.host.name}: bring it back with ferry restore ${name} [--to <host>]`, {
      container: name,
    });
  }
  // The size walk (it grows with the file count) goes on beside the ssh check.
  const sizing = new AbortController();
  const size = diskUsage(dir, AbortSignal.any([ctx.signal, sizing.signal]));
  size.catch(() => undefined); // awaited below; not an unhandled rejection if the check throws first
  try {
    return await sourceChecked(ctx, input, name, isActive(i.state), size);
  } finally {
    sizing.abort(); // a failed check ends the walk too (done by now otherwise)
  }
}

/** The source's checks that take a while (the peer over ssh), beside its size walk. */
async function sourceChecked(ctx: StepContext, input: PreflightInput, name: string, wasRunning: boolean, size: Promise<number>): Promise<PreflightOutput> {
  const { runtime } = ctx;
  // A copy to this same host (a local clone) goes without ssh: nothing to check.
  if (input.peer.name !== ctx.host.name) {
    try {
      await sshCheck(sshTargetFor(ctx.host, input.peer), ctx.signal);
    } catch (e) {
      if (e instanceof FerryError && e.code === 'PEER_UNREACHABLE') {
        throw new FerryError('PEER_UNREACHABLE', `peer ${input.peer.name} (${input.peer.address}:${input.peer.sshPort}) unreachable over ssh: ${e.message}`, {
          retryable: true,
          ...(e.details ? { details: e.details } : {}),
        });
      }
      throw e;
    }
  }
  const [net, bindMounts, sizeBytes] = await Promise.all([runtime.network(name), runtime.bindMounts(name), size]);
  return {
    role: 'source',
    wasRunning,
    ...(net.ip ? { ip: net.ip } : {}),
    ...(net.mac ? { mac: net.mac } : {}),
    sizeBytes,
    bindMounts,
  };
}

async function target(ctx: StepContext, input: PreflightInput): Promise<PreflightOutput> {
  const { runtime } = ctx;
  const name = input.container;
  const dir = runtime.containerDir(name);
  let alreadyThere = 0;

  if (await exists(dir)) {
    const marker = await readMarker(dir);
    if (marker !== input.migrationId) {
      throw new PreconditionError(
        'CONTAINER_EXISTS_ON_TARGET',
        marker
          ? `${dir} on ${ctx.host.name} belongs to another migration (${marker})`
          : `container ${name} already exists on ${ctx.host.name} (${dir})`,
        { container: name, ...(marker ? { marker } : {}) },
      );
    }
    // Our own partial copy from an earlier attempt: fine unless something runs it.
    const i = await runtime.info(name).catch((e: unknown) => {
      throw runtimeMissing(e);
    });
    if (i && isActive(i.state)) {
      throw new PreconditionError('CONTAINER_EXISTS_ON_TARGET', `container ${name} is ${i.state} on ${ctx.host.name}`, { container: name });
    }
    alreadyThere = await diskUsage(dir, ctx.signal);
  }

  let freeBytes: number;
  try {
    const fs = await statfs(ctx.host.lxcPath);
    freeBytes = Number(fs.bavail) * Number(fs.bsize);
  } catch (e) {
    throw new PreconditionError('LXC_PATH_MISSING', `cannot statfs the LXC path on ${ctx.host.name}: ${(e as Error).message}`);
  }
  const expect = input.expect;
  const sizeBytes = expect?.sizeBytes ?? 0;
  const need = requiredFreeBytes(sizeBytes, alreadyThere);
  if (freeBytes < need) {
    throw new PreconditionError(
      'TARGET_SPACE',
      `not enough free space on ${ctx.host.name}: ${freeBytes} B free, ${need} B needed (${sizeBytes} B container, ${alreadyThere} B already copied, plus margin)`,
      { freeBytes, need, sizeBytes, alreadyThere },
    );
  }

  if (expect?.ip || expect?.mac) {
    const others = (
      await runtime.list().catch((e: unknown) => {
        throw runtimeMissing(e);
      })
    ).filter((c) => c.name !== name);
    for (const c of others) {
      const net = await runtime.network(c.name).catch(() => ({}) as { ip?: string; mac?: string });
      if (expect.ip && net.ip === expect.ip) {
        throw new PreconditionError('IP_IN_USE', `${expect.ip} is already used by container ${c.name} on ${ctx.host.name}`, { other: c.name, ip: expect.ip });
      }
      if (expect.mac && net.mac?.toLowerCase() === expect.mac.toLowerCase()) {
        throw new PreconditionError('MAC_IN_USE', `${expect.mac} is already used by container ${c.name} on ${ctx.host.name}`, { other: c.name, mac: expect.mac });
      }
    }
  }

  // Bind sources this host would refuse at restore (config-policy.ts): said now, before the copy.
  const policy = { roots: ctx.host.mountRoots ?? [], lxcPath: ctx.host.lxcPath, protectedDirs: [ctx.host.stateDir] };
  const refused: string[] = [];
  for (const p of expect?.bindMounts ?? []) {
    if ((SYSTEM_RO_BINDS as readonly string[]).includes(p)) continue;
    const r = (await checkBindSource(p, policy)).refused;
    if (r) refused.push(r);
  }
  if (refused.length) {
    throw new PreconditionError('BIND_SOURCE_NOT_ALLOWED', `the container's bind mounts are not allowed on ${ctx.host.name}: ${refused.join('; ')}`, { refused });
  }
  const missing: string[] = [];
  for (const p of expect?.bindMounts ?? []) if (!(await exists(p))) missing.push(p);
  if (missing.length) {
    throw new PreconditionError('BIND_SOURCE_MISSING', `bind-mount sources missing on ${ctx.host.name}: ${missing.join(', ')}`, { missing });
  }
  return { role: 'target', freeBytes };
}

/** Checks that the container can leave this host (source) or arrive here (target). Acts on nothing. */
export const preflight: Step<PreflightInput, PreflightOutput> = async (ctx, input) =>
  input.role === 'source' ? source(ctx, input) : target(ctx, input);
