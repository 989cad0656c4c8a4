import type { Logger } from 'pino';
import { DEFAULT_PREFIX, prefixFor } from '@ferry/core';
import { connect, type RedisClient } from './connection.js';
import { ensureRedis, type EmbeddedOptions, type RedisEndpoint } from './embedded.js';

/** ferry's Redis as a scheduler, a worker or the CLI opens it. */
export interface FerryRedis extends RedisEndpoint {
  redis: RedisClient;
  /** The key prefix: FERRY_PREFIX (default `ferry`), as a hash tag on a Cluster (`prefixFor`). */
  prefix: string;
}

/**
 * REDIS_URL (one server, a Sentinel set or a Cluster) or, unset, the embedded default; a
 * connection to it, and the key prefix every key is written under there. The one way the
 * scheduler, the workers and the CLI reach Redis; with `log`, the connection's outages are logged.
 */
export async function openRedis(env: NodeJS.ProcessEnv = process.env, opts: EmbeddedOptions & { log?: Logger } = {}): Promise<FerryRedis> {
  const { log, ...embedded } = opts;
  const endpoint = await ensureRedis(embedded, env);
  return { ...endpoint, redis: connect(endpoint.target, log ? { log } : {}), prefix: prefixFor(endpoint.target, env.FERRY_PREFIX ?? DEFAULT_PREFIX) };
}
