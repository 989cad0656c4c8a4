import type { JobsOptions } from 'bullmq';
import { FerryError } from '@ferry/core';
import { JobSigner, loadOrCreatePrivateKey, trustPaths, type SignableQueue } from '@ferry/infra';

let signer: Promise<JobSigner> | undefined;

/**
 * Puts a job signed by the control-plane key on a queue: the scheduler and the workers act on no
 * other. The key (FERRY_CONTROL_KEY, default `<state dir>/keys/control.key`) is read at the first
 * job and made if missing. Interim, until the authenticated API exists: the CLI runs where the
 * scheduler does, as the same (root) user, and reads its key.
 */
export async function enqueue<D extends object>(queue: SignableQueue<D>, name: string, data: D, opts: JobsOptions & { jobId: string }, ttlMs: number): Promise<void> {
  signer ??= controlSigner();
  await (await signer).add(queue, name, data, opts, ttlMs);
}

/** The control-plane key, made (with its public half beside it, for workers) when there is none yet. */
async function controlSigner(): Promise<JobSigner> {
  const paths = trustPaths();
  try {
    return new JobSigner((await loadOrCreatePrivateKey(paths.controlKey, { publicPath: paths.controlPub })).key);
  } catch (e) {
    signer = undefined;
    if (e instanceof FerryError) throw e;
    throw new FerryError('CONTROL_KEY_UNREADABLE', `cannot read the control-plane key ${paths.controlKey}: ${(e as Error).message} (run ferry as root where the scheduler runs, or set FERRY_CONTROL_KEY)`);
  }
}
