import { mkdir, readdir, readFile, readlink, rm, stat, statfs } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FerryError } from '@ferry/core';
import { pidsWithEnv, procId, type ProcId, run, stopEmbeddedRedis, stopProcess, succeeds } from '@ferry/infra';
import { LAB_ENV } from './daemon.js';
import { isMountPoint, mountExt4Image } from './disks.js';
import { hostRun } from './hostenv.js';
import { layout } from './paths.js';
import { forgetContainer } from './reserve.js';
import { sshdProc, startSshd } from './sshd.js';
import { findHost, requireUp } from './state.js';
import type { LabInfo } from './types.js';

/**
 * Fault-injection helpers for the chaos suite (apps/lab/src/chaos), additive to the lab: an
 * sshd that can be killed and started again, a host LXC path on a small file system of its own,
 * and removal of a lab container from every host. Nothing else imports this file.
 */

async function hostOf(name: string) {
  const state = await requireUp();
  return { state, host: findHost(state, name), lab: layout(state.info.stateDir) };
}

/** PID of the host's sshd (the listener), or null when it does not run. */
export async function sshdPid(hostName: string): Promise<number | null> {
  const { host, lab } = await hostOf(hostName);
  return (await sshdProc(host, lab))?.pid ?? null;
}

/** SIGKILL to the host's sshd listener (sessions already open are its children and stay). */
export async function killSshd(hostName: string): Promise<number | null> {
  const { host, lab } = await hostOf(hostName);
  const id = await sshdProc(host, lab);
  if (!id) return null;
  if (!(await stopProcess(id, 'SIGKILL'))) throw new FerryError('LAB_DAEMON_STUCK', `sshd of ${hostName} (pid ${id.pid}) survived SIGKILL`);
  return id.pid;
}

/** Starts the host's sshd again the way `lab up` does (no-op when it runs); returns its PID. */
export async function startHostSshd(hostName: string): Promise<number> {
  const { host, lab } = await hostOf(hostName);
  const running = await sshdProc(host, lab);
  if (running) return running.pid;
  await startSshd(host, lab);
  const id = await sshdProc(host, lab);
  if (!id) throw new FerryError('LAB_SSHD_FAILED', `sshd of ${hostName} did not come back`);
  return id.pid;
}

/**
 * Kills a lab container wherever it is and deletes its directory on every host. Never
 * `lxc-destroy`: a copy whose config was not adopted yet names another host's rootfs, which
 * lxc-destroy would delete. `forget` also frees its name and address in lab.json.
 */
export async function removeLabContainer(name: string, opts: { forget?: boolean } = {}): Promise<void> {
  const state = await requireUp();
  for (const h of state.info.hosts) {
    await hostRun(h, 'lxc-stop', ['-P', h.lxcPath, '-n', name, '-k'], { timeoutMs: 20_000 }).catch(() => undefined);
    await rm(join(h.lxcPath, name), { recursive: true, force: true });
  }
  const rec = state.containers[name];
  if (opts.forget && rec) {
    // The address and MAC go to the next container, maybe on another host: forget where the
    // switches and the client last saw them, or the client keeps sending to the old port.
    await forgetStation(state.info, rec.ip, rec.mac);
    await forgetContainer(name);
  }
}

/** Drops a MAC from every lab bridge's forwarding table and the IP from the client's neighbours. */
async function forgetStation(info: LabInfo, ip: string, mac: string): Promise<void> {
  const T = { timeoutMs: 10_000 };
  const fdb = await run('bridge', ['fdb', 'show', 'br', info.switch.bridge], T).catch(() => null);
  for (const line of fdb?.stdout.split('\n') ?? []) {
    const [m, , dev] = line.split(' ');
    if (m?.toLowerCase() === mac.toLowerCase() && dev && !line.includes('permanent')) {
      await run('bridge', ['fdb', 'del', mac, 'dev', dev, 'master'], T).catch(() => undefined);
    }
  }
  for (const h of info.hosts) await hostRun(h, 'bridge', ['fdb', 'del', mac, 'dev', 'eth0', 'master'], T).catch(() => undefined);
  await run('ip', ['-n', info.client.netns, 'neigh', 'del', ip, 'dev', 'eth0'], T).catch(() => undefined);
}

export interface SmallFs {
  host: string;
  mountPoint: string;
  image: string;
  sizeBytes: number;
}

function imagePath(stateDir: string, hostName: string): string {
  // Beside the lab dir, not in it: `lab down` removes the lab dir, and the image is ours to remove.
  return join(dirname(stateDir), 'chaos', `${hostName}-lxc.img`);
}

