import { rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { FerryError, PreconditionError, type RestoreInput, type RestoreOutput } from '@ferry/core';
import { announce } from '../net/gratuitous-arp.js';
import type { Step, StepContext } from '../context.js';
import { manifestDigest } from '../manifest/manifest.js';
import { receiverLockPath, removePartialDir, waitForReceivers } from '../transfer/receiver-lock.js';
import { MARKER, ownedByMigration, ownershipFile } from '../ownership/target-ownership.js';
import { scratchDir } from '../ownership/scratch.js';
import { DUMP_DIR, peerContainerDir, VERIFY_LIST } from '../transfer/target-dir.js';
import { removeMetaIndex, metaIndexFile } from '../verify/meta-index.js';
import { changedUnder, contentLines, digestOf, listUnder, metadataPatch, metadataSum, readList } from '../verify/tree-digest.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { CHECKPOINT_DIR } from '../checkpoint/on-disk.js';

/**
 * The copy's digest, taken the way the source took its own (see checkpoint.ts). `changed`: the
 * metadata from the index taken before the freeze (index-copy) brought up to date with the final
 * pass's list, when the source says that list is all the pass changed here; else from a walk.
 */
async function copyDigest(ctx: StepContext, input: RestoreInput, rootfs: string): Promise<{ digest: string; verifyMeta?: 'index' | 'walk' }> {
  const { runtime } = ctx;
  const name = input.container;
  if (input.verify !== 'changed') return { digest: await manifestDigest(rootfs, { signal: ctx.signal }) };
  const listFile = join(runtime.containerDir(name), VERIFY_LIST);
  const list = await readList(listFile).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    throw new FerryError('VERIFY_LIST_MISSING', `the list of what the final pass sent is missing on ${ctx.host.name} (${listFile})`, { retryable: false });
  });
  const rel = relative(runtime.containerDir(name), rootfs);
  const t = Date.now();
  let verifyMeta: 'index' | 'walk' = 'walk';
  const [sum, content] = await Promise.all([
    (async () => {
      const patched = input.metaPatch ? await metadataPatch(rootfs, metaIndexFile(ctx, input.migrationId), listUnder(list, rel), ctx.signal) : { refused: 'the final pass ran more than once' };
      if ('sum' in patched) {
        verifyMeta = 'index';
        return patched.sum;
      }
      ctx.log.info({ why: patched.refused }, 'copy index not usable: walking the copy');
      return metadataSum(rootfs, ctx.signal);
    })(),
    contentLines(rootfs, changedUnder(list, rel), ctx.signal),
  ]);
  ctx.log.info({ verifyMeta, verifyMs: Date.now() - t }, 'copy digest taken');
  return { digest: digestOf(sum, content), verifyMeta };
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
  // Read side by side (the container is down on both hosts meanwhile); the ownership check only
  // counts for a container that is here and not running.
  const [i, owned] = await Promise.all([runtime.info(name), ownedByMigration(ctx, input.migrationId, name)]);
  if (i?.state === 'RUNNING') {
    // Re-delivered after a restore from a dump that ended before its thaw: thaw it now.
    await runtime.unfreeze(name);
    const rec = await readJson<RestoreOutput>(recordFile);
    return { ...(rec ?? {}), running: true, ...(i.pid !== undefined ? { pid: i.pid } : {}) };
  }
  if (!i) {
    throw new PreconditionError('CONTAINER_MISSING', `container ${name} has not arrived on ${ctx.host.name} (no config in ${runtime.containerDir(name)})`);
  }
  if (!owned) {
    throw new PreconditionError('CONTAINER_NOT_OURS', `container ${name} on ${ctx.host.name} was not created by migration ${input.migrationId}`);
  }
  if (i.state !== 'STOPPED') {
    throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state} on ${ctx.host.name}`);
  }
  // A receiver of an interrupted pass may still be writing here: wait until none holds the dir
  // (beside the ownership record, which must be on disk before anything here starts).
  await Promise.all([
    writeJsonAtomic(ownershipFile(ctx, input.migrationId), { container: name, at: Date.now() }),
    waitForReceivers(receiverLockPath(ctx.host.lxcPath, name), ctx.signal),
  ]);

  const dir = runtime.containerDir(name);
  const srcDir = peerContainerDir(input.source, name);
  // The config and the digest of the rootfs are independent: taken side by side (the container
  // is down meanwhile). A refused config line throws CONFIG_NOT_ALLOWED before anything starts.
  const adopting = runtime.adoptConfig(name, { containerDir: srcDir, rootfsDir: `${srcDir}/rootfs` });
  let digest: string | undefined;
  let verifyMeta: RestoreOutput['verifyMeta'];
  if (input.expectManifestDigest) {
    ctx.progress({ stage: 'verify', message: 'digest of the copy' });
    // The copy's rootfs where adoption puts it (not the copied config's path: the source's).
    const taken = copyDigest(ctx, { ...input, verify: input.verify ?? 'full' }, join(dir, 'rootfs'));
    const [adopted, d] = await Promise.all([adopting, taken]);
    for (const w of adopted.dropped) ctx.log.warn({ container: name }, w);
    ({ digest, verifyMeta } = d);
    if (digest !== input.expectManifestDigest) {
      throw new FerryError(
        'MANIFEST_MISMATCH',
        `the copy of ${name} on ${ctx.host.name} differs from the frozen source (manifest ${digest} != ${input.expectManifestDigest})`,
        { retryable: false, details: { expected: input.expectManifestDigest, actual: digest } },
      );
    }
  } else {
    for (const w of (await adopting).dropped) ctx.log.warn({ container: name }, w);
  }
  await rm(join(dir, MARKER), { force: true });
  await Promise.all([rm(join(dir, VERIFY_LIST), { force: true }), removeMetaIndex(ctx, input.migrationId), removePartialDir(ctx.host.lxcPath, name)]);

  if (!input.start) {
    const out: RestoreOutput = { running: false, ...(digest ? { manifestDigest: digest } : {}), ...(verifyMeta ? { verifyMeta } : {}) };
    await writeJsonAtomic(recordFile, out);
    return out;
  }
  const dumpDir = join(dir, input.images === 'checkpoint' ? CHECKPOINT_DIR : DUMP_DIR);
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
  if (input.ip && after.pid !== undefined) {
    // Not awaited: arping lingers ~1 s after its packet. The switches learn the new port now,
    // not after the step hand-off; arp-refresh sends the rest.
    announce(after.pid, input.ip, 1, 0).catch((e: unknown) => ctx.log.warn({ err: e }, 'first gratuitous ARP not sent'));
  }
  await rm(dumpDir, { recursive: true, force: true });
  const out: RestoreOutput = {
    running: true,
    ...(after.pid !== undefined ? { pid: after.pid } : {}),
    ...(digest ? { manifestDigest: digest } : {}),
    ...(verifyMeta ? { verifyMeta } : {}),
    startedAt: Date.now(),
  };
  await writeJsonAtomic(recordFile, out);
  return out;
};
