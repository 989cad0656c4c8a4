import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, PreconditionError, type RestoreInput, type RestoreOutput } from '@ferry/core';
import { run } from '@ferry/infra';
import type { Step, StepContext } from '../context.js';
import { manifestDigest } from '../manifest/manifest.js';
import { PARTIAL_DIR } from '../transfer/rsync-flags.js';
import { receiverLockPath, waitForReceivers } from '../transfer/receiver-lock.js';
import { DUMP_DIR, MARKER, peerContainerDir, readJson, readMarker, scratchDir, writeJsonAtomic } from './common.js';

/** Record on the target that this migration created the container here (survives the marker). */
export function ownershipFile(ctx: StepContext, migrationId: string): string {
  return join(scratchDir(ctx, migrationId), 'target-owned.json');
}

/** Whether the container dir here was filled by this migration (marker or ownership record). */
export async function ownedByMigration(ctx: StepContext, migrationId: string, container: string): Promise<boolean> {
  if ((await readMarker(ctx.runtime.containerDir(container))) === migrationId) return true;
  const rec = await readJson<{ container: string }>(ownershipFile(ctx, migrationId));
  return rec?.container === container;
}

/** rsync partial dirs left anywhere in the tree by interrupted passes. */
export async function removePartialDirs(dir: string): Promise<number> {
  const r = await run('find', [dir, '-xdev', '-type', 'd', '-name', PARTIAL_DIR, '-prune', '-print0'], { timeoutMs: 10 * 60_000 });
  const found = r.stdout.split('\0').filter(Boolean);
  for (const p of found) await rm(p, { recursive: true, force: true });
  return found.length;
}

/**
 * Target: makes the copy this host's own and starts it.
 * Observe: already running here → the recorded result (re-delivery after success). A container
 * that exists here without this migration's marker or ownership record is refused.
 * Act: record ownership, rewrite the source host's paths in the config, check the manifest digest
 * of the copy (verify; mismatch → MANIFEST_MISMATCH, not retryable), remove the marker and rsync
 * leftovers, start it (or restore the dump) and check it runs.
 */
export const restore: Step<RestoreInput, RestoreOutput> = async (ctx, input) => {
  const { runtime } = ctx;
  const name = input.container;
  const recordFile = join(scratchDir(ctx, input.migrationId), 'restore.json');
  const i = await runtime.info(name);
  if (i?.state === 'RUNNING') {
    const rec = await readJson<RestoreOutput>(recordFile);
    return { ...(rec ?? {}), running: true, ...(i.pid !== undefined ? { pid: i.pid } : {}) };
  }
  if (!i) {
    throw new PreconditionError('CONTAINER_MISSING', `container ${name} has not arrived on ${ctx.host.name} (no config in ${runtime.containerDir(name)})`);
  }
  if (!(await ownedByMigration(ctx, input.migrationId, name))) {
    throw new PreconditionError('CONTAINER_NOT_OURS', `container ${name} on ${ctx.host.name} was not created by migration ${input.migrationId}`);
  }
  if (i.state !== 'STOPPED') {
    throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state} on ${ctx.host.name}`);
  }
  await writeJsonAtomic(ownershipFile(ctx, input.migrationId), { container: name, at: Date.now() });
  // A receiver of an interrupted pass may still be writing here: wait until none holds the dir.
  await waitForReceivers(receiverLockPath(ctx.host.lxcPath, name), ctx.signal);

  const dir = runtime.containerDir(name);
  const srcDir = peerContainerDir(input.source, name);
  await runtime.adoptConfig(name, { containerDir: srcDir, rootfsDir: `${srcDir}/rootfs` });

  let digest: string | undefined;
  if (input.expectManifestDigest) {
    ctx.progress({ stage: 'verify', message: 'manifest of the copy' });
    digest = await manifestDigest(runtime.rootfsDir(name), { signal: ctx.signal });
    if (digest !== input.expectManifestDigest) {
      throw new FerryError(
        'MANIFEST_MISMATCH',
        `the copy of ${name} on ${ctx.host.name} differs from the frozen source (manifest ${digest} != ${input.expectManifestDigest})`,
        { retryable: false, details: { expected: input.expectManifestDigest, actual: digest } },
      );
    }
  }
  await rm(join(dir, MARKER), { force: true });
  await removePartialDirs(dir);

  if (!input.start) {
    const out: RestoreOutput = { running: false, ...(digest ? { manifestDigest: digest } : {}) };
    await writeJsonAtomic(recordFile, out);
    return out;
  }
  const dumpDir = join(dir, DUMP_DIR);
  if (input.method === 'dump') {
    const hasDump = await stat(dumpDir).then(() => true, () => false);
    if (!hasDump) throw new PreconditionError('DUMP_MISSING', `no checkpoint dump in ${dumpDir}`);
    await runtime.restore(name, dumpDir);
  } else {
    await runtime.start(name);
  }
  const after = await runtime.info(name);
  if (after?.state !== 'RUNNING') {
    throw new FerryError('CONTAINER_START_FAILED', `container ${name} is ${after?.state ?? 'gone'} after start on ${ctx.host.name}`, { retryable: false });
  }
  await rm(dumpDir, { recursive: true, force: true });
  const out: RestoreOutput = {
    running: true,
    ...(after.pid !== undefined ? { pid: after.pid } : {}),
    ...(digest ? { manifestDigest: digest } : {}),
    startedAt: Date.now(),
  };
  await writeJsonAtomic(recordFile, out);
  return out;
};
