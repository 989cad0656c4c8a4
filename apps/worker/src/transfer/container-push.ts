import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Peer, TransferStats } from '@ferry/core';
import type { StepContext } from '../context.js';
import { MARKER } from '../ownership/target-ownership.js';
import { scratchDir } from '../ownership/scratch.js';
import { DUMP_DIR, FERRY_EXCLUDES, peerContainerDir, VERIFY_LIST } from './target-dir.js';
import { receiverLockPath, receiverPartialDir } from './receiver-lock.js';
import { rsyncPush, transferProgress } from './rsync.js';
import { sshRun, sshTargetFor, type SshTarget } from './ssh.js';
import { PassTracker, type TrackedStats } from './tracked-pass.js';

/**
 * While the container is frozen a dead peer must show within seconds: ssh connects within 2 s,
 * answers a keepalive within 1 s; rsync's I/O gives up after 5 s of silence.
 */
const atRest = (ctx: StepContext, peer: Peer): SshTarget => ({ ...sshTargetFor(ctx.host, peer, 'rest'), connectTimeoutSec: 1, keepAlive: { intervalSec: 1, countMax: 1 } });

/**
 * Opens the at-rest connection to the peer before the container is frozen, so the final pass and
 * what follows it pay no handshake while it is down; a peer that cannot be reached now fails the
 * step before anything is frozen.
 */
export async function openAtRestLink(ctx: StepContext, peer: Peer): Promise<void> {
  await sshRun(atRest(ctx, peer), 'true', [], { timeoutMs: 20_000, signal: ctx.signal });
}
const AT_REST_IO_TIMEOUT_S = 5;

/** Puts one ferry file (from the scratch dir) into the target's container dir; deletes nothing. */
async function pushFerryFile(ctx: StepContext, input: { migrationId: string; container: string; peer: Peer }, name: string, fill: (path: string) => Promise<void>): Promise<void> {
  const dir = join(scratchDir(ctx, input.migrationId), `push${name}`);
  await mkdir(dir, { recursive: true });
  await fill(join(dir, name));
  await rsyncPush({
    source: dir,
    files: [name],
    profile: 'plain',
    target: sshTargetFor(ctx.host, input.peer),
    dest: peerContainerDir(input.peer, input.container),
    peerLabel: input.peer.name,
    receiverLock: receiverLockPath(input.peer.lxcPath, input.container),
    signal: ctx.signal,
  });
}

/**
 * Creates the target's container dir holding only the marker naming this migration (rsync
 * creates the last path component; nothing else on the target is touched, nothing is deleted).
 */
export async function pushMarker(ctx: StepContext, input: { migrationId: string; container: string; peer: Peer }): Promise<void> {
  await pushFerryFile(ctx, input, MARKER, (p) => writeFile(p, `${input.migrationId}\n`));
}


/**
 * One mirror pass of the container dir to the target: the first a full rsync, every later one
 * (pre-copy or final) only what changed since the previous began, content compared (see
 * tracked-pass.ts). `atRest`: the container is frozen or stopped — a vanished file fails the pass,
 * and a dead peer is given up on within seconds. `sendList`: a tracked pass puts its list in the
 * target's container dir (VERIFY_LIST), in the same transfer, so the target digests the same paths.
 */
export async function pushContainer(
  ctx: StepContext,
  input: { migrationId: string; container: string; peer: Peer; bwlimitKBps?: number | undefined },
  stage: string,
  o: { pass?: number; atRest?: boolean; sendList?: boolean } = {},
): Promise<TrackedStats> {
  const tracker = new PassTracker(scratchDir(ctx, input.migrationId), ctx.runtime.containerDir(input.container), FERRY_EXCLUDES.map((x) => x.slice(1)));
  const target = o.atRest ? atRest(ctx, input.peer) : sshTargetFor(ctx.host, input.peer);
  const pass = o.pass !== undefined ? { pass: o.pass } : {};
  return tracker.pass(
    (plan) =>
      rsyncPush({
        source: ctx.runtime.containerDir(input.container),
        target,
        dest: peerContainerDir(input.peer, input.container),
        peerLabel: input.peer.name,
        receiverLock: receiverLockPath(input.peer.lxcPath, input.container),
        partialDir: receiverPartialDir(input.peer.lxcPath, input.container),
        // The list travels in this transfer (sendList): VERIFY_LIST is not excluded then.
        excludes: o.sendList ? FERRY_EXCLUDES.filter((x) => x !== `/${VERIFY_LIST}`) : FERRY_EXCLUDES,
        ...(plan.filesFrom !== undefined ? { filesFrom: plan.filesFrom } : {}),
        checksum: plan.checksum,
        ...(o.atRest ? { atRest: true, ioTimeoutSec: AT_REST_IO_TIMEOUT_S } : {}),
        ...(input.bwlimitKBps !== undefined ? { bwlimitKBps: input.bwlimitKBps } : {}),
        signal: ctx.signal,
        onProgress: (p) => ctx.progress(transferProgress(stage, o.pass, p)),
      }),
    {
      ...(o.atRest ? { atRest: true } : {}),
      ...(o.sendList ? { listAlongAs: VERIFY_LIST } : {}),
      ...(ctx.runtime.openForWrite ? { openForWrite: () => ctx.runtime.openForWrite!(input.container) } : {}),
      signal: ctx.signal,
      onScan: () => ctx.progress({ stage, ...pass, message: 'scanning for changes' }),
    },
  );
}

/**
 * Sends a live migration's CRIU dump into the target's container dir (DUMP_DIR), over the at-rest
 * link: the container is stopped from the dump until it runs on the target, so a lost link must
 * fail within seconds, as the final pass does.
 */
export async function pushDump(ctx: StepContext, input: { container: string; peer: Peer; bwlimitKBps?: number | undefined }, dumpDir: string): Promise<TransferStats> {
  return rsyncPush({
    source: dumpDir,
    target: atRest(ctx, input.peer),
    dest: `${peerContainerDir(input.peer, input.container)}/${DUMP_DIR}`,
    peerLabel: input.peer.name,
    receiverLock: receiverLockPath(input.peer.lxcPath, input.container),
    atRest: true,
    ioTimeoutSec: AT_REST_IO_TIMEOUT_S,
    ...(input.bwlimitKBps !== undefined ? { bwlimitKBps: input.bwlimitKBps } : {}),
    signal: ctx.signal,
  });
}
