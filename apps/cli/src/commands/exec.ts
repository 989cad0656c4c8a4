import { constants } from 'node:os';
import { Queue } from 'bullmq';
import { decodeExecEntry, ExecArgv, fields as keyFields, newToolboxId, toolboxKeys, toolboxQueues, type ExecJobData, type ExecSignal, JOB_TTL_MS } from '@ferry/core';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { targetHost } from './target-host.js';

/**
 * `ferry exec <container> [--host H] -- <command> [args...]`: runs a command in a running container
 * through its host's worker (see apps/worker/src/exec/exec-service.ts for the other side), from any
 * machine that reaches Redis. Output comes back as it is written, stdout and stderr apart, as bytes;
 * ferry exits with the command's exit code (128+N when a signal N ended it). Ctrl-C is forwarded as
 * SIGINT (the third one as SIGKILL), SIGTERM and SIGHUP as themselves. The command's stdin is
 * /dev/null. Failures of ferry itself are said on stderr with `ferry:` and exit 1 (2: bad input,
 * nothing ran).
 */
export interface ExecOptions {
  container: string;
  host?: string;
  argv: string[];
  /** Seconds before the command is killed. */
  timeoutSec?: number;
}

export interface ExecTimings {
  /** A command no worker took within this long is withdrawn. */
  pickupMs: number;
  clientTtlMs: number;
  heartbeatMs: number;
}

const DEFAULTS: ExecTimings = { pickupMs: 30_000, clientTtlMs: 10_000, heartbeatMs: 2_000 };

function write(stream: NodeJS.WriteStream, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(data)) resolve();
    else {
      const done = () => {
        stream.off('drain', done);
        stream.off('error', done);
        resolve();
      };
      stream.once('drain', done);
      stream.once('error', done);
    }
  });
}

/** `--timeout`: seconds, more than 0 and at most a week (bad input otherwise). */
export function checkTimeout(sec: number | undefined): void {
  if (sec !== undefined && !(sec > 0 && sec <= 7 * 24 * 3600)) {
    throw new ExitError(EXIT.badInput, `--timeout: must be a number of seconds, more than 0 and at most a week, not ${sec}`);
  }
}

