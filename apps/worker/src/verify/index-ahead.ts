import { mkdir, rm } from 'node:fs/promises';
import type { StepContext } from '../context.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { scratchDir } from '../ownership/scratch.js';
import { trackedSince } from '../transfer/tracked-pass.js';
import { metaIndexFile } from './meta-index.js';
import { metadataIndex } from './tree-digest.js';

/**
 * The source's metadata index (the default verification's basis, see checkpoint.ts), taken at the
 * end of pre-copy in the background instead of at the start of the checkpoint: the target indexes
 * its copy meanwhile (index-copy), so the two walks overlap instead of following each other (5-7 s
 * each at a million files). Sound for the same reason as the checkpoint's own: it is taken after
 * the last pre-copy pass began, so the final pass lists every change since. It notes which pass
 * that was (`since`); an index whose `since` is not the last pass's any more (a pre-copy that ran
 * again) is not used, and the checkpoint takes its own. A worker restart loses only the head start.
 */
const running = new Map<string, { done: Promise<void>; abort: AbortController }>();

/** Starts the index of `rootfs` for this migration in the background (after one still running). */
export function indexAhead(ctx: StepContext, migrationId: string, rootfs: string): void {
  const index = metaIndexFile(ctx, migrationId);
  const scratch = scratchDir(ctx, migrationId);
  // One still running is superseded (its pass is not the last any more): ended, then this one.
  running.get(index)?.abort.abort();
  const before = running.get(index)?.done ?? Promise.resolve();
  const abort = new AbortController();
  const signal = AbortSignal.any([ctx.signal, abort.signal]);
  const job = before.then(async () => {
    const since = await trackedSince(scratch);
    if (since === undefined || signal.aborted) return;
    await takeSourceIndex({ ...ctx, signal }, migrationId, rootfs, since, 'source indexed at the end of pre-copy');
  });
  const done = job.catch((err: unknown) => {
    if (!signal.aborted) ctx.log.warn({ err }, 'source index at the end of pre-copy not taken: the checkpoint takes it');
  });
  const entry = { done, abort };
  running.set(index, entry);
  void done.finally(() => {
    if (running.get(index) === entry) running.delete(index);
  });
}

/**
 * Ends a background index of this migration, if one runs, and waits until it has: before its
 * scratch dir is removed (a rollback, the cleanup) or the container is down without having used
 * it (the walk would only compete with the final pass).
 */
export async function stopIndexAhead(ctx: StepContext, migrationId: string): Promise<void> {
  const entry = running.get(metaIndexFile(ctx, migrationId));
  entry?.abort.abort();
  await entry?.done;
}

/**
 * True when an index usable for the final pass is in place (one taken ahead, waited for if it is
 * still being taken, whose pass is still the last one).
 */
export async function indexedAhead(ctx: StepContext, migrationId: string): Promise<boolean> {
  const index = metaIndexFile(ctx, migrationId);
  await running.get(index)?.done;
  const note = await readJson<{ since: number }>(`${index}.json`);
  const since = await trackedSince(scratchDir(ctx, migrationId));
  return note !== null && since !== undefined && note.since === since;
}

/** Indexes `rootfs` for this migration, noting the pass (`since`) the index may be patched from. */
export async function takeSourceIndex(ctx: StepContext, migrationId: string, rootfs: string, since: number, what: string): Promise<void> {
  const index = metaIndexFile(ctx, migrationId);
  const t = Date.now();
  await rm(`${index}.json`, { force: true });
  await mkdir(scratchDir(ctx, migrationId), { recursive: true });
  if ((await metadataIndex(rootfs, index, ctx.signal)) === null) return;
  await writeJsonAtomic(`${index}.json`, { since });
  ctx.log.info({ indexMs: Date.now() - t }, what);
}
