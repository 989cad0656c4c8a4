import { JobSigner, connect, newSigningKey, Queues } from '@ferry/infra';
import { JOB_TTL_MS, newMigrationId, queueNames, splitAuth, type StepJobData, type StepResultData } from '@ferry/core';
import type { FaultCtx } from './faults.js';

/**
 * Chaos fault 10's payloads: what a Redis writer without the control plane's key (or a host's) can
 * put on ferry's queues in the middle of a migration, each with the refusal it must meet. The
 * genuine step job running on h1 is the raw material: its payload, unsigned, re-signed by another
 * key, or its own signature replayed under another id and step name.
 */
/** What of a BullMQ queue the forgeries need (any of ferry's queues, whatever its job type). */
interface AnyQueue {
  add(name: string, data: never, opts: { jobId: string }): Promise<unknown>;
  getJob(id: string): Promise<{ getState(): Promise<string>; failedReason?: string } | undefined>;
}

interface Forgery {
  what: string;
  queue: AnyQueue;
  jobId: string;
  /** The code the refusal must start with (a job failed with `CODE: why`). */
  code: string;
}

const FILLER_BYTES = 4 * 1024 * 1024;

/** Puts every forgery on its queue; returns them for `judgeForgeries`. */
export async function injectForgeries(ctx: FaultCtx, migrationId: string): Promise<{ forgeries: Forgery[]; close: () => Promise<void> }> {
  const redis = connect(ctx.lab.redisUrl);
  const queues = new Queues(redis, ctx.lab.prefix);
  const close = async () => {
    await queues.close();
    redis.disconnect();
  };
  const h1 = queues.host('h1');
  const h2 = queues.host('h2');
  const genuine = (await h1.getActive()).find((j) => j.data.migrationId === migrationId);
  if (!genuine) {
    await close();
    throw new Error(`no active step job of ${migrationId} on h1's queue to forge from`);
  }
  const { payload } = splitAuth(genuine.data);
  const unsigned = payload as StepJobData;
  const stranger = new JobSigner(newSigningKey());
  const tag = `${migrationId}-${Date.now().toString(36)}`;
  const forgeries: Forgery[] = [];
  const add = async (what: string, q: unknown, name: string, data: unknown, jobId: string, code: string) => {
    const queue = q as AnyQueue;
    await queue.add(name, data as never, { jobId });
    forgeries.push({ what, queue, jobId, code });
  };
  // On the source: what would destroy the running container while it is copied.
  await add('unsigned cleanup on h1', h1, 'cleanup', unsigned, `hostile-unsigned-${tag}`, 'UNSIGNED_JOB');
  await add('cleanup on h1 signed by another key', h1, 'cleanup', stranger.sign(queueNames.host('h1'), `hostile-stranger-${tag}`, 'cleanup', unsigned, JOB_TTL_MS.step), `hostile-stranger-${tag}`, 'BAD_JOB_SIGNATURE');
  await add("the genuine job's signature replayed as a cleanup under another id", h1, 'cleanup', genuine.data, `hostile-replayed-${tag}`, 'BAD_JOB_SIGNATURE');
  await add('an unsigned 4 MiB payload on h1', h1, 'cleanup', { ...unsigned, filler: 'x'.repeat(FILLER_BYTES) }, `hostile-oversized-${tag}`, 'UNSIGNED_JOB');
  // On the target: what would discard the copy being made.
  await add('unsigned discard-target on h2', h2, 'discard-target', unsigned, `hostile-discard-${tag}`, 'UNSIGNED_JOB');
  // To the scheduler: a failed result for the step in hand (a rollback), and a request of its own.
  const rec = ctx.watcher.view.rec;
  const index = rec && 'steps' in rec ? rec.steps.findIndex((s) => s.state === 'running') : -1;
  const result: StepResultData = {
    migrationId,
    phase: 'forward',
    index: Math.max(index, 0),
    run: 0,
    ok: false,
    error: { name: 'FerryError', code: 'FORGED', message: 'a forged failure', retryable: false },
    attempts: 1,
    endedAt: Date.now(),
  };
  const sq = queues.scheduler;
  await add('an unsigned failed result for the running step', sq, 'result', { kind: 'result', result }, `hostile-result-${tag}`, 'UNSIGNED_RESULT');
  const back = newMigrationId(Date.now());
  await add('an unsigned request to migrate the container back', sq, 'submit', { kind: 'submit', migrationId: back, request: { container: ctx.ct.name, from: 'h2', to: 'h1' } }, `submit.${back}`, 'UNSIGNED_JOB');
  return { forgeries, close };
}

/** Waits (bounded) for every forgery to be refused with its code; returns the problems. */
export async function judgeForgeries(forgeries: readonly Forgery[], timeoutMs = 30_000): Promise<{ problems: string[]; refused: string[] }> {
  const problems: string[] = [];
  const refused: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const f of forgeries) {
    let state = 'unknown';
    let reason = '';
    for (;;) {
      const job = await f.queue.getJob(f.jobId);
      state = job ? await job.getState() : 'gone';
      // Read again once it ended: a job loaded before it failed carries no reason yet.
      reason = state === 'failed' ? ((await f.queue.getJob(f.jobId))?.failedReason ?? '') : '';
      if (state === 'failed' || state === 'completed' || state === 'gone' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (state === 'failed' && reason.startsWith(`${f.code}: `)) refused.push(`${f.what}: ${f.code}`);
    else problems.push(`${f.what} (${f.jobId}): ${state}${reason ? ` (${reason.slice(0, 160)})` : ''}, expected refused with ${f.code}`);
  }
  return { problems, refused };
}
