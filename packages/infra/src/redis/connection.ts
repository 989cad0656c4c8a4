import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { parseRedisUrl, type RedisTarget } from '@ferry/core';

/**
 * A connection to ferry's Redis: one server (`Redis`, also for a Sentinel-watched master) or a
 * Redis Cluster (`Cluster`). Every connection ferry makes is built by `connect` below: BullMQ's
 * queues and workers are given one (their blocking connections are its duplicates), and so are the
 * stores, the CLI and the tests.
 */
export type RedisClient = Redis | Cluster;

/**
 * The error code a READONLY reply begins with (a Redis error reply carries its code first): the
 * server this connection reaches was made a replica.
 */
const READONLY = 'READONLY';

/** What every connection has, whatever the topology. */
function common(t: Exclude<RedisTarget, { kind: 'socket' }> | null): RedisOptions {
  return {
    // BullMQ needs maxRetriesPerRequest: null for its blocking connections; for ferry's own
    // commands it means a command issued while the connection is down waits for it to come back
    // (a failover), rather than failing after a few retries.
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    ...(t?.username ? { username: t.username } : {}),
    ...(t?.password !== undefined ? { password: t.password } : {}),
    ...(t?.tls ? { tls: {} } : {}),
  };
}

/**
 * A connection to REDIS_URL's Redis (a URL, or a target from `parseRedisUrl`):
 * - one server: host and port, or a unix socket;
 * - Sentinel: ioredis asks the sentinels where the master is, and asks again whenever the
 *   connection drops (the master died; a promoted or demoted server closes its clients' connections
 *   itself); a server that answers READONLY (a master demoted to a replica) makes it reconnect and
 *   send the command again. Not ioredis' `failoverDetector`: its subscription to +switch-master
 *   outlives the connection it was made for, and a switch announced while the connection is being
 *   made again (after a master killed -9) ends the connection for good ("Connection is closed.");
 *   seen in the Sentinel test;
 * - Cluster: the seed nodes, from which ioredis learns every node and which slot each serves.
 *   The caller's key prefix must be a hash tag there (`prefixFor` in @ferry/core).
 */
export function connect(where: string | RedisTarget, opts: { log?: Logger } = {}): RedisClient {
  const redis = open(typeof where === 'string' ? parseRedisUrl(where) : where);
  if (opts.log) watch(redis, opts.log);
  return redis;
}

/**
 * Logs a connection's outages once each (its first error, then its return), not every reconnect
 * attempt; commands meanwhile wait for it (maxRetriesPerRequest: null).
 */
function watch(redis: RedisClient, log: Logger): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: err.message }, 'redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info('redis connection back');
  });
}

function open(t: RedisTarget): RedisClient {
  switch (t.kind) {
    case 'socket':
      return new Redis({ ...common(null), path: t.path });
    case 'single':
      return new Redis({ ...common(t), host: t.node.host, port: t.node.port, ...(t.db !== undefined ? { db: t.db } : {}) });
    case 'sentinel':
      return new Redis({
        ...common(t),
        sentinels: t.sentinels,
        name: t.masterName,
        role: 'master',
        ...(t.db !== undefined ? { db: t.db } : {}),
        ...(t.sentinelUsername ? { sentinelUsername: t.sentinelUsername } : {}),
        ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}),
        ...(t.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
        // Sentinels asked in turn; none answering: again after a short wait, never given up.
        sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
        retryStrategy: (attempt) => Math.min(50 * attempt, 200),
        reconnectOnError: (err) => (err.message.startsWith(READONLY) ? 2 : false),
      });
    case 'cluster':
      return new Cluster(t.nodes, {
        redisOptions: common(t),
        // Reads and writes go to the masters: ferry reads what it just wrote.
        scaleReads: 'master',
        clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 2000),
      });
  }
}

/** Whether this connection is to a Redis Cluster. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis.isCluster;
}
