import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FerryError, PreconditionError, type CloneCopyInput, type CloneCopyOutput, type Peer, type TransferStats } from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import { isUnder } from '../runtime/paths.js';
import { rsyncLocal, rsyncPush, transferProgress, type RsyncProgress } from '../transfer/rsync.js';
import { sshRun, sshTargetFor, type SshTarget } from '../transfer/ssh.js';
import { isActive } from '../runtime/state.js';
import { MARKER, readMarker } from '../ownership/target-ownership.js';
import { scratchDir } from '../ownership/scratch.js';
import { checkAborted } from '../transfer/abort.js';
import { FERRY_EXCLUDES, peerContainerDir } from '../transfer/target-dir.js';
import { readJson, writeJsonAtomic } from '../json-files.js';
import { receiverLockPath, receiverPartialDir } from '../transfer/receiver-lock.js';
import { pushMarker } from '../transfer/container-push.js';
import { guardRemote, targetTaken } from '../transfer/target-guard.js';
import { PassTracker, withoutList, type PassPlan } from '../transfer/tracked-pass.js';

/** At most this many of the peer's containers are looked at for a basis (one ssh round trip). */
const MAX_BASIS_CANDIDATES = 32;

/** The peer is this host: the copy is a local one (no ssh). */
export function isThisHost(ctx: StepContext, peer: Peer): boolean {
  return peer.name === ctx.host.name;
}

function recordFile(ctx: StepContext, migrationId: string): string {
  return join(scratchDir(ctx, migrationId), 'clone-copy.json');
}

/** Written before this step freezes the source: a retry knows a FROZEN source is its own doing. */
function frozeFile(ctx: StepContext, migrationId: string): string {
  return join(scratchDir(ctx, migrationId), 'clone-froze.json');
}

function exists(input: CloneCopyInput, dir: string, marker: string | null): never {
  return targetTaken(input.name, input.peer.name, dir, marker);
}

/** Local target: refuse a dir that is not ours, else create it holding only our marker. */
async function markLocal(ctx: StepContext, input: CloneCopyInput, dest: string): Promise<void> {
  const present = await stat(dest).then(() => true, () => false);
  if (present) {
    const marker = await readMarker(dest);
    if (marker !== input.migrationId) exists(input, dest, marker);
    return;
  }
  try {
    await mkdir(dest, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PreconditionError('LXC_PATH_MISSING', `LXC path ${input.peer.lxcPath} does not exist on ${ctx.host.name}`);
    }
    throw e;
  }
  await writeFile(join(dest, MARKER), `${input.migrationId}\n`);
}

/** `head -v` output (`==> FILE <==` before each file) split back into files. */
export function splitHeadOutput(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let cur: string | undefined;
  let buf: string[] = [];
  const flush = () => {
    if (cur !== undefined) out.set(cur, buf.join('\n'));
  };
  for (const line of text.split('\n')) {
    const h = /^==> (.*) <==$/.exec(line);
    if (h) {
      flush();
      cur = h[1]!;
      buf = [];
    } else buf.push(line);
  }
  flush();
  return out;
}

/**
 * A container on the target whose files can serve as rsync's basis (`--copy-dest`): one of the
 * containers the peer publishes in the registry, never the source's name nor the clone's, with
 * its rootfs in its own dir; one created from the same template as the source is preferred.
 * Configs are read in one ssh round trip and parsed by the runtime (one without configs: no basis);
 * anything unreadable just means no basis.
 */
export async function chooseBasis(ctx: StepContext, input: CloneCopyInput, t: SshTarget): Promise<string | undefined> {
  const info = await ctx.peerInfo(input.peer.name).catch(() => null);
  const names = (info?.containers ?? [])
    .map((c) => c.name)
    .filter((n) => n !== input.container && n !== input.name)
    .slice(0, MAX_BASIS_CANDIDATES);
  const { runtime } = ctx;
  if (!names.length || !runtime.configPath || !runtime.describeConfig) return undefined;
  const mine = await (runtime.template?.(input.container) ?? Promise.resolve(undefined)).catch(() => undefined);
  const files = names.map((n) => runtime.configPath!(peerContainerDir(input.peer, n)));
  let text: string;
  try {
    text = (await sshRun(t, 'head', ['-v', '-n', '500', ...files], { okExitCodes: [0, 1], signal: ctx.signal, timeoutMs: 30_000 })).stdout;
  } catch (e) {
    checkAborted(ctx);
    ctx.log.warn({ err: e }, 'cannot read the target’s container configs: copying without a basis');
    return undefined;
  }
  const configs = splitHeadOutput(text);
  let fallback: string | undefined;
  for (const n of names) {
    const dir = peerContainerDir(input.peer, n);
    const cfg = configs.get(runtime.configPath(dir));
    if (cfg === undefined) continue;
    const c = runtime.describeConfig(cfg, dir);
    if (!c.defaultRootfs) continue;
    if (mine && c.template === mine) return n;
    fallback ??= n;
  }
  return fallback;
}

function sum(passes: readonly TransferStats[]): TransferStats {
  return passes.reduce(
    (a, p) => ({ bytesSent: a.bytesSent + p.bytesSent, literalBytes: a.literalBytes + p.literalBytes, filesChanged: a.filesChanged + p.filesChanged, ms: a.ms + p.ms }),
    { bytesSent: 0, literalBytes: 0, filesChanged: 0, ms: 0 },
  );
}

/**
 * Source: copies a container's dir to `<peer lxcPath>/<name>/`, on this host (local rsync) or on
 * a peer (rsync over ssh, with a container of the target as basis when there is one).
 * Observe: a recorded result → it. Refuses a running source unless `freeze` (a copy of a running
 * container can be inconsistent) and a target dir that is not this clone's.
 * Act: mark the target dir first (so discard-target can remove a partial clone and nothing else);
 * with `freeze` and a running source, one pass while it runs, then freeze, a final pass of what
 * changed, and thaw — always, also when the copy fails.
 */
