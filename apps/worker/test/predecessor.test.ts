import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import { bullmqKeys } from '@ferry/core';
import { procId, type RedisClient } from '@ferry/infra';
import { writeJsonAtomic } from '../src/json-files.js';
import { claimHost, reclaimJobs, releaseHost, settleOrphans, WORKER_ENV, type WorkerMark } from '../src/predecessor.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';
import { sourcesArgs } from '../../../test/support/sources.js';

/** The pid of a process that has exited (and been reaped): nothing runs under it now. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const startTime = async (pid: number) => (await procId(pid))!.startTime;
const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0];
/** The module under test, from source, for a child process of its own (run with sourcesArgs()). */
const predecessorTs = new URL('../src/predecessor.ts', import.meta.url).href;

describe('one worker per host (mark in the state dir)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-mark-'));
  });
  afterEach(async () => {
    for (const id of ['w-a', 'w-b', 'w-new', 'w-1', 'w-2', 'w-3', 'w-4']) await releaseHost(dir, id);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second worker while the first one runs, naming it', async () => {
    expect(await claimHost(dir, 'h1', 'w-a')).toBeNull();
    await expect(claimHost(dir, 'h1', 'w-b')).rejects.toMatchObject({ code: 'HOST_TAKEN', message: expect.stringContaining(`pid ${process.pid}`) });
  });

  it('workers started in the same instant: exactly one takes the host', async () => {
    const tries = await Promise.allSettled(['w-1', 'w-2', 'w-3', 'w-4'].map((id) => claimHost(dir, 'h1', id)));
    expect(tries.filter((t) => t.status === 'fulfilled')).toHaveLength(1);
    for (const t of tries.filter((t) => t.status === 'rejected')) expect((t as PromiseRejectedResult).reason).toMatchObject({ code: 'HOST_TAKEN' });
  });

  it('the host stays taken while its worker lives, even if its mark file is removed', async () => {
    await claimHost(dir, 'h1', 'w-a');
    await rm(join(dir, 'worker.json'));
    await expect(claimHost(dir, 'h1', 'w-b')).rejects.toMatchObject({ code: 'HOST_TAKEN' });
  });

  it('a worker killed with SIGKILL leaves no lock behind: its successor takes the host and learns its id', async () => {
    const script = `const { claimHost } = await import(${JSON.stringify(predecessorTs)}); await claimHost(${JSON.stringify(dir)}, 'h1', 'w-child'); console.log('claimed'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, [...sourcesArgs(), '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await new Promise<void>((r, j) => {
        child.stdout.once('data', (b: Buffer) => (b.toString().includes('claimed') ? r() : j(new Error(b.toString()))));
        child.once('exit', (code) => j(new Error(`child exited ${code} before claiming`)));
      });
      await expect(claimHost(dir, 'h1', 'w-b')).rejects.toMatchObject({ code: 'HOST_TAKEN', message: expect.stringContaining(`pid ${child.pid}`) });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(await claimHost(dir, 'h1', 'w-b')).toMatchObject({ workerId: 'w-child', pid: child.pid });
  });

  it('a clean stop leaves nothing to take back', async () => {
    await claimHost(dir, 'h1', 'w-a');
    await releaseHost(dir, 'w-a');
    expect(await claimHost(dir, 'h1', 'w-b')).toBeNull();
  });

  it('a mark left by a dead process names the predecessor, and the new worker takes the host', async () => {
    const dead: WorkerMark = { pid: deadPid(), startTime: 1, bootId, workerId: 'w-dead', since: Date.now() - 1000 };
    await writeJsonAtomic(join(dir, 'worker.json'), dead);
    expect(await claimHost(dir, 'h1', 'w-new')).toEqual(dead);
    await expect(claimHost(dir, 'h1', 'w-third')).rejects.toMatchObject({ code: 'HOST_TAKEN' });
  });

  it('a killed worker not yet reaped (a zombie) is dead: its successor is not refused', async () => {
    // `sleep 0.2` is the child of a process that never waits for it: it stays a zombie a while.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((r) => parent.stdout.once('data', (b: Buffer) => r(b.toString()))));
      const started = await startTime(pid);
      for (let i = 0; i < 100 && procState(pid) !== 'Z'; i++) await sleep(100);
      expect(procState(pid)).toBe('Z');
      await writeJsonAtomic(join(dir, 'worker.json'), { pid, startTime: started, bootId, workerId: 'w-zombie', since: 0 } satisfies WorkerMark);
      expect(await claimHost(dir, 'h1', 'w-new')).toMatchObject({ workerId: 'w-zombie' });
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a mark from another boot is dead, even if its pid and start time match a process now', async () => {
    await writeJsonAtomic(join(dir, 'worker.json'), { pid: process.pid, startTime: await startTime(process.pid), bootId: 'another-boot', workerId: 'w-old', since: 0 } satisfies WorkerMark);
    expect(await claimHost(dir, 'h1', 'w-new')).toMatchObject({ workerId: 'w-old' });
  });
});

describe("settleOrphans: the dead worker's children", () => {
  it('kills its transfers, waits for its other tools, leaves other processes alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-orphans-'));
    symlinkSync('/bin/sleep', join(dir, 'rsync')); // a process whose name is rsync
    const marked = { ...process.env, [WORKER_ENV]: 'w-dead' };
    const transfer = spawn(join(dir, 'rsync'), ['30'], { env: marked });
    const tool = spawn('sleep', ['1'], { env: marked });
    const stranger = spawn('sleep', ['30'], { env: { ...process.env, [WORKER_ENV]: 'w-other' } });
    // A restored container's monitor (lxc-checkpoint -r): its own, long-lived; never waited for.
    const monitor = spawn('sleep', ['30'], { env: marked, argv0: '[lxc monitor] /var/lib/lxc c1' });
    const ended = (c: typeof tool) => new Promise<NodeJS.Signals | number | null>((r) => c.once('exit', (code, sig) => r(sig ?? code)));
    const [transferEnd, toolEnd] = [ended(transfer), ended(tool)];
    try {
      await sleep(100);
      const r = await settleOrphans({ pid: 1, startTime: 1, bootId, workerId: 'w-dead', since: 0 }, 10_000);
      expect(r.killed).toEqual([`${transfer.pid}:rsync`]);
      expect(r.waited).toEqual([`${tool.pid}:sleep`]);
      expect(r.left).toEqual([]);
      expect(await transferEnd).toBe('SIGKILL');
      expect(await toolEnd).toBe(0); // it ran to its end
      expect(stranger.exitCode).toBeNull();
      expect(stranger.signalCode).toBeNull();
      expect(monitor.exitCode).toBeNull();
    } finally {
      for (const c of [transfer, tool, stranger, monitor]) c.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('reclaimJobs against real Redis and BullMQ', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  beforeAll(async () => {
    srv = await testRedis();
    redis = connect(srv.url);
  });
  afterAll(async () => {
    await quit(redis);
    await srv.stop();
  });

  it("moves the dead worker's active jobs back to waiting and leaves the others' alone", async () => {
    const prefix = freshPrefix();
    const queue = new Queue('host-h1', { connection: redis, prefix });
    // Two workers take a job each and never finish it: the first one plays the dead predecessor.
    const never = () => new Promise<void>(() => undefined);
    const dead = new Worker('host-h1', never, { connection: redis, prefix, lockDuration: 60_000, concurrency: 1, autorun: false });
    const alive = new Worker('host-h1', never, { connection: redis, prefix, lockDuration: 60_000, concurrency: 1, autorun: false });
    try {
      await queue.add('step', { n: 1 }, { jobId: 'j1' });
      await queue.add('step', { n: 2 }, { jobId: 'j2' });
      const started = (w: Worker) => new Promise<string>((r) => w.once('active', (job) => r(job.id!)));
      const takenBy = started(dead);
      void dead.run();
      const takenId = await takenBy;
      const otherBy = started(alive);
      void alive.run();
      const otherId = await otherBy;
      expect([takenId, otherId].sort()).toEqual(['j1', 'j2']);
      const taken = await queue.getJob(takenId);
      const other = await queue.getJob(otherId);

      const moved = await reclaimJobs(queue, redis, { pid: 1, startTime: 1, bootId, workerId: dead.id, since: 0 });
      expect(moved).toEqual([taken!.id]);
      expect(await queue.getJobState(taken!.id!)).toBe('waiting');
      expect(await queue.getJobState(other!.id!)).toBe('active');
      // Nothing of it is left for the stalled check to count against the job.
      expect(await redis.exists(bullmqKeys.jobLock(queue.toKey(taken!.id!)))).toBe(0);
      expect((await queue.getJob(taken!.id!))?.attemptsMade).toBe(0);
    } finally {
      await Promise.all([dead.close(true), alive.close(true)]);
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
