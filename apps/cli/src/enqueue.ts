import type { JobsOptions } from 'bullmq';
import { FerryError, JOB_TTL_MS, type SchedulerJob } from '@ferry/core';
import { JobSigner, loadOrCreatePrivateKey, replicated, trustPaths, type SignableQueue } from '@ferry/infra';
import type { Client } from './client.js';

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

/**
 * An operation request (submit, retry, cancel) onto the scheduler's queue, signed, and on a Redis
 * replica before the command says it is submitted, where the server has replicas: a failover loses
 * what the old master had not passed on, and nothing but the user would ask again.
 */
export async function enqueueRequest<D extends SchedulerJob>(c: Client, name: string, data: D, jobId: string): Promise<void> {
  await enqueue(c.queues.scheduler, name, data, { jobId }, JOB_TTL_MS.request);
  const r = await replicated(c.redis, c.store.prefix).catch(() => ({ replicas: -1, acked: 0 }));
  if (r.replicas !== 0 && r.acked === 0) process.stderr.write(`ferry: warning: no Redis replica has acknowledged request ${jobId} yet (1 s); a failover now could lose it\n`);
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
