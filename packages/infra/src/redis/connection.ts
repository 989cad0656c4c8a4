import { Redis, type RedisOptions } from 'ioredis';
import { FerryError } from '@ferry/core';

/**
 * Connection options from a URL: `redis://[:password@]host:port[/db]`, `rediss://…`, or
 * `unix:///path/to/redis.sock` (reachable from every network namespace on the host).
 */
export function redisOptions(url: string): RedisOptions {
  // BullMQ needs maxRetriesPerRequest: null for its blocking connections.
  const common: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true };
  if (url.startsWith('unix://')) return { ...common, path: url.slice('unix://'.length) };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FerryError('BAD_REDIS_URL', `REDIS_URL is not a URL: ${url}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new FerryError('BAD_REDIS_URL', `REDIS_URL must be redis://, rediss:// or unix://, not ${u.protocol}`);
  }
  return {
    ...common,
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function connect(url: string): Redis {
  return new Redis(redisOptions(url));
}
