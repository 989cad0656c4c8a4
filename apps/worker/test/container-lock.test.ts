import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, Worker, type Job } from 'bullmq';
import pino from 'pino';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { JOB_TTL_MS, keys, type StepJobData, type StepResultData } from '@ferry/core';
import { HostRegistry, OperationStore, Queues, ReplayGuard, signResult, type SignableQueue, type RedisClient } from '@ferry/infra';
import { KeyedLock } from '../src/keyed-lock.js';
import { createProcessor } from '../src/processor.js';
import { JobGate } from '../src/trust/job-gate.js';
import { TestKeys } from '../../../test/support/trust.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

describe('KeyedLock', () => {
  it('one holder per key; other keys are free; a release is idempotent', () => {
    const lock = new KeyedLock();
    const a = lock.tryAcquire('a');
    expect(a).not.toBeNull();
    expect(lock.tryAcquire('a')).toBeNull();
    const b = lock.tryAcquire('b');
    expect(b).not.toBeNull();
    a!();
    a!(); // a second release must not free a later holder's key
    const a2 = lock.tryAcquire('a');
    expect(a2).not.toBeNull();
    a!();
    expect(lock.tryAcquire('a')).toBeNull();
    a2!();
    b!();
    expect(lock.size).toBe(0);
  });
});

/**
 * Two real redis-servers: BullMQ's queues on one, the migration store on the other. Stopping the
 * store's server (SIGSTOP) holds the first step inside the processor, at its start mark.
 */
