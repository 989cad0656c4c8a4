import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { testRedis } from '../redis.js';
import { FakeCluster, type FakeClusterOptions } from './cluster.js';

/**
 * The fast tier's frame for one test file: a throwaway redis-server for the file, and the clusters
 * its tests start, each stopped after its test, whose fake world must never have seen a container
 * active on two hosts at once.
 */
export function useFakeClusters(): { url: () => string; start: (opts: Omit<FakeClusterOptions, 'url'>) => Promise<FakeCluster> } {
  let srv: Awaited<ReturnType<typeof testRedis>> | undefined;
  let c: FakeCluster | undefined;
  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv?.stop());
  afterEach(async () => {
    const world = c?.world;
    await c?.stop();
    c = undefined;
    expect(world?.violations ?? []).toEqual([]);
  });
  const url = () => {
    if (!srv) throw new Error('redis-server is not up yet');
    return srv.url;
  };
  return {
    url,
    start: async (opts) => (c = await FakeCluster.start({ ...opts, url: url() })),
  };
}
