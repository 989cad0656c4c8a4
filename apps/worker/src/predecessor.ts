import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { bullmqKeys, FerryError } from '@ferry/core';
import { comm, isAlive, pidsWithEnv, procId, signal, type ProcId, type RedisClient } from '@ferry/infra';
import { readJson, writeJsonAtomic } from './json-files.js';

/** Who runs this host's worker: written in the host's state dir at start, removed at a clean stop. */
export interface WorkerMark {
  pid: number;
  /** The process's start time in clock ticks (/proc/PID/stat): a reused pid does not match. */
  startTime: number;
  /** The machine's boot: after a reboot the same pid and start time may name another process. */
  bootId: string;
  /** The BullMQ worker id: every lock token this worker takes begins with it. */
  workerId: string;
  since: number;
}

/** Every process a worker spawns carries its BullMQ worker id here, so its orphans can be found. */
export const WORKER_ENV = 'FERRY_WORKER_ID';

const markFile = (stateDir: string) => join(stateDir, 'worker.json');

const bootId = async () => (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();

/** The mark's process still runs: same boot, same pid and start time, and not a zombie. */
async function alive(mark: WorkerMark, boot: string): Promise<boolean> {
  return mark.bootId === boot && isAlive({ pid: mark.pid, startTime: mark.startTime });
}

/**
 * The host's lock: an abstract Unix socket named after the state dir. Binding it is atomic and the
 * kernel lets go of it when its process dies, however it dies, so two workers started in the same
 * instant cannot both pass, and a killed worker leaves no stale lock. The name lives in the network
 * namespace; the mark file below still catches a live worker of the same state dir in another one.
 */
const locks = new Map<string, { server: Server; workerId: string }>();

/** Linux's sun_path holds 108 bytes. Node 20 binds abstract names padded with NULs to that length
 * (newer libuv binds the exact length): padding it here names the same lock under either. */
const lockName = (stateDir: string) =>
  `\0ferry-worker-${createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 32)}`.padEnd(108, '\0');

async function lock(stateDir: string, workerId: string): Promise<boolean> {
  // Nobody is meant to connect (abstract names have no permissions): whoever does is let go at once,
  // so a stray client cannot keep a stopping worker alive.
  const server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  const bound = await new Promise<boolean>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? ok(false) : fail(e)));
    server.listen(lockName(stateDir), () => ok(true));
  });
  if (!bound) return false;
  server.on('error', () => undefined); // an accept error (EMFILE) must not end the worker; the lock holds
  server.unref(); // holding the host must not keep the process alive
  locks.set(resolve(stateDir), { server, workerId });
  return true;
}

function unlock(stateDir: string, workerId: string): void {
  const held = locks.get(resolve(stateDir));
  if (held?.workerId !== workerId) return;
  held.server.close();
  locks.delete(resolve(stateDir));
}

const taken = (host: string, mark: WorkerMark | null) =>
  new FerryError('HOST_TAKEN', `another worker runs for host ${host}${mark ? ` (pid ${mark.pid}, since ${new Date(mark.since).toISOString()})` : ''}; stop it first`);

/**
 * Takes the host for this process. Another live worker for the host would run the same steps, so
 * this one refuses to start. A mark left by a dead process names the predecessor, whose jobs
 * `reclaimJobs` hands back at once.
 */
export async function claimHost(stateDir: string, host: string, workerId: string): Promise<WorkerMark | null> {
  if (!(await lock(stateDir, workerId))) throw taken(host, await readJson<WorkerMark>(markFile(stateDir)));
  try {
    const prev = await readJson<WorkerMark>(markFile(stateDir));
    const boot = await bootId();
    if (prev && (await alive(prev, boot))) throw taken(host, prev);
    const me = await procId(process.pid);
    const mine: WorkerMark = { pid: process.pid, startTime: me?.startTime ?? 0, bootId: boot, workerId, since: Date.now() };
    await writeJsonAtomic(markFile(stateDir), mine);
    return prev;
  } catch (e) {
    unlock(stateDir, workerId);
    throw e;
  }
}

/** A clean stop: the next worker of this host has nothing to take back. */
export async function releaseHost(stateDir: string, workerId: string): Promise<void> {
  const mark = await readJson<WorkerMark>(markFile(stateDir));
  if (mark?.workerId === workerId) await rm(markFile(stateDir), { force: true });
  unlock(stateDir, workerId);
}

/** LXC renames a container's monitor process `[lxc monitor] <lxc path> <name>`. */
async function isLxcMonitor(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
  return cmdline.startsWith('[lxc monitor]');
}

/** Transfer tools are safe to kill: a transfer resumes from its partial files when it runs again. */
const KILLABLE = new Set(['rsync', 'ssh']);

/**
 * The dead worker's children live on as orphans (an rsync, an lxc-freeze, an lxc-checkpoint). Its
 * steps must not run again beside them: transfers are killed, anything else is waited for (at most
 * `waitMs`, which is about when BullMQ would run the steps again anyway). Container monitors
 * are left alone: they are the containers it started (`lxc-start`) or restored from a CRIU dump
 * (`lxc-checkpoint -r` leaves a monitor named `lxc-checkpoint`, its command line `[lxc monitor] …`).
 */
export async function settleOrphans(predecessor: WorkerMark, waitMs = 15_000): Promise<{ killed: string[]; waited: string[]; left: string[] }> {
  const find = async () => {
    const found: (ProcId & { comm: string })[] = [];
    for (const p of await pidsWithEnv(WORKER_ENV, predecessor.workerId)) {
      const name = await comm(p.pid);
      if (name !== null && name !== 'lxc-start' && !(await isLxcMonitor(p.pid))) found.push({ ...p, comm: name });
    }
    return found;
  };
  const name = (p: { pid: number; comm: string }) => `${p.pid}:${p.comm}`;
  const first = await find();
  const killed = first.filter((p) => KILLABLE.has(p.comm));
  for (const p of killed) signal(p.pid, 'SIGKILL');
  const end = Date.now() + waitMs;
  let left = await find();
  while (left.length && Date.now() < end) {
    await sleep(100);
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
export async function reclaimJobs(queue: Queue, redis: RedisClient, predecessor: WorkerMark): Promise<string[]> {
  const moved: string[] = [];
  for (const job of await queue.getActive()) {
    if (!job.id) continue;
    const token = await redis.get(bullmqKeys.jobLock(queue.toKey(job.id)));
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