describe('processor: steps on one container never overlap on one host (real BullMQ)', () => {
  let queueSrv: Awaited<ReturnType<typeof testRedis>>;
  let storeSrv: Awaited<ReturnType<typeof testRedis>>;
  let queueRedis: RedisClient;
  let storeRedis: RedisClient;
  beforeAll(async () => {
    [queueSrv, storeSrv] = await Promise.all([testRedis(), testRedis()]);
    queueRedis = connect(queueSrv.url);
    storeRedis = connect(storeSrv.url);
  });
  afterAll(async () => {
    await Promise.all([quit(queueRedis), quit(storeRedis)]);
    await Promise.all([queueSrv.stop(), storeSrv.stop()]);
  });

  // Jobs signed by the control plane, as the scheduler signs them: what is tested here comes after the gate.
  const trust = new TestKeys();
  const signed = <D extends object>(q: SignableQueue<D>, name: string, data: D, opts: { jobId: string; attempts?: number }) => trust.signer.add(q, name, data, opts, JOB_TTL_MS.step);
  const processorFor = (prefix: string, queues: Queues, closing: () => boolean) =>
    createProcessor({
      gate: new JobGate(trust.worker('h1').controlKey, new ReplayGuard(join(mkdtempSync(join(tmpdir(), 'ferry-gate-')), 'seen-jobs')), pino({ level: 'silent' })),
      signResult: (r) => signResult(trust.hostKey('h1'), 'h1', r),
      store: new OperationStore(storeRedis, prefix),
      registry: new HostRegistry(storeRedis, prefix),
      maxTransfers: 1,
      peerGoneMs: 20_000,
      peerGoneAtRestMs: 10_000,
      queues,
      log: pino({ level: 'silent' }),
      context: () => {
        throw new Error('not reached: the step input is refused first');
      },
      stopping: () => false,
      closing,
    });
  // Inputs the step schema refuses: each step ends as soon as it is past its start mark.
  const job = (id: string, container: string): StepJobData => ({ migrationId: `m-${id}`, phase: 'forward', index: 0, run: 0, step: 'cleanup', host: 'h1', input: { container }, fence: { container, epoch: 0 } });

  it('a step job without an ownership fence is refused before it does anything (UNFENCED_STEP)', async () => {
    const prefix = freshPrefix();
    const queues = new Queues(queueRedis, prefix);
    const processor = processorFor(prefix, queues, () => false);
    const worker = new Worker<StepJobData, StepResultData>('host-h1', (j, token) => processor(j, token), { connection: queueRedis, prefix, autorun: false });
    const q = new Queue<Omit<StepJobData, 'fence'>>('host-h1', { connection: queueRedis, prefix });
    try {
      const { fence: _none, ...forged } = job('forged', 'ct1');
      await signed(q, 'step', forged, { jobId: 'forged' });
      void worker.run();
      for (let i = 0; i < 150 && !(await q.getJob('forged'))?.returnvalue; i++) await sleep(20);
      expect((await q.getJob('forged'))!.returnvalue).toMatchObject({ ok: false, error: { code: 'UNFENCED_STEP', retryable: false } });
      expect(await storeRedis.keys(keys(prefix).starts('m-forged'))).toEqual([]); // no start mark: it never began
    } finally {
      await worker.close();
      await q.close();
      await queues.close();
    }
  });

  it("a second step on a busy container goes back to the queue without using an attempt, and runs after the first", async () => {
    const prefix = freshPrefix();
    const storePid = Number(readFileSync(join(storeSrv.dir, 'redis.pid'), 'utf8'));
    const queues = new Queues(queueRedis, prefix);
    const processor = processorFor(prefix, queues, () => false);
    const events: string[] = [];
    const worker = new Worker<StepJobData, StepResultData>(
      'host-h1',
      async (job: Job<StepJobData>, token?: string) => {
        events.push(`${job.id}:${job.attemptsMade}`);
        return processor(job, token);
      },
      { connection: queueRedis, prefix, concurrency: 4, autorun: false },
    );
    const q = new Queue<StepJobData>('host-h1', { connection: queueRedis, prefix });
    const done = new Map<string, number>();
    worker.on('completed', (j) => done.set(j.id!, Date.now()));
    try {
      process.kill(storePid, 'SIGSTOP');
      void worker.run();
      await signed(q, 'step', job('first', 'ct1'), { jobId: 'first' });
      for (let i = 0; i < 100 && !events.includes('first:0'); i++) await sleep(20);
      await signed(q, 'step', job('second', 'ct1'), { jobId: 'second' });
      await signed(q, 'step', job('other', 'ct2'), { jobId: 'other' });
      for (let i = 0; i < 100 && !(await q.getDelayed()).some((j) => j.id === 'second'); i++) await sleep(20);
      expect((await q.getDelayed()).map((j) => j.id)).toEqual(['second']);
      expect(done.size).toBe(0); // 'other' also waits: it is held at the stopped store, like 'first'
      process.kill(storePid, 'SIGCONT');
      for (let i = 0; i < 250 && done.size < 3; i++) await sleep(20);
      expect([...done.keys()].sort()).toEqual(['first', 'other', 'second']);
      expect(done.get('second')!).toBeGreaterThan(done.get('first')!);
      // It went back to the queue (at least once) and never counted as a failed attempt.
      expect(events.filter((e) => e.startsWith('second:'))).toContain('second:0');
      expect(events.filter((e) => e.startsWith('second:')).every((e) => e === 'second:0')).toBe(true);
      expect((await q.getJob('second'))!.returnvalue).toMatchObject({ ok: false, error: { name: 'ZodError' } });
    } finally {
      process.kill(storePid, 'SIGCONT');
      await worker.close();
      await q.close();
      await queues.close();
    }
  });

  it('a worker asked to stop starts no step: the job goes back to the queue unstarted, its attempts untouched', async () => {
    const prefix = freshPrefix();
    const queues = new Queues(queueRedis, prefix);
    const processor = processorFor(prefix, queues, () => true);
    const worker = new Worker<StepJobData, StepResultData>('host-h1', (j, token) => processor(j, token), { connection: queueRedis, prefix, autorun: false });
    const q = new Queue<StepJobData>('host-h1', { connection: queueRedis, prefix });
    try {
      await signed(q, 'step', job('late', 'ct1'), { jobId: 'late', attempts: 3 });
      void worker.run();
      for (let i = 0; i < 100 && (await q.getDelayed()).length === 0; i++) await sleep(20);
      const late = (await q.getDelayed())[0];
      expect(late?.id).toBe('late');
      expect(late?.attemptsMade).toBe(0);
      expect(await storeRedis.keys(keys(prefix).all)).toEqual([]); // not even its start mark was written
    } finally {
      await worker.close();
      await q.close();
      await queues.close();
    }
  });
});
