import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys, type StoredRecord } from '@ferry/core';
import { Lease, OperationStore, type RedisClient } from '@ferry/infra';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Redis tier: the lease the schedulers' leader and gc hold (hold-lease-1.lua) and the fenced save
// (save-if-leased-2.lua), against a real redis-server under a fresh prefix.
describe('Lease (one holder at a time, with a fencing token)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let key: string;
  const leases: Lease[] = [];
  const lease = (holder: string, ttlMs = 300) => {
    const l = new Lease(redis, key, { ttlMs, holder });
    leases.push(l);
    return l;
  };

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(() => {
    redis = connect(srv.url);
    key = keys(freshPrefix()).leaderLease;
  });
  afterEach(async () => {
    for (const l of leases.splice(0)) l.abandon();
    await quit(redis);
  });

  it('is taken by one, refused to another, kept by renewals, and taken over once it lapses', async () => {
    const a = lease('a');
    const b = lease('b');
    expect(await a.tick()).toBe(true);
    expect(await b.tick()).toBe(false);
    expect((await redis.get(key))?.startsWith('a.')).toBe(true);
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      expect(await a.tick()).toBe(true); // renewed: outlives its first TTL
      expect(await b.tick()).toBe(false);
    }
    const old = a.mustFence();
    await sleep(350); // a paused: no renewal past the TTL
    expect(a.held).toBe(false); // counts itself out without asking
    expect(await b.tick()).toBe(true);
    expect(b.mustFence().token).not.toBe(old.token);
    expect(await a.tick()).toBe(false); // its old token renews nothing
  });

  it("refuses a stale holder's fenced save and check; the holder's go through", async () => {
    const store = new OperationStore(redis, freshPrefix());
    const rec = { id: 'm-1', kind: 'migrate', state: 'running', createdAt: 1, updatedAt: 1, version: 0, steps: [], rollback: [], request: {} } as unknown as StoredRecord;
    expect(await store.save(rec, true)).toBe(true);
    const a = lease('a');
    // b's own lease long: it must still hold it through the checks below on a busy machine.
    const b = lease('b', 60_000);
    await a.tick();
    const stale = a.mustFence();
    expect(await store.save({ ...rec, version: 0, updatedAt: 2 }, false, stale)).toBe(true);
    await sleep(350);
    await b.tick();
    await expect(store.save({ ...rec, version: 1, updatedAt: 3 }, false, stale)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect((await store.get('m-1'))?.updatedAt).toBe(2);
    expect(await store.save({ ...rec, version: 0, updatedAt: 3 }, false, b.mustFence())).toBe(false); // version moved: compare-and-set still applies
    expect(await store.save({ ...rec, version: 1, updatedAt: 3 }, false, b.mustFence())).toBe(true);
    await b.check();
    // `a` resumed, still holding its old token somewhere: Redis says no.
    await expect(a.check()).rejects.toMatchObject({ code: 'LEASE_LOST' });
  });

  it('given back (SIGTERM) is taken at the next try, not after its TTL', async () => {
    const a = lease('a', 60_000);
    const b = lease('b', 60_000);
    await a.tick();
    expect(await b.tick()).toBe(false);
    await a.release();
    expect(await redis.exists(key)).toBe(0);
    expect(await b.tick()).toBe(true);
    await a.release(); // holds nothing: gives back nothing of b's
    expect((await redis.get(key))?.startsWith('b.')).toBe(true);
  });
});
