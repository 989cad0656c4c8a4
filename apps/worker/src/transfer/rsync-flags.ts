/**
 * What a container's directory needs to arrive identical: archive mode, hard links, ACLs, xattrs,
 * numeric owners (the target's /etc/passwd is irrelevant), device nodes and specials, holes kept
 * as holes, deletions mirrored.
 *
 * Interrupted files are kept in a partial dir that lies outside the tree (`partialDir`, absolute):
 * a relative one would be excluded from the transfer wherever a directory of that name stands in
 * the container, and that directory would be lost. `--sparse` goes with the partial dir, not with
 * `--inplace`: rsync writes each changed file to a new temporary file, where it can skip holes.
 */
export const CONTAINER_FLAGS: readonly string[] = [
  '-aHAX',
  '--numeric-ids',
  '--sparse',
  '--devices',
  '--specials',
  '--delete',
  // Compare modification times to the nanosecond. rsync's default (0) matches whole seconds only:
  // a file rewritten with the same size in the same second as the previous pass is then skipped
  // (measured here with rsync 3.5.0: the target kept the old content), and a directory changed in
  // that second keeps a wrong mtime. Size + mtime is still only a guess: tracked passes (see
  // change-tracker.ts) compare the content of every changed file.
  '--modify-window=-1',
];

export interface RsyncArgOptions {
  /** The `-e` value; omitted for a local copy (both operands on this host). */
  remoteShell?: string;
  bwlimitKBps?: number;
  /** Anchored exclude patterns (also protect those paths from --delete on the receiver). */
  excludes?: readonly string[];
  /** Seconds of I/O silence after which rsync gives up (exit 30). */
  ioTimeoutSec?: number;
  /** Mirror with container flags (default) or just copy a few files (`plain`). */
  profile?: 'container' | 'plain';
  /** Absolute directory on the receiver for interrupted files, resumed by the next pass. */
  partialDir?: string;
  /** Compare file content (`--checksum`), not size and mtime. */
  checksum?: boolean;
  /**
   * A NUL-separated list (file on this host) of the paths to send, relative to the source: no
   * recursion; `dir/.` mirrors that directory's entries (deleting extras there); a listed path
   * missing here is deleted on the receiver.
   */
  filesFrom?: string;
}

/** rsync's arguments before the source and destination operands. */
export function rsyncArgs(o: RsyncArgOptions): string[] {
  const args = o.profile === 'plain' ? ['-rlptgoD', '--numeric-ids'] : [...CONTAINER_FLAGS];
  if (o.partialDir !== undefined) {
    if (!o.partialDir.startsWith('/')) throw new Error(`partial dir must be absolute: ${o.partialDir}`);
    args.push('--partial', `--partial-dir=${o.partialDir}`);
  }
  if (o.checksum) args.push('--checksum');
  if (o.filesFrom !== undefined) args.push('--no-r', '--dirs', `--files-from=${o.filesFrom}`, '--from0', '--delete-missing-args');
  args.push('--info=progress2', '--stats', '--no-human-readable');
  // A receiver cut off from its sender gives up after this much silence (and frees the
  // directory's receiver lock); a live transfer is never silent that long.
  args.push(`--timeout=${o.ioTimeoutSec ?? 30}`);
  if (o.bwlimitKBps !== undefined) args.push(`--bwlimit=${o.bwlimitKBps}`);
  for (const x of o.excludes ?? []) args.push(`--exclude=${x}`);
  if (o.remoteShell !== undefined) args.push('-e', o.remoteShell);
  return args;
}
