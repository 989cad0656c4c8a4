import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newRoundId, REBALANCE_AUTO, roundJobId, roundMigrationId, type RebalanceRound } from '@ferry/core';
import { connect, PlacementStore, Queues, RoundStore, type RedisClient } from '@ferry/infra';
import { pino } from 'pino';
import { Scheduler } from '../../apps/scheduler/src/scheduler.js';
import { Rebalancer } from '../../apps/scheduler/src/rebalancer.js';
import { quit, testRedis } from '../support/redis.js';
import { FakeCluster, FakeWorld } from '../support/fake/index.js';

/**
 * FAST TIER, FAKE HOSTS: rebalance rounds as BullMQ jobs through the real scheduler (its Rebalancer),
 * the real host workers and their heartbeats (loads from the fake meter), real Redis. Each move is an
 * ordinary migration. The lab tier is where real load moves real containers (issue 13, item 5).
 */
describe('rebalance rounds (fast tier: fake hosts, real scheduler and workers)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let c: FakeCluster | undefined;
  let redis: RedisClient;
  let queues: Queues;

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  afterEach(async () => {
    const world = c?.world;
    await queues?.close();
    await quit(redis);
    await c?.stop();
    c = undefined;
    expect(world?.violations ?? []).toEqual([]);
  });

  const GiB = 2 ** 30;
  /** h1 carries three busy containers; h2 and h3 are empty. */
  async function cluster(opts: { checkpoint?: boolean } = {}): Promise<FakeCluster> {
    const world = new FakeWorld();
    for (const h of ['h1', 'h2', 'h3']) world.addHost(h, { checkpoint: opts.checkpoint ?? true });
    for (const [i, n] of ['a', 'b', 'c'].entries()) {
      world.create('h1', n, { state: 'RUNNING', ip: `10.0.3.1${i}`, mac: `02:00:00:00:00:1${i}`, files: { 'etc/hostname': `${n}\n` } });
      world.loads.set(n, { cpu: 1.2, memBytes: 3 * GiB, diskBytes: (i + 1) * 2 ** 20 });
    }
    c = await FakeCluster.start({ url: srv.url, world, hosts: ['h1', 'h2', 'h3'] });
    redis = connect(srv.url);
    queues = new Queues(redis, c.prefix);
    // Every host published its load once.
    await until(async () => (await c!.scheduler.registry.list()).filter((h) => h.capacity && h.containers.every((x) => x.load?.diskBytes !== undefined)).length === 3);
    return c;
  }

  async function until<T>(f: () => Promise<T | undefined | null | false>, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function roundNow(o: { allowRestart?: boolean } = {}): Promise<RebalanceRound> {
    const id = newRoundId(Date.now());
    await queues.rebalance.add('round', { trigger: 'manual', roundId: id, ...(o.allowRestart ? { allowRestart: true } : {}) }, { jobId: roundJobId(id) });
    const rounds = new RoundStore(redis, c!.prefix);
    return until(async () => {
      const r = await rounds.get(id);
      return r?.state === 'done' ? r : undefined;
    });
  }

  it('a round moves load off the hot host as ordinary live migrations, records the plan and outcomes, and cools the moved down', async () => {
    const c = await cluster();
    const r = await roundNow();
    expect(r.trigger).toBe('manual');
    expect(r.digest).toMatch(/^[0-9a-f]{16}$/);
    expect(r.plan.imbalanceBefore).toBeGreaterThan(r.policy.threshold);
    // One move per host a round (maxMovesPerHost 1): one container leaves h1.
    expect(r.moves).toHaveLength(1);
    const m = r.moves[0]!;
    expect(m).toMatchObject({ from: 'h1', mode: 'live', outcome: 'done', migrationId: roundMigrationId(r.id, 0) });
    expect(m.reason).toMatch(/h1 at .* above the mean/);
    expect(c.world.runningOn(m.container)).toEqual([m.to]);
    const rec = await c.record(m.migrationId);
    expect(rec.kind).toBe('migrate');
    expect(rec.plan.mode).toBe('live');
    const cool = await new PlacementStore(redis, c.prefix).cooldowns();
    expect(cool.get(m.container)).toBeGreaterThan(Date.now() + r.policy.cooldownMs - 60_000);

    // The next rounds go on from where things are: h1 is still the hottest, the moved one stays put.
    await until(async () => (await c.scheduler.registry.get(m.to))?.containers.some((x) => x.name === m.container && x.load?.diskBytes !== undefined));
    const r2 = await roundNow();
    expect(r2.moves.map((x) => x.container)).not.toContain(m.container);
    expect(r2.moves.every((x) => x.outcome === 'done' && x.from === 'h1')).toBe(true);
    const history = await new RoundStore(redis, c.prefix).list();
    expect(history.map((x) => x.id)).toEqual([r2.id, r.id]);
  });

  it('no live path and restart moves not allowed: nothing moves; --allow-restart for one round moves in restart mode', async () => {
    const c = await cluster({ checkpoint: false });
    const r = await roundNow();
    expect(r.moves).toEqual([]);
    expect(r.plan.note).toMatch(/no move gains/);
    const r2 = await roundNow({ allowRestart: true });
    expect(r2.moves).toHaveLength(1);
    expect(r2.moves[0]).toMatchObject({ mode: 'restart', outcome: 'done' });
    expect(c.world.runningOn(r2.moves[0]!.container)).toEqual([r2.moves[0]!.to]);
  });

  it('a failed move is recorded with its error and cools down: the next round does not try it again', async () => {
    const c = await cluster();
    // Every transfer from h1 fails: the moves roll back.
    c.world.faults.add({ step: 'rsync-transfer', host: 'h1', at: 'middle', kind: 'fail', code: 'FAKE_DISK_ERROR', times: 10 });
    const r = await roundNow();
    expect(r.moves).toHaveLength(1);
    expect(r.moves[0]).toMatchObject({ outcome: 'rolled-back' });
    expect(r.moves[0]!.error).toMatch(/FAKE_DISK_ERROR/);
    expect(c.world.runningOn(r.moves[0]!.container)).toEqual(['h1']);
    const r2 = await roundNow();
    expect(r2.moves.map((m) => m.container)).not.toContain(r.moves[0]!.container);
  });

  it('a round resumed after its scheduler died (recorded, not submitted) submits each move once and finishes', async () => {
    const c = await cluster();
    const rb = c.scheduler.rebalancer!;
    const rounds = new RoundStore(redis, c.prefix);
    const id = newRoundId(Date.now());
    // What a scheduler killed right after recording its plan leaves behind: the round, planned.
    const policy = await new PlacementStore(redis, c.prefix).policy();
    await rounds.save({
      id,
      trigger: 'auto',
      state: 'planned',
      startedAt: Date.now(),
      digest: '0123456789abcdef',
      policy,
      notes: [],
      plan: { imbalanceBefore: 0.4, imbalanceAfter: 0.2, before: {}, after: {}, note: '' },
      moves: [{ container: 'a', from: 'h1', to: 'h2', mode: 'live', costBytes: 1, gain: 0.1, reason: 'test', migrationId: roundMigrationId(id, 0), outcome: 'pending' }],
    });
    // Taken up twice at once (a stalled job and its owner): still one migration.
    const [x, y] = await Promise.all([rb.round(id, 'auto'), rb.round(id, 'auto')]);
    expect(x.moves[0]!.outcome).toBe('done');
    expect(y.moves[0]!.outcome).toBe('done');
    expect((await c.store.list()).map((m) => m.id)).toEqual([roundMigrationId(id, 0)]);
    expect(c.world.runningOn('a')).toEqual(['h2']);
    // Done is done: taking it up again changes nothing and submits nothing.
    const again = await rb.round(id, 'auto');
    expect(again.state).toBe('done');
    expect(await c.store.list()).toHaveLength(1);
  });

  it('a scheduler stopped (SIGTERM) in the middle of a round hands it back; the next one resumes it, moving nothing twice', async () => {
    const c = await cluster();
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'hang' });
    const id = newRoundId(Date.now());
    await queues.rebalance.add('round', { trigger: 'manual', roundId: id }, { jobId: roundJobId(id) });
    const rounds = new RoundStore(redis, c.prefix);
    await until(async () => (await rounds.get(id))?.state === 'moving');
    await hang.reached;
    await c.scheduler.rebalancer!.stop();
    expect(await (await queues.rebalance.getJob(roundJobId(id)))!.getState()).toBe('delayed');
    const next = new Rebalancer({ redis: connect(srv.url), prefix: c.prefix, log: pino({ level: 'silent' }), submit: (mid, req) => c.scheduler.enqueueSubmit(mid, req), pollMs: 50 });
    await next.start();
    try {
      hang.release();
      const r = await until(async () => {
        const x = await rounds.get(id);
        return x?.state === 'done' ? x : undefined;
      });
      expect(r.moves).toHaveLength(1);
      expect(r.moves[0]!.outcome).toBe('done');
      expect((await c.store.list()).map((m) => m.id)).toEqual([r.moves[0]!.migrationId]);
      expect(await (await queues.rebalance.getJob(roundJobId(id)))!.getState()).toBe('completed');
    } finally {
      await next.stop();
      await quit(next.store.redis);
    }
  });

  it('automatic rounds: a job scheduler (upsertJobScheduler) runs them one at a time until removed', async () => {
    const c = await cluster();
    // A second scheduler process on the same Redis: rounds still run one at a time across both.
    const otherDir = mkdtempSync(join(tmpdir(), 'ferry-other-scheduler-'));
    const other = new Scheduler({ redis: connect(srv.url), prefix: c.prefix, log: pino({ level: 'silent' }), reconcileEveryMs: 60_000, rebalance: { pollMs: 50 }, trust: c.keys.scheduler(otherDir) });
    await other.start();
    // The first move hangs for a while: rounds come every 100 ms meanwhile, and must wait for it.
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'hang' });
    setTimeout(() => hang.release(), 1000);
    await queues.rebalance.upsertJobScheduler(REBALANCE_AUTO, { every: 100 }, { name: 'round', data: { trigger: 'auto' } });
    const rounds = new RoundStore(redis, c.prefix);
    await until(async () => {
      const rs = await rounds.list(100);
      return rs.filter((r) => r.state === 'done' && r.moves.length === 0).length >= 2 && rs.every((r) => r.state === 'done');
    }, 20_000);
    expect(hang.hits).toBe(1);
    await queues.rebalance.removeJobScheduler(REBALANCE_AUTO);
    await other.stop();
    await quit(other.opts.redis);
    rmSync(otherDir, { recursive: true, force: true });
    const all = await rounds.list(100);
    expect(all.every((r) => r.trigger === 'auto')).toBe(true);
    // One at a time: no two rounds overlapped.
    const spans = all.map((r) => [r.startedAt, r.endedAt ?? Infinity] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    // Within those rounds the cluster came within the threshold: one container per host, the last
    // round balanced and moving nothing.
    const last = all.find((r) => r.state === 'done')!;
    expect(last.moves).toEqual([]);
    expect(last.plan.note).toMatch(/^balanced/);
    expect(new Set(['a', 'b', 'c'].map((n) => c.world.runningOn(n)[0]))).toEqual(new Set(['h1', 'h2', 'h3']));
    for (const n of ['a', 'b', 'c']) expect(c.world.runningOn(n)).toHaveLength(1);
  });
});
