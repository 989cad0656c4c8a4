import { readdir, rm, stat } from 'node:fs/promises';
import { FerryError, type DiscardTargetInput, type DiscardTargetOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { isUnder } from '../runtime/paths.js';
import { isActive } from '../runtime/state.js';
import { removeScratch } from '../ownership/scratch.js';
import { ownedByMigration } from '../ownership/target-ownership.js';
import { removePartialDir } from '../transfer/receiver-lock.js';
import { receiverLockPath, waitForReceivers } from '../transfer/receiver-lock.js';

/**
 * Target, rollback: stops and removes the copy this migration made here.
 * Observe: nothing here → done. A dir not made by this migration (no marker with its id and no
 * ownership record) is never touched, and the rollback pauses on it (TARGET_NOT_OURS). Act: stop if running or frozen; unless keepCopy, destroy
 * it (lxc-destroy when its config is this host's, else remove the dir: a config not yet adopted
 * still names the source's rootfs, which lxc-destroy would delete).
 */
export const discardTarget: Step<DiscardTargetInput, DiscardTargetOutput> = async (ctx, input) => {
  const { runtime } = ctx;
  const name = input.container;
  const dir = runtime.containerDir(name);
  const present = await stat(dir).then(() => true, () => false);
  if (!present) {
    if (!input.keepCopy) await removeScratch(ctx, input.migrationId);
    return { stopped: false, removed: false };
  }
  if (!(await ownedByMigration(ctx, input.migrationId, name))) {
    // An empty dir (a marker push cut off after rsync made it) holds nothing that could run.
    if ((await readdir(dir)).length === 0) return { stopped: false, removed: false };
    // Not provably this migration's: it may be another's, or this one's with its records lost.
    // Counting that as removed could leave a copy running here beside the source: a person decides.
    throw new FerryError(
      'TARGET_NOT_OURS',
      `${dir} on ${ctx.host.name} was not made by migration ${input.migrationId} (no marker or ownership record of it): left as it is`,
      { retryable: false },
    );
  }
  // A receiver of an interrupted pass could recreate files while the dir is removed.
  await waitForReceivers(receiverLockPath(ctx.host.lxcPath, name), ctx.signal);
  const i = await runtime.info(name);
  let stopped = false;
  if (i && isActive(i.state)) {
    await runtime.stop(name);
    stopped = true;
  }
  if (input.keepCopy) return { stopped, removed: false };
  if (i && isUnder(runtime.rootfsDir(name), dir)) {
    await runtime.destroy(name);
  }
  await rm(dir, { recursive: true, force: true });
  await removePartialDir(ctx.host.lxcPath, name);
  await removeScratch(ctx, input.migrationId);
  return { stopped, removed: true };
};
