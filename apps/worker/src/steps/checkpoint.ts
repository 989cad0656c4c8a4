import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PreconditionError, type CheckpointInput, type CheckpointOutput, type TransferStats } from '@ferry/core';
import type { Step } from '../context.js';
import { manifestDigest } from '../manifest/manifest.js';
import { rsyncPush } from '../transfer/rsync.js';
import { sshTargetFor } from '../transfer/ssh.js';
import { receiverLockPath } from '../transfer/receiver-lock.js';
import { DUMP_DIR, peerContainerDir, readJson, scratchDir, writeJsonAtomic } from './common.js';
import { pushContainer } from './rsync-transfer.js';

/**
 * Source: brings the container to rest and sends the last changes.
 * Observe: a recorded result of this migration (`<stateDir>/<id>/checkpoint.json`) is returned as
 * is; a container already frozen (or stopped) by an earlier attempt is taken as it is.
 * Act (was running): freeze, final rsync pass, manifest digest of the frozen rootfs (verify), then
 * a CRIU dump sent to the target (live) or a kill while frozen (restart: it never runs again here).
 * Act (was not running): one final pass, method `none`. Records the result, then returns it.
 */
export const checkpoint: Step<CheckpointInput, CheckpointOutput> = async (ctx, input) => {
  const scratch = scratchDir(ctx, input.migrationId);
  const record = join(scratch, 'checkpoint.json');
  const done = await readJson<CheckpointOutput>(record);
  if (done) return done;

  const { runtime } = ctx;
  const name = input.container;
  const i = await runtime.info(name);
  if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist on ${ctx.host.name}`);
  const caps = await runtime.capabilities();

  const finalPass = async (): Promise<TransferStats> => {
    ctx.progress({ stage: 'final-sync', message: 'final pass' });
    return pushContainer(ctx, input, 'final-sync');
  };
  const digest = async (): Promise<string | undefined> => {
    if (!input.verify) return undefined;
    ctx.progress({ stage: 'verify', message: 'manifest of the source rootfs' });
    return manifestDigest(runtime.rootfsDir(name), { signal: ctx.signal });
  };

  let out: CheckpointOutput;
  if (!input.wasRunning) {
    if (i.state !== 'STOPPED') {
      throw new PreconditionError('CONTAINER_STARTED', `container ${name} was stopped at preflight but is ${i.state} now`);
    }
    const stats = await finalPass();
    const manifest = await digest();
    out = { method: 'none', finalPass: stats, ...(manifest ? { manifestDigest: manifest } : {}) };
  } else {
    const live = input.mode === 'live';
    if (live && !caps.checkpoint) {
      throw new PreconditionError('CHECKPOINT_UNSUPPORTED', `live migration needs checkpoint support: ${caps.checkpointReason ?? 'not available'}`);
    }
    const frozenFile = join(scratch, 'frozen.json');
    let frozenAt = (await readJson<{ frozenAt: number }>(frozenFile))?.frozenAt;
    if (i.state === 'RUNNING' || i.state === 'FROZEN') {
      if (caps.freeze) {
        if (i.state === 'RUNNING') {
          await runtime.freeze(name);
          frozenAt = Date.now();
          await writeJsonAtomic(frozenFile, { frozenAt });
        }
        frozenAt ??= Date.now();
      } else if (!live) {
        await runtime.stop(name); // no freezer: stop first, the copy is then taken at rest
      }
    } else if (i.state !== 'STOPPED') {
      throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state}`);
    }
    ctx.log.info({ frozenAt }, 'container at rest, final pass');
    const stats = await finalPass();
    const manifest = await digest();
    let method: CheckpointOutput['method'] = 'stop';
    const dump = join(scratch, 'dump');
    const dumpedFile = join(scratch, 'dumped.json');
    const dumped = live && (await readJson<{ at: number }>(dumpedFile)) !== null;
    if (live && (dumped || (await runtime.info(name))?.state !== 'STOPPED')) {
      if (!dumped) {
        await rm(dump, { recursive: true, force: true });
        await mkdir(dump, { recursive: true });
        await runtime.checkpoint(name, dump); // stops the container once dumped
        await writeJsonAtomic(dumpedFile, { at: Date.now() });
      }
      ctx.progress({ stage: 'dump-sync', message: 'sending the checkpoint' });
      await rsyncPush({
        source: dump,
        target: sshTargetFor(ctx.host, input.peer),
        dest: `${peerContainerDir(input.peer, name)}/${DUMP_DIR}`,
        peerLabel: input.peer.name,
        receiverLock: receiverLockPath(input.peer.lxcPath, name),
        ...(input.bwlimitKBps !== undefined ? { bwlimitKBps: input.bwlimitKBps } : {}),
        signal: ctx.signal,
      });
      method = 'dump';
    } else {
      await runtime.stop(name); // while frozen: SIGKILL is taken before anything runs again
    }
    out = {
      method,
      ...(frozenAt !== undefined ? { frozenAt } : {}),
      finalPass: stats,
      ...(manifest ? { manifestDigest: manifest } : {}),
    };
  }
  await writeJsonAtomic(record, out);
  return out;
};
