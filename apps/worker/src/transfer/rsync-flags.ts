/** The partial directory rsync keeps interrupted files in (relative: one per directory, protected from --delete). */
export const PARTIAL_DIR = '.ferry-partial';

/**
 * What a container's directory needs to arrive identical: archive mode, hard links, ACLs, xattrs,
 * numeric owners (the target's /etc/passwd is irrelevant), device nodes and specials, holes kept
 * as holes, deletions mirrored, and interrupted files kept for the next attempt.
 *
 * `--sparse` is combined with `--partial-dir`, not with `--inplace`: rsync writes each changed
 * file to a new temporary file, where it can skip holes (with --inplace, rsync >= 3.1.3 accepts
 * both but cannot punch holes into existing data).
 */
export const CONTAINER_FLAGS: readonly string[] = [
  '-aHAX',
  '--numeric-ids',
  '--sparse',
  '--devices',
  '--specials',
  '--delete',
  '--partial',
  `--partial-dir=${PARTIAL_DIR}`,
  // Compare modification times to the nanosecond. rsync's default (0) matches whole seconds only:
  // a file rewritten with the same size in the same second as the previous pass is then skipped
  // (measured here with rsync 3.5.0: the target kept the old content), and a directory changed in
  // that second keeps a wrong mtime. Pre-copy followed by a final pass hits exactly that case.
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
}

/** rsync's arguments before the source and destination operands. */
export function rsyncArgs(o: RsyncArgOptions): string[] {
  const args = o.profile === 'plain' ? ['-rlptgoD', '--numeric-ids'] : [...CONTAINER_FLAGS];
  args.push('--info=progress2', '--stats', '--no-human-readable');
  // A receiver cut off from its sender gives up after this much silence (and frees the
  // directory's receiver lock); a live transfer is never silent that long.
  args.push(`--timeout=${o.ioTimeoutSec ?? 30}`);
  if (o.bwlimitKBps !== undefined) args.push(`--bwlimit=${o.bwlimitKBps}`);
  for (const x of o.excludes ?? []) args.push(`--exclude=${x}`);
  if (o.remoteShell !== undefined) args.push('-e', o.remoteShell);
  return args;
}
