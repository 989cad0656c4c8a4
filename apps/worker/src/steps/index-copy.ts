import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { IndexCopyInput, IndexCopyOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { ownedByMigration } from '../ownership/target-ownership.js';
import { scratchDir } from '../ownership/scratch.js';
import { metaIndexFile } from '../verify/meta-index.js';
import { metadataIndex } from '../verify/tree-digest.js';

/**
 * Target: indexes the copy's metadata after the last pre-copy pass, while the container still
 * runs at the source. Only the final pass writes to the copy after this, and restore brings the
 * index up to date with that pass's list rather than walking the copy while the container is
 * down. Nothing is indexed (restore then walks) where the copy is not this migration's or the C
 * helper is not built; a re-run indexes again (the copy has not changed since).
 */
export const indexCopy: Step<IndexCopyInput, IndexCopyOutput> = async (ctx, input) => {
  const t = Date.now();
  const name = input.container;
  if (!(await ctx.runtime.info(name)) || !(await ownedByMigration(ctx, input.migrationId, name))) {
    return { indexed: false, ms: Date.now() - t, skipped: `no copy of ${name} from this migration here` };
  }
  await mkdir(scratchDir(ctx, input.migrationId), { recursive: true });
  ctx.progress({ stage: 'index', message: 'indexing the copy' });
  // Not runtime.rootfsDir: the copied config still names the source's paths until restore adopts
  // it, and a peer's config is not followed. Adoption puts the rootfs here (see adoptConfig).
  const rootfs = join(ctx.runtime.containerDir(name), 'rootfs');
  const sum = await metadataIndex(rootfs, metaIndexFile(ctx, input.migrationId), ctx.signal);
  const out = sum === null ? { indexed: false, ms: Date.now() - t, skipped: 'ferry-treemeta is not built (scripts/setup.sh)' } : { indexed: true, ms: Date.now() - t };
  ctx.log.info(out, 'copy indexed');
  return out;
};
