import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  capabilityMissing,
  FerryError,
  PreconditionError,
  precopyDecision,
  type ArpRefreshInput,
  type ArpRefreshOutput,
  type CheckpointDumpInput,
  type CheckpointDumpOutput,
  type CheckpointInput,
  type CheckpointOutput,
  type CheckpointRestoreInput,
  type CheckpointRestoreOutput,
  type CleanupInput,
  type CleanupOutput,
  type CloneCopyInput,
  type CloneCopyOutput,
  type CloneIdentityInput,
  type CloneIdentityOutput,
  type DiscardTargetInput,
  type DiscardTargetOutput,
  type IndexCopyInput,
  type IndexCopyOutput,
  type PreflightInput,
  type PreflightOutput,
  type RestoreInput,
  type RestoreOutput,
  type ResumeSourceInput,
  type ResumeSourceOutput,
  type RsyncTransferInput,
  type RsyncTransferOutput,
  type StepName,
  type TransferStats,
  type UnifyInput,
  type UnifyOutput,
} from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import type { StepTable } from '../processor.js';
import { abortable, checkAborted } from '../transfer/abort.js';
import { targetTaken } from '../transfer/target-guard.js';
import { requiredFreeBytes } from '../steps/preflight.js';
import { newMachineId, replaceHostNames } from '../steps/clone-identity.js';
import { checkpointDir, manifestPath, type CheckpointManifest } from '../checkpoint/on-disk.js';
import type { FaultPoint } from './faults.js';
import { DUMPS } from './runtime.js';
import { filesBytes, filesDigest, type FakeContainer, type FakeHost, type FakeWorld } from './world.js';

/**
 * FAKE. An implementation of every catalogue step over a FakeWorld (the fast workflow tier, bench:scale).
 * Each does on the world what its real step (apps/worker/src/steps/<name>.ts) does on a host, in
 * the same order, with the same observations first and the same records (kept in the world's
 * per-host scratch instead of `<stateDir>/<id>/`), the same stable error codes and outputs that
 * satisfy the catalogue's schemas: a step delivered twice, or re-run after its worker died, finds
 * what it did and goes on. Container state changes go through the host's runtime (ctx.runtime,
 * a FakeRuntime); "rsync" copies a container's file map and config to the peer host's world.
 *
 * Fault points (see faults.ts): every step has `start` (before it observes anything); `middle`
 * is after its first act: rsync-transfer after the first pass; checkpoint with the container at
 * rest (frozen), before the final pass; restore with the copy started, before its record;
 * discard-target with the copy stopped, before its removal; clone-copy while the source is frozen
 * (with freeze) or after the pass; clone-identity with the identity set, before the start;
 * checkpoint-dump inside the dump with the container already stopped (a dump that fails at its
 * worst: the step must bring the container back); checkpoint-restore with the container started,
 * before its images are removed.
 */
