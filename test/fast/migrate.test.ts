import { describe, expect, it } from 'vitest';
import { advanceJobId, JOB_TTL_MS, stepJobId, type OperationRecord } from '@ferry/core';
import { stepJob } from '../../apps/scheduler/src/step-jobs.js';
import { FakeCluster, useFakeClusters, FakeWorld, filesDigest } from '../support/fake/index.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS: whole migrations through the real scheduler, reconciler, processor and
 * host workers (BullMQ on a real redis-server), with the fake runtime and fake steps standing for
 * LXC and rsync (test/support/fake). The same behaviour is tested on real hosts in the lab tier
 * (test/e2e/migrate.test.ts, test/e2e/recovery.test.ts, test/chaos).
 *
 * After every test: the container was never active (running or frozen) on two hosts at once —
 * checked by the fake world at every change of any container, not by sampling.
 */
describe('migrate (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  const FILES = { 'etc/hostname': 'web\n', 'etc/hosts': '127.0.0.1 localhost\n127.0.1.1 web\n', 'srv/www/index.html': '<h1>hello</h1>\n', 'var/lib/data': 'x'.repeat(4096) };

  /** h1 runs `web`; h2 is empty. */
  async function cluster(opts: { checkpoint?: boolean } = {}): Promise<FakeCluster> {
    const world = new FakeWorld();
    world.addHost('h1', { checkpoint: opts.checkpoint ?? false });
    world.addHost('h2', { checkpoint: opts.checkpoint ?? false });
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: FILES });
    const c = await clusters.start({ world });
    return c;
  }

  const names = (steps: OperationRecord['steps']) => steps.map((s) => `${s.name}@${s.host}`);
  /** The forward step of that name (the list's positions depend on the verification asked for). */
  const named = (r: OperationRecord, name: string) => r.steps.find((s) => s.name === name)!;
  const digest = filesDigest(new Map(Object.entries(FILES)));

  /** Ran only on the target, which holds the only copy: the source's is removed. */
  function expectOnlyOn(c: FakeCluster, host: string) {
    expect(c.world.runningOn('web')).toEqual([host]);
    expect(c.world.presentOn('web')).toEqual([host]);
    expect(filesDigest(c.world.container(host, 'web')!.files)).toBe(digest);
  }

  it('forward to done: the container runs only on the target, the source is removed', async () => {
    const c = await cluster();
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'done');
    expect(r.plan.mode).toBe('restart');
    expect(names(r.steps)).toEqual(['preflight@h1', 'preflight@h2', 'rsync-transfer@h1', 'index-copy@h2', 'checkpoint@h1', 'restore@h2', 'arp-refresh@h2', 'cleanup@h1']);
    expect(r.steps.every((s) => s.state === 'done' && s.attempts === 1)).toBe(true);
    expectOnlyOn(c, 'h2');
    expect(c.world.container('h2', 'web')!.config).toMatchObject({ ip: '10.0.3.10', mac: '02:00:00:00:00:10', pathsOf: 'h2' });
    expect(c.world.container('h2', 'web')!.marker).toBeUndefined();
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'STOPPED', 'absent']);
    expect(c.world.historyOf('h2', 'web')).toEqual(['absent', 'STOPPED', 'RUNNING']);
    expect(c.world.host('h2').announced.filter((a) => a.ip === '10.0.3.10').length).toBeGreaterThanOrEqual(3);
    // The verified copy: the checkpoint's digest of the frozen source is the one the target checked.
    expect(named(r, 'checkpoint').output).toMatchObject({ method: 'stop', manifestDigest: digest, verify: 'changed' });
    expect(named(r, 'restore').output).toMatchObject({ running: true, manifestDigest: digest });
    // Nothing of the migration is left in either host's scratch.
    expect(c.world.host('h1').scratch.has(id)).toBe(false);
    expect(await c.store.lockHolder('web')).toBeNull();
    expect(await c.store.owner('web')).toMatchObject({ host: 'h2' });
    // Its step jobs leave the host queues once it has ended (the record holds what they said):
    // Redis holds the work running, not one history per host.
    const completed = async () => (await c.hostQueue('h1').getCompletedCount()) + (await c.hostQueue('h2').getCompletedCount());
    expect(await until(async () => ((await completed()) === 0 ? true : null))).toBe(true);
    expect(await c.hostQueue('h1').getJob(stepJobId(id, 'forward', 0, 0))).toBeUndefined();
  });

  it('live where both hosts can checkpoint: dumped on the source, restored from the dump on the target', async () => {
    const c = await cluster({ checkpoint: true });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2', mode: 'live' });
    const r = await c.waitFor(id, 'done');
    expect(r.plan.mode).toBe('live');
    expect(named(r, 'checkpoint').output).toMatchObject({ method: 'dump' });
    expectOnlyOn(c, 'h2');
  });

  it('a failure before the point of no return rolls back: runs only on the source, the copy on the target removed', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'rsync-transfer', host: 'h1', at: 'middle', kind: 'fail', code: 'FAKE_DISK_ERROR' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'rolled-back');
    expect(r.error).toMatchObject({ code: 'FAKE_DISK_ERROR', retryable: false });
    expect(names(r.rollback)).toEqual(['discard-target@h2']);
    expect(r.rollback[0]!.output).toEqual({ stopped: false, removed: true });
    expectOnlyOn(c, 'h1');
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING']);
    expect(await c.store.lockHolder('web')).toBeNull();
  });

  it('restore fails after it started the copy: the copy is stopped and removed before the source runs again', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'restore', host: 'h2', at: 'middle', kind: 'fail' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'rolled-back');
    expect(names(r.rollback)).toEqual(['discard-target@h2', 'resume-source@h1', 'arp-refresh@h1']);
    expect(r.rollback[0]!.output).toEqual({ stopped: true, removed: true });
    expect(r.rollback[1]!.output).toEqual({ action: 'started', running: true });
    expectOnlyOn(c, 'h1');
    const stoppedOnTarget = c.world.events.findIndex((e) => e.host === 'h2' && e.from === 'RUNNING');
    const runsOnSource = c.world.events.map((e) => e.host === 'h1' && e.to === 'RUNNING').lastIndexOf(true);
    expect(stoppedOnTarget).toBeGreaterThan(-1);
    expect(stoppedOnTarget).toBeLessThan(runsOnSource);
    expect(await c.store.owner('web')).toMatchObject({ host: 'h1' });
  });

  it('a failed rollback step pauses (running on the source only meanwhile); retry finishes the rollback', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'checkpoint', host: 'h1', at: 'middle', kind: 'fail', code: 'FAKE_VERIFY_IO' });
    c.world.faults.add({ step: 'discard-target', host: 'h2', kind: 'fail', code: 'FAKE_RM_FAILED' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const paused = await c.waitFor(id, 'paused');
    expect(paused.phase).toBe('rollback');
    expect(paused.error?.code).toBe('FAKE_RM_FAILED');
    expect(names(paused.rollback)).toEqual(['resume-source@h1', 'discard-target@h2']);
    expect(paused.rollback[0]!.output).toEqual({ action: 'thawed', running: true });
    expect(c.world.runningOn('web')).toEqual(['h1']);
    expect(c.world.presentOn('web')).toEqual(['h1', 'h2']);
    expect(await c.store.lockHolder('web')).toBe(id);

    // Fencing: a restore issued under the forward path's epoch (the rollback raised it since) that
    // reaches the target late is refused there; the copy waiting for its removal is not started.
    const restoreAt = paused.steps.findIndex((x) => x.name === 'restore');
    const late = stepJob({ ...paused, epoch: paused.epoch - 1 }, 'forward', restoreAt, 0, paused.steps[restoreAt]!);
    const q = c.hostQueue('h2');
    await c.keys.signer.add(q, late.name, late.data, { jobId: 'late-restore' }, JOB_TTL_MS.step); // signed: the fence is what refuses it
    await until(async () => (await q.getJob('late-restore'))?.returnvalue);
    expect((await q.getJob('late-restore'))!.returnvalue).toMatchObject({ ok: false, error: { code: 'STALE_EPOCH' } });
    expect(c.world.runningOn('web')).toEqual(['h1']);
    expect((await c.record(id)).state).toBe('paused');

    await c.control(id, 'retry');
    const r = await c.waitFor(id, 'rolled-back');
    expect(r.run).toBe(1);
    expect(r.rollback[1]).toMatchObject({ state: 'done', output: { removed: true } });
    expectOnlyOn(c, 'h1');
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'RUNNING']);
  });

  it('cancel while a step runs: the step finishes, then the migration rolls back', async () => {
    const c = await cluster();
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', at: 'middle', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;
    expect(c.world.presentOn('web')).toEqual(['h1', 'h2']);
    await c.control(id, 'cancel');
    await c.waitFor(id, (r) => r.state === 'running' && r.cancelRequested);
    hang.release();
    const r = await c.waitFor(id, 'rolled-back');
    expect(r.steps[2]!.state).toBe('done');
    expect(names(r.rollback)).toEqual(['discard-target@h2']);
    expectOnlyOn(c, 'h1');
  });

  it('a retryable failure is retried (backoff) and the migration ends done', async () => {
    const c = await cluster();
    const f = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'fail', retryable: true, code: 'TRANSFER_NETWORK' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'done');
    expect(f.hits).toBe(1);
    expect(r.steps[2]).toMatchObject({ name: 'rsync-transfer', state: 'done', attempts: 2 });
    expectOnlyOn(c, 'h2');
  });

  it('a lost step job is enqueued again by the reconciler (same id), and the migration goes on', async () => {
    const c = await cluster();
    await c.stopWorker('h2'); // its queue holds the target's preflight until it is back
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await c.waitFor(id, (r) => r.state === 'running' && r.cursor === 1);
    const q = c.hostQueue('h2');
    const jobId = stepJobId(id, 'forward', 1, 0);
    // The record is saved before its step is enqueued: wait for the job, not the record.
    const job = await until(() => q.getJob(jobId));
    expect(job?.data.step).toBe('preflight');
    await job!.remove(); // lost (say, with a Redis restart)
    expect(await q.getJob(jobId)).toBeUndefined();
    await c.scheduler.reconcileNow();
    expect((await q.getJob(jobId))?.data).toMatchObject({ step: 'preflight', input: { role: 'target' } });
    await c.startWorker('h2');
    await c.waitFor(id, 'done');
    expectOnlyOn(c, 'h2');
  });

  it("the reconciler leaves a finished step's result waiting on the scheduler queue to it, and replays one that was lost", async () => {
    const c = await cluster();
    const hang = c.world.faults.add({ step: 'preflight', host: 'h1', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;
    const sq = c.schedulerQueue();
    await sq.pause(); // the result waits for the scheduler
    hang.release();
    const resultId = advanceJobId(id, 'forward', 0, 0);
    await until(async () => (await sq.getJobState(resultId)) === 'waiting');
    const before = await c.record(id);
    await c.scheduler.reconcileNow();
    const left = await c.record(id);
    expect(left.version).toBe(before.version);
    expect(left.steps[0]!.state).toBe('running');

    // The same result lost with its job (say, with a Redis restart): replayed from the step's job.
    await (await sq.getJob(resultId))!.remove();
    await c.scheduler.reconcileNow();
    expect((await c.record(id)).steps[0]!.state).toBe('done');
    await sq.resume();
    await c.waitFor(id, 'done');
    expectOnlyOn(c, 'h2');
  });

  it('a worker killed mid-step (source frozen) and restarted takes its step back and carries on', async () => {
    const c = await cluster();
    const crash = c.world.faults.add({ step: 'checkpoint', host: 'h1', at: 'middle', kind: 'crash' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await crash.reached;
    await c.crashed('h1');
    // Dead: the container stays frozen, the checkpoint's job stays active under the dead worker's lock.
    expect(c.world.container('h1', 'web')!.state).toBe('FROZEN');
    const at = ((await c.store.get(id)) as OperationRecord).steps.findIndex((x) => x.name === 'checkpoint');
    const job = await c.hostQueue('h1').getJob(stepJobId(id, 'forward', at, 0));
    expect(await job!.getState()).toBe('active');
    const t0 = Date.now();
    await c.startWorker('h1');
    const r = await c.waitFor(id, 'done');
    // Taken back at once (not after the 15 s lock), and the freeze of the first run kept, not redone.
    expect(Date.now() - t0).toBeLessThan(5000);
    const frozeAt = c.world.events.find((e) => e.host === 'h1' && e.to === 'FROZEN')!.at;
    expect((named(r, 'checkpoint').output as { frozenAt: number }).frozenAt).toBeLessThanOrEqual(frozeAt);
    expect(c.world.historyOf('h1', 'web')).toEqual(['absent', 'RUNNING', 'FROZEN', 'STOPPED', 'absent']);
    expectOnlyOn(c, 'h2');
  });
});