export const cloneCopy: Step<CloneCopyInput, CloneCopyOutput> = async (ctx, input) => {
  const { runtime } = ctx;
  const recorded = await readJson<CloneCopyOutput>(recordFile(ctx, input.migrationId));
  if (recorded) return recorded;

  const i = await runtime.info(input.container);
  if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${input.container} does not exist on ${ctx.host.name}`, { container: input.container });
  const ourFreeze = i.state === 'FROZEN' && (await readJson(frozeFile(ctx, input.migrationId))) !== null;
  if (!input.freeze && isActive(i.state) && !ourFreeze) {
    throw new PreconditionError(
      'CONTAINER_RUNNING',
      `container ${input.container} is ${i.state} on ${ctx.host.name}: stop it first, or pass --freeze to copy it frozen (a copy of a running container can be inconsistent)`,
      { container: input.container, state: i.state },
    );
  }

  if (input.freeze && !['RUNNING', 'FROZEN', 'STOPPED'].includes(i.state)) {
    throw new FerryError('CONTAINER_STATE', `container ${input.container} is ${i.state}; try again when it settles`, { retryable: true });
  }

  const srcDir = runtime.containerDir(input.container);
  const dest = peerContainerDir(input.peer, input.name);
  const local = isThisHost(ctx, input.peer);
  if (local && (isUnder(resolve(dest), resolve(srcDir)) || isUnder(resolve(srcDir), resolve(dest)))) {
    throw new PreconditionError('CLONE_DEST_INVALID', `the clone's dir ${dest} overlaps the source's ${srcDir}`);
  }

  const t = local ? undefined : sshTargetFor(ctx.host, input.peer);
  let basis: string | undefined;
  if (t) {
    await guardRemote(ctx, t, dest, { migrationId: input.migrationId, container: input.name, peer: input.peer.name });
    basis = await chooseBasis(ctx, input, t);
    await pushMarker(ctx, { migrationId: input.migrationId, container: input.name, peer: input.peer });
  } else {
    await markLocal(ctx, input, dest);
  }
  if (basis) ctx.log.info({ basis }, 'copying with a basis on the target');

  const bw = input.bwlimitKBps !== undefined ? { bwlimitKBps: input.bwlimitKBps } : {};
  const extraArgs = basis ? [`--copy-dest=${peerContainerDir(input.peer, basis)}/`] : [];
  // The frozen pass sends what changed since the first began, content compared (see tracked-pass.ts).
  const tracker = new PassTracker(scratchDir(ctx, input.migrationId), srcDir, FERRY_EXCLUDES.map((x) => x.slice(1)));
  const pass = (stage: string, atRest = false): Promise<TransferStats> => {
    ctx.progress({ stage, message: `copying ${input.container} to ${input.name} on ${input.peer.name}` });
    // run() does not look at a signal that is already aborted: check here, right before rsync.
    checkAborted(ctx);
    const onProgress = (p: RsyncProgress) => ctx.progress(transferProgress(stage, undefined, p));
    const send = (plan: PassPlan) => {
      // A basis file is taken where rsync finds it "identical": by content, not size + mtime, since
      // the basis is another container whose files may have been rewritten with their mtime kept.
      const checksum = plan.checksum || basis !== undefined;
      const common = { source: srcDir, excludes: FERRY_EXCLUDES, extraArgs, ...bw, ...(plan.filesFrom ? { filesFrom: plan.filesFrom } : {}), checksum, atRest, signal: ctx.signal, onProgress };
      return t
        ? rsyncPush({ ...common, target: t, dest, peerLabel: input.peer.name, receiverLock: receiverLockPath(input.peer.lxcPath, input.name), partialDir: receiverPartialDir(input.peer.lxcPath, input.name) })
        : rsyncLocal({ ...common, dest, partialDir: receiverPartialDir(ctx.host.lxcPath, input.name) });
    };
    const openForWrite = runtime.openForWrite ? () => runtime.openForWrite!(input.container) : undefined;
    return tracker.pass(send, { atRest, signal: ctx.signal, ...(openForWrite ? { openForWrite } : {}) }).then(withoutList);
  };

  const passes: TransferStats[] = [];
  let froze = ourFreeze;
  let frozen = i.state === 'FROZEN';
  let failure: unknown;
  try {
    if (input.freeze && i.state === 'RUNNING') {
      // Bulk while it runs, then only what changed while frozen: the freeze lasts one short pass.
      passes.push(await pass('clone-copy'));
      await writeJsonAtomic(frozeFile(ctx, input.migrationId), { container: input.container, at: Date.now() });
      froze = true;
      await runtime.freeze(input.container);
      frozen = true;
      passes.push(await pass('clone-copy-frozen', true));
    } else {
      passes.push(await pass('clone-copy'));
    }
  } catch (e) {
    failure = e;
  } finally {
    if (froze) {
      try {
        await runtime.unfreeze(input.container);
        await rm(frozeFile(ctx, input.migrationId), { force: true });
      } catch (e) {
        ctx.log.error({ err: e, copyError: failure }, 'could not thaw the source after the copy');
        throw new FerryError('SOURCE_THAW_FAILED', `container ${input.container} on ${ctx.host.name} could not be thawed: ${(e as Error).message}`, {
          retryable: true,
          cause: e,
        });
      }
    }
  }
  if (failure !== undefined) throw failure;

  const out: CloneCopyOutput = { ...sum(passes), ...(basis ? { basis } : {}), frozen };
  await writeJsonAtomic(recordFile(ctx, input.migrationId), out);
  return out;
};