export function fakeSteps(world: FakeWorld): StepTable {
  const at = (ctx: StepContext, step: StepName, container: string | undefined, point: FaultPoint) =>
    world.faults.point(ctx.host.name, step, container, point, ctx.signal);
  const here = (ctx: StepContext): FakeHost => world.host(ctx.host.name);
  const rec = <T>(ctx: StepContext, id: string, file: string) => world.readRecord<T>(ctx.host.name, id, file);
  const write = (ctx: StepContext, id: string, file: string, v: unknown) => world.writeRecord(ctx.host.name, id, file, v);

  /** The container dir here was filled by this operation: its marker, or its ownership record. */
  const ownedBy = (ctx: StepContext, id: string, name: string): boolean =>
    here(ctx).containers.get(name)?.marker === id || rec<{ container: string }>(ctx, id, 'target-owned.json')?.container === name;

  /** guardRemote: a dir at the destination that is not this operation's is never written into. */
  const guard = (peer: FakeHost, dest: string, id: string, dir: string) => {
    const c = peer.containers.get(dest);
    if (c && c.marker !== id) targetTaken(dest, peer.name, dir, c.marker ?? null);
  };

  /** pushMarker: the destination dir exists and names this operation before anything is copied. */
  const pushMarker = (peer: FakeHost, dest: string, id: string): FakeContainer => {
    let c = peer.containers.get(dest);
    if (!c) {
      c = { name: dest, state: 'STOPPED', files: new Map(), marker: id };
      world.add(peer.name, c);
    }
    c.marker = id;
    return c;
  };

  /** One rsync pass (mirror, --delete): the file map and the config (its paths still the source's). */
  const mirror = (ctx: StepContext, src: FakeContainer, peer: FakeHost, dest: string): TransferStats => {
    checkAborted(ctx);
    world.reach(ctx.host.name, peer.name, 'TRANSFER_NETWORK');
    const dst = peer.containers.get(dest);
    if (!dst) throw new FerryError('TRANSFER_NETWORK', `fake rsync: ${dest} vanished on ${peer.name}`, { retryable: true });
    const t0 = Date.now();
    let bytes = 0;
    let changed = 0;
    for (const [p, c] of src.files) {
      if (dst.files.get(p) !== c) {
        bytes += Buffer.byteLength(c);
        changed += 1;
      }
    }
    for (const p of dst.files.keys()) if (!src.files.has(p)) changed += 1;
    dst.files = new Map(src.files);
    if (src.config) dst.config = structuredClone(src.config);
    // The checkpoint dir is part of the container dir.
    if (src.checkpoint) dst.checkpoint = structuredClone(src.checkpoint);
    else delete dst.checkpoint;
    return { bytesSent: bytes, literalBytes: bytes, filesChanged: changed, ms: Date.now() - t0 };
  };

  const missing = (ctx: StepContext, name: string) =>
    new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist on ${ctx.host.name}`, { container: name });

  const active = (s: string) => s !== 'STOPPED';

  // ---- preflight -------------------------------------------------------------------------
  const preflight: Step<PreflightInput, PreflightOutput> = async (ctx, input) => {
    await at(ctx, 'preflight', input.container, 'start');
    const { runtime } = ctx;
    const name = input.container;
    if (input.role === 'source') {
      const i = await runtime.info(name);
      if (!i) throw missing(ctx, name);
      if (input.refuseRunning && active(i.state)) {
        throw new PreconditionError('CONTAINER_RUNNING', `container ${name} is ${i.state} on ${ctx.host.name}: stop it first, or pass --freeze to copy it frozen`, { container: name, state: i.state });
      }
      if (input.requireCheckpoint && (i.state !== 'STOPPED' || !world.container(ctx.host.name, name)?.checkpoint)) {
        throw new PreconditionError('NOT_CHECKPOINTED', `container ${name} is not checkpointed on ${ctx.host.name} (it is ${i.state})`, { container: name, state: i.state });
      }
      if (input.peer.name !== ctx.host.name) world.reach(ctx.host.name, input.peer.name, 'PEER_UNREACHABLE');
      const [net, bindMounts] = await Promise.all([runtime.network(name), runtime.bindMounts(name)]);
      return {
        role: 'source',
        wasRunning: active(i.state),
        ...(net.ip ? { ip: net.ip } : {}),
        ...(net.mac ? { mac: net.mac } : {}),
        sizeBytes: filesBytes(world.container(ctx.host.name, name)!.files),
        bindMounts,
      };
    }
    const dir = runtime.containerDir(name);
    let alreadyThere = 0;
    const there = world.container(ctx.host.name, name);
    if (there) {
      if (there.marker !== input.migrationId) {
        throw new PreconditionError(
          'CONTAINER_EXISTS_ON_TARGET',
          there.marker ? `${dir} on ${ctx.host.name} belongs to another migration (${there.marker})` : `container ${name} already exists on ${ctx.host.name} (${dir})`,
          { container: name, ...(there.marker ? { marker: there.marker } : {}) },
        );
      }
      const i = await runtime.info(name);
      if (i && active(i.state)) throw new PreconditionError('CONTAINER_EXISTS_ON_TARGET', `container ${name} is ${i.state} on ${ctx.host.name}`, { container: name });
      alreadyThere = filesBytes(there.files);
    }
    const freeBytes = here(ctx).freeBytes;
    const expect = input.expect;
    const sizeBytes = expect?.sizeBytes ?? 0;
    const need = requiredFreeBytes(sizeBytes, alreadyThere);
    if (freeBytes < need) {
      throw new PreconditionError('TARGET_SPACE', `not enough free space on ${ctx.host.name}: ${freeBytes} B free, ${need} B needed`, { freeBytes, need, sizeBytes, alreadyThere });
    }
    if (expect?.ip || expect?.mac) {
      for (const c of (await runtime.list()).filter((x) => x.name !== name)) {
        const net = await runtime.network(c.name);
        if (expect.ip && net.ip === expect.ip) throw new PreconditionError('IP_IN_USE', `${expect.ip} is already used by container ${c.name} on ${ctx.host.name}`, { other: c.name, ip: expect.ip });
        if (expect.mac && net.mac?.toLowerCase() === expect.mac.toLowerCase()) {
          throw new PreconditionError('MAC_IN_USE', `${expect.mac} is already used by container ${c.name} on ${ctx.host.name}`, { other: c.name, mac: expect.mac });
        }
      }
    }
    const absent = (expect?.bindMounts ?? []).filter((p) => !here(ctx).dirs.has(p));
    if (absent.length) throw new PreconditionError('BIND_SOURCE_MISSING', `bind-mount sources missing on ${ctx.host.name}: ${absent.join(', ')}`, { missing: absent });
    return { role: 'target', freeBytes };
  };

  // ---- rsync-transfer --------------------------------------------------------------------
  const rsyncTransfer: Step<RsyncTransferInput, RsyncTransferOutput> = async (ctx, input) => {
    await at(ctx, 'rsync-transfer', input.container, 'start');
    const i = await ctx.runtime.info(input.container);
    if (!i) throw missing(ctx, input.container);
    const peer = world.reach(ctx.host.name, input.peer.name, 'PEER_UNREACHABLE');
    guard(peer, input.container, input.migrationId, `${input.peer.lxcPath}/${input.container}`);
    pushMarker(peer, input.container, input.migrationId);
    const src = world.container(ctx.host.name, input.container)!;
    const passes: TransferStats[] = [];
    let stopReason: string;
    for (;;) {
      ctx.progress({ stage: 'precopy', pass: passes.length + 1 });
      passes.push(mirror(ctx, src, peer, input.container));
      if (passes.length === 1) await at(ctx, 'rsync-transfer', input.container, 'middle');
      if (!input.wasRunning) {
        stopReason = 'container not running: one pass is enough';
        break;
      }
      const d = precopyDecision(passes, input.precopy);
      if (!d.again) {
        stopReason = d.reason;
        break;
      }
    }
    return { passes, bytesTransferred: passes.reduce((a, p) => a + p.bytesSent, 0), stopReason };
  };

  // ---- checkpoint ------------------------------------------------------------------------
  const checkpoint: Step<CheckpointInput, CheckpointOutput> = async (ctx, input) => {
    await at(ctx, 'checkpoint', input.container, 'start');
    const done = rec<CheckpointOutput>(ctx, input.migrationId, 'checkpoint.json');
    if (done) return done;
    const { runtime } = ctx;
    const name = input.container;
    const i = await runtime.info(name);
    if (!i) throw missing(ctx, name);
    const caps = await runtime.capabilities();
    const peer = world.reach(ctx.host.name, input.peer.name, 'PEER_UNREACHABLE');
    const src = world.container(ctx.host.name, name)!;

    const finalPass = (): { stats: TransferStats; verified: Pick<CheckpointOutput, 'manifestDigest' | 'verify'> } => {
      ctx.progress({ stage: 'final-sync' });
      const stats = mirror(ctx, src, peer, name);
      if (input.verify === 'off') return { stats, verified: {} };
      return { stats, verified: { manifestDigest: filesDigest(src.files), verify: input.verify } };
    };

    let out: CheckpointOutput;
    if (!input.wasRunning) {
      if (i.state !== 'STOPPED') throw new PreconditionError('CONTAINER_STARTED', `container ${name} was stopped at preflight but is ${i.state} now`);
      const { stats, verified } = finalPass();
      out = { method: 'none', finalPass: stats, ...verified };
    } else {
      const live = input.mode === 'live';
      if (live && !caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `live migration of ${name}`, ctx.host.name);
      let frozenAt = rec<{ frozenAt: number }>(ctx, input.migrationId, 'frozen.json')?.frozenAt;
      if (i.state === 'RUNNING' || i.state === 'FROZEN') {
        if (caps.freeze) {
          if (i.state === 'RUNNING') {
            const before = Date.now();
            await runtime.freeze(name);
            frozenAt = before;
            write(ctx, input.migrationId, 'frozen.json', { frozenAt });
          }
          frozenAt ??= Date.now();
        } else if (!live) {
          await runtime.stop(name);
        }
      } else if (i.state !== 'STOPPED') {
        throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state}`);
      }
      await at(ctx, 'checkpoint', name, 'middle');
      const { stats, verified } = finalPass();
      let method: CheckpointOutput['method'] = 'stop';
      const dumpDir = join(ctx.host.stateDir, input.migrationId, 'dump');
      const dumped = live && rec(ctx, input.migrationId, 'dumped.json') !== null;
      const dumpBegun = live && !dumped && rec(ctx, input.migrationId, 'dumped.json.started') !== null;
      if (live && (dumped || dumpBegun || (await runtime.info(name))?.state !== 'STOPPED')) {
        if (!dumped) {
          if (!dumpBegun) write(ctx, input.migrationId, 'dumped.json.started', { at: Date.now() });
          await runtime.checkpoint(name, dumpDir);
          write(ctx, input.migrationId, 'dumped.json', { at: Date.now() });
        }
        const dump = world.readRecord<{ files: [string, string][] }>(ctx.host.name, DUMPS, dumpDir);
        if (!dump) throw new FerryError('DUMP_MISSING', `no checkpoint dump in ${dumpDir} on ${ctx.host.name}`);
        world.reach(ctx.host.name, peer.name, 'TRANSFER_NETWORK');
        const copy = peer.containers.get(name);
        if (!copy) throw new FerryError('TRANSFER_NETWORK', `fake rsync: ${name} vanished on ${peer.name}`, { retryable: true });
        copy.dump = { files: new Map(dump.files) };
        method = 'dump';
      } else {
        await runtime.stop(name);
      }
      out = { method, ...(frozenAt !== undefined ? { frozenAt } : {}), finalPass: stats, ...verified };
    }
    write(ctx, input.migrationId, 'checkpoint.json', out);
    return out;
  };

  // ---- restore ---------------------------------------------------------------------------
  const restore: Step<RestoreInput, RestoreOutput> = async (ctx, input) => {
    await at(ctx, 'restore', input.container, 'start');
    const { runtime } = ctx;
    const name = input.container;
    const i = await runtime.info(name);
    if (i?.state === 'RUNNING') {
      const r = rec<RestoreOutput>(ctx, input.migrationId, 'restore.json');
      return { ...(r ?? {}), running: true, ...(i.pid !== undefined ? { pid: i.pid } : {}) };
    }
    if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${name} has not arrived on ${ctx.host.name}`);
    if (!ownedBy(ctx, input.migrationId, name)) throw new PreconditionError('CONTAINER_NOT_OURS', `container ${name} on ${ctx.host.name} was not created by migration ${input.migrationId}`);
    if (i.state !== 'STOPPED') throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state} on ${ctx.host.name}`);
    write(ctx, input.migrationId, 'target-owned.json', { container: name, at: Date.now() });
    const copy = world.container(ctx.host.name, name)!;
    await runtime.adoptConfig(name, { containerDir: `${input.source.lxcPath}/${name}`, rootfsDir: `${input.source.lxcPath}/${name}/rootfs` });
    let digest: string | undefined;
    if (input.expectManifestDigest) {
      digest = filesDigest(copy.files);
      if (digest !== input.expectManifestDigest) {
        throw new FerryError('MANIFEST_MISMATCH', `the copy of ${name} on ${ctx.host.name} differs from the frozen source (manifest ${digest} != ${input.expectManifestDigest})`, {
          retryable: false,
          details: { expected: input.expectManifestDigest, actual: digest },
        });
      }
    }
    delete copy.marker;
    if (!input.start) {
      const out: RestoreOutput = { running: false, ...(digest ? { manifestDigest: digest } : {}) };
      write(ctx, input.migrationId, 'restore.json', out);
      return out;
    }
    if (input.method === 'dump' && input.images === 'checkpoint') {
      if (!copy.checkpoint) throw new PreconditionError('DUMP_MISSING', `no checkpoint for ${name} on ${ctx.host.name}`);
      await runtime.restore(name, checkpointDir(runtime, name));
    } else if (input.method === 'dump') {
      if (!copy.dump) throw new PreconditionError('DUMP_MISSING', `no checkpoint dump for ${name} on ${ctx.host.name}`);
      await runtime.restore(name, join(runtime.containerDir(name), '.ferry-dump'));
    } else {
      await runtime.start(name);
    }
    const after = await runtime.info(name);
    if (after?.state !== 'RUNNING') throw new FerryError('CONTAINER_START_FAILED', `container ${name} is ${after?.state ?? 'gone'} after start on ${ctx.host.name}`);
    if (input.ip) here(ctx).announced.push({ container: name, ip: input.ip, at: Date.now() });
    await at(ctx, 'restore', name, 'middle');
    delete copy.dump;
    if (input.images === 'checkpoint') delete copy.checkpoint;
    const out: RestoreOutput = { running: true, ...(after.pid !== undefined ? { pid: after.pid } : {}), ...(digest ? { manifestDigest: digest } : {}), startedAt: Date.now() };
    write(ctx, input.migrationId, 'restore.json', out);
    return out;
  };

  // ---- index-copy: the fake world's digests need no index; the step is where a fault can hit ----
  const indexCopy: Step<IndexCopyInput, IndexCopyOutput> = async (ctx, input) => {
    await at(ctx, 'index-copy', input.container, 'start');
    return { indexed: false, ms: 0, skipped: 'fake runtime' };
  };

  // ---- arp-refresh -----------------------------------------------------------------------
  const arpRefresh: Step<ArpRefreshInput, ArpRefreshOutput> = async (ctx, input) => {
    await at(ctx, 'arp-refresh', input.container, 'start');
    const i = await ctx.runtime.info(input.container);
    if (!i || i.state !== 'RUNNING' || i.pid === undefined) {
      throw new PreconditionError('CONTAINER_NOT_RUNNING', `container ${input.container} is not running on ${ctx.host.name}`);
    }
    if (input.ip === undefined) return { sent: 0, device: '', skipped: 'no IPv4 address known for the container' };
    for (let n = 0; n < input.count; n++) here(ctx).announced.push({ container: input.container, ip: input.ip, at: Date.now() });
    // As the real step: the first before it ends, the rest "following" (here recorded at once).
    return { sent: 1, ...(input.count > 1 ? { following: input.count - 1 } : {}), device: 'eth0' };
  };

  // ---- cleanup ---------------------------------------------------------------------------
  const cleanup: Step<CleanupInput, CleanupOutput> = async (ctx, input) => {
    await at(ctx, 'cleanup', input.container, 'start');
    const i = await ctx.runtime.info(input.container);
    if (!i) {
      world.removeScratch(ctx.host.name, input.migrationId);
      return { removed: false, kept: false };
    }
    if (i.state !== 'STOPPED') {
      throw new PreconditionError('CONTAINER_ACTIVE', `refusing to clean up ${input.container} on ${ctx.host.name}: it is ${i.state}`, { state: i.state });
    }
    if (input.keepSource) {
      world.removeScratch(ctx.host.name, input.migrationId);
      return { removed: false, kept: true };
    }
    await ctx.runtime.destroy(input.container);
    world.removeScratch(ctx.host.name, input.migrationId);
    return { removed: true, kept: false };
  };

  // ---- discard-target --------------------------------------------------------------------
  const discardTarget: Step<DiscardTargetInput, DiscardTargetOutput> = async (ctx, input) => {
    await at(ctx, 'discard-target', input.container, 'start');
    const { runtime } = ctx;
    const name = input.container;
    const there = world.container(ctx.host.name, name);
    if (!there) {
      if (!input.keepCopy) world.removeScratch(ctx.host.name, input.migrationId);
      return { stopped: false, removed: false };
    }
    if (!ownedBy(ctx, input.migrationId, name)) {
      if (!there.config && there.files.size === 0 && there.marker === undefined) return { stopped: false, removed: false };
      throw new FerryError('TARGET_NOT_OURS', `${runtime.containerDir(name)} on ${ctx.host.name} was not made by migration ${input.migrationId}: left as it is`, { retryable: false });
    }
    const i = await runtime.info(name);
    let stopped = false;
    if (i && active(i.state)) {
      await runtime.stop(name);
      stopped = true;
    }
    await at(ctx, 'discard-target', name, 'middle');
    if (input.keepCopy) return { stopped, removed: false };
    if (i) await runtime.destroy(name);
    world.remove(ctx.host.name, name);
    world.removeScratch(ctx.host.name, input.migrationId);
    return { stopped, removed: true };
  };

  // ---- resume-source ---------------------------------------------------------------------
  const resumeSource: Step<ResumeSourceInput, ResumeSourceOutput> = async (ctx, input) => {
    await at(ctx, 'resume-source', input.container, 'start');
    const i = await ctx.runtime.info(input.container);
    if (!i) throw missing(ctx, input.container);
    let out: ResumeSourceOutput;
    if (i.state === 'FROZEN') {
      await ctx.runtime.unfreeze(input.container);
      out = { action: 'thawed', running: true };
    } else if (i.state === 'STOPPED') {
      if (input.wasRunning) {
        await ctx.runtime.start(input.container);
        out = { action: 'started', running: true };
      } else out = { action: 'none', running: false };
    } else if (i.state === 'RUNNING') {
      out = { action: 'none', running: true };
    } else {
      throw new FerryError('CONTAINER_STATE', `container ${input.container} is ${i.state}; try again when it settles`, { retryable: true });
    }
    world.removeScratch(ctx.host.name, input.migrationId);
    return out;
  };

  // ---- clone-copy ------------------------------------------------------------------------
  const cloneCopy: Step<CloneCopyInput, CloneCopyOutput> = async (ctx, input) => {
    await at(ctx, 'clone-copy', input.container, 'start');
    const recorded = rec<CloneCopyOutput>(ctx, input.migrationId, 'clone-copy.json');
    if (recorded) return recorded;
    const { runtime } = ctx;
    const i = await runtime.info(input.container);
    if (!i) throw missing(ctx, input.container);
    const ourFreeze = i.state === 'FROZEN' && rec(ctx, input.migrationId, 'clone-froze.json') !== null;
    if (!input.freeze && active(i.state) && !ourFreeze) {
      throw new PreconditionError('CONTAINER_RUNNING', `container ${input.container} is ${i.state} on ${ctx.host.name}: stop it first, or pass --freeze`, { container: input.container, state: i.state });
    }
    const local = input.peer.name === ctx.host.name;
    const peer = local ? here(ctx) : world.reach(ctx.host.name, input.peer.name, 'PEER_UNREACHABLE');
    guard(peer, input.name, input.migrationId, `${input.peer.lxcPath}/${input.name}`);
    // The basis rsync would use on the target: another of its containers, one of the same template first.
    const mine = world.container(ctx.host.name, input.container)?.config?.template;
    const others = [...peer.containers.values()].filter((c) => c.config && c.name !== input.container && c.name !== input.name);
    const basis = (others.find((c) => mine !== undefined && c.config?.template === mine) ?? others[0])?.name;
    pushMarker(peer, input.name, input.migrationId);
    const src = world.container(ctx.host.name, input.container)!;
    const pass = () => mirror(ctx, src, peer, input.name);

    const passes: TransferStats[] = [];
    let froze = ourFreeze;
    let frozen = i.state === 'FROZEN';
    let failure: unknown;
    try {
      if (input.freeze && i.state === 'RUNNING') {
        passes.push(pass());
        write(ctx, input.migrationId, 'clone-froze.json', { container: input.container, at: Date.now() });
        froze = true;
        await runtime.freeze(input.container);
        frozen = true;
        await at(ctx, 'clone-copy', input.container, 'middle');
        passes.push(pass());
      } else {
        passes.push(pass());
        await at(ctx, 'clone-copy', input.container, 'middle');
      }
    } catch (e) {
      failure = e;
    } finally {
      if (froze) {
        try {
          await runtime.unfreeze(input.container);
          world.deleteRecord(ctx.host.name, input.migrationId, 'clone-froze.json');
        } catch (e) {
          throw new FerryError('SOURCE_THAW_FAILED', `container ${input.container} on ${ctx.host.name} could not be thawed: ${(e as Error).message}`, { retryable: true, cause: e });
        }
      }
    }
    if (failure !== undefined) throw failure;
    const sum = passes.reduce((a, p) => ({ bytesSent: a.bytesSent + p.bytesSent, literalBytes: a.literalBytes + p.literalBytes, filesChanged: a.filesChanged + p.filesChanged, ms: a.ms + p.ms }), {
      bytesSent: 0,
      literalBytes: 0,
      filesChanged: 0,
      ms: 0,
    });
    const out: CloneCopyOutput = { ...sum, ...(basis ? { basis } : {}), frozen };
    write(ctx, input.migrationId, 'clone-copy.json', out);
    return out;
  };

  // ---- clone-identity --------------------------------------------------------------------
  const cloneIdentity: Step<CloneIdentityInput, CloneIdentityOutput> = async (ctx, input) => {
    await at(ctx, 'clone-identity', input.name, 'start');
    const { runtime } = ctx;
    const name = input.name;
    const id = input.migrationId;
    const i = await runtime.info(name);
    const recorded = rec<CloneIdentityOutput>(ctx, id, 'clone-identity.json');
    if (recorded) return { ...recorded, running: i?.state === 'RUNNING' };
    if (!i) throw new PreconditionError('CONTAINER_MISSING', `the copy ${name} has not arrived on ${ctx.host.name}`, { container: name });
    if (!ownedBy(ctx, id, name)) throw new PreconditionError('CONTAINER_NOT_OURS', `container ${name} on ${ctx.host.name} was not created by clone ${id}`, { container: name });
    const copy = world.container(ctx.host.name, name)!;
    if (i.state === 'RUNNING') {
      const out: CloneIdentityOutput = {
        running: true,
        ...(input.ip ? { ip: input.ip } : {}),
        mac: input.mac,
        machineId: (copy.files.get('etc/machine-id') ?? '').trim(),
        removedHostKeys: rec<string[]>(ctx, id, 'clone-identity-hostkeys.json') ?? [],
      };
      write(ctx, id, 'clone-identity.json', out);
      return out;
    }
    if (i.state !== 'STOPPED') throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${i.state} on ${ctx.host.name}`, { container: name });
    const caps = await runtime.capabilities();
    if (!caps.setIdentity) throw capabilityMissing(caps, 'setIdentity', `clone ${name}`, ctx.host.name);
    write(ctx, id, 'target-owned.json', { container: name, at: Date.now() });
    await runtime.adoptConfig(name, { containerDir: `${input.source.lxcPath}/${input.container}`, rootfsDir: `${input.source.lxcPath}/${input.container}/rootfs` });
    await runtime.setIdentity(name, { hostname: input.hostname, mac: input.mac, ...(input.ip ? { ip: input.ip } : {}) });
    await at(ctx, 'clone-identity', name, 'middle');

    let names = rec<{ hostname?: string }>(ctx, id, 'clone-identity-names.json');
    if (!names) {
      const h = copy.files.get('etc/hostname')?.trim().split(/\s+/)[0];
      names = h ? { hostname: h } : {};
      write(ctx, id, 'clone-identity-names.json', names);
    }
    const oldNames = [...new Set([input.container, names.hostname].filter((x): x is string => !!x))];
    const hosts = copy.files.get('etc/hosts');
    if (hosts !== undefined) copy.files.set('etc/hosts', replaceHostNames(hosts, oldNames, input.hostname));
    copy.files.set('etc/hostname', `${input.hostname}\n`);
    const machineId = newMachineId();
    copy.files.set('etc/machine-id', `${machineId}\n`);
    if (copy.files.has('var/lib/dbus/machine-id')) copy.files.set('var/lib/dbus/machine-id', `${machineId}\n`);
    const isHostKey = (p: string) => (p.startsWith('etc/ssh/') && p.slice('etc/ssh/'.length).startsWith('ssh_host_')) || (p.startsWith('etc/dropbear/') && p.includes('_host_key'));
    const removedNow = [...copy.files.keys()].filter(isHostKey);
    for (const p of removedNow) copy.files.delete(p);
    const removedHostKeys = [...new Set([...(rec<string[]>(ctx, id, 'clone-identity-hostkeys.json') ?? []), ...removedNow.map((p) => `/${p}`)])].sort();
    write(ctx, id, 'clone-identity-hostkeys.json', removedHostKeys);
    delete copy.marker;

    let running = false;
    if (input.start) {
      await runtime.start(name);
      const after = await runtime.info(name);
      if (after?.state !== 'RUNNING') throw new FerryError('CONTAINER_START_FAILED', `clone ${name} is ${after?.state ?? 'gone'} after start on ${ctx.host.name}`);
      running = true;
    }
    const out: CloneIdentityOutput = { running, ...(input.ip ? { ip: input.ip } : {}), mac: input.mac, machineId, removedHostKeys };
    write(ctx, id, 'clone-identity.json', out);
    return out;
  };

  // ---- checkpoint-dump / checkpoint-restore (ferry checkpoint / restore) -------------------
  /** The checkpoint's manifest on disk, where the real heartbeat reads it (or its removal). */
  const persistCheckpoint = (ctx: StepContext, name: string, m: CheckpointManifest | undefined) => {
    const dir = checkpointDir(ctx.runtime, name);
    if (!m) return rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(manifestPath(dir), `${JSON.stringify(m)}\n`);
  };

  const checkpointDump: Step<CheckpointDumpInput, CheckpointDumpOutput> = async (ctx, input) => {
    await at(ctx, 'checkpoint-dump', input.container, 'start');
    const { runtime } = ctx;
    const name = input.container;
    const dir = checkpointDir(runtime, name);
    const c = world.container(ctx.host.name, name);
    if (c?.checkpoint?.operation === input.migrationId) return { at: c.checkpoint.at, dir, bytes: filesBytes(new Map(c.checkpoint.files)) };
    const i = await runtime.info(name);
    if (!i || !c) throw missing(ctx, name);
    if (i.state !== 'RUNNING') {
      throw new PreconditionError('CONTAINER_NOT_RUNNING', `container ${name} is ${i.state} on ${ctx.host.name}: only a running container can be checkpointed`, { container: name, state: i.state });
    }
    const caps = await runtime.capabilities();
    if (!caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `checkpoint ${name}`, ctx.host.name);
    const tmp = `${dir}.tmp`;
    try {
      await runtime.checkpoint(name, tmp); // stops it once dumped
      await at(ctx, 'checkpoint-dump', name, 'middle');
    } catch (e) {
      // As the real step: a dump that failed lets the container run again.
      const now = await runtime.info(name);
      if (now?.state === 'FROZEN') await runtime.unfreeze(name);
      else if (now?.state === 'STOPPED') await runtime.start(name);
      world.deleteRecord(ctx.host.name, DUMPS, tmp);
      throw e;
    }
    const dump = world.readRecord<{ files: [string, string][] }>(ctx.host.name, DUMPS, tmp)!;
    world.deleteRecord(ctx.host.name, DUMPS, tmp);
    c.checkpoint = { at: Date.now(), operation: input.migrationId, files: [...dump.files] };
    persistCheckpoint(ctx, name, { version: 1, container: name, host: ctx.host.name, operation: input.migrationId, at: c.checkpoint.at });
    return { at: c.checkpoint.at, dir, bytes: filesBytes(new Map(c.checkpoint.files)) };
  };

  const checkpointRestore: Step<CheckpointRestoreInput, CheckpointRestoreOutput> = async (ctx, input) => {
    await at(ctx, 'checkpoint-restore', input.container, 'start');
    const { runtime } = ctx;
    const name = input.container;
    const i = await runtime.info(name);
    const c = world.container(ctx.host.name, name);
    if (!i || !c) throw missing(ctx, name);
    const begun = rec<{ at: number; checkpointAt: number }>(ctx, input.migrationId, 'restore-begun.json');
    if (begun && i.state !== 'STOPPED') {
      if (i.state === 'FROZEN') await runtime.unfreeze(name);
      delete c.checkpoint;
      persistCheckpoint(ctx, name, undefined);
      world.removeScratch(ctx.host.name, input.migrationId);
      return { running: true, checkpointAt: begun.checkpointAt, startedAt: begun.at };
    }
    if (i.state !== 'STOPPED' || !c.checkpoint) {
      throw new PreconditionError('NOT_CHECKPOINTED', `container ${name} on ${ctx.host.name} is ${i.state}${c.checkpoint ? ' (its checkpoint on disk is stale)' : ' without a checkpoint'}: nothing to restore`, { container: name, state: i.state });
    }
    const caps = await runtime.capabilities();
    if (!caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `restore ${name}`, ctx.host.name);
    const checkpointAt = c.checkpoint.at;
    write(ctx, input.migrationId, 'restore-begun.json', { at: Date.now(), checkpointAt });
    await runtime.restore(name, checkpointDir(runtime, name));
    const after = await runtime.info(name);
    if (after?.state !== 'RUNNING') throw new FerryError('CONTAINER_START_FAILED', `container ${name} is ${after?.state ?? 'gone'} after its restore on ${ctx.host.name}`, { retryable: false });
    await at(ctx, 'checkpoint-restore', name, 'middle');
    delete c.checkpoint;
    persistCheckpoint(ctx, name, undefined);
    world.removeScratch(ctx.host.name, input.migrationId);
    return { running: true, ...(after.pid !== undefined ? { pid: after.pid } : {}), checkpointAt, startedAt: Date.now() };
  };

  // ---- unify -----------------------------------------------------------------------------
  const unify: Step<UnifyInput, UnifyOutput> = async (ctx, input) => {
    await at(ctx, 'unify', input.container, 'start');
    const infos = await Promise.all(input.containers.map((n) => ctx.runtime.info(n)));
    const absent = input.containers.filter((_, k) => !infos[k]);
    if (absent.length) throw new PreconditionError('CONTAINER_MISSING', `not on ${ctx.host.name}: ${absent.join(', ')}`);
    const up = input.containers.filter((_, k) => infos[k]!.state !== 'STOPPED');
    if ((input.mode === 'hardlink' || input.revert) && up.length) {
      throw new FerryError('UNIFY_CONTAINER_RUNNING', `${input.mode} works on stopped containers only; running: ${up.join(', ')}`, { details: { running: up } });
    }
    // Identical content among the containers' files: all but one copy of each share its data.
    // What an earlier run shared stays shared (kept in the host's scratch): a re-run frees nothing more.
    const shared = new Set(world.readRecord<string[]>(ctx.host.name, '.unify', 'shared') ?? []);
    const byContent = new Map<string, string[]>();
    let filesExamined = 0;
    for (const n of input.containers) {
      for (const [p, c] of world.container(ctx.host.name, n)!.files) {
        filesExamined += 1;
        const k = `${c.length}:${c}`;
        byContent.set(k, [...(byContent.get(k) ?? []), `${n}/${p}`]);
      }
    }
    let filesShared = 0;
    let bytesShared = 0;
    let filesAlreadyShared = 0;
    let bytesAlreadyShared = 0;
    let duplicateGroups = 0;
    for (const [k, paths] of byContent) {
      if (paths.length < 2) continue;
      duplicateGroups += 1;
      const size = Buffer.byteLength(k.slice(k.indexOf(':') + 1));
      for (const p of paths.slice(1)) {
        if (shared.has(p)) {
          filesAlreadyShared += 1;
          bytesAlreadyShared += size;
        } else {
          filesShared += 1;
          bytesShared += size;
          if (!input.dryRun && !input.revert) shared.add(p);
        }
      }
    }
    if (!input.dryRun) world.writeRecord(ctx.host.name, '.unify', 'shared', input.revert ? [] : [...shared]);
    return {
      action: input.revert ? 'revert' : 'unify',
      mode: input.mode,
      dryRun: input.dryRun,
      filesExamined,
      duplicateGroups,
      filesShared,
      bytesShared,
      filesAlreadyShared,
      bytesAlreadyShared,
      bytesFreed: input.dryRun || input.revert ? 0 : bytesShared,
    };
  };

  return {
    preflight: abortable(preflight),
    'rsync-transfer': abortable(rsyncTransfer),
    checkpoint: abortable(checkpoint),
    'index-copy': abortable(indexCopy),
    restore: abortable(restore),
    'arp-refresh': abortable(arpRefresh),
    cleanup: abortable(cleanup),
    'discard-target': abortable(discardTarget),
    'resume-source': abortable(resumeSource),
    unify: abortable(unify),
    'clone-copy': abortable(cloneCopy),
    'clone-identity': abortable(cloneIdentity),
    'checkpoint-dump': abortable(checkpointDump),
    'checkpoint-restore': abortable(checkpointRestore),
  };
}
