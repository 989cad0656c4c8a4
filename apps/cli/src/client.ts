import { HostRegistry, openRedis, OperationStore, Queues, type RedisClient } from '@ferry/infra';

/** What CLI commands talk to: the store, the registry and the scheduler's queue. */
export interface Client {
  redis: RedisClient;
  store: OperationStore;
  registry: HostRegistry;
  queues: Queues;
  close(): Promise<void>;
}

export async function openClient(): Promise<Client> {
  const { redis, prefix } = await openRedis();
  const queues = new Queues(redis, prefix);
  return {
    redis,
    store: new OperationStore(redis, prefix),
    registry: new HostRegistry(redis, prefix),
    queues,
    async close() {
      await queues.close();
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
