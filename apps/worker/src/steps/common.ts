import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandError, FerryError, PreconditionError, type ContainerState, type Peer } from '@ferry/core';
import { run } from '@ferry/infra';
import type { StepContext } from '../context.js';
import { readText } from '../json-files.js';

/** File in the target's container dir naming the migration that is filling it. */
export const MARKER = '.ferry-migration';
/** Directory in the target's container dir receiving a CRIU dump. */
export const DUMP_DIR = '.ferry-dump';
/** File in the target's container dir listing what the final pass sent (for `verify: changed`). */
export const VERIFY_LIST = '.ferry-verify';
/** Paths in the container dir that belong to ferry, not to the container (anchored rsync excludes). */
export const FERRY_EXCLUDES = [`/${MARKER}`, `/${DUMP_DIR}`, `/${VERIFY_LIST}`] as const;

/** Per-migration scratch directory of this host. */
export function scratchDir(ctx: StepContext, migrationId: string): string {
  return join(ctx.host.stateDir, migrationId);
}

/** The container's directory on a peer. */
export function peerContainerDir(peer: Peer, container: string): string {
  return `${peer.lxcPath.replace(/\/+$/, '')}/${container}`;
}

export function isActive(s: ContainerState): boolean {
  return s !== 'STOPPED';
}

/** Migration id written in a container dir's marker, or null when there is none. */
export async function readMarker(containerDir: string): Promise<string | null> {
  const t = await readText(join(containerDir, MARKER));
  return t === null ? null : t.trim();
}

export async function removeScratch(ctx: StepContext, migrationId: string): Promise<void> {
  await rm(scratchDir(ctx, migrationId), { recursive: true, force: true });
}

/** Bytes a directory occupies on disk (allocated blocks; holes of sparse files do not count). */
export async function diskUsage(dir: string, signal?: AbortSignal): Promise<number> {
  // Exit 1 with a total still printed happens when files vanish under a running container.
  const r = await run('du', ['-s', '--block-size=1', dir], { timeoutMs: 10 * 60_000, okExitCodes: [0, 1], ...(signal ? { signal } : {}) });
  const n = Number(r.stdout.trim().split(/\s+/)[0]);
  if (!Number.isFinite(n)) throw new Error(`du ${dir}: unexpected output ${r.stdout}`);
  return n;
}

/** Runtime tool missing (spawn failed) → a precondition error rather than a bare command failure. */
export function runtimeMissing(e: unknown): unknown {
  if (e instanceof CommandError && e.failure.exitCode === null && !e.failure.timedOut && !e.failure.signal) {
    return new PreconditionError('RUNTIME_MISSING', `container runtime not usable here: ${e.failure.stderrTail.trim()}`);
  }
  return e;
}

/** Throws when the worker is shutting down, as a retryable error (the job is run again later). */
export function checkAborted(ctx: StepContext): void {
  if (ctx.signal.aborted) {
    throw new FerryError('ABORTED', 'worker is shutting down; the step will run again', { retryable: true });
  }
}

/**
 * Wraps a step so that whatever escapes it while the worker is shutting down (an AbortError from
 * a stream, a killed rsync) becomes a retryable ABORTED error: the job runs again later.
 */
export function abortable<I, O>(step: (ctx: StepContext, input: I) => Promise<O>): (ctx: StepContext, input: I) => Promise<O> {
  return async (ctx, input) => {
    try {
      return await step(ctx, input);
    } catch (e) {
      // Whatever a command cut off by the abort said (an ssh killed mid-connection looks like an
      // unreachable peer), the cause is the abort.
      if (ctx.signal.aborted && !(e instanceof FerryError && e.code === 'ABORTED')) {
        throw new FerryError('ABORTED', 'worker is shutting down; the step will run again', { retryable: true, cause: e });
      }
      throw e;
    }
  };
}
