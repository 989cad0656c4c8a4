import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PreconditionError, precopyDecision, type RsyncTransferInput, type RsyncTransferOutput, type TransferStats } from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import { rsyncPush } from '../transfer/rsync.js';
import { sshTargetFor } from '../transfer/ssh.js';
import { receiverLockPath } from '../transfer/receiver-lock.js';
import { checkAborted, FERRY_EXCLUDES, MARKER, peerContainerDir, scratchDir } from './common.js';

/**
 * Creates the target's container dir holding only the marker naming this migration (rsync
 * creates the last path component; nothing else on the target is touched, nothing is deleted).
 */
export async function pushMarker(ctx: StepContext, input: { migrationId: string; container: string; peer: RsyncTransferInput['peer'] }): Promise<void> {
  const dir = join(scratchDir(ctx, input.migrationId), 'marker');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, MARKER), `${input.migrationId}\n`);
  await rsyncPush({
    source: dir,
    files: [MARKER],
    profile: 'plain',
    target: sshTargetFor(ctx.host, input.peer),
    dest: peerContainerDir(input.peer, input.container),
    peerLabel: input.peer.name,
    receiverLock: receiverLockPath(input.peer.lxcPath, input.container),
    signal: ctx.signal,
  });
}

/** One mirror pass of the container dir to the target (same flags for pre-copy and final pass). */
export async function pushContainer(
  ctx: StepContext,
  input: { container: string; peer: RsyncTransferInput['peer']; bwlimitKBps?: number | undefined },
  stage: string,
  pass?: number,
): Promise<TransferStats> {
  return rsyncPush({
    source: ctx.runtime.containerDir(input.container),
    target: sshTargetFor(ctx.host, input.peer),
    dest: peerContainerDir(input.peer, input.container),
    peerLabel: input.peer.name,
    receiverLock: receiverLockPath(input.peer.lxcPath, input.container),
    excludes: FERRY_EXCLUDES,
    ...(input.bwlimitKBps !== undefined ? { bwlimitKBps: input.bwlimitKBps } : {}),
    signal: ctx.signal,
    onProgress: (p) =>
      ctx.progress({ stage, ...(pass !== undefined ? { pass } : {}), bytes: p.bytes, percent: p.percent, rate: p.rate }),
  });
}

/**
 * Source: copies the container dir to the target while it keeps running, pass after pass, until
 * `precopyDecision` says the rest fits the freeze window. Observe: the container must be here.
 * Act: mark the target dir as this migration's, then rsync. Re-running is safe: rsync only sends
 * what differs and resumes interrupted files from the partial dir; the target is never wiped.
 */
export const rsyncTransfer: Step<RsyncTransferInput, RsyncTransferOutput> = async (ctx, input) => {
  const i = await ctx.runtime.info(input.container);
  if (!i) {
    throw new PreconditionError('CONTAINER_MISSING', `container ${input.container} does not exist on ${ctx.host.name}`);
  }
  await pushMarker(ctx, input);

  const passes: TransferStats[] = [];
  let stopReason: string;
  for (;;) {
    checkAborted(ctx);
    const pass = passes.length + 1;
    ctx.progress({ stage: 'precopy', pass, message: `pre-copy pass ${pass}` });
    const stats = await pushContainer(ctx, input, 'precopy', pass);
    passes.push(stats);
    ctx.log.info({ pass, ...stats }, 'pre-copy pass done');
    if (!input.wasRunning) {
      stopReason = 'container not running: one pass is enough';
      break;
    }
    const d = precopyDecision(passes, input.precopy);
    if (!d.again) {
      stopReason = d.reason;
      break;
    }
  }
  return { passes, bytesTransferred: passes.reduce((a, p) => a + p.bytesSent, 0), stopReason };
};
