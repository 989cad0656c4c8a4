import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { capabilityMissing, FerryError, PreconditionError, type CloneIdentityInput, type CloneIdentityOutput } from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import { isUnder } from '../runtime/paths.js';
import { readRootfsFile, removeRootfsEntries, rootfsEntry, writeRootfsFile } from '../runtime/rootfs.js';
import { scratchDir } from '../ownership/scratch.js';
import { peerContainerDir } from '../transfer/target-dir.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { MARKER, ownedByMigration, ownershipFile } from '../ownership/target-ownership.js';
import { removePartialDir } from '../transfer/receiver-lock.js';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replaces the old names by `to` where they stand as whole host names or as the first label of a
 * dotted name (`web`, `web.lan`; not `web-db`, `myweb`, `x.web`), case-insensitively.
 */
export function replaceHostNames(text: string, from: readonly string[], to: string): string {
  let out = text;
  for (const f of from) {
    if (!f || f.toLowerCase() === to.toLowerCase()) continue;
    out = out.replace(new RegExp(`(?<![A-Za-z0-9_.-])${escapeRegExp(f)}(?![A-Za-z0-9_-])`, 'gi'), to);
  }
  return out;
}

/** 128 random bits as systemd writes them: 32 lowercase hex digits. */
export function newMachineId(): string {
  return randomBytes(16).toString('hex');
}

const isSshHostKey = (n: string) => n.startsWith('ssh_host_');
const isDropbearHostKey = (n: string) => n.includes('_host_key');

interface Scratch {
  record: string;
  /** Names of the source as found in the copy before it was renamed (a retry needs them). */
  names: string;
  /** Host keys removed so far (a retry finds none left but must report them). */
  hostKeys: string;
}

function scratchFiles(ctx: StepContext, migrationId: string): Scratch {
  const d = scratchDir(ctx, migrationId);
  return { record: join(d, 'clone-identity.json'), names: join(d, 'clone-identity-names.json'), hostKeys: join(d, 'clone-identity-hostkeys.json') };
}

/**
 * Target: makes the copy a container of its own and starts it if the source was running.
 * Observe: a recorded result → it (running as now); running without a record (crash after the
 * start) → rebuilt from the copy. A container here without this clone's marker or ownership
 * record is refused (CONTAINER_NOT_OURS).
 * Act: record ownership; rewrite the source's paths in the config; set hostname, MAC and IPv4
 * address (none given → static address removed); in the rootfs (never following its symlinks):
 * /etc/hostname, the source's names in /etc/hosts, a new machine-id, the source's SSH host keys
 * removed; marker and rsync leftovers removed; start and check it runs.
 */
