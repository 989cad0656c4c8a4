import { join, relative } from 'node:path';
import { PreconditionError, type CheckpointInput, type CheckpointOutput, type TransferStats } from '@ferry/core';
import type { Step } from '../context.js';
import { manifestDigest } from '../manifest/manifest.js';
import { localDump, scratchDir } from '../ownership/scratch.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { openAtRestLink, pushContainer, pushDump } from '../transfer/container-push.js';
import { trackedSince, withoutList } from '../transfer/tracked-pass.js';
import { indexedAhead, stopIndexAhead, takeSourceIndex } from '../verify/index-ahead.js';
import { metaIndexFile } from '../verify/meta-index.js';
import { changedUnder, contentLines, digestOf, listUnder, metadataPatch, metadataSum, readList } from '../verify/tree-digest.js';

/**
 * Source: brings the container to rest and sends the last changes.
 * Observe: a recorded result of this migration (`<stateDir>/<id>/checkpoint.json`) is returned as
 * is; a container already frozen (or stopped) by an earlier attempt is taken as it is.
 * Act (was running): freeze, final rsync pass and the digest of the frozen rootfs (verify), then
 * a CRIU dump sent to the target (live) or a kill while frozen (restart: it never runs again here).
 * Act (was not running): one final pass, method `none`. Records the result, then returns it.
 */
