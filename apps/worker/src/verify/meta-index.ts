import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StepContext } from '../context.js';
import { scratchDir } from '../ownership/scratch.js';

/**
 * Where a host keeps a migration's metadata index (see metadataIndex in tree-digest.ts): in its
 * scratch dir for that migration, beside a JSON note of what it may be patched with. Up to ~70
 * bytes an entry, so it goes once the digest at rest is taken.
 */
export function metaIndexFile(ctx: StepContext, migrationId: string): string {
  return join(scratchDir(ctx, migrationId), 'meta-index');
}

export async function removeMetaIndex(ctx: StepContext, migrationId: string): Promise<void> {
  const f = metaIndexFile(ctx, migrationId);
  // ferry-treemeta writes `<index>.tmp.<pid>` and renames it: one cut short leaves its own.
  const dir = dirname(f);
  const tmps = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(`${basename(f)}.tmp`)).map((n) => join(dir, n));
  await Promise.all([f, `${f}.list`, `${f}.json`, ...tmps].map((p) => rm(p, { force: true })));
}
