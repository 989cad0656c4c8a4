import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { stepJobId, transition, type OperationEvent, type SchedulerJob } from '@ferry/core';
import { verifyResult } from '@ferry/infra';
import type { Scheduler } from '../../apps/scheduler/src/scheduler.js';
import { FakeWorld, useFakeClusters } from '../support/fake/index.js';
import { captureLog, type LogLine } from '../support/log-lines.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS: several scheduler processes on one Redis and prefix (issue 16). Each is a
 * real Scheduler with its own connection and replay record and the cluster's control key; they
 * share the scheduler queue, and the one holding the leader lease reconciles. Counted from the
 * schedulers' own log lines: `step enqueued` (one per enqueue command carried out).
 */
describe('several schedulers (fast tier: fake hosts, real schedulers and workers)', () => {
  const clusters = useFakeClusters();

  /** The enqueues carried out per step run, `<migration> <phase>.<index>.r<run>` → how many. */
  function enqueues(lines: LogLine[], id?: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of lines) {
      if (l.msg !== 'step enqueued' || (id && l.migrationId !== id)) continue;
      const k = `${l.migrationId} ${l.phase}.${l.index}.r${l.run}`;
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }

  function world(containers: string[]): FakeWorld {
    const w = new FakeWorld();
    w.addHost('h1');
    w.addHost('h2');
    containers.forEach((name, i) => w.create('h1', name, { state: 'RUNNING', ip: `10.0.3.${20 + i}`, mac: `02:00:00:00:00:${(20 + i).toString(16)}`, files: { 'etc/hostname': `${name}\n` } }));
    return w;
  }

  const leaders = (...s: Scheduler[]) => s.filter((x) => x.leading);

  it('two schedulers run migrations to the end: every step enqueued once, results applied once, both at work', async () => {
    const { lines, log } = captureLog();
    const names = ['a', 'b', 'c', 'd'];
    const c = await clusters.start({ world: world(names), log });
    const s2 = await c.addScheduler();
    expect(leaders(c.scheduler, s2)).toHaveLength(1);

    const ids = await Promise.all(names.map((container) => c.migrate({ container, from: 'h1', to: 'h2' })));
    for (const id of ids) await c.waitFor(id, 'done', 30_000);

    for (const id of ids) {
      const r = await c.record(id);
      const runs = enqueues(lines, id);
      // Every step of the record was enqueued exactly once (no lost race enqueued it again).
      expect([...runs.values()].every((n) => n === 1), JSON.stringify([...runs])).toBe(true);
      expect(runs.size).toBe(r.steps.length);
      expect(r.steps.every((s) => s.state === 'done')).toBe(true);
    }
    // Both schedulers carried out moves (the scheduler queue is shared, each job to one of them).
    const by = new Set(lines.filter((l) => l.msg === 'step enqueued').map((l) => l.scheduler ?? 's1'));
    expect([...by].sort()).toEqual(['s1', 's2']);
  });

  it('the same step result applied by both at once is applied once, and the enqueue that follows happens once', async () => {
    const { lines, log } = captureLog();
    const c = await clusters.start({ world: world(['web']), log });
    const s2 = await c.addScheduler();
    const hang = c.world.faults.add({ step: 'preflight', host: 'h1', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;

    // The result is held back from both schedulers (the queue paused) and taken from the step's
    // job itself, as the reconciler would replay it.
    const schedulerQueue = c.schedulerQueue();
    await schedulerQueue.pause();
    hang.release();
    const before = await c.record(id);
    // Read again once completed: a job object loaded before it completed has no return value.
    const jobId = stepJobId(id, 'forward', 0, before.run);
    const job = await until(async () => {
      const j = await c.hostQueue('h1').getJob(jobId);
      return j && (await j.getState()) === 'completed' ? c.hostQueue('h1').getJob(jobId) : null;
    });
    const result = await verifyResult(c.keys.hostKeys, 'h1', job.returnvalue);
    const event: OperationEvent = { type: 'step-result', ...result };
    const expected = transition(structuredClone(before), event, Date.now());
    expect(expected.commands.filter((x) => x.type === 'enqueue')).toHaveLength(1);

    const outcomes = await Promise.all([c.scheduler.apply(id, event), s2.apply(id, event)]);
    const after = await c.record(id);
    expect(after.version).toBe(before.version + 1); // one save between them
    expect(outcomes.map((r) => r.version).sort()).toEqual([before.version + 1, before.version + 1]);
    expect(enqueues(lines, id).get(`${id} forward.1.r${before.run}`)).toBe(1);

    // The result job, delivered late, is a duplicate: nothing more happens for it.
    await schedulerQueue.resume();
    await c.waitFor(id, 'done', 20_000);
    expect([...enqueues(lines, id).values()].every((n) => n === 1)).toBe(true);
  });

  it('the reconciler runs on the leader only, and only one scheduler leads at a time', async () => {
    const c = await clusters.start({ world: world(['web']), reconcileEveryMs: 100 });
    const s2 = await c.addScheduler();
    const [leader, follower] = c.scheduler.leading ? [c.scheduler, s2] : [s2, c.scheduler];
    const p0 = [leader.reconcilePasses, follower.reconcilePasses];
    for (let i = 0; i < 30; i++) {
      expect(leaders(c.scheduler, s2)).toEqual([leader]);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(leader.reconcilePasses - p0[0]!).toBeGreaterThanOrEqual(5);
    expect(follower.reconcilePasses).toBe(p0[1]);
    await follower.reconcileNow(); // asked of a follower: not a pass
    expect(follower.reconcilePasses).toBe(p0[1]);
  });

  it('kill -9 of the leader while it holds a step result: the other leads and finishes the migration within 5 s', async () => {
    const { log } = captureLog();
    const c = await clusters.start({ world: world(['web']), log, reconcileEveryMs: 1000 });
    const a = c.scheduler;
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;

    // The leader takes the transfer's result job and dies with it in hand (never applied).
    let resultTaken!: () => void;
    const taken = new Promise<void>((r) => (resultTaken = r));
    const handle = (a as unknown as { handle: (job: Job<SchedulerJob>) => Promise<void> }).handle.bind(a);
    (a as unknown as { handle: (job: Job<SchedulerJob>) => Promise<void> }).handle = (job) => {
      if (job.data.kind !== 'result') return handle(job);
      resultTaken();
      return new Promise<void>(() => undefined);
    };
    hang.release();
    await taken;
    const b = await c.addScheduler();
    expect(a.leading).toBe(true);
    expect(b.leading).toBe(false);

    const killedAt = Date.now();
    await c.killScheduler(a);
    await until(() => b.leading, 5000);
    const ledAfter = Date.now() - killedAt;
    await c.waitFor(id, 'done', 5000 - (Date.now() - killedAt));
    const doneAfter = Date.now() - killedAt;
    expect(ledAfter).toBeLessThan(4500); // lease TTL 3 s after its last renewal, tried every 1 s
    expect(doneAfter).toBeLessThan(5000);
    process.stderr.write(`schedulers: leader killed -9; the other led after ${ledAfter} ms, migration done ${doneAfter} ms after the kill\n`);
  });

  it("a stale leader's fenced action is refused; a lease given back is taken over at once", async () => {
    const c = await clusters.start({ world: world(['web']), leader: { ttlMs: 600, renewEveryMs: 200 } });
    const s2 = await c.addScheduler();
    const a = c.scheduler;
    expect(a.leading).toBe(true);
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;

    // `a` pauses (its timers stop; what it had in hand keeps its fence) past the lease's expiry.
    const stale = a.leader.mustFence();
    a.leader.abandon();
    await until(() => s2.leading, 3000);
    const before = await c.record(id);
    await expect(a.apply(id, { type: 'cancel' }, stale)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    const after = await c.record(id);
    expect(after.version).toBe(before.version);
    expect(after.cancelRequested).toBeFalsy();
    const passes = a.reconcilePasses;
    await a.reconcileNow();
    expect(a.reconcilePasses).toBe(passes);

    // The leader stops cleanly (SIGTERM): the lease is given back and `a` takes it at its next try.
    a.leader.run();
    await c.stopScheduler(s2);
    await until(() => a.leading, 1000);
    hang.release();
    await c.waitFor(id, 'done', 10_000);
  });
});
