import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, replicated, type RedisClient } from '@ferry/infra';
import { FakeCluster, FakeWorld, filesDigest } from '../support/fake/index.js';
import { startSentinelSet, type SentinelSet } from '../support/redis-ha.js';
import { captureLog } from '../support/log-lines.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS, REAL SENTINELS (issue 16): the real scheduler and host workers on fake
 * hosts, on a Redis watched by Sentinel (Debian's redis-server and redis-sentinel on loopback
 * ports: one master, one replica, three sentinels), REDIS_URL `redis+sentinel://...`. The master
 * is killed -9 while migrations run; the sentinels promote the replica; ferry's connections find
 * it through the sentinels. The chaos suite's invariants must hold across the failover: every
 * operation done, once (its container moved once, never active on two hosts), no step run to its
 * end twice, records, locks and owners consistent, the data identical.
 */
describe('Redis Sentinel: the master killed -9 during migrations', () => {
  let set: SentinelSet | undefined;
  beforeAll(async () => {
    set = await startSentinelSet({ replicas: 1, sentinels: 3, downAfterMs: 1000 });
  });
  afterAll(async () => set?.stop());

  /** Median ms of `replicated` (what a request waits for) and of one write, on the same connection. */
  async function costOfWait(redis: RedisClient, prefix: string, key: string): Promise<{ wait: number; write: number; n: number }> {
    const n = 50;
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const wait: number[] = [];
    const write: number[] = [];
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      await redis.incr(key);
      write.push(performance.now() - t);
      t = performance.now();
      const r = await replicated(redis, prefix);
      wait.push(performance.now() - t);
      expect(r).toEqual({ replicas: 1, acked: 1 });
    }
    return { wait: median(wait), write: median(write), n };
  }

  const FILES = (name: string) => ({ 'etc/hostname': `${name}\n`, 'srv/data': name.repeat(512) });

  it('the sentinels fail over; every migration ends done exactly once, no step applied twice, records consistent', async () => {
    const ha = set!;
    const { lines, log } = captureLog();
    // Three containers each way between h1 and h2, and two more from h3: eight at once.
    const world = new FakeWorld();
    for (const h of ['h1', 'h2', 'h3']) world.addHost(h);
    const moves: { container: string; from: string; to: string }[] = [];
    ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].forEach((name, i) => {
      const from = i < 3 ? 'h1' : i < 6 ? 'h2' : 'h3';
      const to = from === 'h1' ? 'h2' : 'h1';
      world.create(from, name, { state: 'RUNNING', ip: `10.0.3.${30 + i}`, mac: `02:00:00:00:00:${(0x30 + i).toString(16)}`, files: FILES(name) });
      moves.push({ container: name, from, to });
    });
    // Steps take ~0.1-0.3 s each (40 ms per fault point): the kill lands with all of them in flight.
    world.faults.paceMs = 40;
    // The reconciler every second, as in production (it re-drives what a failover lost).
    const c = await FakeCluster.start({ url: ha.url, world, hosts: ['h1', 'h2', 'h3'], log, reconcileEveryMs: 1000 });
    const probe = connect(ha.url, { log }); // a connection as ferry's processes make it, writing through the failover
    const probeKey = `${c.prefix}:test:failover-probe`;
    let writing = false;
    let writer: Promise<void> = Promise.resolve();
    try {
      // What waiting for a replica costs a request (replicated: INFO + WAIT 1), against one write.
      const cost = await costOfWait(probe, c.prefix, probeKey);
      const ids = await Promise.all(moves.map((m) => c.migrate(m)));
      // Mid-run: every migration planned and running, several past their first steps.
      await until(async () => {
        const rs = await Promise.all(ids.map((id) => c.store.get(id)));
        return rs.every((r) => r?.state === 'running') && rs.filter((r) => r?.state === 'running' && r.cursor >= 2).length >= 3;
      }, 20_000);
      const oldMaster = ha.master.port;

      // A writer through a ferry connection across the kill: INCR after INCR, each acknowledged
      // value kept with its time. The new master's first answer shows what the old one had
      // acknowledged and not passed on (the count drops back), and how long writes stopped.
      const acks: { v: number; at: number }[] = [];
      writing = true;
      writer = (async () => {
        while (writing) acks.push({ v: await probe.incr(probeKey), at: Date.now() });
      })();
      await until(() => acks.length > 100);

      const t0 = Date.now();
      await ha.master.kill();
      await until(async () => (await ha.masterPort()) !== oldMaster, 30_000);
      const promotedMs = Date.now() - t0;
      expect(await ha.masterPort()).toBe(ha.replicas[0]!.port);
      await until(() => acks[acks.length - 1]!.at > t0 + promotedMs, 30_000); // written on the new master
      writing = false;
      await writer;
      const gap = acks.slice(1).reduce((g, a, i) => (a.at - acks[i]!.at > g.ms ? { ms: a.at - acks[i]!.at, at: i + 1 } : g), { ms: 0, at: 0 });
      const lostWrites = Math.max(0, acks[gap.at - 1]!.v - acks[gap.at]!.v + 1);

      const records = [];
      for (const id of ids) records.push(await c.waitFor(id, 'done', 60_000));
      const doneMs = Date.now() - t0;

      // Each operation done, once: its container moved once (its history on each host exactly a
      // clean migration's), never active on two hosts (the fake world checks every change), the
      // data identical; the lock free and the owner the target.
      expect(world.violations).toEqual([]);
      for (const [i, m] of moves.entries()) {
        const r = records[i]!;
        expect(r.steps.every((s) => s.state === 'done'), `${m.container}: ${r.steps.map((s) => `${s.name}:${s.state}`).join(' ')}`).toBe(true);
        expect(r.rollback).toEqual([]);
        expect(world.runningOn(m.container)).toEqual([m.to]);
        expect(world.presentOn(m.container)).toEqual([m.to]);
        expect(world.historyOf(m.from, m.container)).toEqual(['absent', 'RUNNING', 'FROZEN', 'STOPPED', 'absent']);
        expect(world.historyOf(m.to, m.container)).toEqual(['absent', 'STOPPED', 'RUNNING']);
        expect(filesDigest(world.container(m.to, m.container)!.files)).toBe(filesDigest(new Map(Object.entries(FILES(m.container)))));
        expect(await c.store.lockHolder(m.container)).toBeNull();
        expect(await c.store.owner(m.container)).toMatchObject({ host: m.to, epoch: r.epoch });
      }
      // No step run to its end twice: one `step done` per step run, for every step of every record.
      const ran = new Map<string, number>();
      for (const l of lines) if (l.msg === 'step done') ran.set(`${l.migrationId} ${l.phase}.${l.index}.r${l.run}`, (ran.get(`${l.migrationId} ${l.phase}.${l.index}.r${l.run}`) ?? 0) + 1);
      expect([...ran].filter(([, n]) => n > 1)).toEqual([]);
      expect(ran.size).toBe(records.reduce((n, r) => n + r.steps.length, 0));

      const enqueuedAgain = lines.filter((l) => l.msg === 'step job missing: enqueueing it again').length;
      const replayed = lines.filter((l) => l.msg === 'step finished but its result was not applied: replaying it').length;
      const answeredAgain = lines.filter((l) => l.msg.startsWith('job finished here before came back')).length;
      process.stderr.write(
        `sentinel failover: master killed -9; the sentinels promoted the replica ${promotedMs} ms after the kill; ` +
          `writes through ferry's connection stopped for ${gap.ms} ms (first new-master answer ${acks[gap.at]!.at - t0} ms after the kill); ` +
          `${lostWrites} write(s) the old master had acknowledged were lost; all ${ids.length} migrations done ${doneMs} ms after the kill ` +
          `(reconciler: ${enqueuedAgain} lost step job(s) enqueued again, ${replayed} result(s) replayed; ${answeredAgain} finished step job(s) answered again by their worker). ` +
          `Waiting for a replica: ${cost.wait.toFixed(2)} ms per request (one write: ${cost.write.toFixed(2)} ms; medians of ${cost.n})\n`,
      );
    } finally {
      writing = false;
      probe.disconnect(); // a write still waiting (no master) fails now: the writer ends
      await writer.catch(() => undefined);
      await c.stop();
    }
  });
});
