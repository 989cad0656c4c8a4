import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepContext } from '../context.js';
import { stopIndexAhead } from '../verify/index-ahead.js';

/** Per-migration scratch directory of this host: an operation's records here (results, ownership). */
export function scratchDir(ctx: StepContext, migrationId: string): string {
  return join(ctx.host.stateDir, migrationId);
}

/**
 * A live migration's CRIU dump of the source, kept in its scratch until the operation ends: a
 * rollback brings the source back from it (processes and memory as dumped), not by a cold start.
 * `marker` is written once the dump is complete.
 */
export function localDump(ctx: StepContext, migrationId: string): { dir: string; marker: string } {
  const scratch = scratchDir(ctx, migrationId);
  return { dir: join(scratch, 'dump'), marker: join(scratch, 'dumped.json') };
}

export async function removeScratch(ctx: StepContext, migrationId: string): Promise<void> {
  await stopIndexAhead(ctx, migrationId); // it would write its index into the dir again
  await rm(scratchDir(ctx, migrationId), { recursive: true, force: true });
}
