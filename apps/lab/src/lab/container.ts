import { randomBytes } from 'node:crypto';
import { appendFile, chmod, copyFile, mkdir, open, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '@ferry/core';
import { run, succeeds } from '@ferry/infra';
import { hostRun, type HostEnv } from './hostenv.js';
import { HOST_BRIDGE, NS_UPLINK, PREFIX_LEN, type Layout } from './paths.js';
import type { ContainerRecord } from './state.js';

/** Lab containers: busybox LXC containers with a static address, a web page and optional data. */

const BULK_FILE_MB = 4;

/**
 * Passed to `lxc-create -f`, so the template appends to it instead of /etc/lxc/default.conf. An
 * image has no template to add the rest (`-t none`): the common settings, rootfs and name come here.
 */
function seedConfig(rec: ContainerRecord, image: boolean): string {
  return [
    ...(image ? ['lxc.include = /usr/share/lxc/config/common.conf', `lxc.rootfs.path = dir:${rec.rootfs}`, `lxc.uts.name = ${rec.name}`] : []),
    'lxc.net.0.type = veth',
    `lxc.net.0.link = ${HOST_BRIDGE}`,
    'lxc.net.0.flags = up',
    `lxc.net.0.name = ${NS_UPLINK}`,
    `lxc.net.0.hwaddr = ${rec.mac}`,
    `lxc.net.0.ipv4.address = ${rec.ip}/${PREFIX_LEN}`,
    // IPv6 link-up packets would teach the switches the new location and mask a missing ARP refresh.
    'lxc.sysctl.net.ipv6.conf.all.disable_ipv6 = 1',
    'lxc.sysctl.net.ipv6.conf.default.disable_ipv6 = 1',
    'lxc.start.auto = 0',
    '',
  ].join('\n');
}

/**
 * Our init script. The template's runs udhcpc, which flushes the static address. The writer
 * resumes its counter from the file, so it keeps rising across a stop/start (e.g. a migration).
 * It also rewrites /srv/same in place with 4 KiB of new random bytes and puts its mtime back, as
 * `cp -p`, `tar x` or a package manager do: a copy that trusts size + mtime never sees it change.
 * `first-boot` runs the chaos writer instead (see CHAOS_WRITER), on the container's first boot only.
 */
function rcS(writer: Writer, memoryMb?: number, cpuMilli?: number): string {
  const lines = [
    '#!/bin/sh',
    '# written by ferry lab: the address comes from the LXC config; no udhcpc',
    'ip link set lo up',
    'httpd -p 80 -h /www',
    // No stray fds: CRIU dumps only what it can map.
    ...(memoryMb ? [`/usr/bin/ferry-memsvc ${memoryMb} </dev/null >/dev/null 2>&1 &`] : []),
    // Held to cpuMilli by the CPU quota in the config (cpuQuota).
    ...(cpuMilli ? ['(while :; do :; done) </dev/null >/dev/null 2>&1 &'] : []),
  ];
  if (writer === 'first-boot') {
    lines.push(
      `if [ ! -e /${CHAOS_DIR}/.booted ]; then`,
      `  : > /${CHAOS_DIR}/.booted`,
      `  sh /${CHAOS_SCRIPT} </dev/null >/dev/null 2>&1 &`,
      'fi',
    );
  } else if (writer) {
    lines.push(
      'mkdir -p /data/churn /srv',
      '(',
      '  n=$(cat /data/churn/counter 2>/dev/null)',
      '  case "$n" in ""|*[!0-9]*) n=0 ;; esac',
      '  while true; do',
      '    n=$((n + 1))',
      '    for f in a b c; do echo "$n" > /data/churn/$f; done',
      '    echo "$n" > /data/churn/counter.tmp && mv /data/churn/counter.tmp /data/churn/counter',
      '    dd if=/dev/urandom of=/srv/same bs=4096 count=1 conv=notrunc 2>/dev/null',
      '    touch -d "2020-01-01 00:00:00" /srv/same',
      '    usleep 100000',
      '  done',
      ') </dev/null >/dev/null 2>&1 &',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The lab's in-memory service (apps/lab/native/memsvc.c, static), built by scripts/setup.sh. */
export function memsvcBin(): string {
  const bin = fileURLToPath(new URL('../../native/ferry-memsvc', import.meta.url));
  if (!existsSync(bin)) throw new FerryError('LAB_MEMSVC_NOT_BUILT', `${bin} does not exist; run scripts/setup.sh (it builds it with cc -static)`);
  return bin;
}

/**
 * What CRIU needs of the busybox template's config (see LAB-NOTES): no ttys or console to find a
 * master for at restore, and no bind mounts of host library dirs (busybox is static; a source that
 * is a symlink, /lib -> usr/lib, fails the restore). Restart mode does not care either way.
 */
async function criuFriendly(config: string): Promise<void> {
  const lines = (await readFile(config, 'utf8'))
    .split('\n')
    .filter((l) => !/^lxc\.(tty\.max|console\.path)\s*=/.test(l) && !/^lxc\.mount\.entry\s*=\s*\/(usr\/)?lib(64)?\s/.test(l));
  await writeFile(config, [...lines.filter((l, i) => l || i < lines.length - 1), 'lxc.tty.max = 0', 'lxc.console.path = none', ''].join('\n'));
}

export type Writer = boolean | 'first-boot';

/** The chaos writer's directory and script, relative to the rootfs. */
export const CHAOS_DIR = 'srv/chaos';
export const CHAOS_SCRIPT = 'etc/chaos-writer';

/**
 * The chaos writer (busybox sh), started by rcS on the first boot only: rcS creates
 * /srv/chaos/.booted before starting it, the copies carry that file, so a copy restarted
 * elsewhere (a restart-mode migration's target, a rolled-back source started again) does not
 * write and keeps the tree as it was at the freeze. Every 250 ms, all under /srv/chaos: a new
 * file, an append, a rename, a delete, a hard link moved to the new file, a directory made and
 * one removed, a chmod (only the ctime moves), and /srv/chaos/same rewritten in place with the
 * same size and its mtime put back (as `cp -p` or `tar x` do: size + mtime never show it).
 * /srv/chaos/count holds the number of rounds.
 */
const CHAOS_WRITER = `#!/bin/sh
# ferry lab chaos writer: changes /${CHAOS_DIR} while the container runs its first boot (see rcS)
cd /${CHAOS_DIR} || exit 1
n=0
while true; do
  n=$((n + 1))
  echo "$n" > new.$n
  echo "round $n" >> log
  [ -e new.$((n - 1)) ] && mv new.$((n - 1)) moved.$((n - 1))
  rm -f moved.$((n - 6))
  ln -f new.$n link
  mkdir dir.$n && echo "$n" > dir.$n/f
  rm -rf dir.$((n - 3))
  if [ $((n % 2)) = 0 ]; then chmod 600 mode; else chmod 644 mode; fi
  dd if=/dev/urandom of=same bs=4096 count=1 conv=notrunc 2>/dev/null
  touch -d "2020-01-01 00:00:00" same
  echo "$n" > count
  usleep 250000
done
`;

/** The chaos writer's script and the files it starts from (mode, same: 4 KiB, mtime 2020-01-01). */
async function installChaosWriter(root: string): Promise<void> {
  const dir = join(root, CHAOS_DIR);
  await mkdir(dir, { recursive: true });
  await writeFile(join(root, CHAOS_SCRIPT), CHAOS_WRITER);
  await chmod(join(root, CHAOS_SCRIPT), 0o755);
  await writeFile(join(dir, 'mode'), 'its mode changes\n');
  await writeFile(join(dir, 'same'), randomBytes(4096));
  const then = new Date('2020-01-01T00:00:00Z');
  await utimes(join(dir, 'same'), then, then);
  await writeFile(join(dir, 'count'), '0\n');
}

/** `sizeMb` MiB of incompressible data in files of a few MiB, read from /dev/urandom by two writers. */
async function writeBulk(dir: string, sizeMb: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files: { path: string; bytes: number }[] = [];
  for (let i = 0, left = sizeMb; left > 0; i++, left -= BULK_FILE_MB) {
    files.push({ path: join(dir, `blob-${String(i).padStart(4, '0')}.bin`), bytes: Math.min(left, BULK_FILE_MB) << 20 });
  }
  const writer = async () => {
    const random = await open('/dev/urandom', 'r');
    try {
      const buf = Buffer.allocUnsafe(BULK_FILE_MB << 20);
      for (let f = files.shift(); f; f = files.shift()) {
        for (let off = 0; off < f.bytes; ) off += (await random.read(buf, off, f.bytes - off, null)).bytesRead;
        await writeFile(f.path, buf.subarray(0, f.bytes));
      }
    } finally {
      await random.close();
    }
  };
  await Promise.all([writer(), writer()]);
}

/** Moves the staged data into the rootfs; copies if the LXC path is another file system. */
async function moveInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    // cp -a, not node's cp: device nodes, hard links, ACLs and xattrs come along as they are.
    await run('cp', ['-a', '--', from, to], { timeoutMs: 1_800_000 });
    await rm(from, { recursive: true, force: true });
  }
}

/** `count` files of about 100 bytes, 1,000 per directory (a tree with many inodes and little data). */
async function writeSmallFiles(dir: string, count: number): Promise<void> {
  const body = 'x'.repeat(96);
  for (let d = 0; d * 1000 < count; d++) {
    const sub = join(dir, `d${String(d).padStart(5, '0')}`);
    await mkdir(sub, { recursive: true });
    const n = Math.min(1000, count - d * 1000);
    const writes: Promise<void>[] = [];
    for (let f = 0; f < n; f++) writes.push(writeFile(join(sub, `f${String(f).padStart(4, '0')}`), `${d}.${f}${body}`));
    await Promise.all(writes);
  }
}

/**
 * An image: a root file system made elsewhere, moved in as it is (copied if on another file
 * system). Its /sbin/init serves /srv/www over HTTP on port 80; the lab adds the page.
 */
async function createFromImage(rec: ContainerRecord, lab: Layout, image: string): Promise<void> {
  // lxc-create wants the rootfs that lxc.rootfs.path names to exist already.
  await mkdir(join(rec.lxcPath, rec.name), { recursive: true });
  await moveInto(image, rec.rootfs);
  const seed = join(lab.run, `${rec.name}.lxc.conf`);
  await writeFile(seed, seedConfig(rec, true));
  try {
    await run('lxc-create', ['-P', rec.lxcPath, '-n', rec.name, '-f', seed, '-t', 'none'], { timeoutMs: 60_000 });
  } finally {
    await rm(seed, { force: true });
  }
  const page = join(rec.rootfs, 'srv/www/index.html');
  if (!existsSync(page)) {
    await mkdir(join(rec.rootfs, 'srv/www'), { recursive: true });
    await writeFile(page, `ferry lab container ${rec.name}\n`);
  }
}

/**
 * The config lines holding a container to `milli` thousandths of a core: the CFS quota, by the
 * cgroup version this machine runs (LXC refuses the other one's keys).
 */
export function cpuQuota(milli: number): string[] {
  const period = 100_000;
  const quota = Math.max(1000, Math.round((period * milli) / 1000));
  return existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? [`lxc.cgroup2.cpu.max = ${quota} ${period}`]
    : [`lxc.cgroup.cpu.cfs_period_us = ${period}`, `lxc.cgroup.cpu.cfs_quota_us = ${quota}`];
}

export async function createContainer(
  rec: ContainerRecord,
  lab: Layout,
  opts: { sizeMb: number; writer: Writer; files?: number; memoryMb?: number; cpuMilli?: number; image?: string },
): Promise<void> {
  await mkdir(lab.run, { recursive: true });
  await mkdir(rec.lxcPath, { recursive: true });
  if (opts.image) return createFromImage(rec, lab, opts.image);
  const seed = join(lab.run, `${rec.name}.lxc.conf`);
  await writeFile(seed, seedConfig(rec, false));
  // The data is written while the template runs (both take a few hundred ms), then moved in.
  const staging = join(lab.run, `${rec.name}.bulk`);
  const [created, bulk] = await Promise.allSettled([
    run('lxc-create', ['-P', rec.lxcPath, '-n', rec.name, '-f', seed, '-t', 'busybox'], { timeoutMs: 60_000 }),
    opts.sizeMb > 0 ? writeBulk(staging, opts.sizeMb) : Promise.resolve(),
  ]);
  await rm(seed, { force: true });
  if (created.status === 'rejected' || bulk.status === 'rejected') {
    await rm(staging, { recursive: true, force: true });
    throw created.status === 'rejected' ? created.reason : (bulk as PromiseRejectedResult).reason;
  }
  const root = rec.rootfs;
  await criuFriendly(join(rec.lxcPath, rec.name, 'config'));
  if (opts.cpuMilli) await appendFile(join(rec.lxcPath, rec.name, 'config'), `${cpuQuota(opts.cpuMilli).join('\n')}\n`);
  await writeFile(join(root, 'etc/inittab'), '::sysinit:/etc/init.d/rcS\n');
  if (opts.memoryMb) await copyFile(memsvcBin(), join(root, 'usr/bin/ferry-memsvc'));
  await writeFile(join(root, 'etc/init.d/rcS'), rcS(opts.writer, opts.memoryMb, opts.cpuMilli));
  await chmod(join(root, 'etc/init.d/rcS'), 0o755);
  if (opts.writer === 'first-boot') await installChaosWriter(root);
  await mkdir(join(root, 'www'), { recursive: true });
  await writeFile(join(root, 'www/index.html'), `ferry lab container ${rec.name}\n`);
  await mkdir(join(root, 'data'), { recursive: true });
  // The container's own directory of a name rsync once used for its partial files: it must travel.
  await mkdir(join(root, 'srv/.ferry-partial'), { recursive: true });
  await writeFile(join(root, 'srv/.ferry-partial/keep'), `${rec.name} keeps this\n`);
  if (opts.sizeMb > 0) await moveInto(staging, join(root, 'data/bulk'));
  if (opts.files) await writeSmallFiles(join(root, 'data/small'), opts.files);
}

/** Starts the container in its host's namespace and waits until the client gets its page. */
export async function startContainer(rec: ContainerRecord, host: HostEnv, clientNetns: string): Promise<number> {
  const at = { timeoutMs: 30_000 };
  await hostRun(host, 'lxc-start', ['-P', rec.lxcPath, '-n', rec.name, '-d'], at);
  await hostRun(host, 'lxc-wait', ['-P', rec.lxcPath, '-n', rec.name, '-s', 'RUNNING', '-t', '20'], at);
  // The address may have belonged to a container removed moments ago, with another MAC: the
  // client's neighbour entry for it would stay "reachable" for up to half a minute.
  await run('ip', ['neigh', 'flush', 'to', rec.ip], { netns: clientNetns, timeoutMs: 5000 }).catch(() => undefined);
  const deadline = Date.now() + 20_000;
  let last = '';
  for (;;) {
    try {
      const { stdout } = await run('busybox', ['wget', '-q', '-O', '-', `http://${rec.ip}/`], { netns: clientNetns, timeoutMs: 2000 });
      if (stdout.includes(rec.name)) break;
      last = `unexpected page: ${stdout.slice(0, 200)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw new FerryError('LAB_CONTAINER_NOT_READY', `${rec.name} on ${rec.host} did not serve http://${rec.ip}/ to the client within 20 s: ${last}`);
    }
    await sleep(25);
  }
  return containerPid(rec.lxcPath, rec.name, host);
}

export async function containerPid(lxcPath: string, name: string, host: HostEnv): Promise<number> {
  const { stdout } = await hostRun(host, 'lxc-info', ['-P', lxcPath, '-n', name, '-pH'], { timeoutMs: 10_000 });
  const pid = Number(stdout.trim());
  if (!pid) throw new FerryError('LAB_CONTAINER_NOT_RUNNING', `${name} has no init pid (lxc-info said "${stdout.trim()}")`);
  return pid;
}

/**
 * Best effort kill; a container that is not running is fine. lxc-stop talks to the container's
 * monitor over an abstract socket, which only the monitor's network namespace reaches; without
 * the host's mount namespace (a crashed `up`) `nsenter --net` is enough for that.
 */
export async function stopContainer(lxcPath: string, name: string, host: HostEnv | { netns: string; mountNs: null }): Promise<void> {
  const args = ['-P', lxcPath, '-n', name, '-k'];
  const opts = { timeoutMs: 20_000 };
  if (host.mountNs) await hostRun(host as HostEnv, 'lxc-stop', args, opts).catch(() => undefined);
  else await succeeds('nsenter', [`--net=/run/netns/${host.netns}`, '--', 'lxc-stop', ...args], opts);
}

/** Best effort: kill and delete a container (cleanup after a failed create). */
export async function destroyContainer(lxcPath: string, name: string, host: HostEnv): Promise<void> {
  await stopContainer(lxcPath, name, host);
  await rm(join(lxcPath, name), { recursive: true, force: true });
}

/** Names of the containers defined in an LXC path. */
export async function listContainers(lxcPath: string): Promise<string[]> {
  const entries = await readdir(lxcPath, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && existsSync(join(lxcPath, e.name, 'config'))).map((e) => e.name);
}
