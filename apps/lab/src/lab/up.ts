import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { FerryError } from '@ferry/core';
import { teardown } from './down.js';
import { isMountPoint, makeHostDisk } from './disks.js';
import { createHostMountNs, prepareLabMounts } from './hostenv.js';
import { createNamespace, createSwitch, listLinks, listNetns } from './netns.js';
import { CLIENT, hostNames, layout, MAX_HOSTS, schemeLinks, schemeNetns, SSH_PORT, SWITCH, type Layout } from './paths.js';
import { labRedisUrl, startSchedulerDaemon, startWorkerDaemon, stopNamedDaemon } from './services.js';
import { checkSsh, generateKey, prepareSshd, sshdProc, startSshd } from './sshd.js';
import { readState, writeState, type LabState } from './state.js';
import type { LabInfo, LabUpOptions } from './types.js';

/** Brings the lab up. Runs under the lab lock (see index.ts). */
export async function up(opts: LabUpOptions): Promise<LabInfo> {
  const count = opts.hosts ?? 2;
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) {
    throw new FerryError('LAB_BAD_HOSTS', `--hosts must be a whole number from 1 to ${MAX_HOSTS}, not ${count}`);
  }
  const startServices = opts.startServices ?? true;
  const lab = layout();

  const existing = await readState(lab.stateFile).catch(() => 'corrupt' as const);
  if (existing !== null && existing !== 'corrupt' && existing.phase === 'up') {
    if (opts.hosts !== undefined && opts.hosts !== existing.info.hosts.length) {
      throw new FerryError('LAB_ALREADY_UP', `a lab with ${existing.info.hosts.length} hosts is up; run \`ferry lab down\` first to get ${count}`);
    }
    const damage = await findDamage(existing, lab);
    if (damage.length) throw new FerryError('LAB_BROKEN', `the lab is up but damaged (${damage.join(', ')}); run \`ferry lab down\` and \`ferry lab up\``);
    if (opts.live !== undefined && opts.live !== (existing.info.live ?? false)) {
      // Workers read --live at start: restart them with the new setting.
      existing.info = { ...existing.info, live: opts.live };
      await writeState(existing, lab.stateFile);
      for (const h of existing.info.hosts) await stopNamedDaemon(existing.info, `worker-${h.name}`, 'SIGTERM');
    }
    if (startServices) await startLabServices(existing, lab);
    return existing.info;
  }
  if (existing !== null || existsSync(lab.root)) {
    // A half-made lab (an `up` or `down` that crashed): it is ours, remove it and start over.
    await teardown(lab);
  } else {
    const netns = await listNetns();
    const links = await listLinks();
    const stray = [...schemeNetns().filter((n) => netns.has(n)), ...schemeLinks().filter((l) => links.has(l))];
    if (stray.length) {
      throw new FerryError('LAB_CONFLICT', `${stray.join(', ')} exist but ${lab.stateFile} does not list them (a lab of another state dir?); \`ferry lab down\` removes them`);
    }
  }

  const redis = startServices ? await labRedisUrl() : { url: '', started: false };
  const info = { ...plan(count, redis.url, lab), ...(redis.started ? { redisStarted: true } : {}), ...(opts.live ? { live: true } : {}) };
  const state: LabState = { version: 1, phase: 'creating', info, containers: {} };
  await writeState(state, lab.stateFile); // intent first: from here on `down` knows what may exist
  try {
    await build(info, lab);
  } catch (e) {
    await teardown(lab).catch(() => undefined);
    throw new FerryError('LAB_UP_FAILED', `lab up failed and was rolled back: ${(e as Error).message}`, { cause: e });
  }
  state.phase = 'up';
  await writeState(state, lab.stateFile);
  if (startServices) {
    try {
      await startLabServices(state, lab);
    } catch (e) {
      throw new FerryError('LAB_SERVICES_FAILED', `the lab is up, but its services did not start: ${(e as Error).message}`, { cause: e });
    }
  }
  return info;
}

