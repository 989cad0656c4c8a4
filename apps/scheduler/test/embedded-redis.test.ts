import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '@ferry/infra';
import { connect, quit, testRedis } from '../../../test/support/redis.js';

/**
 * The embedded default is bounded (issue 14: a writer to Redis must not be able to take the host's
 * memory): a memory cap, and past it writes are refused, never keys evicted.
 */
describe('embedded redis-server', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  beforeAll(async () => {
    srv = await testRedis();
    redis = connect(srv.url);
  });
  afterAll(async () => {
    await quit(redis);
    await srv.stop();
  });

  it('has a memory cap and evicts nothing: past it a write is refused', async () => {
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(Number(((await redis.config('GET', 'maxmemory')) as string[])[1])).toBe(1024 ** 3);
    await redis.set('ferry-test-kept', 'x');
    await redis.config('SET', 'maxmemory', '1'); // as if full
    try {
      await expect(redis.set('ferry-test-more', 'y')).rejects.toThrow(/OOM/);
      expect(await redis.get('ferry-test-kept')).toBe('x');
    } finally {
      await redis.config('SET', 'maxmemory', String(1024 ** 3));
    }
  });
});
