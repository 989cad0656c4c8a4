import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capabilityMissing, PreconditionError, type CheckpointDumpInput, type CheckpointDumpOutput } from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { removeScratch, scratchDir } from '../ownership/scratch.js';
import { diskUsage } from '../transfer/disk-usage.js';
import { checkpointDir, checkpointTmp, configDigest, manifestPath, readCheckpoint, type CheckpointManifest } from '../checkpoint/on-disk.js';

/** A dump that did not complete must not leave the container stopped: thaw it, or start it cold (logged). */
async function bringBack(ctx: StepContext, name: string, why: string): Promise<void> {
  const { runtime } = ctx;
  const i = await runtime.info(name);
  if (i?.state === 'FROZEN') {
    await runtime.unfreeze(name);
  } else if (i?.state === 'STOPPED') {
    ctx.log.warn({ container: name }, `${why}: the container had stopped; starting it again (cold)`);
    await runtime.start(name);
  }
}

/**
 * Host: dumps the running container to this host's disk and leaves it stopped (`checkpointed`).
 * Observe: a complete checkpoint of this operation → its result. A dump of this operation that was
 * cut off (worker killed) → the runtime's checkpoint waits for it and takes it when it finished.
 * Refuses a container that is not running (CONTAINER_NOT_RUNNING) and a host that cannot checkpoint.
 * Act: CRIU dump into CHECKPOINT_TMP (the runtime stops the container once dumped), the manifest
 * last, then rename to CHECKPOINT_DIR. A dump that fails leaves the container running.
 */
export const checkpointDump: Step<CheckpointDumpInput, CheckpointDumpOutput> = async (ctx, input) => {
  const { runtime } = ctx;
  const name = input.container;
  const final = checkpointDir(runtime, name);
  const tmp = checkpointTmp(runtime, name);
  const scratch = scratchDir(ctx, input.migrationId);
  const started = join(scratch, 'dump-started.json');
  const dumped = join(scratch, 'dumped.json');
  const result = async (m: CheckpointManifest): Promise<CheckpointDumpOutput> => ({
    at: m.at,
    dir: final,
    bytes: await diskUsage(final).catch(() => 0),
    ...(m.configDigest ? { configDigest: m.configDigest } : {}),
  });

  const existing = await readCheckpoint(runtime, name);
  if (existing?.operation === input.migrationId) return result(existing);

  const i = await runtime.info(name);
  if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist on ${ctx.host.name}`, { container: name });
  if ((await readJson(dumped)) === null) {
    // An attempt of this operation cut off in the dump (worker killed): the runtime waits for the
    // dump it began, takes it when it finished, or says the process state is lost (then the
    // container is brought back cold and the operation fails, loudly).
    const resumed = (await readJson(started)) !== null;
    if (!resumed && i.state !== 'RUNNING') {
      throw new PreconditionError('CONTAINER_NOT_RUNNING', `container ${name} is ${i.state} on ${ctx.host.name}: only a running container can be checkpointed`, {
        container: name,
        state: i.state,
      });
    }
    const caps = await runtime.capabilities();
    if (!caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `checkpoint ${name}`, ctx.host.name);
    if (!resumed) await writeJsonAtomic(started, { at: Date.now() }); // the runtime makes `tmp` and empties it
    ctx.progress({ stage: 'dump', message: `dumping ${name} to ${tmp}` });
    try {
      await runtime.checkpoint(name, tmp); // stops the container once dumped
    } catch (e) {
      await bringBack(ctx, name, 'the dump failed'); // its images are not complete
      await rm(tmp, { recursive: true, force: true });
      await rm(started, { force: true });
      throw e;
    }
    await writeJsonAtomic(dumped, { at: Date.now() });
  }
  const digest = await configDigest(runtime, name);
  const manifest: CheckpointManifest = {
    version: 1,
    container: name,
    host: ctx.host.name,
    operation: input.migrationId,
    at: (await readJson<{ at: number }>(dumped))?.at ?? Date.now(),
    ...(digest ? { configDigest: digest } : {}),
  };
  // The manifest last, then the rename: CHECKPOINT_DIR with a manifest is a complete checkpoint.
  await writeFile(manifestPath(tmp), `${JSON.stringify(manifest)}\n`);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await removeScratch(ctx, input.migrationId);
  ctx.log.info({ container: name, dir: final }, 'checkpointed');
  return result(manifest);
};
