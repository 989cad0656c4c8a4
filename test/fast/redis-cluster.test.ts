import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, newRoundId, roundJobId, type RebalanceRound } from '@ferry/core';
import { collectGarbage, connect, masters, Queues, RoundStore } from '@ferry/infra';
import { FakeCluster, FakeWorld } from '../support/fake/index.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-ha.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS, A REAL REDIS CLUSTER (issue 16): three masters made with
 * `redis-cli --cluster create` (Debian's redis-server on loopback ports), REDIS_URL
 * `redis+cluster://...`. The real schedulers and host workers run migrations, hold the leader lease
 * and run a rebalance round there; every key ferry and BullMQ write is under the hash-tagged prefix
 * (`{t…}`), so one slot holds them all, as the multi-key Lua scripts of both need.
 */
describe('Redis Cluster: migrations, the leader lease and a rebalance round on three masters', () => {
  let rc: RedisCluster | undefined;
  beforeAll(async () => {
    rc = await startRedisCluster({ masters: 3 });
  });
  afterAll(async () => rc?.stop());

  const GiB = 2 ** 30;

  it('runs them to the end; every key ferry and BullMQ wrote is in the one slot of its hash tag', async () => {
    const url = rc!.url;
    // h1 carries three busy containers (the round moves one off it); h2 carries one to migrate.
    const world = new FakeWorld();
    for (const h of ['h1', 'h2', 'h3']) world.addHost(h, { checkpoint: true });
    for (const [i, n] of ['a', 'b', 'c'].entries()) {
      world.create('h1', n, { state: 'RUNNING', ip: `10.0.3.1${i}`, mac: `02:00:00:00:00:1${i}`, files: { 'etc/hostname': `${n}\n` } });
      world.loads.set(n, { cpu: 1.2, memBytes: 3 * GiB, diskBytes: (i + 1) * 2 ** 20 });
    }
    world.create('h2', 'd', { state: 'RUNNING', ip: '10.0.3.20', mac: '02:00:00:00:00:20', files: { 'etc/hostname': 'd\n' } });
    const c = await FakeCluster.start({ url, world, hosts: ['h1', 'h2', 'h3'], leader: { ttlMs: 1000, renewEveryMs: 250 } });
    const redis = connect(url);
    const queues = new Queues(redis, c.prefix);
    try {
      expect(c.prefix).toMatch(/^\{t[0-9a-f]+\}$/);
      const s2 = await c.addScheduler();
      expect([c.scheduler, s2].filter((s) => s.leading)).toHaveLength(1);

      const id = await c.migrate({ container: 'd', from: 'h2', to: 'h3' });
      const done = await c.waitFor(id, 'done', 20_000);
      expect(done.steps.every((s) => s.state === 'done')).toBe(true);
      expect(world.runningOn('d')).toEqual(['h3']);

      // The leader killed -9: the other takes the lease (its Lua script on the cluster) and leads.
      const leader = c.scheduler.leading ? c.scheduler : s2;
      const other = leader === s2 ? c.scheduler : s2;
      await c.killScheduler(leader);
      await until(() => other.leading, 5000);

      // A rebalance round (the leader's Rebalancer): one busy container leaves h1 as a live migration.
      await until(async () => (await other.registry.list()).filter((h) => h.capacity && h.containers.every((x) => x.load?.diskBytes !== undefined)).length === 3, 15_000);
      const roundId = newRoundId(Date.now());
      await queues.rebalance.add('round', { trigger: 'manual', roundId }, { jobId: roundJobId(roundId) });
      const rounds = new RoundStore(redis, c.prefix);
      const round = await until(async () => {
        const r = await rounds.get(roundId);
        return r?.state === 'done' ? r : null;
      }, 20_000);
      expect(round.moves).toHaveLength(1);
      const m = (round as RebalanceRound).moves[0]!;
      expect(m).toMatchObject({ from: 'h1', mode: 'live', outcome: 'done' });
      expect(world.runningOn(m.container)).toEqual([m.to]);
      expect(world.violations).toEqual([]);

      // Every key under the prefix: on one master, all in the slot of the hash tag.
      const slot = Number(await redis.cluster('KEYSLOT', `${c.prefix}:x`));
      const perNode: number[] = [];
      const slots = new Set<number>();
      for (const node of masters(redis)) {
        const found = new Set<string>();
        let cursor = '0';
        do {
          const [next, batch] = await node.scan(cursor, 'MATCH', `${c.prefix}:*`, 'COUNT', 1000);
          cursor = next;
          for (const k of batch) found.add(k);
        } while (cursor !== '0');
        perNode.push(found.size);
        for (const k of found) slots.add(Number(await node.cluster('KEYSLOT', k)));
      }
      expect(perNode.filter((n) => n > 0)).toHaveLength(1);
      expect(perNode.reduce((a, b) => a + b, 0)).toBeGreaterThan(20); // records, locks, owners, queues, jobs, the lease...
      expect([...slots]).toEqual([slot]);

      // gc finds them there (its SCAN visits every master): nothing of these young operations is due.
      const gc = await collectGarbage(redis, c.prefix, { policy: DEFAULT_RETENTION, dryRun: true });
      expect(gc.operations.seen).toBe(2); // the migration and the round's move
      expect(gc.operations.removed).toBe(0);
      expect(gc.memory.before).toBeGreaterThan(0);
    } finally {
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
      await c.stop();
    }
  });
});
