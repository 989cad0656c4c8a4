import { FerryError } from '@ferry/core';
import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './connection.js';

/**
 * The servers behind a connection, for the few commands that name no key and so are not routed
 * by one (SCAN, INFO): on a Cluster each master holds only its own slots.
 */

/** Every server a SCAN must visit: each master of a Cluster, else the one server. */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/** The server holding `key`: on a Cluster, the master serving its slot. */
export async function serverOf(redis: RedisClient, key: string): Promise<Redis> {
  if (!isCluster(redis)) return redis;
  const slot = Number(await redis.cluster('KEYSLOT', key));
  const at = redis.slots[slot]?.[0];
  const node = redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === at);
  if (!node) throw new FerryError('REDIS_SLOT_UNSERVED', `no master of the cluster is known to serve slot ${slot} (of ${key})`, { retryable: true });
  return node;
}
