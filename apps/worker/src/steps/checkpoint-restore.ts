import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { capabilityMissing, FerryError, PreconditionError, type CheckpointRestoreInput, type CheckpointRestoreOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { removeScratch, scratchDir } from '../ownership/scratch.js';
import { checkpointDir, configDigest, readCheckpoint } from '../checkpoint/on-disk.js';

/**
 * Host: restores a checkpointed container in place from its images (`ferry restore` on the same host).
 * Observe: running after this operation's restore began → done (the images removed, if still
 * there). Refuses a container without a complete checkpoint (NOT_CHECKPOINTED), one running
 * otherwise (its checkpoint is stale), a config changed since the dump (CHECKPOINT_CONFIG_CHANGED)
 * and a host that cannot restore. Act: restore, check it runs, then remove the images. A failed
 * restore leaves the container stopped with its checkpoint as it was.
 */
export const checkpointRestore: Step<CheckpointRestoreInput, CheckpointRestoreOutput> = async (ctx, input) => {
  const { runtime } = ctx;
  const name = input.container;
  const dir = checkpointDir(runtime, name);
  const scratch = scratchDir(ctx, input.migrationId);
  const begun = join(scratch, 'restore-begun.json');
  const i = await runtime.info(name);
  if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist on ${ctx.host.name}`, { container: name });
  const ours = await readJson<{ at: number; checkpointAt?: number }>(begun);
  if (ours && (i.state === 'RUNNING' || i.state === 'FROZEN')) {
    // This operation restored it (the worker may have died before the images were removed).
    if (i.state === 'FROZEN') await runtime.unfreeze(name);
    await rm(dir, { recursive: true, force: true });
    await removeScratch(ctx, input.migrationId);
    const pid = (await runtime.info(name))?.pid;
    return { running: true, ...(pid !== undefined ? { pid } : {}), ...(ours.checkpointAt !== undefined ? { checkpointAt: ours.checkpointAt } : {}), startedAt: ours.at };
  }
  const m = await readCheckpoint(runtime, name);
  if (i.state !== 'STOPPED' || !m) {
    throw new PreconditionError(
      'NOT_CHECKPOINTED',
      `container ${name} on ${ctx.host.name} is ${i.state}${m ? ' (its checkpoint on disk is stale)' : ' without a checkpoint'}: nothing to restore`,
      { container: name, state: i.state },
    );
  }
  const caps = await runtime.capabilities();
  if (!caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `restore ${name}`, ctx.host.name);
  const now = await configDigest(runtime, name);
  if (m.configDigest && now && now !== m.configDigest) {
    throw new FerryError('CHECKPOINT_CONFIG_CHANGED', `the config of ${name} on ${ctx.host.name} changed since it was checkpointed: not restored`, {
      retryable: false,
      details: { expected: m.configDigest, actual: now },
    });
  }
  await writeJsonAtomic(begun, { at: Date.now(), checkpointAt: m.at });
  ctx.progress({ stage: 'restore', message: `restoring ${name} from ${dir}` });
  await runtime.restore(name, dir);
  const after = await runtime.info(name);
  if (after?.state !== 'RUNNING') {
    throw new FerryError('CONTAINER_START_FAILED', `container ${name} is ${after?.state ?? 'gone'} after its restore on ${ctx.host.name}`, { retryable: false });
  }
  // Started and verified: the images are spent.
  await rm(dir, { recursive: true, force: true });
  await removeScratch(ctx, input.migrationId);
  ctx.log.info({ container: name, pid: after.pid }, 'restored from its checkpoint');
  return { running: true, ...(after.pid !== undefined ? { pid: after.pid } : {}), checkpointAt: m.at, startedAt: Date.now() };
};