/**
 * Puts the host's LXC path on an ext4 file system of `sizeMb` MiB of its own (a loop-mounted
 * image, no reserved blocks), mounted in the root namespace. The lab dir is a shared mount and the
 * hosts' mount namespaces are its slaves, so the mount shows up on the host: checked, not assumed.
 * The LXC path must be empty (no containers on that host).
 */
export async function mountSmallLxcFs(hostName: string, sizeMb: number): Promise<SmallFs> {
  const { state, host } = await hostOf(hostName);
  const mountPoint = host.lxcPath;
  const image = imagePath(state.info.stateDir, hostName);
  await mkdir(dirname(image), { recursive: true });
  await rm(image, { force: true });
  await mountExt4Image(image, mountPoint, `${sizeMb}M`, ['-m', '0', '-L', `ferry-${hostName}`]);
  const fs = await statfs(mountPoint);
  const sizeBytes = Number(fs.blocks) * Number(fs.bsize);
  // The host must see the same file system at its LXC path.
  const seen = await hostRun(host, 'stat', ['-f', '-c', '%b %S', mountPoint], { timeoutMs: 10_000 });
  const [blocks, bsize] = seen.stdout.trim().split(' ').map(Number);
  if ((blocks ?? 0) * (bsize ?? 0) !== sizeBytes) {
    await unmountSmallLxcFs(hostName).catch(() => undefined);
    throw new FerryError('LAB_MOUNT_NOT_PROPAGATED', `${mountPoint} on ${hostName} does not show the ${sizeMb} MiB file system (host sees "${seen.stdout.trim()}")`);
  }
  return { host: hostName, mountPoint, image, sizeBytes };
}

/** Unmounts what mountSmallLxcFs mounted (no-op when nothing is mounted there) and deletes the image. */
export async function unmountSmallLxcFs(hostName: string): Promise<void> {
  const { state, host } = await hostOf(hostName);
  const image = imagePath(state.info.stateDir, hostName);
  for (let i = 0; i < 20 && (await isMountPoint(host.lxcPath)); i++) {
    if (await succeeds('umount', [host.lxcPath], { timeoutMs: 30_000 })) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (await isMountPoint(host.lxcPath)) {
    throw new FerryError('LAB_UMOUNT_FAILED', `${host.lxcPath} is still mounted (busy?)`);
  }
  if (existsSync(image)) await rm(image, { force: true });
}


/**
 * Identity of the lab's kernel objects: the namespaces' nsfs inodes and the switch's ifindex.
 * Names alone cannot tell our lab from one that another state dir brought up after a `lab down`
 * (which sweeps the scheme's names whoever made them) removed ours.
 */
export async function labIdentity(): Promise<string> {
  const { info } = await requireUp();
  const parts: string[] = [];
  for (const ns of [...info.hosts.map((h) => h.netns), info.client.netns]) {
    const st = await stat(`/run/netns/${ns}`).catch(() => null);
    parts.push(`${ns}:${st ? String(st.ino) : 'missing'}`);
  }
  const idx = await readFile(`/sys/class/net/${info.switch.bridge}/ifindex`, 'utf8').catch(() => 'missing');
  parts.push(`${info.switch.bridge}:${idx.trim()}`);
  return parts.join(' ');
}

/**
 * Our lab's kernel objects were removed (and maybe made again by another state dir's lab):
 * `lab down` would now sweep the other lab by name. Instead stop what is ours alone (processes
 * marked with our lab dir or running in it, our Redis), unmount and delete our lab dir.
 */
export async function abandonReplacedLab(): Promise<string[]> {
  const lab = layout();
  const notes: string[] = [];
  const ours: ProcId[] = [...(await pidsWithEnv(LAB_ENV, lab.root))];
  for (const e of await readdir('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    const root = await readlink(`/proc/${pid}/root`).catch(() => '');
    if (cmd.includes(`${lab.root}/`) || root.startsWith(`${lab.root}/`)) {
      const id = await procId(pid);
      if (id && !ours.some((o) => o.pid === pid)) ours.push(id);
    }
  }
  for (const id of ours) await stopProcess(id, 'SIGKILL');
  if (ours.length) notes.push(`stopped ${ours.length} process(es) of ours`);
  if (await stopEmbeddedRedis()) notes.push('stopped our redis');
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === lab.root || p.startsWith(`${lab.root}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m], { timeoutMs: 30_000 }).catch(() => undefined);
  await rm(lab.root, { recursive: true, force: true });
  notes.push(`removed ${lab.root}`);
  return notes;
}
