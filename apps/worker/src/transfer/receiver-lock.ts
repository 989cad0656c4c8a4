import { rm } from 'node:fs/promises';
import { FerryError } from '@ferry/core';
import { run } from '@ferry/infra';

/**
 * One rsync receiver at a time per container directory on a host. A pass cut off by the network
 * leaves its receiver (`rsync --server`) running on the target until its I/O timeout; without a
 * lock it would go on writing — renaming older partial files into place — beside the next pass,
 * and even after the restore. Receivers run under `flock` on this file, and the target's restore
 * and discard take the same lock before they touch the directory.
 */
export function receiverLockPath(lxcPath: string, container: string): string {
  const p = `${lxcPath.replace(/\/+$/, '')}/.${container}.ferry-lock`;
  // It reaches the peer inside rsync's --rsync-path, a command line its shell reads.
  if (!/^[A-Za-z0-9_./-]+$/.test(p)) throw new FerryError('UNSAFE_PATH', `refusing a lock path with unusual characters: ${p}`);
  return p;
}

/**
 * The receiver's directory for interrupted files of one container dir: beside it in the LXC path,
 * never inside the container's tree (a name can't start with `.`, so no container is called so).
 */
export function receiverPartialDir(lxcPath: string, container: string): string {
  return `${lxcPath.replace(/\/+$/, '')}/.${container}.ferry-partial`;
}

/** Seconds a new receiver waits for a lingering one (which gives up within the I/O timeout). */
export const RECEIVER_WAIT_S = 60;

/** `--rsync-path` running the receiver under the directory's lock. */
export function lockedRsyncPath(lock: string): string {
  return `flock -w ${RECEIVER_WAIT_S} ${lock} rsync`;
}

/** Waits until no receiver holds the directory (on this host). */
export async function waitForReceivers(lock: string, signal?: AbortSignal): Promise<void> {
  await run('flock', ['-w', String(RECEIVER_WAIT_S + 30), lock, 'true'], { timeoutMs: (RECEIVER_WAIT_S + 40) * 1000, ...(signal ? { signal } : {}) });
}

/** What interrupted passes left for a container dir of this host (beside it, never inside it). */
export async function removePartialDir(lxcPath: string, container: string): Promise<void> {
  await rm(receiverPartialDir(lxcPath, container), { recursive: true, force: true });
}
