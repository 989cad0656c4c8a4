import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { writeJsonAtomic } from '../src/steps/common.js';
import { claimHost, reclaimJobs, releaseHost, settleOrphans, WORKER_ENV, type WorkerMark } from '../src/predecessor.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

/** The pid of a process that has exited (and been reaped): nothing runs under it now. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const stat = (pid: number) => {
  const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
  return { state: f[0]!, started: f[19]! };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('one worker per host (mark in the state dir)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-mark-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('refuses a second worker while the first one runs, naming it', async () => {
    expect(await claimHost(dir, 'h1', 'w-a')).toBeNull();
    await expect(claimHost(dir, 'h1', 'w-b')).rejects.toMatchObject({ code: 'HOST_TAKEN', message: expect.stringContaining(`pid ${process.pid}`) });
  });

  it('a clean stop leaves nothing to take back', async () => {
    await claimHost(dir, 'h1', 'w-a');
    await releaseHost(dir, 'w-a');
    expect(await claimHost(dir, 'h1', 'w-b')).toBeNull();
  });

  it('a mark left by a dead process names the predecessor, and the new worker takes the host', async () => {
    const dead: WorkerMark = { pid: deadPid(), started: '1', bootId, workerId: 'w-dead', since: Date.now() - 1000 };
    await writeJsonAtomic(join(dir, 'worker.json'), dead);
    expect(await claimHost(dir, 'h1', 'w-new')).toEqual(dead);
    await expect(claimHost(dir, 'h1', 'w-third')).rejects.toMatchObject({ code: 'HOST_TAKEN' });
  });

  it('a killed worker not yet reaped (a zombie) is dead: its successor is not refused', async () => {
    // `sleep 0.2` is the child of a process that never waits for it: it stays a zombie a while.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((r) => parent.stdout.once('data', (b: Buffer) => r(b.toString()))));
      const started = stat(pid).started;
      await sleep(500);
      expect(stat(pid).state).toBe('Z');
      await writeJsonAtomic(join(dir, 'worker.json'), { pid, started, bootId, workerId: 'w-zombie', since: 0 } satisfies WorkerMark);
      expect(await claimHost(dir, 'h1', 'w-new')).toMatchObject({ workerId: 'w-zombie' });
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a mark from another boot is dead, even if its pid and start time match a process now', async () => {
    const me = stat(process.pid);
    await writeJsonAtomic(join(dir, 'worker.json'), { pid: process.pid, started: me.started, bootId: 'another-boot', workerId: 'w-old', since: 0 } satisfies WorkerMark);
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
    const ended = (c: typeof tool) => new Promise<NodeJS.Signals | number | null>((r) => c.once('exit', (code, sig) => r(sig ?? code)));
    const [transferEnd, toolEnd] = [ended(transfer), ended(tool)];
    try {
      await sleep(100);
      const r = await settleOrphans({ pid: 1, started: '1', bootId, workerId: 'w-dead', since: 0 }, 10_000);
      expect(r.killed).toEqual([`${transfer.pid}:rsync`]);
      expect(r.waited).toEqual([`${tool.pid}:sleep`]);
      expect(r.left).toEqual([]);
      expect(await transferEnd).toBe('SIGKILL');
      expect(await toolEnd).toBe(0); // it ran to its end
      expect(stranger.exitCode).toBeNull();
      expect(stranger.signalCode).toBeNull();
    } finally {
      for (const c of [transfer, tool, stranger]) c.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('reclaimJobs against real Redis and BullMQ', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: Redis;
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
    const never = () => new Promise<never>(() => undefined);
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

      const moved = await reclaimJobs(queue, redis, { pid: 1, started: '1', bootId, workerId: dead.id, since: 0 });
      expect(moved).toEqual([taken!.id]);
      expect(await queue.getJobState(taken!.id!)).toBe('waiting');
      expect(await queue.getJobState(other!.id!)).toBe('active');
      // Nothing of it is left for the stalled check to count against the job.
      expect(await redis.exists(`${queue.toKey(taken!.id!)}:lock`)).toBe(0);
      expect((await queue.getJob(taken!.id!))?.attemptsMade).toBe(0);
    } finally {
      await Promise.all([dead.close(true), alive.close(true)]);
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