export const checkpoint: Step<CheckpointInput, CheckpointOutput> = async (ctx, input) => {
  const scratch = scratchDir(ctx, input.migrationId);
  const record = join(scratch, 'checkpoint.json');
  const done = await readJson<CheckpointOutput>(record);
  if (done) return done;

  const { runtime } = ctx;
  const name = input.container;
  const i = await runtime.info(name);
  if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist on ${ctx.host.name}`);
  const caps = await runtime.capabilities();

  const rootfs = runtime.rootfsDir(name);
  const rootfsRel = relative(runtime.containerDir(name), rootfs);
  const index = metaIndexFile(ctx, input.migrationId);
  /** Written before the final pass starts: a re-run cannot tell what an earlier one changed. */
  const finalStarted = join(scratch, 'final-pass.started');
  const firstFinal = !(await readJson<object>(finalStarted));

  /**
   * The last pass, at rest, and the digest the target's copy must match. `changed`: the metadata
   * sum comes from the index taken at the end of pre-copy or just before the freeze, brought up to date with the final
   * pass's list (the frozen window grows with the change, not with the tree); where that cannot
   * be vouched for, from a walk beside the pass (the source no longer changes; rsync only reads
   * it). The content of what the pass sent is digested after it, and that list goes to the
   * target (in the pass's own transfer), with whether it may patch its own index with it. A pass
   * that could not say what it sent (no earlier pass to compare with) is verified in full.
   * Returns once the pass is done; `verify` takes the digest (the caller may stop the frozen
   * source meanwhile: its tasks never run again, so nothing writes to the rootfs).
   */
  type Verified = Pick<CheckpointOutput, 'manifestDigest' | 'verify' | 'metaPatch' | 'verifyMeta'>;
  const finalPass = async (): Promise<{ stats: TransferStats; verify: () => Promise<Verified> }> => {
    // A background index not used by now (the container was already at rest) only competes.
    await stopIndexAhead(ctx, input.migrationId);
    ctx.progress({ stage: 'final-sync', message: 'final pass' });
    const indexed = firstFinal && input.verify === 'changed' ? await readJson<{ since: number }>(`${index}.json`) : null;
    const patchable = indexed !== null && indexed.since === (await trackedSince(scratch));
    await writeJsonAtomic(finalStarted, { at: Date.now() });
    const meta = input.verify === 'changed' && !patchable ? metadataSum(rootfs, ctx.signal) : undefined;
    meta?.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const stats = await pushContainer(ctx, input, 'final-sync', { atRest: true, sendList: input.verify === 'changed' });
    ctx.log.info({ filesChanged: stats.filesChanged, bytesSent: stats.bytesSent, passMs: stats.ms }, 'final pass done');
    const verify = async (): Promise<Verified> => {
      if (input.verify === 'off') return {};
      ctx.progress({ stage: 'verify', message: 'digest of the source rootfs' });
      if (input.verify === 'changed' && stats.listFile) {
        const t = Date.now();
        const list = await readList(stats.listFile);
        const p = patchable ? await metadataPatch(rootfs, index, listUnder(list, rootfsRel), ctx.signal) : null;
        if (p && 'refused' in p) ctx.log.info({ why: p.refused }, 'source index not usable: walking the frozen rootfs');
        const patched = p && 'sum' in p ? p.sum : null;
        const sum = patched ?? (await (meta ?? metadataSum(rootfs, ctx.signal)));
        const manifestDigest = digestOf(sum, await contentLines(rootfs, changedUnder(list, rootfsRel), ctx.signal));
        ctx.log.info({ verifyMeta: patched !== null ? 'index' : 'walk', verifyMs: Date.now() - t }, 'source digest taken');
        return { manifestDigest, verify: 'changed', verifyMeta: patched !== null ? 'index' : 'walk', ...(firstFinal ? { metaPatch: true } : {}) };
      }
      await meta;
      return { manifestDigest: await manifestDigest(rootfs, { signal: ctx.signal }), verify: 'full' };
    };
    return { stats: withoutList(stats), verify };
  };

  /**
   * `changed`, first time here, container running: the index taken at the end of pre-copy
   * (index-ahead.ts) when it is there and still current, else index the rootfs's metadata now, before the freeze
   * (after the last pre-copy pass began, so that pass's successor, the final one, lists every
   * change since). Costs a walk while the container runs instead of one while it is frozen.
   */
  const indexBeforeFreeze = async (): Promise<void> => {
    const since = await trackedSince(scratch);
    if (input.verify !== 'changed' || !firstFinal || since === undefined) return;
    if (await indexedAhead(ctx, input.migrationId)) return; // taken at the end of pre-copy
    await takeSourceIndex(ctx, input.migrationId, rootfs, since, 'source indexed before the freeze');
  };

  let out: CheckpointOutput;
  if (!input.wasRunning) {
    if (i.state !== 'STOPPED') {
      throw new PreconditionError('CONTAINER_STARTED', `container ${name} was stopped at preflight but is ${i.state} now`);
    }
    const { stats, verify } = await finalPass();
    out = { method: 'none', finalPass: stats, ...(await verify()) };
  } else {
    const live = input.mode === 'live';
    if (live && !caps.checkpoint) {
      throw new PreconditionError('CHECKPOINT_UNSUPPORTED', `live migration needs checkpoint support: ${caps.checkpointReason ?? 'not available'}`);
    }
    await openAtRestLink(ctx, input.peer);
    const frozenFile = join(scratch, 'frozen.json');
    let frozenAt = (await readJson<{ frozenAt: number }>(frozenFile))?.frozenAt;
    if (i.state === 'RUNNING' || i.state === 'FROZEN') {
      if (caps.freeze) {
        if (i.state === 'RUNNING') {
          if (frozenAt === undefined) await indexBeforeFreeze();
          const before = Date.now();
          // When the runtime knows when the tasks stopped (its freezer write), from then.
          frozenAt = (await runtime.freeze(name)) ?? before;
          await writeJsonAtomic(frozenFile, { frozenAt });
        }
        frozenAt ??= Date.now();
      } else if (!live) {
        await runtime.stop(name); // no freezer: stop first, the copy is then taken at rest
      }
    } else if (i.state !== 'STOPPED') {
      throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state}`);
    }
    ctx.log.info({ frozenAt }, 'container at rest, final pass');
    const { dir: dump, marker: dumpedFile } = localDump(ctx, input.migrationId);
    const dumpStartedFile = `${dumpedFile}.started`;
    let dumped = live ? await readJson<{ at: number; dumpMs?: number }>(dumpedFile) : null;
    // A dump begun by an attempt killed meanwhile (it may have finished and stopped the container
    // since): the runtime waits for it and takes it, or says the process state is lost. Never a
    // stop and a cold start in its place. Before the final pass: while CRIU still works on the
    // tasks the rootfs is not final (a pass and digest beside it disagreed with the copy, now and
    // then, in steps.test.ts); once the dump has ended they are gone.
    const dumpBegun = live && !dumped ? await readJson<{ at: number }>(dumpStartedFile) : null;
    if (dumpBegun) {
      await runtime.checkpoint(name, dump); // stops the container once dumped
      dumped = { at: Date.now(), dumpMs: Date.now() - dumpBegun.at };
      await writeJsonAtomic(dumpedFile, dumped);
    }
    const { stats, verify } = await finalPass();
    let verified: Verified;
    let method: CheckpointOutput['method'] = 'stop';
    let dumpFigures: CheckpointOutput['dump'];
    if (live && (dumped || (await runtime.info(name))?.state !== 'STOPPED')) {
      verified = await verify();
      let dumpMs = dumped?.dumpMs ?? 0;
      if (!dumped) {
        await writeJsonAtomic(dumpStartedFile, { at: Date.now() });
        const t = Date.now();
        await runtime.checkpoint(name, dump); // stops the container once dumped
        dumpMs = Date.now() - t;
        await writeJsonAtomic(dumpedFile, { at: Date.now(), dumpMs });
      }
      ctx.progress({ stage: 'dump-sync', message: 'sending the checkpoint' });
      const sent = await pushDump(ctx, input, dump);
      dumpFigures = { bytes: sent.bytesSent, dumpMs, sendMs: sent.ms };
      ctx.log.info(dumpFigures, 'checkpoint sent');
      method = 'dump';
    } else {
      // While frozen, SIGKILL is taken before anything runs again: the stop and the digest of
      // the rootfs (which nothing writes to any more) go side by side.
      [verified] = await Promise.all([verify(), runtime.stop(name)]);
      ctx.log.info({ digest: verified.manifestDigest !== undefined }, 'verified and stopped');
    }
    out = {
      method,
      ...(frozenAt !== undefined ? { frozenAt } : {}),
      finalPass: stats,
      ...verified,
      ...(dumpFigures ? { dump: dumpFigures } : {}),
    };
  }
  await writeJsonAtomic(record, out);
  return out;
};
