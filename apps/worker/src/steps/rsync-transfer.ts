import { PreconditionError, precopyDecision, type RsyncTransferInput, type RsyncTransferOutput, type TransferStats } from '@ferry/core';
import type { Step } from '../context.js';
import { openAtRestLink, pushContainer, pushMarker } from '../transfer/container-push.js';
import { checkAborted } from '../transfer/abort.js';
import { peerContainerDir } from '../transfer/target-dir.js';
import { guardRemote } from '../transfer/target-guard.js';
import { sshTargetFor } from '../transfer/ssh.js';
import { indexAhead } from '../verify/index-ahead.js';

/**
 * Source: copies the container dir to the target while it keeps running, pass after pass, until
 * `precopyDecision` says the rest fits the freeze window. Observe: the container must be here.
 * Act: mark the target dir as this migration's, then rsync: a full pass, then passes of what changed
 * since the previous one began. Re-running is safe: rsync only sends what differs and resumes
 * interrupted files from the partial dir; the target is never wiped.
 */
export const rsyncTransfer: Step<RsyncTransferInput, RsyncTransferOutput> = async (ctx, input) => {
  const i = await ctx.runtime.info(input.container);
  if (!i) {
    throw new PreconditionError('CONTAINER_MISSING', `container ${input.container} does not exist on ${ctx.host.name}`);
  }
  // The first pass mirrors with --delete: the dir there must be missing or already this migration's.
  const dest = peerContainerDir(input.peer, input.container);
  await guardRemote(ctx, sshTargetFor(ctx.host, input.peer), dest, { migrationId: input.migrationId, container: input.container, peer: input.peer.name });
  await pushMarker(ctx, input);

  const passes: TransferStats[] = [];
  let stopReason: string;
  // The checkpoint comes next on this host: its at-rest connection is opened beside the later
  // passes (the master persists 60 s), so the checkpoint pays no handshake. A failure here is the
  // checkpoint's to report, before anything is frozen.
  const openAtRest = () => openAtRestLink(ctx, input.peer).catch((e: unknown) => ctx.log.warn({ err: e }, 'at-rest link not opened ahead'));
  let atRestOpening: Promise<void> | undefined;
  for (;;) {
    checkAborted(ctx);
    const pass = passes.length + 1;
    if (pass > 1 && input.wasRunning) atRestOpening = openAtRest();
    ctx.progress({ stage: 'precopy', pass, message: 'starting' });
    const stats = await pushContainer(ctx, input, 'precopy', { pass });
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
  if (input.wasRunning) await (atRestOpening ?? openAtRest());
  if (input.indexAhead) indexAhead(ctx, input.migrationId, ctx.runtime.rootfsDir(input.container));
  return { passes, bytesTransferred: passes.reduce((a, p) => a + p.bytesSent, 0), stopReason };
};
