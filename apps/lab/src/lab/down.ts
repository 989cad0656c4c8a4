import { readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { FerryError } from '@ferry/core';
import { cmdline, pidsWithEnv, procId, type ProcId, run, stopEmbeddedRedis, stopProcess } from '@ferry/infra';
import { listContainers, stopContainer } from './container.js';
import { LAB_ENV, readPidFile } from './daemon.js';
import { deleteLink, deleteNetns, deleteSwitchFilter, listLinks, listNetns, netnsPids } from './netns.js';
import { allHostNames, layout, schemeLinks, schemeNetns, SWITCH, type Layout } from './paths.js';
import { readState, writeState } from './state.js';

/**
 * Tears the lab down from whatever is left: lab.json (possibly half written, possibly missing)
 * plus the exact naming scheme. Every step is best effort and the end result is checked, so a
 * crashed `up`, a crashed `down` or a second `down` all end clean.
 */
export async function teardown(lab: Layout = layout()): Promise<void> {
  const state = await readState(lab.stateFile).catch(() => null);
  if (state && state.phase !== 'removing') {
    // So that an interrupted down is seen as a half lab, not as a lab that is up.
    await writeState({ ...state, phase: 'removing' }, lab.stateFile).catch(() => undefined);
  }
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  };

  // Kernel objects are swept by the scheme's exact names only: lab.json never lists others, and a
  // damaged lab.json cannot then point `down` at anything that is not the lab's.
  const hosts = new Map<string, { lxcPath: string; mountNs: string }>();
  for (const h of allHostNames()) hosts.set(h.netns, { lxcPath: lab.host(h.name).lxcPath, mountNs: lab.host(h.name).mountNs });
  const wantedNetns = schemeNetns();
  const wantedLinks = schemeLinks();
  const existingNetns = await listNetns();
  const netnsHere = wantedNetns.filter((n) => existingNetns.has(n));

  // 1. Daemons: workers and scheduler, by pidfile.
  await attempt('stop daemons', async () => stopAll(await pidfileDaemons(lab), 'SIGTERM'));
  // The embedded redis-server goes too, if the lab started it (after the daemons that use it).
  if (state?.info.redisStarted) await attempt('stop redis', () => stopEmbeddedRedis());

  // 2. Containers: stopped only. Their directories go with the lab dir; one found elsewhere is not ours to delete.
  const mounts = await mountsUnder(lab.root);
  await attempt('stop containers', async () => {
    const found = await containersToStop(hosts, netnsHere);
    await Promise.all(
      found.map((c) => {
        const mountNs = hosts.get(c.netns)?.mountNs;
        return stopContainer(c.lxcPath, c.name, { netns: c.netns, mountNs: mountNs && mounts.includes(mountNs) ? mountNs : null });
      }),
    );
  });

  // Then whatever else carries the lab's env marker (a daemon without pidfile, its ssh/rsync
  // children). Not before the containers: their LXC monitors inherit the marker from a worker,
  // and a monitor killed before lxc-stop leaves its cgroups behind.
  await attempt('stop marked processes', async () => stopAll(await pidsWithEnv(LAB_ENV, lab.root), 'SIGTERM'));

  // 3. Whatever still runs in a lab namespace (sshd and its sessions, stray tools), then the
  //    links (deleting one end of a veth deletes both), the namespaces, and the switch last.
  await Promise.all(
    netnsHere.map((ns) =>
      attempt(`clear ${ns}`, async () => {
        const ids = (await Promise.all((await netnsPids(ns)).map(procId))).filter((p): p is ProcId => !!p);
        await stopAll(ids, 'SIGTERM', 3000);
      }),
    ),
  );
  const existing = await listLinks();
  const bridge = SWITCH.bridge;
  const uplinks = wantedLinks.filter((l) => existing.has(l) && l !== bridge);
  await Promise.all(uplinks.map((l) => attempt(`delete link ${l}`, () => deleteLink(l))));
  await Promise.all(netnsHere.map((ns) => attempt(`delete netns ${ns}`, () => deleteNetns(ns))));
  if (existing.has(bridge)) await attempt(`delete link ${bridge}`, () => deleteLink(bridge));
  await attempt('delete the switch filter', deleteSwitchFilter);

  // 4. The lab dir: first the lab's own mounts (host mount namespaces, the lab dir's self-bind)
  //    and anything mounted below it, which rm -rf would otherwise reach into.
  await attempt('remove lab dir', async () => {
    for (const m of await mountsUnder(lab.root)) {
      // Lazily where still busy (a host's disk held by a process outside the lab): detached now,
      // freed when let go, and the rm below cannot reach into it.
      const plain = await run('umount', [m], { timeoutMs: 30_000 }).then(() => true, () => false);
      if (!plain) await run('umount', ['-l', m], { timeoutMs: 30_000 });
    }
    await rm(lab.root, { recursive: true, force: true });
  });

  // 5. Check the result instead of trusting the steps.
  const nowNetns = await listNetns();
  const nowLinks = await listLinks();
  const left = [
    ...wantedNetns.filter((n) => nowNetns.has(n)).map((n) => `netns ${n}`),
    ...wantedLinks.filter((l) => nowLinks.has(l)).map((l) => `link ${l}`),
    ...(existsSync(lab.root) ? [`dir ${lab.root}`] : []),
    ...(await mountsUnder(lab.root)).map((m) => `mount ${m}`),
    ...(await pidsWithEnv(LAB_ENV, lab.root)).map((p) => `process ${p.pid}`),
  ];
  if (left.length) {
    throw new FerryError('LAB_DOWN_INCOMPLETE', `lab down left ${left.join(', ')}${problems.length ? ` (${problems.join('; ')})` : ''}`);
  }
}

