import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { writeJsonAtomic } from '../src/steps/common.js';
import { claimHost, reclaimJobs, releaseHost, type WorkerMark } from '../src/predecessor.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

/** The pid of a process that has exited (and been reaped): nothing runs under it now. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

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
    const dead: WorkerMark = { pid: deadPid(), started: '1', workerId: 'w-dead', since: Date.now() - 1000 };
    await writeJsonAtomic(join(dir, 'worker.json'), dead);
    expect(await claimHost(dir, 'h1', 'w-new')).toEqual(dead);
    await expect(claimHost(dir, 'h1', 'w-third')).rejects.toMatchObject({ code: 'HOST_TAKEN' });
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
    // Two workers take a job each and never finish them: the first one is the "dead" predecessor.
    const dead = new Worker('host-h1', null, { connection: redis, prefix, lockDuration: 60_000 });
    const alive = new Worker('host-h1', null, { connection: redis, prefix, lockDuration: 60_000 });
    try {
      await queue.add('step', { n: 1 }, { jobId: 'j1' });
      await queue.add('step', { n: 2 }, { jobId: 'j2' });
      const taken = await dead.getNextJob(`${dead.id}:0`);
      const other = await alive.getNextJob(`${alive.id}:0`);
      expect([taken?.id, other?.id].sort()).toEqual(['j1', 'j2']);

      const moved = await reclaimJobs(queue, redis, { pid: 1, started: '1', workerId: dead.id, since: 0 });
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
