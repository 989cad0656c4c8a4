import { mkdir, readFile } from 'node:fs/promises';
import { run } from '@ferry/infra';
import type { Layout } from './paths.js';

/**
 * Each lab host gets a file system of its own (ext4 in a sparse image, loop-mounted at its `disk`
 * dir), as separate machines have. Sharing one would be a lab artifact with a cost: the source's
 * change watcher marks the whole file system (fanotify, FAN_MARK_FILESYSTEM), so it would also
 * receive every write the target makes while receiving the copy; and `df` on a host would count
 * every other host's containers.
 *
 * Mounted in the root namespace below the (shared) lab dir, so every host's mount namespace sees
 * it. `down` unmounts it with everything else below the lab dir (mount's loop is autocleared).
 */

/** Size each image claims (sparse: only what is written takes space). FERRY_LAB_DISK_GIB. */
export function diskGiB(): number {
  const v = Number(process.env.FERRY_LAB_DISK_GIB ?? 32);
  if (!Number.isInteger(v) || v < 1) throw new Error(`FERRY_LAB_DISK_GIB must be a whole number of GiB ≥ 1, not ${process.env.FERRY_LAB_DISK_GIB}`);
  return v;
}

const T = { timeoutMs: 60_000 };

export async function makeHostDisk(lab: Layout, name: string): Promise<void> {
  const h = lab.host(name);
  await mkdir(h.disk, { recursive: true });
  await run('truncate', ['-s', `${diskGiB()}G`, h.diskImage], T);
  // One inode per 8 KiB (a million-file container and its copy fit); the inode tables and the
  // journal are left for the kernel to initialise lazily, and noinit_itable stops it doing so in the
  // background, where it would write gigabytes during the tests it is meant to host.
  await run('mkfs.ext4', ['-q', '-F', '-i', '8192', '-E', 'lazy_itable_init=1,lazy_journal_init=1', h.diskImage], T);
  await run('mount', ['-o', 'loop,noinit_itable', h.diskImage, h.disk], T);
  await mkdir(h.lxcPath, { recursive: true });
  await mkdir(h.stateDir, { recursive: true });
}

/** True when the host's disk is mounted at its place. */
export async function hostDiskMounted(lab: Layout, name: string): Promise<boolean> {
  const want = lab.host(name).disk;
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === want);
}