function plan(count: number, redisUrl: string, lab: Layout): LabInfo {
  return {
    stateDir: lab.root,
    redisUrl,
    prefix: process.env.FERRY_PREFIX ?? 'ferry',
    switch: { bridge: SWITCH.bridge, address: SWITCH.address },
    hosts: Array.from({ length: count }, (_, i) => {
      const n = hostNames(i + 1);
      const dirs = lab.host(n.name);
      return {
        name: n.name,
        netns: n.netns,
        address: n.address,
        sshPort: SSH_PORT,
        lxcPath: dirs.lxcPath,
        stateDir: dirs.stateDir,
        uplink: n.uplink,
        mountNs: dirs.mountNs,
      };
    }),
    client: { netns: CLIENT.netns, address: CLIENT.address },
    sshKey: lab.sshKey,
    knownHosts: lab.knownHosts,
  };
}

async function build(info: LabInfo, lab: Layout): Promise<void> {
  await Promise.all([lab.logs, lab.run].map((d) => mkdir(d, { recursive: true })));
  const network = async () => {
    await Promise.all([createSwitch(), prepareLabMounts(lab)]);
    // Below the shared lab dir, so the host mount namespaces made next see them.
    // All settled before a failure is thrown: the rollback must not unmount beside a mount still being made.
    const disks = await Promise.allSettled(info.hosts.map((h) => makeHostDisk(lab, h.name)));
    const failed = disks.find((d): d is PromiseRejectedResult => d.status === 'rejected');
    if (failed) throw failed.reason;
    // Hosts are independent of each other: wire them all at once.
    await Promise.all([
      ...info.hosts.map(async (h, i) => {
        await createNamespace({ ...h, bridgeMac: hostNames(i + 1).bridgeMac });
        await createHostMountNs(lab, h.name, h.netns);
      }),
      createNamespace({ netns: CLIENT.netns, uplink: CLIENT.uplink, address: CLIENT.address }),
    ]);
  };
  // Keys are made while the network is wired (one Promise.all, so no rejection goes unhandled).
  const [clientKey, knownLines] = await Promise.all([
    generateKey(lab.sshKey, 'ferry-lab'),
    Promise.all(info.hosts.map((h) => prepareSshd(h, lab))),
    network(),
  ]);
  await writeFile(lab.authorizedKeys, `${clientKey}\n`);
  await writeFile(lab.knownHosts, `${knownLines.join('\n')}\n`);
  await Promise.all(info.hosts.map((h) => startSshd(h, lab)));
  // Each host logs in to the next: proves every sshd, the key, the pins and the wiring.
  await Promise.all(info.hosts.map((h, i) => checkSsh(lab, h, info.hosts[(i + 1) % info.hosts.length]!)));
}

async function findDamage(state: LabState, lab: Layout): Promise<string[]> {
  const netns = await listNetns();
  const links = await listLinks();
  const damage = [...state.info.hosts.map((h) => h.netns), state.info.client.netns].filter((n) => !netns.has(n)).map((n) => `no netns ${n}`);
  if (!links.has(state.info.switch.bridge)) damage.push(`no bridge ${state.info.switch.bridge}`);
  for (const h of state.info.hosts) if (!(await sshdProc(h, lab))) damage.push(`sshd of ${h.name} not running`);
  for (const h of state.info.hosts) if (!(await isMountPoint(lab.host(h.name).disk))) damage.push(`disk of ${h.name} not mounted`);
  return damage;
}

/** Starts whichever of the workers and the scheduler are not running. */
export async function startLabServices(state: LabState, lab: Layout): Promise<void> {
  if (!state.info.redisUrl) {
    const redis = await labRedisUrl();
    state.info.redisUrl = redis.url;
    if (redis.started) state.info.redisStarted = true;
    await writeState(state, lab.stateFile);
  }
  const info = state.info;
  await Promise.all([...info.hosts.map((h) => startWorkerDaemon(info, h)), startSchedulerDaemon(info)]);
}
