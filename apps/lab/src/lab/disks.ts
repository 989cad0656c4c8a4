import { mkdir } from 'node:fs/promises';
import { run, succeeds } from '@ferry/infra';
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
 * The loop device stays buffered: with direct I/O the first pre-copy pass of a million files took
 * 1.5x and 1.6x a cold copy, against 1.0x buffered.
 */

/** Size each image claims (sparse: only what is written takes space). FERRY_LAB_DISK_GIB. */
export function diskGiB(): number {
  const v = Number(process.env.FERRY_LAB_DISK_GIB ?? 32);
  if (!Number.isInteger(v) || v < 1) throw new Error(`FERRY_LAB_DISK_GIB must be a whole number of GiB ≥ 1, not ${process.env.FERRY_LAB_DISK_GIB}`);
  return v;
}

/** Makes an ext4 file system in `image` (`size` as truncate takes it) and loop-mounts it at `mountPoint`. */
export async function mountExt4Image(image: string, mountPoint: string, size: string, mkfsArgs: readonly string[] = [], mountOpts: readonly string[] = []): Promise<void> {
  await run('truncate', ['-s', size, image], T);
  await run('mkfs.ext4', ['-q', '-F', ...mkfsArgs, image], T);
  await run('mount', ['-o', ['loop', ...mountOpts].join(','), image, mountPoint], T);
}

const T = { timeoutMs: 60_000 };

export async function makeHostDisk(lab: Layout, name: string): Promise<void> {
  const h = lab.host(name);
  await mkdir(h.disk, { recursive: true });
  // One inode per 8 KiB (a million-file container and its copy fit); the inode tables and the
  // journal are left for the kernel to initialise lazily, and noinit_itable stops it doing so in the
  // background, where it would write gigabytes during the tests it is meant to host.
  await mountExt4Image(h.diskImage, h.disk, `${diskGiB()}G`, ['-i', '8192', '-E', 'lazy_itable_init=1,lazy_journal_init=1'], ['noinit_itable']);
  await mkdir(h.lxcPath, { recursive: true });
  await mkdir(h.stateDir, { recursive: true });
}

export function isMountPoint(path: string): Promise<boolean> {
  return succeeds('mountpoint', ['-q', path], { timeoutMs: 5000 });
}
