import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '@ferry/core';
import { destroyContainer } from './container.js';
import { containerAddress, CONTAINER_OCTETS } from './paths.js';
import { isAlive, procId } from '@ferry/infra';
import { findHost, requireUp, withLabLock, writeState, type ContainerRecord, type LabState } from './state.js';
import type { LabHost } from './types.js';

/**
 * A container's name, address and MAC are reserved in lab.json before anything is made (so `down`
 * and later creates know about it), and the record is marked running once it is.
 */
export async function reserveContainer(name: string, hostName: string): Promise<{ rec: ContainerRecord; host: LabHost; clientNetns: string }> {
  return withLabLock(async () => {
    const state = await requireUp();
    const host = findHost(state, hostName);
    await clearDebris(state);
    const taken = state.containers[name];
    if (taken) throw new FerryError('LAB_CONTAINER_EXISTS', `lab container ${name} already exists (on ${taken.host})`);
    const elsewhere = state.info.hosts.find((h) => existsSync(join(h.lxcPath, name)));
    if (elsewhere) throw new FerryError('LAB_CONTAINER_EXISTS', `${join(elsewhere.lxcPath, name)} already exists`);
    const used = new Set(Object.values(state.containers).map((c) => c.ip));
    let octet: number = CONTAINER_OCTETS.first;
    while (octet <= CONTAINER_OCTETS.last && used.has(containerAddress(octet).ip)) octet++;
    if (octet > CONTAINER_OCTETS.last) throw new FerryError('LAB_FULL', 'the lab has no container addresses left (198.18.0.200-254)');
    const rec: ContainerRecord = {
      name,
      host: host.name,
      lxcPath: host.lxcPath,
      rootfs: join(host.lxcPath, name, 'rootfs'),
      ...containerAddress(octet),
      phase: 'creating',
      creator: (await procId(process.pid)) ?? undefined,
    };
    state.containers[name] = rec;
    await writeState(state);
    return { rec, host, clientNetns: state.info.client.netns };
  });
}

export function markRunning(name: string): Promise<void> {
  return update((s) => {
    const rec = s.containers[name];
    if (rec) {
      rec.phase = 'running';
      delete rec.creator;
    }
  });
}

export function forgetContainer(name: string): Promise<void> {
  return update((s) => void delete s.containers[name]);
}

function update(fn: (s: LabState) => void): Promise<void> {
  return withLabLock(async () => {
    const state = await requireUp();
    fn(state);
    await writeState(state);
  });
}

/** Records left by creates that crashed: their container (if any) and record go, freeing name and address. */
async function clearDebris(state: LabState): Promise<void> {
  for (const old of Object.values(state.containers)) {
    if (old.phase !== 'creating' || (old.creator && (await isAlive(old.creator)))) continue;
    const oldHost = state.info.hosts.find((h) => h.lxcPath === old.lxcPath);
    if (oldHost) await destroyContainer(old.lxcPath, old.name, oldHost);
    delete state.containers[old.name];
  }
}