async function stopAll(ids: ProcId[], sig: NodeJS.Signals, graceMs = 5000): Promise<void> {
  const stuck = (await Promise.all(ids.map(async (id) => ((await stopProcess(id, sig, graceMs)) ? null : id.pid)))).filter(Boolean);
  if (stuck.length) throw new Error(`processes ${stuck.join(', ')} survived SIGKILL`);
}

async function pidfileDaemons(lab: Layout): Promise<ProcId[]> {
  const ids: ProcId[] = [];
  for (const f of await readdir(lab.run).catch(() => [] as string[])) {
    const id = f.endsWith('.pid') ? await readPidFile(join(lab.run, f)) : null;
    if (id) ids.push(id);
  }
  return ids;
}

interface Found {
  lxcPath: string;
  name: string;
  netns: string;
}

/** Containers in the hosts' LXC paths, and any whose LXC monitor runs in a lab namespace. */
async function containersToStop(hosts: Map<string, { lxcPath: string }>, netnsHere: string[]): Promise<Found[]> {
  const found = new Map<string, Found>();
  for (const ns of netnsHere) {
    const host = hosts.get(ns);
    if (!host) continue; // the client runs no containers
    for (const name of await listContainers(host.lxcPath)) found.set(`${host.lxcPath}\0${name}`, { lxcPath: host.lxcPath, name, netns: ns });
    // A running container's monitor lives where lxc-start ran: `[lxc monitor] <lxcpath> <name>`.
    for (const pid of await netnsPids(ns).catch(() => [])) {
      const m = /^\[lxc monitor\] (\S+) (\S+)$/.exec((await cmdline(pid)).join(' ').trim());
      if (m) found.set(`${m[1]}\0${m[2]}`, { lxcPath: m[1]!, name: m[2]!, netns: ns });
    }
  }
  return [...found.values()];
}

/** Mount points at or below `root`, deepest first. */
async function mountsUnder(root: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === root || p.startsWith(root + sep));
  return points.sort((a, b) => b.length - a.length);
}
