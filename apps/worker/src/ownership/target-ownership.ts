import { join } from 'node:path';
import type { StepContext } from '../context.js';
import { readJson, readText } from '../json-files.js';
import { scratchDir } from './scratch.js';

/**
 * Which container dirs on a target an operation may treat as its own: the ones its copy filled
 * (the marker rsync puts there first) or that it recorded as created here (which outlives the
 * marker, removed once the copy is verified). Anything else is never touched.
 */

/** File in the target's container dir naming the migration that is filling it. */
export const MARKER = '.ferry-migration';

/** Migration id written in a container dir's marker, or null when there is none. */
export async function readMarker(containerDir: string): Promise<string | null> {
  const t = await readText(join(containerDir, MARKER));
  return t === null ? null : t.trim();
}

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
