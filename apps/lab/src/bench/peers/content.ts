/**
 * The container content every tool in the peers benchmark moves: a Debian 12 minbase tree
 * (debootstrap, built once and cached), the host's static busybox, an init script (PID 1: an
 * address, busybox httpd on /srv/www, a writer), and per run N MiB of random data, a hard-linked
 * pair, a file with a POSIX ACL and one with a user xattr. LXD gets it as an image, ferry as a
 * lab container's root file system: the same bytes, the same writer.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '@ferry/infra';

/** The writer's files: they change on purpose while a running container moves, so comparisons leave them out. */
export const WRITER_DIR = 'var/lib/peer-writer';

/**
 * PID 1 (minbase has no init system). The address comes from /etc/peer-ip where the container
 * manager does not set one (LXD's bridged nic); ferry's lab sets it in the LXC config.
 */
export const INIT = `#!/bin/bash
# peers bench init (PID 1): address, busybox httpd, writer. No init system.
BB=/usr/local/bin/busybox
$BB ip link set lo up
if [ -f /etc/peer-ip ]; then
  $BB ip link set eth0 up
  $BB ip addr add "$(cat /etc/peer-ip)/24" dev eth0
fi
mkdir -p /srv/www /${WRITER_DIR}
[ -f /srv/www/index.html ] || echo ok > /srv/www/index.html
$BB httpd -f -p 80 -h /srv/www &
HTTPD=$!
(
  n=0
  while :; do
    for i in 1 2 3 4; do echo "$n $EPOCHREALTIME" > /${WRITER_DIR}/f$i; done
    n=$((n + 1))
    sleep 0.1
  done
) &
WRITER=$!
trap 'kill $HTTPD $WRITER 2>/dev/null; exit 0' PWR TERM INT
while :; do sleep 1 & wait $!; done
`;

/** A Debian 12 minbase tree, built once and cached at <work>/base-rootfs (marker: base-rootfs.done). */
async function baseRootfs(work: string, log: (l: string) => void): Promise<string> {
  const dir = join(work, 'base-rootfs');
  const done = join(work, 'base-rootfs.done');
  if (existsSync(done)) return dir;
  await rm(dir, { recursive: true, force: true });
  log('debootstrap --variant=minbase bookworm (once; cached)');
  await run('debootstrap', ['--variant=minbase', 'bookworm', dir, 'http://deb.debian.org/debian'], { timeoutMs: 1_800_000 });
  await writeFile(done, `${new Date().toISOString()}\n`);
  return dir;
}

/** Writes the bench's root file system (minbase + busybox + init) to `tree`, which must not exist. */
export async function writeTree(work: string, tree: string, log: (l: string) => void): Promise<void> {
  const base = await baseRootfs(work, log);
  await run('cp', ['-a', base, tree], { timeoutMs: 300_000 });
  await mkdir(join(tree, 'usr/local/bin'), { recursive: true });
  await copyFile('/bin/busybox', join(tree, 'usr/local/bin/busybox'));
  await chmod(join(tree, 'usr/local/bin/busybox'), 0o755);
  await rm(join(tree, 'sbin/init'), { force: true });
  await writeFile(join(tree, 'sbin/init'), INIT, { mode: 0o755 });
}

/** The per-run data set under <root>/srv/data. */
export async function addData(root: string, sizeMiB: number): Promise<void> {
  const data = join(root, 'srv/data');
  await mkdir(data, { recursive: true });
  if (sizeMiB > 0) {
    await run('dd', ['if=/dev/urandom', `of=${join(data, 'random.bin')}`, 'bs=1M', `count=${sizeMiB}`, 'status=none'], { timeoutMs: 600_000 });
  }
  await writeFile(join(data, 'hardlink-a'), 'one inode, two names\n');
  await run('ln', [join(data, 'hardlink-a'), join(data, 'hardlink-b')], { timeoutMs: 10_000 });
  await writeFile(join(data, 'with-acl'), 'this file has a POSIX ACL\n');
  await run('setfacl', ['-m', 'u:1234:rw', join(data, 'with-acl')], { timeoutMs: 10_000 });
  await writeFile(join(data, 'with-xattr'), 'this file has a user xattr\n');
  await run('setfattr', ['-n', 'user.peers', '-v', 'bench', join(data, 'with-xattr')], { timeoutMs: 10_000 });
}
