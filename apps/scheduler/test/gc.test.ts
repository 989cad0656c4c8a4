import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Queue, Worker } from 'bullmq';
import { DEFAULT_RETENTION, keys, queueNames, type HostInfo, type RetentionPolicy, type StoredRecord } from '@ferry/core';
import { collectGarbage, EVENTS_MAX_LEN, HostRegistry, JOB_RETENTION, OperationStore, Queues, queueOptions, type RedisClient } from '@ferry/infra';
import { Collector } from '../src/collector.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

const DAY = 86_400_000;
const log = pino({ level: 'silent' });

/** What the gc reads of a record: its id, state, times, version; steps (hosts) and rollback (a deferred removal). */
function rec(id: string, state: StoredRecord['state'], createdAt: number, extra: object = {}): StoredRecord {
  const ended = state === 'done' || state === 'rolled-back' || state === 'rejected';
  return { id, kind: 'migrate', state, createdAt, updatedAt: createdAt, ...(ended ? { endedAt: createdAt + 1000 } : {}), version: 0, steps: [{ name: 'preflight', host: 'h1', state: 'done' }], rollback: [], request: { container: `c-${id}` }, ...extra } as unknown as StoredRecord;
}

const hostInfo = (name: string, lastSeen: number, containers: string[] = []): HostInfo => ({
  name,
  address: '127.0.0.1',
  sshPort: 22,
  sshUser: 'root',
  lxcPath: '/x',
  capabilities: { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'none' },
  containers: containers.map((c) => ({ name: c, state: 'RUNNING' as const })),
  freeBytes: 1,
  lastSeen,
  workerPid: 1,
});

