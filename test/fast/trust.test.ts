import { describe, expect, it } from 'vitest';
import { Queue, type Job } from 'bullmq';
import { pino } from 'pino';
import {
  decodeExecEntry,
  JOB_TTL_MS,
  keys as redisKeys,
  newMigrationId,
  queueNames,
  stepJobId,
  toolboxKeys,
  toolboxQueues,
  type SchedulerJob,
  type StepJobData,
  type StepResultData,
} from '@ferry/core';
import { connect, JobSigner, newSigningKey, signResult } from '@ferry/infra';
import { FakeCluster, FakeWorld, useFakeClusters } from '../support/fake/index.js';
import { quit } from '../support/redis.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS: workers trust only the control plane (issue 14 item 2). Forged jobs,
 * requests and results are written straight into Redis, as anyone who can write to it could; each
 * is refused with a stable code in its failedReason and in the log, and nothing is touched: the
 * fake world records no action, no record, lock or step job appears.
 */
describe('trust: forged jobs, requests and results are refused (fast tier)', () => {
  const clusters = useFakeClusters();

  /** h1 runs `web` and has a stopped `db` (what a forged cleanup would destroy); h2 is empty. */
  async function cluster(): Promise<{ c: FakeCluster; logs: Record<string, unknown>[] }> {
    const logs: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: { 'etc/hostname': 'web\n' } });
    world.create('h1', 'db', { state: 'STOPPED', files: { 'etc/hostname': 'db\n' } });
    return { c: await clusters.start({ world, log }), logs };
  }


  /** The job ended failed (never retried); its reason. */
  async function failedReason(q: Queue, jobId: string): Promise<string> {
    await until(async () => (await q.getJobState(jobId)) === 'failed');
    const job = (await q.getJob(jobId)) as Job; // read once failed: its reason is set
    expect(job.attemptsMade).toBeLessThanOrEqual(1);
    return job.failedReason;
  }

  const refusedIn = (logs: Record<string, unknown>[], code: string, jobId: string) => logs.some((l) => l.code === code && l.jobId === jobId && /refused/.test(String(l.msg)));

  /** A cleanup of the stopped `db` on h1 under its current epoch: were it run, db would be destroyed. */
  async function cleanupOfDb(c: FakeCluster, migrationId = newMigrationId(Date.now())): Promise<StepJobData> {
    const { epoch } = await c.store.owner('db');
    return { migrationId, phase: 'forward', index: 0, run: 0, step: 'cleanup', host: 'h1', input: { migrationId, container: 'db', epoch, keepSource: false }, fence: { container: 'db', epoch } };
  }

  /** Nothing happened to any container, and no step of `migrationId` was begun. */
  async function nothingTouched(c: FakeCluster, eventsBefore: number, migrationId: string) {
    expect(c.world.events.length).toBe(eventsBefore);
    expect(c.world.container('h1', 'db')?.state).toBe('STOPPED');
    expect(c.world.container('h1', 'web')?.state).toBe('RUNNING');
    expect(await c.store.startedSteps(migrationId)).toEqual(new Set());
  }

  it('step jobs: unsigned, signed by another key, expired, re-added under another id, or tampered with, are refused before anything runs', async () => {
    const { c, logs } = await cluster();
    const q = c.hostQueue('h1');
    const before = c.world.events.length;
    const queue = queueNames.host('h1');
    const cases: { jobId: string; code: string; add: (d: StepJobData) => Promise<unknown> }[] = [
      { jobId: 'forged-unsigned', code: 'UNSIGNED_JOB', add: (d) => q.add('cleanup', d, { jobId: 'forged-unsigned' }) },
      {
        jobId: 'forged-wrong-key',
        code: 'BAD_JOB_SIGNATURE',
        add: (d) => q.add('cleanup', new JobSigner(newSigningKey()).sign(queue, 'forged-wrong-key', 'cleanup', d, JOB_TTL_MS.step), { jobId: 'forged-wrong-key' }),
      },
      { jobId: 'forged-expired', code: 'JOB_EXPIRED', add: (d) => q.add('cleanup', c.keys.sign(queue, 'forged-expired', 'cleanup', d, -1000), { jobId: 'forged-expired' }) },
      // A genuine signature, for another job id: the id is signed.
      { jobId: 'forged-other-id', code: 'BAD_JOB_SIGNATURE', add: (d) => q.add('cleanup', c.keys.sign(queue, 'the-signed-id', 'cleanup', d), { jobId: 'forged-other-id' }) },
      // Signed for a harmless container, then pointed at db: the payload is signed.
      {
        jobId: 'forged-tampered',
        code: 'BAD_JOB_SIGNATURE',
        add: (d) => {
          const signed = c.keys.sign(queue, 'forged-tampered', 'cleanup', { ...d, input: { ...(d.input as object), container: 'nothing-here' } });
          return q.add('cleanup', { ...signed, input: d.input }, { jobId: 'forged-tampered' });
        },
      },
      // Signed for h2's queue, put on h1's: the queue is signed.
      { jobId: 'forged-other-queue', code: 'BAD_JOB_SIGNATURE', add: (d) => q.add('cleanup', c.keys.sign(queueNames.host('h2'), 'forged-other-queue', 'cleanup', d), { jobId: 'forged-other-queue' }) },
    ];
    const ids: string[] = [];
    for (const k of cases) {
      const d = await cleanupOfDb(c);
      ids.push(d.migrationId);
      await k.add(d);
    }
    for (const [i, k] of cases.entries()) {
      expect(await failedReason(q, k.jobId), k.jobId).toMatch(new RegExp(`^${k.code}: `));
      expect(refusedIn(logs, k.code, k.jobId), `${k.jobId} logged with ${k.code}`).toBe(true);
      await nothingTouched(c, before, ids[i]!);
    }
    // No result was reported for any of them.
    expect(await c.scheduler.queues.scheduler.getJobCounts('completed', 'failed', 'waiting', 'active')).toEqual({ completed: 0, failed: 0, waiting: 0, active: 0 });
  });

  it('a finished step job re-added with the same id runs nothing: the worker answers with the result it recorded (its own record); BullMQ retries still run', async () => {
    const { c, logs } = await cluster();
    // A retryable failure first: the same signed job is retried by BullMQ and runs.
    c.world.faults.add({ step: 'preflight', host: 'h1', kind: 'fail', retryable: true, code: 'TRANSFER_NETWORK', times: 1 });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const q = c.hostQueue('h1');
    const jobId = stepJobId(id, 'forward', 0, 0);
    // The job as it completed (read while its result waits: an ended operation's jobs leave the queues).
    const results = c.schedulerQueue();
    await until(async () => ((await q.getJob(jobId))?.attemptsMade ?? 0) >= 1, 10_000); // in its backoff
    await results.pause();
    const done = await until(async () => {
      const j = await q.getJob(jobId);
      return j && (await j.getState()) === 'completed' ? j : null;
    }, 10_000);
    await results.resume();
    const r = await c.waitFor(id, 'done');
    expect(r.steps[0]).toMatchObject({ state: 'done', attempts: 2 });
    const { data, name } = done;
    const before = c.world.events.length;
    const reported = done.returnvalue as unknown;
    // Put back once it is gone, signature and all, as a Redis writer could (or as a Redis
    // failover does, which loses the job's completion): nothing runs, the same result is reported.
    await until(async () => ((await q.getJob(jobId)) ? null : true)); // gone with its operation
    await q.add(name, data, { jobId });
    await until(async () => (await q.getJobState(jobId)) === 'completed');
    expect((await q.getJob(jobId))!.returnvalue).toEqual(reported);
    expect(logs.some((l) => l.jobId === jobId && String(l.msg).startsWith('job finished here before came back'))).toBe(true);
    expect(c.world.events.length).toBe(before);
    expect((await c.record(id)).version).toBe(r.version);
  });

  it('operation requests: an unsigned or wrongly signed submit, cancel or retry is refused; nothing is planned, locked or enqueued', async () => {
    const { c, logs } = await cluster();
    const sq = c.scheduler.queues.scheduler as Queue<SchedulerJob>;
    const before = c.world.events.length;
    const unsigned = newMigrationId(Date.now());
    await sq.add('submit', { kind: 'submit', migrationId: unsigned, request: { container: 'web', from: 'h1', to: 'h2' } }, { jobId: `submit.${unsigned}` });
    const wrongKey = newMigrationId(Date.now());
    const other = new JobSigner(newSigningKey());
    await other.add(sq, 'submit', { kind: 'submit', migrationId: wrongKey, request: { container: 'web', from: 'h1', to: 'h2' } }, { jobId: `submit.${wrongKey}` }, JOB_TTL_MS.request);
    expect(await failedReason(sq, `submit.${unsigned}`)).toMatch(/^UNSIGNED_JOB: /);
    expect(await failedReason(sq, `submit.${wrongKey}`)).toMatch(/^BAD_JOB_SIGNATURE: /);
    // Visible where an operator looks: a rejected record saying why, and the log.
    expect(await c.store.get(unsigned)).toMatchObject({ state: 'rejected', error: { code: 'UNSIGNED_JOB' } });
    expect(await c.store.get(wrongKey)).toMatchObject({ state: 'rejected', error: { code: 'BAD_JOB_SIGNATURE' } });
    expect(refusedIn(logs, 'UNSIGNED_JOB', `submit.${unsigned}`)).toBe(true);
    expect(await c.store.lockHolder('web')).toBeNull();
    expect(await c.hostQueue('h1').count()).toBe(0);
    expect(await c.hostQueue('h2').count()).toBe(0);
    expect(c.world.events.length).toBe(before);

    // A running migration is not cancelled by an unsigned cancel; it is by the CLI's signed one.
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;
    const version = (await c.record(id)).version;
    await sq.add('cancel', { kind: 'cancel', migrationId: id }, { jobId: `cancel.${id}.forged` });
    expect(await failedReason(sq, `cancel.${id}.forged`)).toMatch(/^UNSIGNED_JOB: /);
    expect(await c.record(id)).toMatchObject({ version, cancelRequested: false });
    // A genuine submit re-added under another id (a replay of the request) is refused too.
    const signedSubmit = (await sq.getJob(`submit.${id}`))!.data;
    await sq.add('submit', { ...signedSubmit, migrationId: 'm-replayed01' } as SchedulerJob, { jobId: 'submit.m-replayed01' });
    expect(await failedReason(sq, 'submit.m-replayed01')).toMatch(/^BAD_JOB_SIGNATURE: /);
    hang.release();
    await c.waitFor(id, 'done');
  });

  it("step results: unsigned, from a host other than the step's, or signed by another key are refused; the record is unchanged", async () => {
    const { c, logs } = await cluster();
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await hang.reached;
    const r = await c.record(id);
    const index = r.steps.findIndex((s) => s.name === 'rsync-transfer');
    expect(r.steps[index]).toMatchObject({ host: 'h1', state: 'running' });
    const forged: StepResultData = { migrationId: id, phase: 'forward', index, run: 0, ok: false, error: { name: 'FerryError', code: 'FORGED', message: 'forged', retryable: false }, attempts: 1, endedAt: Date.now() };
    const sq = c.scheduler.queues.scheduler as Queue<SchedulerJob>;
    const cases = [
      { jobId: 'forged-result-unsigned', code: 'UNSIGNED_RESULT', result: forged },
      // h2 is a trusted host, with its real key, but the step runs on h1.
      { jobId: 'forged-result-h2', code: 'RESULT_NOT_FROM_STEP_HOST', result: signResult(c.keys.hostKey('h2'), 'h2', forged) },
      { jobId: 'forged-result-wrong-key', code: 'BAD_RESULT_SIGNATURE', result: signResult(newSigningKey(), 'h1', forged) },
    ];
    for (const k of cases) await sq.add('result', { kind: 'result', result: k.result as never }, { jobId: k.jobId });
    for (const k of cases) {
      expect(await failedReason(sq, k.jobId)).toMatch(new RegExp(`^${k.code}: `));
      expect(refusedIn(logs, k.code, k.jobId), `${k.jobId} logged with ${k.code}`).toBe(true);
    }
    const after = await c.record(id);
    expect(after.version).toBe(r.version);
    expect(after.steps[index]).toMatchObject({ state: 'running' });
    hang.release();
    await c.waitFor(id, 'done'); // the genuine result, signed by h1, is applied
  });

  it('a host the scheduler holds no key for is refused at planning (NO_HOST_KEY): nothing is locked or enqueued', async () => {
    const { c } = await cluster();
    c.keys.trusted.delete('h2');
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await until(() => c.store.get(id));
    expect(r).toMatchObject({ state: 'rejected', error: { code: 'NO_HOST_KEY' } });
    expect(await c.store.lockHolder('web')).toBeNull();
    expect(await c.hostQueue('h1').count()).toBe(0);
  });

  it('exec and toolbox jobs: unsigned ones are refused, and the waiting client is told why', async () => {
    const { c, logs } = await cluster();
    const redis = connect(clusters.url());
    const exec = new Queue(toolboxQueues.exec('h1'), { connection: redis, prefix: c.prefix });
    const admin = new Queue(toolboxQueues.admin('h1'), { connection: redis, prefix: c.prefix });
    try {
      const execId = 'x-forged0001';
      await exec.add('exec', { execId, container: 'web', argv: ['sh', '-c', 'id'], requestedAt: Date.now() }, { jobId: execId });
      const requestId = 'r-forged0001';
      await admin.add('mount', { kind: 'mount', requestId, container: 'web', hostDir: '/', path: '/host', readOnly: false }, { jobId: requestId });
      expect(await failedReason(exec, execId)).toMatch(/^UNSIGNED_JOB: /);
      expect(await failedReason(admin, requestId)).toMatch(/^UNSIGNED_JOB: /);
      expect(refusedIn(logs, 'UNSIGNED_JOB', execId) && refusedIn(logs, 'UNSIGNED_JOB', requestId)).toBe(true);
      const k = toolboxKeys(c.prefix);
      const entries = (await redis.xrangeBuffer(k.execOut(execId), '-', '+')).map(([, f]) => decodeExecEntry(f));
      expect(entries).toEqual([expect.objectContaining({ type: 'error', code: 'UNSIGNED_JOB' })]);
      expect(await redis.exists(k.execClaim(execId))).toBe(0); // never claimed: nothing ran
      expect(JSON.parse((await redis.lindex(k.reply(requestId), 0))!)).toMatchObject({ ok: false, error: { code: 'UNSIGNED_JOB' } });
      expect(await redis.keys(redisKeys(c.prefix).lock('*'))).toEqual([]);
    } finally {
      await exec.close();
      await admin.close();
      await quit(redis);
    }
  });
});
