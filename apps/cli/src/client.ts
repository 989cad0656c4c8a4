import type { KeyObject } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEFAULT_PREFIX } from '@ferry/core';
import { connect, ensureRedis, HostRegistry, JobSigner, OperationStore, Queues, type SignableQueue } from '@ferry/infra';
import { controlKeyFromFiles } from './control-key.js';

/** What CLI commands (and the API server, for its clients) talk to: Redis, its stores, the queues, the control key. */
export interface Client {
  redis: Redis;
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
export function clientOf(redis: Redis, prefix: string, controlKey: () => Promise<KeyObject> = controlKeyFromFiles): Client {
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
  const { url } = await ensureRedis();
  const redis = connect(url);
  const c = clientOf(redis, process.env.FERRY_PREFIX ?? DEFAULT_PREFIX);
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
