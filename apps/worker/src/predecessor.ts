import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { FerryError } from '@ferry/core';
import { readJson, writeJsonAtomic } from './steps/common.js';

/** Who runs this host's worker: written in the host's state dir at start, removed at a clean stop. */
export interface WorkerMark {
  pid: number;
  /** The process's start time in clock ticks (/proc/PID/stat): a reused pid does not match. */
  started: string;
  /** The BullMQ worker id: every lock token this worker takes begins with it. */
  workerId: string;
  since: number;
}

const markFile = (stateDir: string) => join(stateDir, 'worker.json');

async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces); starttime is field 22 of the file.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Takes the host for this process. A mark left by a process that still runs means another worker
 * serves this host: both would run the same steps, so this one refuses to start. A mark left by a
 * dead process names the predecessor, whose jobs `reclaimJobs` hands back at once.
 */
export async function claimHost(stateDir: string, host: string, workerId: string): Promise<WorkerMark | null> {
  const prev = await readJson<WorkerMark>(markFile(stateDir));
  if (prev && (await processStart(prev.pid)) === prev.started) {
    throw new FerryError('HOST_TAKEN', `another worker runs for host ${host} (pid ${prev.pid}, since ${new Date(prev.since).toISOString()}); stop it first`);
  }
  const mine: WorkerMark = { pid: process.pid, started: (await processStart(process.pid)) ?? '', workerId, since: Date.now() };
  await writeJsonAtomic(markFile(stateDir), mine);
  return prev;
}

/** A clean stop: the next worker of this host has nothing to take back. */
export async function releaseHost(stateDir: string, workerId: string): Promise<void> {
  const mark = await readJson<WorkerMark>(markFile(stateDir));
  if (mark?.workerId === workerId) await rm(markFile(stateDir), { force: true });
}

/**
 * Jobs a killed worker held stay active until their lock expires (BullMQ's stalled check). Their
 * holder is known to be dead here, so they go back to waiting now and run again (steps are
 * idempotent): a source frozen by a killed checkpoint is not left frozen for the lock's lifetime.
 * Only jobs whose lock token is the predecessor's are touched.
 */
export async function reclaimJobs(queue: Queue, redis: Redis, predecessor: WorkerMark): Promise<string[]> {
  const moved: string[] = [];
  for (const job of await queue.getActive()) {
    if (!job.id) continue;
    const token = await redis.get(`${queue.toKey(job.id)}:lock`);
    if (!token?.startsWith(`${predecessor.workerId}:`)) continue;
    if ((await job.moveToWait(token)) >= 0) moved.push(job.id);
  }
  return moved;
}
