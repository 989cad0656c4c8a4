import { readdir, readFile, rm } from 'node:fs/promises';
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
  /** The machine's boot: after a reboot the same pid and start time may name another process. */
  bootId: string;
  /** The BullMQ worker id: every lock token this worker takes begins with it. */
  workerId: string;
  since: number;
}

/** Every process a worker spawns carries its BullMQ worker id here, so its orphans can be found. */
export const WORKER_ENV = 'FERRY_WORKER_ID';

const markFile = (stateDir: string) => join(stateDir, 'worker.json');

interface ProcStat {
  state: string;
  started: string;
}

async function procStat(pid: number): Promise<ProcStat | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, starttime field 22.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '', started: f[19] ?? '' };
  } catch {
    return null;
  }
}

const bootId = async () => (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();

/** The mark's process still runs: same boot, same pid and start time, and not a zombie. */
async function alive(mark: WorkerMark): Promise<boolean> {
  if (mark.bootId !== (await bootId())) return false;
  const st = await procStat(mark.pid);
  return st !== null && st.started === mark.started && st.state !== 'Z' && st.state !== 'X';
}

/**
 * Takes the host for this process. A mark left by a process that still runs means another worker
 * serves this host: both would run the same steps, so this one refuses to start. A mark left by a
 * dead process names the predecessor, whose jobs `reclaimJobs` hands back at once.
 */
export async function claimHost(stateDir: string, host: string, workerId: string): Promise<WorkerMark | null> {
  const prev = await readJson<WorkerMark>(markFile(stateDir));
  if (prev && (await alive(prev))) {
    throw new FerryError('HOST_TAKEN', `another worker runs for host ${host} (pid ${prev.pid}, since ${new Date(prev.since).toISOString()}); stop it first`);
  }
  const mine: WorkerMark = { pid: process.pid, started: (await procStat(process.pid))?.started ?? '', bootId: await bootId(), workerId, since: Date.now() };
  await writeJsonAtomic(markFile(stateDir), mine);
  return prev;
}

/** A clean stop: the next worker of this host has nothing to take back. */
export async function releaseHost(stateDir: string, workerId: string): Promise<void> {
  const mark = await readJson<WorkerMark>(markFile(stateDir));
  if (mark?.workerId === workerId) await rm(markFile(stateDir), { force: true });
}

/** Transfer tools are safe to kill: a transfer resumes from its partial files when it runs again. */
const KILLABLE = new Set(['rsync', 'ssh']);

/**
 * The dead worker's children live on as orphans (an rsync, an lxc-freeze, an lxc-checkpoint). Its
 * steps must not run again beside them: transfers are killed, anything else is waited for (at most
 * `waitMs`, which is about when BullMQ would run the steps again anyway). Container monitors
 * (`lxc-start`) are left alone: they are the containers it started.
 */
export async function settleOrphans(predecessor: WorkerMark, waitMs = 15_000): Promise<{ killed: string[]; waited: string[]; left: string[] }> {
  const marker = `${WORKER_ENV}=${predecessor.workerId}`;
  const find = async () => {
    const found: { pid: number; comm: string }[] = [];
    for (const entry of await readdir('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      try {
        const env = await readFile(`/proc/${pid}/environ`, 'utf8');
        if (!env.split('\0').includes(marker)) continue;
        const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
        const st = await procStat(pid);
        if (comm !== 'lxc-start' && st && st.state !== 'Z' && st.state !== 'X') found.push({ pid, comm });
      } catch {
        /* gone meanwhile, or not readable */
      }
    }
    return found;
  };
  const name = (p: { pid: number; comm: string }) => `${p.pid}:${p.comm}`;
  const first = await find();
  const killed = first.filter((p) => KILLABLE.has(p.comm));
  for (const p of killed) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  const end = Date.now() + waitMs;
  let left = await find();
  while (left.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    left = await find();
  }
  return { killed: killed.map(name), waited: first.filter((p) => !KILLABLE.has(p.comm)).map(name), left: left.map(name) };
}

/**
 * Jobs a killed worker held stay active until their lock expires (BullMQ's stalled check). Their
 * holder is known to be dead here, so they go back to waiting now and run again (steps are
 * idempotent): a source frozen by a killed checkpoint is not left frozen for the lock's lifetime.
 * Only jobs whose lock token is the predecessor's are touched, and the move checks the token
 * atomically; a job that cannot be moved (its lock expired meanwhile) is left to the stalled check.
 */
export async function reclaimJobs(queue: Queue, redis: Redis, predecessor: WorkerMark): Promise<string[]> {
  const moved: string[] = [];
  for (const job of await queue.getActive()) {
    if (!job.id) continue;
    const token = await redis.get(`${queue.toKey(job.id)}:lock`);
    if (!token?.startsWith(`${predecessor.workerId}:`)) continue;
    try {
      await job.moveToWait(token);
      moved.push(job.id);
    } catch {
      /* lock expired or job gone between the read and the move: BullMQ's stalled check has it */
    }
  }
  return moved;
}