// Redis tier: gc against a real redis-server, each test under a fresh prefix.
describe('gc (collectGarbage) against real Redis', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let prefix: string;
  let store: OperationStore;
  const now = Date.now();
  const policy: RetentionPolicy = { ...DEFAULT_RETENTION, keep: 2, minAgeMs: 60_000, maxAgeMs: 7 * DAY };

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(() => {
    redis = connect(srv.url);
    prefix = freshPrefix();
    store = new OperationStore(redis, prefix);
  });
  afterEach(async () => quit(redis));

  const ids = async () => (await store.list(1000)).map((r) => r.id);
  const prefixKeys = async () => (await redis.keys(`${prefix}:*`)).sort();

  it('removes finished operations beyond the newest `keep` and past maxAge, with their hashes; never one that has not ended', async () => {
    const t = now - 30 * DAY;
    const records = [
      rec('m-old-running', 'running', t), // oldest of all, still running: kept
      rec('m-old-paused', 'paused', t + 1),
      rec('m-a', 'done', now - 10 * DAY), // past maxAge
      rec('m-b', 'rolled-back', now - 3 * DAY), // 4th newest finished: beyond keep
      rec('m-c', 'rejected', now - 2 * DAY), // 3rd: beyond keep
      rec('m-d', 'done', now - DAY), // 2nd: kept
      rec('m-e', 'done', now - 10_000), // newest, ended 9 s ago: kept
      rec('m-deferred', 'rolled-back', now - 5 * DAY, { rollback: [{ name: 'discard-target', host: 'h2', state: 'done', output: { deferred: 'h2 unreachable' } }] }),
    ];
    for (const r of records) {
      expect(await store.save(r, true)).toBe(true);
      await store.setProgress(r.id, { phase: 'forward', index: 0, stage: 'x', at: 1 });
      await store.markStarted(r.id, 'forward', 0, 0, 1);
      await store.countReplay(r.id, 'forward', 0, 0);
      await redis.xadd(store.k.operationLog(r.id), '*', 'msg', 'step started');
    }
    // A hash and a log whose record is gone (a late progress write and log line), and an index entry without its record.
    await store.setProgress('m-gone', { phase: 'forward', index: 0, stage: 'x', at: 1 });
    await redis.xadd(store.k.operationLog('m-gone'), '*', 'msg', 'step done');
    await redis.zadd(store.k.migrations, now, 'm-ghost');

    const before = await prefixKeys();
    const dry = await collectGarbage(redis, prefix, { policy, dryRun: true, now });
    expect(dry.operations).toMatchObject({ seen: 9, open: 2, removed: 3, leftovers: 2 });
    expect(await prefixKeys()).toEqual(before); // a dry run changes nothing

    const r = await collectGarbage(redis, prefix, { policy, now });
    expect(r.operations).toMatchObject({ seen: 9, open: 2, kept: 3, removed: 3, leftovers: 2 });
    expect((await ids()).sort()).toEqual(['m-d', 'm-deferred', 'm-e', 'm-old-paused', 'm-old-running']);
    for (const id of ['m-a', 'm-b', 'm-c', 'm-gone']) {
      expect(await redis.exists(store.k.migration(id), store.k.progress(id), store.k.starts(id), store.k.replays(id), store.k.operationLog(id))).toBe(0);
    }
    expect(await redis.xlen(store.k.operationLog('m-old-running'))).toBe(1);
    expect(await redis.zscore(store.k.migrations, 'm-ghost')).toBeNull();
    expect(await store.progress('m-old-running')).toHaveProperty('forward.0');
    // The deferred removal is kept up to deferredMaxAgeMs (30 d), past maxAge and keep.
    const later = await collectGarbage(redis, prefix, { policy, now: now + 26 * DAY });
    expect(later.operations.removedIds).toContain('m-deferred');
    expect((await ids()).sort()).toEqual(['m-old-paused', 'm-old-running']);
  });

  it('removes a record only at the version it judged: one saved since stays', async () => {
    const r = rec('m-1', 'done', now - 10 * DAY);
    await store.save(r, true);
    const keysOf = [store.k.migration('m-1'), store.k.progress('m-1'), store.k.starts('m-1'), store.k.replays('m-1'), store.k.operationLog('m-1'), store.k.migrations] as const;
    const { scripts } = await import('../../../packages/infra/src/redis/scripts.js');
    await store.save({ ...r, version: 0 }); // now at version 1
    expect(await scripts(redis).dropOperation([...keysOf], 'm-1', '0')).toBe(false);
    expect(await store.get('m-1')).not.toBeNull();
    expect(await scripts(redis).dropOperation([...keysOf], 'm-1', '1')).toBe(true);
    expect(await store.get('m-1')).toBeNull();
  });

  it("releases the locks of ended operations only; a running one's and a planning one's stay", async () => {
    await store.save(rec('m-run', 'running', now), true);
    await store.save(rec('m-end', 'done', now - 1000), true);
    await store.lock('web', 'm-run');
    await store.lock('db', 'm-end');
    await store.lock('new', 'm-planning'); // locked before its record is saved
    const r = await collectGarbage(redis, prefix, { policy, now });
    expect(r.locksReleased).toEqual(['db']);
    expect([await store.lockHolder('web'), await store.lockHolder('db'), await store.lockHolder('new')]).toEqual(['m-run', null, 'm-planning']);
  });

  it('forgets ownership epochs of containers on no host, unheld, not fenced by an unfinished step job', async () => {
    const registry = new HostRegistry(redis, prefix);
    await registry.publish(hostInfo('h1', now, ['here']));
    for (const c of ['here', 'gone', 'held', 'queued']) await store.nextEpoch(c);
    await store.lock('held', 'm-x');
    await store.save(rec('m-x', 'running', now), true);
    const queues = new Queues(redis, prefix);
    await queues.host('h1').add('preflight', { fence: { container: 'queued', epoch: 1 } } as never, { jobId: 'j1' });
    const r = await collectGarbage(redis, prefix, { policy, now });
    expect(r.ownersRemoved).toBe(1);
    expect(await redis.exists(store.k.owner('gone'))).toBe(0);
    for (const c of ['here', 'held', 'queued']) expect(await store.owner(c)).toMatchObject({ epoch: 1 });
    await queues.close();
  });

  it('jobs: every queue gets the retention by default; finished ones past their age are cleaned', async () => {
    await new HostRegistry(redis, prefix).publish(hostInfo('h1', now + 3 * DAY)); // still there two days on
    const queues = new Queues(redis, prefix);
    const q = queues.host('h1');
    await q.add('preflight', {} as never, { jobId: 'a' });
    expect((await q.getJob('a'))!.opts).toMatchObject(JOB_RETENTION);
    await queues.scheduler.add('submit', { kind: 'submit', migrationId: 'm-1', request: {} } as never, { jobId: 'submit.m-1' });
    expect((await queues.scheduler.getJob('submit.m-1'))!.opts).toMatchObject(JOB_RETENTION);
    expect(await redis.hget(`${prefix}:${queueNames.host('h1')}:meta`, 'opts.maxLenEvents')).toBe(String(EVENTS_MAX_LEN));
    const w = new Worker(queueNames.host('h1'), async () => 'ok', { connection: connect(srv.url), prefix });
    await new Promise<void>((res) => w.on('completed', () => res()));
    await w.close();
    expect(await q.getCompletedCount()).toBe(1);
    // Within a day nothing is cleaned; two days on, it is.
    expect((await collectGarbage(redis, prefix, { policy, now: Date.now() })).jobsRemoved).toEqual({});
    const r = await collectGarbage(redis, prefix, { policy, now: Date.now() + 2 * DAY });
    expect(r.jobsRemoved).toEqual({ [queueNames.host('h1')]: 1 });
    expect(await q.getCompletedCount()).toBe(0);
    await queues.close();
  });

  it('forgets a host silent past hostForgetMs with its empty queues, unless an open operation names it', async () => {
    const registry = new HostRegistry(redis, prefix);
    await registry.publish(hostInfo('h1', now - 40 * DAY));
    await registry.publish(hostInfo('h2', now - 40 * DAY));
    await registry.publish(hostInfo('h3', now));
    await store.save(rec('m-1', 'running', now, { steps: [{ name: 'preflight', host: 'h2', state: 'running' }] }), true);
    const queues = new Queues(redis, prefix);
    for (const h of ['h1', 'h2', 'h3']) await queues.host(h).add('x', {} as never, { jobId: `j-${h}`, delay: 60_000 });
    await (await queues.host('h1').getJob('j-h1'))!.remove();
    await queues.close();
    const r = await collectGarbage(redis, prefix, { policy, now });
    expect(r.hostsForgotten).toEqual(['h1']);
    expect(r.queuesRemoved).toEqual([queueNames.host('h1')]);
    expect((await registry.list()).map((h) => h.name)).toEqual(['h2', 'h3']);
    expect(await redis.keys(`${prefix}:${queueNames.host('h1')}:*`)).toEqual([]);
    expect((await redis.keys(`${prefix}:${queueNames.host('h2')}:*`)).length).toBeGreaterThan(0);
  });

  it('cooldowns run out; exec and toolbox keys left without an expiry get one', async () => {
    await redis.hset(keys(prefix).cooldowns, 'old', String(now - 1), 'new', String(now + 60_000));
    await redis.xadd(`${prefix}:exec:x-1`, '*', 'k', 'v');
    await redis.rpush(`${prefix}:toolbox:r-1:reply`, '{}');
    const r = await collectGarbage(redis, prefix, { policy, now });
    expect(r.cooldownsRemoved).toBe(1);
    expect(await redis.hkeys(keys(prefix).cooldowns)).toEqual(['new']);
    expect(r.expiriesSet).toBe(2);
    expect(await redis.ttl(`${prefix}:exec:x-1`)).toBeGreaterThan(0);
    expect(await redis.ttl(`${prefix}:toolbox:r-1:reply`)).toBeGreaterThan(0);
  });

  it('automatic gc: one collection at a time across schedulers (a lease)', async () => {
    const other = connect(srv.url);
    const a = new Collector({ redis, prefix, log, everyMs: 3_600_000, policy });
    const b = new Collector({ redis: other, prefix, log, everyMs: 3_600_000, policy });
    const [ra, rb] = await Promise.all([a.tick(), b.tick()]);
    expect([ra, rb].filter((r) => r !== null)).toHaveLength(1);
    expect(await redis.exists(keys(prefix).gcLease)).toBe(0); // given back
    expect(await a.tick()).not.toBeNull();
    await redis.set(keys(prefix).gcLease, 'someone', 'PX', 60_000);
    expect(await b.tick()).toBeNull();
    await quit(other);
  });

  it('queueOptions: the retention and a short event stream for any queue ferry opens', async () => {
    const q = new Queue('host-x', queueOptions(redis, prefix));
    await q.add('x', {}, { jobId: 'x1' });
    expect((await q.getJob('x1'))!.opts).toMatchObject({ removeOnComplete: JOB_RETENTION.removeOnComplete });
    await q.close();
  });
});
