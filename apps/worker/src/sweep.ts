import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { OperationStore } from '@ferry/infra';
import type { StepContext } from './context.js';
import { readMarker } from './ownership/target-ownership.js';
import { discardTarget } from './steps/discard-target.js';

/**
 * When a host was gone during a rollback, the scheduler deferred removing its copy (a copy that
 * was never started). At start the worker removes incoming copies whose operation has ended
 * rolled back or rejected. A copy whose record is missing is kept: that may be lost Redis data,
 * and a container is never removed on a guess.
 */
export async function sweepAbandonedCopies(ctx: StepContext, store: OperationStore): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(ctx.host.lxcPath).catch(() => [] as string[]);
  for (const name of names) {
    const id = await readMarker(join(ctx.host.lxcPath, name));
    if (!id) continue;
    const r = await store.get(id).catch(() => null);
    if (!r || (r.state !== 'rolled-back' && r.state !== 'rejected')) continue;
    const out = await discardTarget(ctx, { migrationId: id, container: name, epoch: r.state === 'rejected' ? 0 : r.epoch, keepCopy: false });
    if (out.removed) removed.push(name);
    ctx.log.info({ migrationId: id, container: name, removed: out.removed }, 'swept the copy of a rolled-back operation');
  }
  return removed;
}
