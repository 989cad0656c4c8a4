import { CommandError, type TransferStats } from '@ferry/core';
import type { Progress } from '../context.js';
import { run } from '@ferry/infra';
import { classifyRsyncError, onlySourceChanged } from './rsync-errors.js';
import { rsyncArgs } from './rsync-flags.js';
import { lockedRsyncPath } from './receiver-lock.js';
import { rsyncRemoteShell, type SshTarget } from './ssh.js';

export interface RsyncProgress {
  /** Bytes of file data handled so far in this run (rsync's progress2 counter). */
  bytes: number;
  percent: number;
  rate: string;
  eta: string;
  /** Files transferred so far (`xfr#N`). */
  transferred?: number;
  /** `to-chk=R/T`: files still to check, of T known so far. */
  toCheck?: number;
  total?: number;
}

/** One `--info=progress2` line, e.g. `  1,234,567  45%  12.34MB/s    0:00:03 (xfr#12, to-chk=3/40)`. */
export function parseProgress2Line(line: string): RsyncProgress | undefined {
  const m = /^\s*([\d,.]+)\s+(\d+)%\s+(\S+)\s+(\d+:\d+:\d+)(?:\s+\(xfr#(\d+),\s+(?:to|ir)-chk=(\d+)\/(\d+)\))?/.exec(line);
  if (!m) return undefined;
  return {
    bytes: Number(m[1]!.replace(/[,.]/g, '')),
    percent: Number(m[2]),
    rate: m[3]!,
    eta: m[4]!,
    ...(m[5] !== undefined ? { transferred: Number(m[5]), toCheck: Number(m[6]), total: Number(m[7]) } : {}),
  };
}

/**
 * What a pass reports to `ferry watch` from one progress line. Until the first byte of file data
 * moves, rsync is still building and comparing its file list (a checksum pass reads every listed
 * file): its line says 0% at 0.00kB/s for as long as that takes, so the pass reports the files
 * it has listed so far instead.
 */
export function transferProgress(stage: string, pass: number | undefined, p: RsyncProgress): Progress {
  const base = { stage, ...(pass !== undefined ? { pass } : {}) };
  if (p.bytes === 0 && !p.transferred) return { ...base, message: p.total !== undefined ? `scanning ${p.total} files` : 'scanning' };
  return { ...base, bytes: p.bytes, percent: p.percent, rate: p.rate };
}

function statNumber(text: string, label: string): number | undefined {
  const re = new RegExp(`^${label}:\\s*([\\d,.]+)`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]!.replace(/[,.]/g, '')) : undefined;
}

/** The numbers of `--stats` that ferry reports (`ms` is measured by the caller). */
export function parseRsyncStats(text: string): Omit<TransferStats, 'ms'> & { totalFileSize?: number } {
  const bytesSent = statNumber(text, 'Total bytes sent');
  const literalBytes = statNumber(text, 'Literal data');
  if (bytesSent === undefined || literalBytes === undefined) {
    throw new Error(`rsync --stats output not found in: ${text.slice(-500)}`);
  }
  const transferred = statNumber(text, 'Number of regular files transferred') ?? 0;
  const deleted = statNumber(text, 'Number of deleted files') ?? 0;
  const totalFileSize = statNumber(text, 'Total file size');
  return {
    bytesSent,
    literalBytes,
    filesChanged: transferred + deleted,
    ...(totalFileSize !== undefined ? { totalFileSize } : {}),
  };
}

export interface PushOptions {
  /** Local directory whose contents are mirrored (a trailing `/` is implied). */
  source: string;
  target: SshTarget;
  /** Absolute destination directory on the peer (created if missing; its parent must exist). */
  dest: string;
  /** Label of the peer, for messages. */
  peerLabel?: string;
  bwlimitKBps?: number;
  excludes?: readonly string[];
  onProgress?: (p: RsyncProgress) => void;
  signal?: AbortSignal;
  /** Hard limit on the whole run. */
  timeoutMs?: number;
  /** `container` (mirror with --delete etc.) or `plain` (add files, delete nothing). */
  profile?: 'container' | 'plain';
  /** Source operands are the given files (relative to `source`) instead of the directory. */
  files?: readonly string[];
  /** Receiver lock on the peer (see receiver-lock.ts): the remote rsync runs under it. */
  receiverLock?: string;
  /** Further options placed before the operands (e.g. `--copy-dest=DIR`). */
  extraArgs?: readonly string[];
  /** Absolute directory on the peer for interrupted files (outside the mirrored tree). */
  partialDir?: string;
  /** Compare content, not size and mtime (tracked passes). */
  checksum?: boolean;
  /** Send only the paths listed in this NUL-separated file (see `RsyncArgOptions.filesFrom`). */
  filesFrom?: string;
  /**
   * The source is at rest (frozen or stopped): a file that vanished (exit 24) means the copy is
   * not the source's state, so it fails instead of counting as success.
   */
  atRest?: boolean;
  /** Seconds of I/O silence after which rsync gives up (default 30). */
  ioTimeoutSec?: number;
}

/** A copy between two directories of this host (same flags, no ssh). */
export interface LocalCopyOptions {
  source: string;
  /** Absolute destination directory here (created if missing; its parent must exist). */
  dest: string;
  bwlimitKBps?: number;
  excludes?: readonly string[];
  extraArgs?: readonly string[];
  onProgress?: (p: RsyncProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
  profile?: 'container' | 'plain';
  partialDir?: string;
  checksum?: boolean;
  filesFrom?: string;
  atRest?: boolean;
}

/** `host:path/`: the user travels in the remote shell's `-l` (sshOptions), not in the spec. */
function remoteSpec(t: SshTarget, dest: string): string {
  const host = t.address.includes(':') ? `[${t.address}]` : t.address;
  return `${host}:${dest.replace(/\/+$/, '')}/`;
}

/**
 * Pushes a local directory to a peer over ssh with rsync and returns the pass's statistics.
 * Exit 24 (source files vanished while copying), and 23 when every error was a file changing under
 * the read, count as success while the container runs: the next pass picks the state up. At rest
 * (`atRest`) both are failures. Failures are classified
 * FerryErrors (see `classifyRsyncError`).
 */
export async function rsyncPush(o: PushOptions): Promise<TransferStats> {
  const args = rsyncArgs({
    remoteShell: rsyncRemoteShell(o.target),
    ...(o.bwlimitKBps !== undefined ? { bwlimitKBps: o.bwlimitKBps } : {}),
    ...(o.excludes ? { excludes: o.excludes } : {}),
    ...(o.partialDir !== undefined ? { partialDir: o.partialDir } : {}),
    ...(o.checksum ? { checksum: true } : {}),
    ...(o.filesFrom !== undefined ? { filesFrom: o.filesFrom } : {}),
    ...(o.ioTimeoutSec !== undefined ? { ioTimeoutSec: o.ioTimeoutSec } : {}),
    profile: o.profile ?? 'container',
  });
  if (o.receiverLock) args.push(`--rsync-path=${lockedRsyncPath(o.receiverLock)}`);
  args.push(...(o.extraArgs ?? []));
  const src = o.source.replace(/\/+$/, '') || '/';
  const operands = o.files ? o.files.map((f) => `${src}/${f}`) : [`${src}/`];
  args.push('--', ...operands, remoteSpec(o.target, o.dest));
  return runRsync(args, o, { peer: o.peerLabel ?? o.target.address, dest: o.dest });
}

/**
 * Mirrors a directory to another directory of this host with the same flags as a push (no ssh,
 * no remote shell). Same statistics and error classification as `rsyncPush`.
 */
export async function rsyncLocal(o: LocalCopyOptions): Promise<TransferStats> {
  const args = rsyncArgs({
    ...(o.bwlimitKBps !== undefined ? { bwlimitKBps: o.bwlimitKBps } : {}),
    ...(o.excludes ? { excludes: o.excludes } : {}),
    ...(o.partialDir !== undefined ? { partialDir: o.partialDir } : {}),
    ...(o.checksum ? { checksum: true } : {}),
    ...(o.filesFrom !== undefined ? { filesFrom: o.filesFrom } : {}),
    profile: o.profile ?? 'container',
  });
  args.push(...(o.extraArgs ?? []));
  const src = o.source.replace(/\/+$/, '') || '/';
  args.push('--', `${src}/`, `${o.dest.replace(/\/+$/, '')}/`);
  return runRsync(args, o, { peer: 'localhost', dest: o.dest });
}

async function runRsync(
  args: string[],
  o: { onProgress?: (p: RsyncProgress) => void; signal?: AbortSignal; timeoutMs?: number; atRest?: boolean },
  where: { peer: string; dest: string },
): Promise<TransferStats> {
  // Keep only the tail of stdout: progress lines can be many; the stats come last.
  let tail = '';
  let pending = '';
  const onStdout = (chunk: string) => {
    // Trimmed now and then, not at every chunk: rsync writes a progress line per file (reading
    // them cost the source's worker ~0.4 s of CPU in a 100,000-file pass, profiled, beside rsync
    // and ssh on a busy machine).
    tail += chunk;
    if (tail.length > 256 * 1024) tail = tail.slice(-64 * 1024);
    if (!o.onProgress) return;
    // Each progress line supersedes the ones before it: only the last complete line of a chunk
    // is read (one per file would be read otherwise, most of them dropped by the step's throttle).
    pending += chunk;
    const end = Math.max(pending.lastIndexOf('\r'), pending.lastIndexOf('\n'));
    if (end < 0) return;
    const lines = pending.slice(0, end);
    pending = pending.slice(end + 1);
    for (let to = lines.length; to > 0; ) {
      const from = Math.max(lines.lastIndexOf('\r', to - 1), lines.lastIndexOf('\n', to - 1)) + 1;
      const p = parseProgress2Line(lines.slice(from, to));
      if (p) {
        o.onProgress(p);
        break;
      }
      to = from - 1;
    }
  };
  const started = Date.now();
  try {
    await run('rsync', args, {
      env: { ...process.env, LC_ALL: 'C' },
      keep: 64 * 1024, // stdout is read here, as it comes (the stats are in `tail`)
      okExitCodes: o.atRest ? [0] : [0, 24],
      onStdout,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    });
  } catch (e) {
    // While the container runs, a file rewritten under the pass is the next pass's business.
    const racedWriter = !o.atRest && e instanceof CommandError && onlySourceChanged(e.failure.exitCode, e.failure.stderrTail);
    if (!racedWriter) throw classifyRsyncError(e, where);
  }
  const s = parseRsyncStats(tail);
  return { bytesSent: s.bytesSent, literalBytes: s.literalBytes, filesChanged: s.filesChanged, ms: Date.now() - started };
}
