import { CommandError, FerryError } from '@ferry/core';

/** rsync's documented exit codes (man rsync, EXIT VALUES). */
export const RSYNC_EXIT: Record<number, string> = {
  1: 'syntax or usage error',
  2: 'protocol incompatibility',
  3: 'errors selecting input/output files, dirs',
  4: 'requested action not supported',
  5: 'error starting client-server protocol',
  6: 'daemon unable to append to log-file',
  10: 'error in socket I/O',
  11: 'error in file I/O',
  12: 'error in rsync protocol data stream',
  13: 'errors with program diagnostics',
  14: 'error in IPC code',
  20: 'received SIGUSR1 or SIGINT',
  21: 'some error returned by waitpid()',
  22: 'error allocating core memory buffers',
  23: 'partial transfer due to error',
  24: 'partial transfer due to vanished source files',
  25: 'the --max-delete limit stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
  255: 'ssh failed (connection or authentication)',
};

/** Exits that mean the link or the peer went away; which one a refused connection gives is a race. */
export const RSYNC_NETWORK_EXITS: ReadonlySet<number> = new Set([10, 12, 30, 35, 255]);
const PARTIAL = new Set([23, 24]);
const PROTOCOL = new Set([1, 2, 4]);

export interface TransferWhere {
  /** Peer name or address, for messages. */
  peer: string;
  /** Destination directory on the peer. */
  dest: string;
}

/**
 * rsync's lines for a source file that changed while it was read: shrunk under the sender's map
 * ("read errors mapping"), gone ("file has vanished"), or different from what was checksummed
 * ("failed verification"), and the summary line of such a run. rsync gives no other signal for
 * them than its stderr, and exit 23 also stands for real errors (permission denied, I/O errors).
 */
const SOURCE_CHANGED_LINES = [
  /read errors mapping /,
  /file has vanished: /,
  /failed verification -- update (discarded|retained)/,
  /^rsync error: some files(\/attrs were not transferred| vanished before they could be transferred)/,
  /^rsync warning: some files vanished before they could be transferred/,
];

/**
 * True when a partial run (23 or 24) failed only because source files changed while they were
 * read. On a running container that is the pass racing the writer, not an error: the change
 * tracker saw the write, and the pass at rest sends the file (which then fails on anything).
 */
export function onlySourceChanged(exitCode: number | null, stderr: string): boolean {
  if (exitCode === null || !PARTIAL.has(exitCode)) return false;
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length > 0 && lines.every((l) => SOURCE_CHANGED_LINES.some((re) => re.test(l)));
}

function firstLine(stderr: string, re: RegExp): string | undefined {
  return stderr.split('\n').find((l) => re.test(l))?.trim();
}

/**
 * Turns a failed rsync run into a FerryError with a stable code and retryable flag:
 * - no space on the receiver (ENOSPC / EDQUOT, whatever the exit code): TARGET_DISK_FULL, not retryable;
 * - host key or authentication refused by ssh: PEER_HOST_KEY / PEER_AUTH, not retryable;
 * - network-ish (10, 12, 30, 35, 255), a timeout or a signal (we were aborted): TRANSFER_NETWORK /
 *   TRANSFER_INTERRUPTED, retryable (partial files are kept in the partial dir for the next try);
 * - partial transfer (23, 24): TRANSFER_PARTIAL, retryable;
 * - syntax / protocol / unsupported (1, 2, 4): TRANSFER_PROTOCOL, not retryable;
 * - anything else: TRANSFER_FAILED, not retryable.
 */
export function classifyRsyncError(e: unknown, where: TransferWhere): unknown {
  if (!(e instanceof CommandError)) return e;
  const f = e.failure;
  const stderr = f.stderrTail;
  const code = f.exitCode;
  const meaning = code === null ? 'did not run' : (RSYNC_EXIT[code] ?? `exit ${code}`);
  const details = { ...f, rsyncMeaning: meaning, peer: where.peer, dest: where.dest };
  const mk = (c: string, retryable: boolean, message: string) =>
    new FerryError(c, message, { retryable, details, cause: e });

  const full = firstLine(stderr, /No space left on device|Disk quota exceeded/);
  if (full) {
    const file = /"([^"]+)"/.exec(full)?.[1];
    return mk(
      'TARGET_DISK_FULL',
      false,
      `target disk full: no space left on ${where.peer} under ${where.dest}${file ? ` (writing ${file})` : ''}: ${full}`,
    );
  }
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(stderr)) {
    return mk('PEER_HOST_KEY', false, `rsync to ${where.peer}: ssh host key not accepted (pinned known_hosts)`);
  }
  if (/Permission denied \(publickey/.test(stderr)) {
    return mk('PEER_AUTH', false, `rsync to ${where.peer}: ssh authentication refused`);
  }
  const tail = stderr.trim().split('\n').slice(-3).join(' | ');
  if (code === null && !f.timedOut && !f.signal) {
    return mk('TRANSFER_FAILED', false, `rsync could not be started: ${tail}`);
  }
  if (f.timedOut || f.signal || code === 20) {
    return mk('TRANSFER_INTERRUPTED', true, `rsync to ${where.peer} was interrupted (${f.timedOut ? 'timed out' : (f.signal ?? meaning)})`);
  }
  if (code !== null && RSYNC_NETWORK_EXITS.has(code)) {
    return mk('TRANSFER_NETWORK', true, `rsync to ${where.peer}:${where.dest} failed (${code}: ${meaning}): ${tail}`);
  }
  if (code !== null && PARTIAL.has(code)) {
    return mk('TRANSFER_PARTIAL', true, `rsync to ${where.peer}:${where.dest} was partial (${code}: ${meaning}): ${tail}`);
  }
  if (code !== null && PROTOCOL.has(code)) {
    return mk('TRANSFER_PROTOCOL', false, `rsync to ${where.peer}:${where.dest} failed (${code}: ${meaning}): ${tail}`);
  }
  return mk('TRANSFER_FAILED', false, `rsync to ${where.peer}:${where.dest} failed (${meaning}): ${tail}`);
}
