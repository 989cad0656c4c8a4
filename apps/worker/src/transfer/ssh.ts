import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError, FerryError, type Peer } from '@ferry/core';
import { run, type RunResult } from '@ferry/infra';

/** How to reach a peer's sshd: address and port of the peer, key and pinned host keys of this host. */
export interface SshTarget {
  address: string;
  port: number;
  user: string;
  /** Private key file of this host. */
  key: string;
  /** known_hosts file with the peer's pinned host key. Strict checking is always on. */
  knownHosts: string;
  connectTimeoutSec?: number;
  /**
   * ssh's keepalive: a peer silent for interval × count seconds ends the connection. Loose by
   * default (5 × 3: a busy link is not a dead one); tight while a container is frozen, where
   * every second of waiting on a dead peer is an outage.
   */
  keepAlive?: { intervalSec: number; countMax: number };
  /**
   * Share one connection among the sessions to this peer (ssh's ControlMaster, the socket at this
   * path in a root-only dir): each rsync or remote check then costs a channel, not a handshake.
   * The master lives on `CONTROL_PERSIST_S` after its last session. Its keepalive is the first
   * session's: at-rest sessions use a master of their own.
   */
  controlPath?: string;
}

const CONTROL_PERSIST_S = 60;
/** Unix socket paths are limited (108 bytes); ssh appends a 17-byte suffix while it sets one up. */
const MAX_CONTROL_PATH = 90;

/**
 * This host's credentials aimed at a peer. With a state dir, sessions share a connection per
 * `link` (`bulk` for copies and checks, `rest` for what runs while a container is frozen).
 */
export function sshTargetFor(self: { sshKey: string; knownHosts: string; stateDir?: string }, peer: Peer, link: 'bulk' | 'rest' = 'bulk'): SshTarget {
  const t: SshTarget = { address: peer.address, port: peer.sshPort, user: peer.sshUser, key: self.sshKey, knownHosts: self.knownHosts };
  if (!self.stateDir) return t;
  const dir = join(self.stateDir, 'ssh');
  const id = createHash('sha256').update(`${t.user}@${t.address}:${t.port}`).digest('hex').slice(0, 12);
  const path = `${dir}/${link}-${id}`;
  if (path.length > MAX_CONTROL_PATH) return t;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { ...t, controlPath: path };
}

/** ssh options (without the program name and the destination). Host keys are always checked. */
export function sshOptions(t: SshTarget): string[] {
  return [
    // No ssh_config (root's or the system's) changes what ferry asks for; the user is given with
    // -l, never as part of a destination an option could hide in.
    '-F', '/dev/null',
    '-l', t.user,
    '-i', t.key,
    '-p', String(t.port),
    '-o', `UserKnownHostsFile=${t.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', `ConnectTimeout=${t.connectTimeoutSec ?? 5}`,
    '-o', `ServerAliveInterval=${t.keepAlive?.intervalSec ?? 5}`,
    '-o', `ServerAliveCountMax=${t.keepAlive?.countMax ?? 3}`,
    ...(t.controlPath ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${t.controlPath}`, '-o', `ControlPersist=${CONTROL_PERSIST_S}`] : []),
  ];
}

/**
 * Quotes one word for rsync's `-e` parser, which splits on whitespace and honours single and
 * double quotes (no shell is involved).
 */
function rsyncShellWord(w: string): string {
  if (/^[A-Za-z0-9_./=:@,+%-]+$/.test(w)) return w;
  if (w.includes("'")) throw new FerryError('INVALID_PATH', `cannot pass ${JSON.stringify(w)} to rsync -e (contains a quote)`);
  return `'${w}'`;
}

/** The `-e` value for rsync. */
export function rsyncRemoteShell(t: SshTarget): string {
  return ['ssh', ...sshOptions(t)].map(rsyncShellWord).join(' ');
}

const SAFE_WORD = /^[A-Za-z0-9_./:=@,+-]+$/;

/**
 * Classifies a failed ssh invocation: host key mismatch and refused authentication need a person
 * (not retryable); anything else at the ssh level (exit 255, timeout) is the network: retryable.
 */
export function classifySshError(e: unknown, peerLabel: string): unknown {
  if (!(e instanceof CommandError)) return e;
  const f = e.failure;
  const err = f.stderrTail;
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(err)) {
    return new FerryError('PEER_HOST_KEY', `ssh to ${peerLabel}: host key not accepted (pinned known_hosts): ${err.trim()}`, {
      retryable: false,
      details: { ...f },
      cause: e,
    });
  }
  if (/Permission denied \(/.test(err)) {
    return new FerryError('PEER_AUTH', `ssh to ${peerLabel}: authentication refused: ${err.trim()}`, {
      retryable: false,
      details: { ...f },
      cause: e,
    });
  }
  if (f.exitCode === 255 || f.timedOut || f.signal) {
    return new FerryError('PEER_UNREACHABLE', `ssh to ${peerLabel} failed: ${err.trim() || (f.timedOut ? 'timed out' : `exit ${f.exitCode}`)}`, {
      retryable: true,
      details: { ...f },
      cause: e,
    });
  }
  return e;
}

/**
 * Runs one fixed program with fixed arguments on a peer. The remote side runs it through the
 * user's shell, so every word is restricted to a safe character set: no user text, no quoting.
 * Failures at the ssh level are classified (see `classifySshError`); a non-zero exit of the
 * remote program is a CommandError with that exit code.
 */
export async function sshRun(
  t: SshTarget,
  program: string,
  args: readonly string[] = [],
  opts: { timeoutMs?: number; signal?: AbortSignal; okExitCodes?: number[] } = {},
): Promise<RunResult> {
  for (const w of [program, ...args]) {
    if (!SAFE_WORD.test(w)) throw new FerryError('INVALID_REMOTE_COMMAND', `refusing to send ${JSON.stringify(w)} to a remote shell`);
  }
  try {
    return await run('ssh', [...sshOptions(t), '--', t.address, program, ...args], {
      timeoutMs: opts.timeoutMs ?? 30_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.okExitCodes ? { okExitCodes: opts.okExitCodes } : {}),
    });
  } catch (e) {
    throw classifySshError(e, `${t.address}:${t.port}`);
  }
}

/** Whether the peer's sshd accepts us (runs `true` there); throws the classified error otherwise. */
export async function sshCheck(t: SshTarget, signal?: AbortSignal): Promise<void> {
  await sshRun(t, 'true', [], { timeoutMs: 20_000, ...(signal ? { signal } : {}) });
}
