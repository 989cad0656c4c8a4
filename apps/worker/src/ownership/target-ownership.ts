import { join } from 'node:path';
import type { StepContext } from '../context.js';
import { readJson } from '../json-files.js';
import { readMarker, scratchDir } from '../steps/common.js';

/**
 * Which container dirs on a target an operation may treat as its own: the ones its copy filled
 * (the marker rsync puts there first) or that it recorded as created here (which outlives the
 * marker, removed once the copy is verified). Anything else is never touched.
 */

/** Record on the target that this operation created the container here (survives the marker). */
export function ownershipFile(ctx: StepContext, migrationId: string): string {
  return join(scratchDir(ctx, migrationId), 'target-owned.json');
}

/** Whether the container dir here was filled by this operation (marker or ownership record). */
export async function ownedByMigration(ctx: StepContext, migrationId: string, container: string): Promise<boolean> {
  if ((await readMarker(ctx.runtime.containerDir(container))) === migrationId) return true;
  const rec = await readJson<{ container: string }>(ownershipFile(ctx, migrationId));
  return rec?.container === container;
}
