import type { RedisClient } from './connection.js';
import { serverOf } from './nodes.js';

/** How many replicas the server has, and how many of them hold this connection's writes so far. */
export interface Replication {
  replicas: number;
  acked: number;
}

/**
 * Waits until the writes made so far on this connection are on a replica (Redis WAIT), where the
 * server holding the keys under `prefix` has replicas (a Sentinel-watched master; a Cluster master
 * with replicas); at most `timeoutMs`. Replication is asynchronous: a failover promotes a replica
 * that may lack the last writes the old master acknowledged. ferry re-derives what it writes in a
 * workflow after such a loss (README, "What a failover can lose"), but not a request a user was
 * told is submitted, nor one a scheduler records as handled on its own disk: those wait here first.
 * A server without replicas answers at once ({ replicas: 0 }): there is nothing to wait for.
 */
export async function replicated(redis: RedisClient, prefix: string, timeoutMs = 1000): Promise<Replication> {
  // The server that took the writes: WAIT counts the acknowledgements of this connection's own.
  const server = await serverOf(redis, `${prefix}:`);
  const info = await server.info('replication');
  const replicas = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
  if (replicas === 0) return { replicas, acked: 0 };
  return { replicas, acked: Number(await server.wait(1, timeoutMs)) };
}
