import { PreconditionError, type UnifyInput, type UnifyOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { unify as unifyTrees } from '../unify/index.js';

/**
 * Shares identical files among containers of this host (vunify/hashify).
 * Observe: every container exists here; which run (hardlink mode and revert refuse running ones,
 * the engine checks again). Act: the engine, with each container's own unify.exclude rules.
 * Re-running is safe: files already shared are found shared and left as they are.
 */
export const unify: Step<UnifyInput, UnifyOutput> = async (ctx, input) => {
  const infos = await Promise.all(input.containers.map((n) => ctx.runtime.info(n)));
  const missing = input.containers.filter((_, i) => !infos[i]);
  if (missing.length) throw new PreconditionError('CONTAINER_MISSING', `not on ${ctx.host.name}: ${missing.join(', ')}`);
  const running = infos.map((i) => i!.state !== 'STOPPED');
  ctx.progress({ stage: input.revert ? 'revert' : input.dryRun ? 'dry-run' : input.mode });
  const report = await unifyTrees(
    input.containers.map((n) => ctx.runtime.rootfsDir(n)),
    {
      mode: input.mode,
      dryRun: input.dryRun,
      revert: input.revert,
      excludes: input.excludes,
      running,
      signal: ctx.signal,
    },
  );
  return report as unknown as UnifyOutput;
};
