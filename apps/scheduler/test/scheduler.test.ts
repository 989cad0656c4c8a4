import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Queue } from 'bullmq';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOB_TTL_MS, queueNames, stepJobId, type HostInfo, type SchedulerJob, type StepJobData } from '@ferry/core';
import { HostRegistry, signHostEntry, type RedisClient } from '@ferry/infra';
import { Scheduler } from '../src/index.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';
import { TestKeys } from '../../../test/support/trust.js';

const host = (name: string, containers: string[] = []): HostInfo => ({
  name, address: '198.18.0.11', sshPort: 22, sshUser: 'root', lxcPath: `/lab/${name}`,
  capabilities: { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'criu check failed' },
  containers: containers.map((c) => ({ name: c, state: 'RUNNING' as const })), freeBytes: 1e12, lastSeen: Date.now(), workerPid: 1,
});

async function until<T>(fn: () => Promise<T | null | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not met in time');
}

// Real Redis, real BullMQ; hosts are registered by hand (no workers run in this file), so the
// step jobs are only inspected, never executed.
describe('scheduler against real Redis (hosts registered by hand, no workers)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let prefix: string;
  let s: Scheduler;
  let submitQ: Queue<SchedulerJob>;
  let keys: TestKeys;
  let dir: string;
  const log = pino({ level: 'silent' });

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(async () => {
    prefix = freshPrefix();
    redis = connect(srv.url);
    const reg = new HostRegistry(redis, prefix);
    // Requests signed as the CLI signs them; h1 and h2 trusted, as if their workers had written
    // their keys, and their entries signed as their workers sign them.
    keys = new TestKeys();
    await keys.publish(reg, host('h1', ['web']));
    await keys.publish(reg, host('h2'));
    dir = mkdtempSync(join(tmpdir(), 'ferry-sched-test-'));
    s = new Scheduler({ redis, prefix, log, reconcileEveryMs: 60_000, trust: keys.scheduler(dir) });
    await s.start();
    submitQ = new Queue(queueNames.scheduler, { connection: redis, prefix });
  });
  afterEach(async () => {
    await s.stop();
    await submitQ.close();
    await quit(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  const submit = (id: string, request: object) => keys.signer.add(submitQ, 'submit', { kind: 'submit', migrationId: id, request }, { jobId: `submit.${id}` }, JOB_TTL_MS.request);
  const hostQ = (h: string) => new Queue<StepJobData>(queueNames.host(h), { connection: redis, prefix });

  it('plans a submitted migration, takes the container lock and enqueues preflight on the source', async () => {
    await submit('m-aaaaaa01', { container: 'web', from: 'h1', to: 'h2' });
    const r = await until(async () => ((await s.store.get('m-aaaaaa01'))?.state === 'running' ? s.store.get('m-aaaaaa01') : null));
    expect(r.state).toBe('running');
    if (r.state === 'rejected') return;
    expect(r.plan.steps.map((x) => x.name)).toContain('rsync-transfer');
    expect(await s.store.lockHolder('web')).toBe('m-aaaaaa01');
    const q = hostQ('h1');
    const job = await q.getJob(stepJobId('m-aaaaaa01', 'forward', 0, 0));
    expect(job?.data).toMatchObject({ step: 'preflight', host: 'h1', input: { role: 'source', container: 'web', peer: { name: 'h2' } } });
    await q.close();
  });

  it('refuses a second migration of the same container, naming the first', async () => {
    await submit('m-aaaaaa02', { container: 'web', from: 'h1', to: 'h2' });
    await until(() => s.store.get('m-aaaaaa02'));
    await submit('m-aaaaaa03', { container: 'web', from: 'h1', to: 'h2' });
    const r = await until(() => s.store.get('m-aaaaaa03'));
    expect(r.state).toBe('rejected');
    expect(r.error).toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('m-aaaaaa02') });
  });

  it('rejects an unknown host without enqueueing anything', async () => {
    await submit('m-aaaaaa04', { container: 'web', from: 'h1', to: 'nowhere' });
    const r = await until(() => s.store.get('m-aaaaaa04'));
    expect(r.state).toBe('rejected');
    expect(r.error?.code).toBe('UNKNOWN_HOST');
    const q = hostQ('h1');
    expect(await q.getJobCounts()).toMatchObject({ waiting: 0 });
    expect(await s.store.lockHolder('web')).toBeNull();
    await q.close();
  });

  it("plans only from a host's own signed registry entry: one rewritten in Redis, unsigned or signed by another host is refused, nothing locked or enqueued", async () => {
    const reg = new HostRegistry(redis, prefix);
    const h2 = host('h2');
    const attempts: [string, () => Promise<void>, string][] = [
      // A Redis writer points the copy at an address, user and path of its own, keeping h2's signature.
      ['rewritten', async () => {
        const stored = JSON.parse((await redis.hget(reg.k.hosts, 'h2'))!) as Record<string, unknown>;
        await redis.hset(reg.k.hosts, 'h2', JSON.stringify({ ...stored, address: '198.51.100.7', sshUser: 'evil', lxcPath: '/root' }));
      }, 'BAD_HOST_ENTRY_SIGNATURE'],
      ['unsigned', () => reg.publish({ ...h2, address: '198.51.100.7' }), 'UNSIGNED_HOST_ENTRY'],
      ["signed by h1's key", () => reg.publish({ ...h2, address: '198.51.100.7' }, signHostEntry(keys.hostKey('h1'), { ...h2, address: '198.51.100.7' })), 'BAD_HOST_ENTRY_SIGNATURE'],
    ];
    for (const [i, [what, forge, code]] of attempts.entries()) {
      await keys.publish(reg, h2);
      await forge();
      const id = `m-bbbbbb0${i}`;
      await submit(id, { container: 'web', from: 'h1', to: 'h2' });
      const r = await until(() => s.store.get(id));
      expect(r.state, what).toBe('rejected');
      expect(r.error?.code, what).toBe(code);
    }
    expect(await s.store.lockHolder('web')).toBeNull();
    const q = hostQ('h1');
    expect(await q.getJobCounts()).toMatchObject({ waiting: 0, active: 0 });
    await q.close();
    // Its own signed entry again: planned.
    await keys.publish(reg, h2);
    await submit('m-bbbbbb09', { container: 'web', from: 'h1', to: 'h2' });
    const ok = await until(async () => ((await s.store.get('m-bbbbbb09'))?.state === 'running' ? s.store.get('m-bbbbbb09') : null));
    expect(ok).toMatchObject({ hosts: { target: { address: h2.address, sshUser: h2.sshUser, lxcPath: h2.lxcPath } } });
  });

  it('advances on a step result and ignores the duplicate', async () => {
    await submit('m-aaaaaa05', { container: 'web', from: 'h1', to: 'h2' });
    await until(async () => (await s.store.get('m-aaaaaa05'))?.state === 'running');
    const result = { migrationId: 'm-aaaaaa05', phase: 'forward' as const, index: 0, run: 0, ok: true, output: { role: 'source', wasRunning: true, sizeBytes: 10 }, attempts: 1, endedAt: Date.now() };
    await s.apply('m-aaaaaa05', { type: 'step-result', ...result });
    const once = await s.store.mustGet('m-aaaaaa05');
    expect(once.state !== 'rejected' && once.cursor).toBe(1);
    await s.apply('m-aaaaaa05', { type: 'step-result', ...result });
    const twice = await s.store.mustGet('m-aaaaaa05');
    expect(twice.version).toBe(once.version);
    const q = hostQ('h2');
    expect((await q.getJob(stepJobId('m-aaaaaa05', 'forward', 1, 0)))?.data.input).toMatchObject({ role: 'target', expect: { sizeBytes: 10 } });
    await q.close();
  });

  it('the reconciler re-enqueues a step job that was lost', async () => {
    await submit('m-aaaaaa06', { container: 'web', from: 'h1', to: 'h2' });
    await until(() => s.store.get('m-aaaaaa06'));
    const q = hostQ('h1');
    const id = stepJobId('m-aaaaaa06', 'forward', 0, 0);
    // The record is saved before its step is enqueued: wait for the job, not the record.
    await (await until(() => q.getJob(id)))!.remove();
    expect(await q.getJob(id)).toBeUndefined();
    await s.reconcileNow();
    expect((await q.getJob(id))?.data.step).toBe('preflight');
    await q.close();
  });

  const tick = () => s.reconcileNow();
  /** A migration whose preflight on the source is done, so the target's preflight waits on h2. */
  async function waitingOnTarget(id: string) {
    await submit(id, { container: 'web', from: 'h1', to: 'h2' });
    // Running, not just saved: a result applied to a record still pending is ignored.
    await until(async () => (await s.store.get(id))?.state === 'running');
    await s.apply(id, { type: 'step-result', phase: 'forward', index: 0, run: 0, ok: true, output: { role: 'source', wasRunning: true, sizeBytes: 10 }, attempts: 1, endedAt: Date.now() });
    await keys.publish(new HostRegistry(redis, prefix), { ...host('h2'), lastSeen: Date.now() - 120_000 });
  }

  it('the reconciler fails a step on a host gone before it began it: the migration rolls back', async () => {
    await waitingOnTarget('m-aaaaaa07');
    await tick();
    const r = await s.store.mustGet('m-aaaaaa07');
    expect(r.state).toBe('rolled-back');
    expect(r.error?.code).toBe('HOST_UNREACHABLE');
    expect(await s.store.lockHolder('web')).toBeNull();
  });

  it('the store keeps progress, start marks and replay counts apart: status reads only progress', async () => {
    const id = 'm-aaaaaa09';
    await s.store.setProgress(id, { phase: 'forward', index: 2, stage: 'precopy', at: 1 });
    expect(await s.store.markStarted(id, 'forward', 2, 0, 100)).toBe(100);
    expect(await s.store.markStarted(id, 'forward', 2, 0, 200)).toBe(100); // a re-delivery keeps the first start
    expect(await s.store.countReplay(id, 'forward', 2, 0)).toBe(1);
    expect(await s.store.countReplay(id, 'forward', 2, 0)).toBe(2);
    expect(Object.keys(await s.store.progress(id))).toEqual(['forward.2']);
    expect(await s.store.startedSteps(id)).toEqual(new Set(['forward.2']));
  });

  it('the reconciler pauses when the gone host had begun the step', async () => {
    await waitingOnTarget('m-aaaaaa08');
    await s.store.markStarted('m-aaaaaa08', 'forward', 1, 0, Date.now());
    await tick();
    const r = await s.store.mustGet('m-aaaaaa08');
    expect(r.state).toBe('paused');
    expect(r.error?.code).toBe('HOST_UNREACHABLE');
  });
});
