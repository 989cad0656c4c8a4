import { PreconditionError, type CleanupInput, type CleanupOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { removeScratch } from '../ownership/scratch.js';

/**
 * Source, after a successful migration: removes (or keeps, stopped) the old copy.
 * Observe: gone already → nothing to do. Refuses a container that runs or is frozen here.
 * Act: destroy unless keepSource; remove this migration's scratch dir.
 */
export const cleanup: Step<CleanupInput, CleanupOutput> = async (ctx, input) => {
  const i = await ctx.runtime.info(input.container);
  if (!i) {
    await removeScratch(ctx, input.migrationId);
    return { removed: false, kept: false };
  }
  if (i.state !== 'STOPPED') {
    throw new PreconditionError('CONTAINER_ACTIVE', `refusing to clean up ${input.container} on ${ctx.host.name}: it is ${i.state}`, {
      state: i.state,
    });
  }
  if (input.keepSource) {
    await removeScratch(ctx, input.migrationId);
    return { removed: false, kept: true };
  }
  await ctx.runtime.destroy(input.container);
  await removeScratch(ctx, input.migrationId);
  return { removed: true, kept: false };
};
