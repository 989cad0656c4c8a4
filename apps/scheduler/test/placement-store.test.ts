import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '@ferry/core';
import { PlacementStore, type RedisClient } from '@ferry/infra';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

describe('PlacementStore against real Redis', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let store: PlacementStore;

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(() => {
    redis = connect(srv.url);
    store = new PlacementStore(redis, freshPrefix());
  });
  afterEach(async () => quit(redis));

  it('pins in place or to a host; unpin says whether there was one', async () => {
    await store.pin('web');
    await store.pin('db', 'h2');
    expect(await store.pins()).toEqual(new Map<string, string | true>([['web', true], ['db', 'h2']]));
    expect(await store.unpin('web')).toBe(true);
    expect(await store.unpin('web')).toBe(false);
  });

  it('cordons and cooldowns', async () => {
    await store.cordon('h3');
    expect(await store.cordoned()).toEqual(new Set(['h3']));
    expect(await store.uncordon('h3')).toBe(true);
    await store.coolDown('web', 2000);
    await store.coolDown('old', 500);
    expect(await store.cooldowns(1000)).toEqual(new Map([['web', 2000]]));
  });

  it('anti-affinity groups: one group per container, taken out again', async () => {
    await store.group('db', ['db1', 'db2']);
    await store.group('web', ['w1']);
    await store.group('web', ['db2']); // moves it
    expect(await store.groups()).toEqual(new Map([['db1', 'db'], ['db2', 'web'], ['w1', 'web']]));
    expect(await store.ungroup(['db1', 'nope'])).toBe(1);
    expect(await store.groups()).toEqual(new Map([['db2', 'web'], ['w1', 'web']]));
  });

  it('the policy: defaults, then stored changes; a bad change reports every problem and stores nothing', async () => {
    expect((await store.policy()).threshold).toBe(0.1);
    expect((await store.setPolicy({ threshold: 0.15, maxMoves: 2 })).maxMoves).toBe(2);
    expect((await store.policy()).threshold).toBe(0.15);
    const bad = await store.setPolicy({ threshold: 2, maxMoves: -1 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).problems.map((p) => p.path).sort()).toEqual(['policy.maxMoves', 'policy.threshold']);
    expect((await store.policy()).threshold).toBe(0.15);
  });
});
