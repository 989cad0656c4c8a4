import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fields } from '@ferry/core';
import { HostRegistry, OperationStore, type RedisClient } from '@ferry/infra';
import { scripts } from '../../../packages/infra/src/redis/scripts.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

type Rec = Parameters<OperationStore['save']>[0];
/** Just what the store itself reads of a record: id, version, createdAt. */
const rec = (id: string, version: number, extra: object = {}) => ({ id, version, createdAt: 1000, ...extra }) as unknown as Rec;

// The store's Lua scripts (packages/infra/commands) against a real redis-server.
describe('OperationStore scripts against real Redis', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let store: OperationStore;

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(() => {
    redis = connect(srv.url);
    store = new OperationStore(redis, freshPrefix());
  });
  afterEach(async () => quit(redis));

  it('registers the scripts once per connection, and they survive a SCRIPT FLUSH', async () => {
    expect(scripts(redis)).toBe(scripts(redis));
    expect(await store.nextEpoch('web')).toBe(1);
    await redis.script('FLUSH');
    expect(await store.nextEpoch('web')).toBe(2); // EVALSHA → NOSCRIPT → EVAL
  });

  it('save: compare-and-set on the version; a new record only where none is', async () => {
    expect(await store.save(rec('m-1', 0, { v: 'a' }), true)).toBe(true);
    expect(await store.get('m-1')).toMatchObject({ version: 0, v: 'a' });
    expect(await store.save(rec('m-1', 0, { v: 'dup' }), true)).toBe(false); // exists already
    expect(await store.save(rec('m-1', 0, { v: 'b' }))).toBe(true);
    expect(await store.get('m-1')).toMatchObject({ version: 1, v: 'b' });
    expect(await store.save(rec('m-1', 0, { v: 'stale' }))).toBe(false); // stored version is 1 now
    expect(await store.save(rec('m-2', 0, { v: 'absent' }))).toBe(false); // no record to update
    expect(await store.get('m-1')).toMatchObject({ version: 1, v: 'b' });
    expect(await store.get('m-2')).toBeNull();
    expect((await store.list()).map((r) => r.id)).toEqual(['m-1']);
    // The version sits beside the record, so the compare-and-set reads it without decoding the JSON.
    expect(await redis.hget(store.k.migration('m-1'), fields.version)).toBe('1');
  });

  it('listOpen: every unended operation, oldest first, however many ended since; the index mends itself', async () => {
    // One long migration, then 600 short ones that ended after it began: list(500) no longer reaches it.
    expect(await store.save(rec('m-long', 0, { createdAt: 1, state: 'running' }), true)).toBe(true);
    for (let i = 0; i < 600; i++) {
      const r = rec(`m-${i}`, 0, { createdAt: 10 + i, state: 'running' });
      expect(await store.save(r, true)).toBe(true);
      expect(await store.save({ ...r, state: 'done' } as Rec)).toBe(true);
    }
    expect((await store.list(500)).some((r) => r.id === 'm-long')).toBe(false);
    expect((await store.listOpen(500)).map((r) => r.id)).toEqual(['m-long']);
    expect(await redis.zrange(store.k.openOperations, 0, -1)).toEqual(['m-long']);
    // A scheduler killed between a save and the index: a running record missing from it, an
    // ended one (and one gc dropped) still in it. The newest looked at put the first back.
    expect(await store.save(rec('m-lost', 0, { createdAt: 5000, state: 'running' }), true)).toBe(true);
    await redis.zrem(store.k.openOperations, 'm-lost');
    await redis.zadd(store.k.openOperations, 15, 'm-5', 16, 'm-gone');
    expect((await store.listOpen()).map((r) => r.id)).toEqual(['m-long']);
    expect((await store.listOpen(500)).map((r) => r.id)).toEqual(['m-long', 'm-lost']);
    expect(await redis.zrange(store.k.openOperations, 0, -1)).toEqual(['m-long', 'm-lost']);
    expect(await store.save(rec('m-long', 0, { createdAt: 1, state: 'rolled-back' }))).toBe(true);
    expect((await store.listOpen()).map((r) => r.id)).toEqual(['m-lost']);
  });

  it('recent: the newest records, read again only when their version moved; the cache keeps the newest only', async () => {
    for (const [id, at] of [['m-a', 1000], ['m-b', 2000], ['m-c', 3000]] as const) expect(await store.save(rec(id, 0, { createdAt: at, v: 'first' }), true)).toBe(true);
    const known = new Map<string, Awaited<ReturnType<OperationStore['get']>> & object>();
    expect((await store.recent(2, known)).map((r) => r.id)).toEqual(['m-c', 'm-b']);
    expect([...known.keys()].sort()).toEqual(['m-b', 'm-c']);
    // A record whose version did not move is not read again: the cached copy is what comes back.
    const cached = known.get('m-b')!;
    expect((await store.recent(2, known))[1]).toBe(cached);
    expect(await store.save(rec('m-b', 0, { createdAt: 2000, v: 'second' }))).toBe(true);
    const [, b] = await store.recent(2, known);
    expect(b).toMatchObject({ id: 'm-b', version: 1, v: 'second' });
    // A newer one pushes the oldest out of the window and out of the cache.
    expect(await store.save(rec('m-d', 0, { createdAt: 4000 }), true)).toBe(true);
    expect((await store.recent(2, known)).map((r) => r.id)).toEqual(['m-d', 'm-c']);
    expect([...known.keys()].sort()).toEqual(['m-c', 'm-d']);
    expect(await store.recent(0, known)).toEqual([]);
  });

  it('nextEpoch: one above every epoch so far; a bare-counter owner becomes a hash, keeping its epoch', async () => {
    expect(await store.nextEpoch('web')).toBe(1);
    expect(await store.nextEpoch('web')).toBe(2);
    await redis.set(store.k.owner('old'), '7');
    expect(await store.nextEpoch('old')).toBe(8);
    expect(await redis.type(store.k.owner('old'))).toBe('hash');
    expect(await redis.hget(store.k.owner('old'), fields.owner.epoch)).toBe('8');
  });

  it('fence: moves ownership forward, never back, and returns the epoch in force', async () => {
    expect(await store.owner('web')).toEqual({ epoch: 0, host: null });
    expect(await store.fence('web', 2, 'h2')).toBe(2);
    expect(await store.owner('web')).toEqual({ epoch: 2, host: 'h2' });
    expect(await store.fence('web', 2, 'h3')).toBe(2); // the same epoch may name its owner again
    expect(await store.fence('web', 1, 'h1')).toBe(2); // a stale fence is refused
    expect(await store.owner('web')).toEqual({ epoch: 2, host: 'h3' });
    expect(await store.nextEpoch('web')).toBe(3);
    expect(await store.owner('web')).toEqual({ epoch: 3, host: 'h3' });
  });

  it('unlock: releases only a lock this migration holds', async () => {
    expect(await store.lock('web', 'm-1')).toBe('m-1');
    expect(await store.lock('web', 'm-2')).toBe('m-1');
    await store.unlock('web', 'm-2');
    expect(await store.lockHolder('web')).toBe('m-1');
    await store.unlock('web', 'm-1');
    expect(await store.lockHolder('web')).toBeNull();
    await store.unlock('web', 'm-1'); // idempotent
    expect(await store.lock('web', 'm-2')).toBe('m-2');
  });

  it('hash fields are the ones keys.ts names', async () => {
    await store.setProgress('m-1', { phase: 'rollback', index: 1, stage: 's', at: 1 });
    expect(await redis.hkeys(store.k.progress('m-1'))).toEqual([fields.progress('rollback', 1)]);
    await store.markStarted('m-1', 'forward', 3, 2, 5);
    expect(await redis.hget(store.k.starts('m-1'), fields.start('forward', 3, 2))).toBe('5');
    expect(await store.startedSteps('m-1')).toEqual(new Set([fields.step('forward', 3)]));
    await store.countReplay('m-1', 'forward', 3, 2);
    expect(await redis.hget(store.k.replays('m-1'), fields.replay('forward', 3, 2))).toBe('1');
    const reg = new HostRegistry(redis, store.prefix);
    await reg.markAlive('h1', 42);
    expect(await redis.hget(reg.k.hostsAlive, fields.host('h1'))).toBe('42');
  });
});
