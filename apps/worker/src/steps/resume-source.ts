import { FerryError, PreconditionError, type ResumeSourceInput, type ResumeSourceOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { stat } from 'node:fs/promises';
import { localDump, removeScratch } from '../ownership/scratch.js';

/**
 * Source, rollback: lets the container run here again as before the migration.
 * Observe/act: FROZEN → thaw; STOPPED and it was running → restore this migration's CRIU dump
 * when there is a complete one (live: processes and memory come back as dumped; a cold start if
 * that restore fails, logged), else start; RUNNING → nothing.
 * Drops this migration's scratch (its checkpoint record no longer describes the source).
 */
export const resumeSource: Step<ResumeSourceInput, ResumeSourceOutput> = async (ctx, input) => {
  const i = await ctx.runtime.info(input.container);
  if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${input.container} does not exist on ${ctx.host.name}`);
  let out: ResumeSourceOutput;
  if (i.state === 'FROZEN') {
    await ctx.runtime.unfreeze(input.container);
    out = { action: 'thawed', running: true };
  } else if (i.state === 'STOPPED') {
    const dump = localDump(ctx, input.migrationId);
    const dumped = input.wasRunning && (await stat(dump.marker).then(() => true, () => false));
    let restored = false;
    if (dumped) {
      try {
        await ctx.runtime.restore(input.container, dump.dir);
        restored = true;
      } catch (e) {
        ctx.log.warn({ err: e }, 'restoring the dump failed; starting the container cold');
        if ((await ctx.runtime.info(input.container))?.state !== 'STOPPED') throw e;
      }
    }
    if (restored) {
      out = { action: 'restored', running: true };
    } else if (input.wasRunning) {
      await ctx.runtime.start(input.container);
      out = { action: 'started', running: true };
    } else {
      out = { action: 'none', running: false };
    }
  } else if (i.state === 'RUNNING') {
    // Re-delivered after a restore from the dump that ended before its thaw: thaw it now.
    await ctx.runtime.unfreeze(input.container);
    out = { action: 'none', running: true };
  } else {
    throw new FerryError('CONTAINER_STATE', `container ${input.container} is ${i.state}; try again when it settles`, { retryable: true });
  }
  await removeScratch(ctx, input.migrationId);
  return out;
};