/** The command's arguments, checked (bad input names the field). */
export function checkArgv(argv: string[]): string[] {
  const r = ExecArgv.safeParse(argv);
  if (!r.success) throw new ExitError(EXIT.badInput, `command: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

export async function execCommand(c: Client, o: ExecOptions, t: ExecTimings = DEFAULTS): Promise<number> {
  const argv = checkArgv(o.argv);
  checkTimeout(o.timeoutSec);
  const host = await targetHost(c, o.container, o.host, 'running');
  return followExec(c, host.name, execJob({ container: o.container }, argv, o.timeoutSec), t);
}

/** A new exec job: where it runs (a container, or a fresh context), its checked argv, its timeout. */
export function execJob(where: { container: string } | { fresh: true }, argv: string[], timeoutSec: number | undefined): ExecJobData {
  return {
    execId: newToolboxId('x'),
    ...where,
    argv,
    requestedAt: Date.now(),
    ...(timeoutSec !== undefined ? { timeoutMs: Math.round(timeoutSec * 1000) } : {}),
  };
}

/**
 * Puts an exec job (signed) on its host's queue and follows its session to the end: the output as
 * it comes, signals forwarded, the command's exit code returned. `ferry exec` and `ferry run` both.
 */
export async function followExec(c: Client, hostName: string, job: ExecJobData, t: ExecTimings = DEFAULTS): Promise<number> {
  const prefix = c.queues.prefix;
  const k = toolboxKeys(prefix);
  const id = job.execId;
  const queue = new Queue<ExecJobData>(toolboxQueues.exec(hostName), { connection: c.redis, prefix });
  const reader = c.redis.duplicate();
  const alive = () => c.redis.set(k.execClient(id), hostName, 'PX', t.clientTtlMs);
  await alive();
  const heartbeat = setInterval(() => void alive().catch(() => undefined), t.heartbeatMs);

  let started = false;
  let interrupts = 0;
  /** Set by SIGTERM/SIGHUP: the command was told; ferry leaves after a short wait for its end. */
  let leaveAt: { at: number; code: number } | undefined;
  const forward = (signal: ExecSignal) =>
    void c.redis
      .multi()
      .xadd(k.execCtl(id), '*', keyFields.execSignal, signal)
      .expire(k.execCtl(id), 3600)
      .exec()
      .catch(() => undefined);
  const onInt = () => {
    interrupts++;
    if (interrupts >= 3) {
      process.stderr.write('ferry: interrupted 3 times: killing the command (SIGKILL)\n');
      forward('SIGKILL');
    } else forward('SIGINT');
  };
  const leaving = (signal: 'SIGTERM' | 'SIGHUP') => () => {
    forward(signal);
    leaveAt ??= { at: Date.now() + 5000, code: 128 + constants.signals[signal] };
  };
  const onTerm = leaving('SIGTERM');
  const onHup = leaving('SIGHUP');
  let stdoutBroken = false;
  const onStdoutError = () => {
    // The reader of our stdout went away (`ferry exec … | head`): the command gets its SIGPIPE.
    if (!stdoutBroken) forward('SIGPIPE');
    stdoutBroken = true;
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  process.stdout.on('error', onStdoutError);

  try {
    await c.enqueue(queue, 'exec', job, { jobId: id, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3600 } }, JOB_TTL_MS.toolbox);
    const t0 = Date.now();
    let last = '0-0';
    let lastCheck = Date.now();
    let suspicious = 0;
    for (;;) {
      const res = await reader.xreadBuffer('COUNT', 64, 'BLOCK', 500, 'STREAMS', k.execOut(id), last);
      for (const [, entries] of res ?? []) {
        for (const [entryId, fields] of entries) {
          last = entryId.toString();
          const e = decodeExecEntry(fields);
          if (e?.type === 'started') started = true;
          else if (e?.type === 'stdout') {
            if (!stdoutBroken) await write(process.stdout, e.data);
          } else if (e?.type === 'stderr') await write(process.stderr, e.data);
          else if (e?.type === 'exit') return e.code;
          else if (e?.type === 'error') {
            process.stderr.write(`ferry: ${e.message}\n`);
            return e.exit;
          }
        }
      }
      // What was read is written out: drop it from Redis (the worker's flow control watches the length).
      if (res) await c.redis.xtrim(k.execOut(id), 'MINID', last);
      const now = Date.now();
      if (leaveAt && now > leaveAt.at) {
        process.stderr.write('ferry: the command did not end after the signal; leaving (the worker terminates it)\n');
        return leaveAt.code;
      }
      const hurry = !started && (interrupts > 0 || leaveAt !== undefined);
      if ((res || now - lastCheck < 2000) && !hurry) continue;
      lastCheck = now;
      if (!started) {
        const state = await queue.getJobState(id);
        if (['waiting', 'delayed', 'prioritized', 'waiting-children'].includes(state)) {
          if (interrupts > 0 || leaveAt) {
            if (await queue.remove(id)) return leaveAt?.code ?? 128 + constants.signals.SIGINT;
          } else if (now - t0 > t.pickupMs && (await queue.remove(id))) {
            throw new ExitError(EXIT.failed, `the worker of ${hostName} did not take the command within ${Math.round(t.pickupMs / 1000)} s (is it running?); nothing was run`);
          }
          continue;
        }
        if (state === 'failed') {
          const failed = await queue.getJob(id);
          throw new ExitError(EXIT.failed, `exec failed on ${hostName}: ${failed?.failedReason ?? 'unknown reason'}`);
        }
        if (state === 'active') continue;
      } else if (await c.redis.exists(k.execWorker(id))) {
        suspicious = 0;
        continue;
      }
      // Started but the worker's key is gone, or finished without a word: read once more, then give up.
      if (++suspicious >= 2) {
        throw new ExitError(EXIT.failed, `the worker of ${hostName} went away while running the command; its state is unknown`);
      }
    }
  } finally {
    clearInterval(heartbeat);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
    process.stdout.off('error', onStdoutError);
    await c.redis.del(k.execOut(id), k.execCtl(id), k.execClient(id)).catch(() => undefined);
    reader.disconnect();
    await queue.close();
  }
}
