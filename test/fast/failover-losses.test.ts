import { describe, expect, it } from 'vitest';
import { advanceJobId, stepJobId } from '@ferry/core';
import { FakeWorld, useFakeClusters } from '../support/fake/index.js';
import { captureLog } from '../support/log-lines.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS: what a Redis failover can lose, made to happen on one redis-server.
 * Replication is asynchronous: the replica a failover promotes may lack the newest writes the old
 * master acknowledged, so Redis goes back a few milliseconds in time while the hosts do not. Here
 * those writes are undone by hand, exactly (test/fast/redis-sentinel.test.ts kills a real master).
 */
describe('writes a failover lost (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  it("a step's completion and its result lost: the job comes back, its worker reports the result it recorded, runs nothing, and the migration ends done", async () => {
    const { lines, log } = captureLog();
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: { 'etc/hostname': 'web\n' } });
    const c = await clusters.start({ world, log });
    // Results wait in the scheduler's queue: the first step's is there to lose.
    const results = c.schedulerQueue();
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await c.waitFor(id, (r) => r.state === 'running');
    await results.pause();
    const jobId = stepJobId(id, 'forward', 0, 0);
    const job = await until(async () => {
      const j = await c.hostQueue('h1').getJob(jobId);
      return j && (await j.getState()) === 'completed' ? j : null;
    });
    await until(async () => (await results.getJob(advanceJobId(id, 'forward', 0, 0))) ?? null);

    // The failover: the step job's completion and its result, the last writes, never reached the replica.
    await results.remove(advanceJobId(id, 'forward', 0, 0));
    await job.retry('completed');
    await results.resume();

    const r = await c.waitFor(id, 'done', 20_000);
    expect(r.steps.every((s) => s.state === 'done')).toBe(true);
    const done = lines.filter((l) => l.msg === 'step done' && l.migrationId === id && l.phase === 'forward' && l.index === 0);
    expect(done).toHaveLength(1); // the preflight ran once
    expect(lines.filter((l) => l.msg.startsWith('job finished here before came back'))).toHaveLength(1);
    // The job, answered from the worker's record, left the queue with its operation.
    expect(await until(async () => ((await c.hostQueue('h1').getJob(jobId)) ? null : true))).toBe(true);
    expect(world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'STOPPED', 'absent']);
  });
});
