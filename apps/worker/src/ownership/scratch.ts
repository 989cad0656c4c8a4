import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepContext } from '../context.js';

/** Per-migration scratch directory of this host: an operation's records here (results, ownership). */
export function scratchDir(ctx: StepContext, migrationId: string): string {
  return join(ctx.host.stateDir, migrationId);
}

export async function removeScratch(ctx: StepContext, migrationId: string): Promise<void> {
  await rm(scratchDir(ctx, migrationId), { recursive: true, force: true });
}
