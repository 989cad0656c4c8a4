import type { KeyObject } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { JOB_TTL_MS, type SchedulerJob } from '@ferry/core';
import { HostRegistry, JobSigner, openRedis, OperationStore, Queues, replicated, type RedisClient, type SignableQueue } from '@ferry/infra';
import { controlKeyFromFiles } from './control-key.js';

/** What CLI commands (and the API server, for its clients) talk to: Redis, its stores, the queues, the control key. */
export interface Client {
  redis: RedisClient;
  store: OperationStore;
  registry: HostRegistry;
  queues: Queues;
  /** The control-plane private key: signs jobs and requests, and API tokens. */
  controlKey(): Promise<KeyObject>;
  /**
   * Puts a job signed by the control-plane key on a queue: the scheduler and the workers act on no
   * other. Its id must be given (it is signed).
   */
  enqueue<D extends object>(queue: SignableQueue<D>, name: string, data: D, opts: JobsOptions & { jobId: string }, ttlMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A client on an open connection, under `prefix`, signing with `controlKey` (default: the key file,
 * read at the first job). close() ends the queues, not the connection.
 */
export function clientOf(redis: RedisClient, prefix: string, controlKey: () => Promise<KeyObject> = controlKeyFromFiles): Client {
  const queues = new Queues(redis, prefix);
  return {
    redis,
    store: new OperationStore(redis, prefix),
    registry: new HostRegistry(redis, prefix),
    queues,
    controlKey,
    async enqueue(queue, name, data, opts, ttlMs) {
      await new JobSigner(await controlKey()).add(queue, name, data, opts, ttlMs);
    },
    close: () => queues.close(),
  };
}

/** A client on ferry's Redis (REDIS_URL, or the embedded one) and prefix (FERRY_PREFIX). */
export async function openClient(): Promise<Client> {
  const { redis, prefix } = await openRedis();
  const c = clientOf(redis, prefix);
  return {
    ...c,
    async close() {
      await c.close();
      redis.disconnect();
    },
  };
}

export async function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await openClient();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/**
 * An operation request (submit, retry, cancel) onto the scheduler's queue, signed, and on a Redis
 * replica before the command says it is submitted, where the server has replicas: a failover loses
 * what the old master had not passed on, and nothing but the user would ask again.
 */
export async function enqueueRequest<D extends SchedulerJob>(c: Client, name: string, data: D, jobId: string): Promise<void> {
  await c.enqueue(c.queues.scheduler, name, data, { jobId }, JOB_TTL_MS.request);
  const r = await replicated(c.redis, c.store.prefix).catch(() => ({ replicas: -1, acked: 0 }));
  if (r.replicas !== 0 && r.acked === 0) process.stderr.write(`ferry: warning: no Redis replica has acknowledged request ${jobId} yet (1 s); a failover now could lose it\n`);
}