export const cloneIdentity: Step<CloneIdentityInput, CloneIdentityOutput> = async (ctx, input) => {
  const { runtime } = ctx;
  const name = input.name;
  const files = scratchFiles(ctx, input.migrationId);
  const i = await runtime.info(name);
  const rec = await readJson<CloneIdentityOutput>(files.record);
  if (rec) return { ...rec, running: i?.state === 'RUNNING' };
  if (!i) {
    throw new PreconditionError('CONTAINER_MISSING', `the copy ${name} has not arrived on ${ctx.host.name} (no config in ${runtime.containerDir(name)})`, {
      container: name,
    });
  }
  if (!(await ownedByMigration(ctx, input.migrationId, name))) {
    throw new PreconditionError('CONTAINER_NOT_OURS', `container ${name} on ${ctx.host.name} was not created by clone ${input.migrationId}`, { container: name });
  }
  const dir = runtime.containerDir(name);
  if (i.state === 'RUNNING') {
    // Started by an earlier attempt that died before recording: everything before the start was done.
    const rootfs = runtime.rootfsDir(name);
    const out: CloneIdentityOutput = {
      running: true,
      ...(input.ip ? { ip: input.ip } : {}),
      mac: input.mac,
      machineId: ((await readRootfsFile(rootfs, 'etc/machine-id')) ?? '').trim(),
      removedHostKeys: (await readJson<string[]>(files.hostKeys)) ?? [],
    };
    await writeJsonAtomic(files.record, out);
    return out;
  }
  if (i.state !== 'STOPPED') throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state} on ${ctx.host.name}`, { container: name });
  const caps = await runtime.capabilities();
  if (!caps.setIdentity) throw capabilityMissing(caps, 'setIdentity', `clone ${input.migrationId}`, ctx.host.name);
  await writeJsonAtomic(ownershipFile(ctx, input.migrationId), { container: name, at: Date.now() });

  // Config: the source's paths become this container's; then its own name, MAC and address.
  const srcDir = peerContainerDir(input.source, input.container);
  // Screened as a peer's config: refused lines throw CONFIG_NOT_ALLOWED before anything starts.
  const adopted = await runtime.adoptConfig(name, { containerDir: srcDir, rootfsDir: `${srcDir}/rootfs` });
  for (const d of adopted.dropped) ctx.log.warn({ container: name }, d);
  const rootfs = runtime.rootfsDir(name);
  if (!isUnder(rootfs, dir) || rootfs.replace(/\/+$/, '') === dir) {
    // Never edit files of a rootfs that is not this copy's own (on a local clone: the source's).
    throw new PreconditionError('ROOTFS_OUTSIDE_CONTAINER_DIR', `the copy's rootfs ${rootfs} is not inside its dir ${dir}; not touching it`);
  }
  const net = await runtime.setIdentity(name, { hostname: input.hostname, mac: input.mac, ...(input.ip ? { ip: input.ip } : {}) });
  for (const note of net.notes) ctx.log.info({ container: name }, note);

  // Rootfs: names first (from the copy as it arrived, kept for a retry), then the new ones.
  let names = await readJson<{ hostname?: string }>(files.names);
  if (!names) {
    const h = (await readRootfsFile(rootfs, 'etc/hostname'))?.trim().split(/\s+/)[0];
    names = h ? { hostname: h } : {};
    await writeJsonAtomic(files.names, names);
  }
  const oldNames = [...new Set([input.container, names.hostname].filter((x): x is string => !!x))];
  const hosts = await readRootfsFile(rootfs, 'etc/hosts');
  if (hosts !== null) {
    const next = replaceHostNames(hosts, oldNames, input.hostname);
    if (next !== hosts) await writeRootfsFile(rootfs, 'etc/hosts', next);
  } else if ((await rootfsEntry(rootfs, 'etc/hosts')) !== 'missing') {
    ctx.log.warn({ container: name }, '/etc/hosts of the copy is not a regular file: left as it is');
  }
  if (!(await writeRootfsFile(rootfs, 'etc/hostname', `${input.hostname}\n`))) {
    ctx.log.warn({ container: name }, 'the copy has no /etc: hostname set in the config only');
  }
  const machineId = newMachineId();
  await writeRootfsFile(rootfs, 'etc/machine-id', `${machineId}\n`);
  if ((await rootfsEntry(rootfs, 'var/lib/dbus/machine-id')) === 'file') {
    await writeRootfsFile(rootfs, 'var/lib/dbus/machine-id', `${machineId}\n`);
  }
  const removedNow = [
    ...(await removeRootfsEntries(rootfs, 'etc/ssh', isSshHostKey)),
    ...(await removeRootfsEntries(rootfs, 'etc/dropbear', isDropbearHostKey)),
  ];
  const removedHostKeys = [...new Set([...((await readJson<string[]>(files.hostKeys)) ?? []), ...removedNow])].sort();
  await writeJsonAtomic(files.hostKeys, removedHostKeys);

  await rm(join(dir, MARKER), { force: true });
  await removePartialDir(ctx.host.lxcPath, input.name);

  let running = false;
  if (input.start) {
    await runtime.start(name);
    const after = await runtime.info(name);
    if (after?.state !== 'RUNNING') {
      throw new FerryError('CONTAINER_START_FAILED', `clone ${name} is ${after?.state ?? 'gone'} after start on ${ctx.host.name}`, { retryable: false });
    }
    running = true;
  }
  const out: CloneIdentityOutput = { running, ...(input.ip ? { ip: input.ip } : {}), mac: input.mac, machineId, removedHostKeys };
  await writeJsonAtomic(files.record, out);
  return out;
};
