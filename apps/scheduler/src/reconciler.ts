import type { Logger } from 'pino';
import type { Job, JobState } from 'bullmq';
import { advanceJobId, catalogue, currentSteps, fields, stepJobId, toErrorData, type OperationEvent, type OperationRecord, type StepJobData, type StepResultData } from '@ferry/core';
import { LEASE_LOST, type HostRegistry, type OperationStore } from '@ferry/infra';

/**
 * What the reconciler may use of the scheduler: read records, marks and heartbeats, look up a
 * step's job, and act only through the scheduler's own moves (apply an event, re-issue a step),
 * both fenced by the leader lease.
 */
export interface ReconcilerPort {
  store: Pick<OperationStore, 'listOpen' | 'countReplay' | 'startedSteps'>;
  registry: Pick<HostRegistry, 'lastAlive' | 'get'>;
  /** Whether this scheduler holds the leader lease: only the leader reconciles. */
  leading(): boolean;
  /** The job of a step on its host's queue, if it exists. */
  stepJob(host: string, jobId: string): Promise<Job<StepJobData, unknown> | undefined>;
  /** Its state alone (`unknown`: no such job), without reading the job. */
  stepJobState(host: string, jobId: string): Promise<JobState | 'unknown'>;
  /** Whether a result job waits on the scheduler queue to be taken (not in anyone's hand yet). */
  resultWaiting(jobId: string): Promise<boolean>;
  apply(id: string, event: OperationEvent): Promise<unknown>;
  /** Enqueues the operation's current step again (same job id, same fence). */
  reissue(r: OperationRecord): Promise<void>;
  /** A step job's return value as a result: only signed by the step's planned host (throws a refusal otherwise). */
  acceptResult(reported: unknown): Promise<StepResultData>;
}

export interface ReconcilerLimits {
  /** A host whose worker has been silent this long is taken as gone. */
  hostGoneMs: number;
  /** The same while the container is down waiting for that host (see `Plan.downFrom`). */
  hostGoneDownMs: number;
  /** How many times a lost step job is enqueued again before the migration pauses. */
  maxReplays: number;
}

// 5 s while the container is down: long enough for a supervisor to restart a crashed worker
// (which then runs the step), short against the 30 s that hold a running one.
const DEFAULTS: ReconcilerLimits = { hostGoneMs: 30_000, hostGoneDownMs: 5_000, maxReplays: 5 };

/**
 * Re-drives migrations whose next move was lost, and decides for those stuck on a host that is
 * gone. It looks at the record, the step's job and the host's heartbeat:
 * - job gone (Redis restart, crash between saving and enqueueing): enqueue it again, same id;
 * - job finished but its result never applied: replay the result from the job's return value;
 * - job failed outside the worker's reporting (e.g. its process died too often): a failure result;
 * - the step's host gone: removing the target's copy during a rollback is deferred to that host's
 *   return (its worker sweeps copies of rolled-back migrations) when the copy was never started;
 *   anything else pauses for an operator — ferry does not guess where a container may run.
 */
export class Reconciler {
  private timer?: NodeJS.Timeout;
  private running: Promise<void> | undefined;
  private again: Promise<void> | undefined;
  private readonly limits: ReconcilerLimits;

  constructor(
    private readonly s: ReconcilerPort,
    private readonly log: Logger,
    private readonly everyMs: number,
    limits: Partial<ReconcilerLimits> = {},
  ) {
    this.limits = { ...DEFAULTS, ...limits };
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * One pass over the running operations. A tick asked for while one runs waits for it and then
   * runs once more (however many asked meanwhile), so a caller's tick always sees the world as it
   * was when it asked.
   */
  tick(): Promise<void> {
    if (this.running) {
      this.again ??= this.running.then(() => {
        this.again = undefined;
        return this.tick();
      });
      return this.again;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Passes run (only the leader runs them): tests count them. */
  passes = 0;

  private async pass(): Promise<void> {
    // One reconciler at a time across schedulers: the leader's. Its moves are fenced by the lease
    // besides (apply and reissue), so one that lost it mid-pass changes nothing more.
    if (!this.s.leading()) return;
    this.passes++;
    // Every unended operation, however many ended since it began (the newest 500 records were
    // once all it read: a long migration behind 500 short ones went unwatched).
    for (const r of await this.s.store.listOpen(500)) {
      if (r.state !== 'running' && r.state !== 'rolling-back') continue;
      if (!this.s.leading()) return;
      try {
        await this.check(r);
      } catch (err) {
        if ((err as { code?: unknown }).code === LEASE_LOST) {
          this.log.warn({ migrationId: r.id }, 'leader lease lost mid-pass: reconciling stops here');
          return;
        }
        this.log.error({ err, migrationId: r.id }, 'reconcile failed');
      }
    }
  }

  /** Whether the target may ever have started the copy: a worker began a step that may start it. */
  private targetCopyEverStarted(r: OperationRecord, started: Set<string>): boolean {
    return r.steps.some((s, i) => catalogue[s.name].traits.mayStartContainer === true && started.has(fields.step('forward', i)));
  }

  private async check(r: OperationRecord): Promise<void> {
    const step = currentSteps(r)[r.cursor];
    if (!step || step.state !== 'running') return;
    const jobId = stepJobId(r.id, r.phase, r.cursor, r.run);
    const log = this.log.child({ migrationId: r.id, step: step.name, host: step.host });
    // The job itself (its return value, its failure) only read once it has finished: most are
    // waiting or in hand, and a pass looks at every running operation every period.
    const state = await this.s.stepJobState(step.host, jobId);
    // Finished, and its result waits on the scheduler queue to be applied in turn: not lost,
    // nothing to replay (asked first: under a backlog, most running operations are here).
    if (state === 'completed' && (await this.s.resultWaiting(advanceJobId(r.id, r.phase, r.cursor, r.run)))) return;
    const job = state === 'completed' || state === 'failed' ? await this.s.stepJob(step.host, jobId) : undefined;
    const ids = { migrationId: r.id, phase: r.phase, index: r.cursor, run: r.run };

    if (state === 'unknown' || ((state === 'completed' || state === 'failed') && !job)) {
      const replays = await this.s.store.countReplay(r.id, r.phase, r.cursor, r.run);
      if (replays > this.limits.maxReplays) {
        log.error({ replays }, 'step job lost too often: pausing');
        await this.s.apply(r.id, { type: 'pause', error: { name: 'FerryError', code: 'REPLAYS_EXHAUSTED', message: `step ${step.name} on ${step.host} was lost ${replays - 1} times`, retryable: false } });
        return;
      }
      log.warn({ jobId, replays }, 'step job missing: enqueueing it again');
      await this.s.reissue(r);
      return;
    }
    if (state === 'completed' && job?.returnvalue) {
      let result: StepResultData;
      try {
        result = await this.s.acceptResult(job.returnvalue);
      } catch (e) {
        // Not a result its host signed (Redis was written to): never applied as one. The step's
        // job is spent, so the step fails with the refusal, for an operator to see.
        const error = toErrorData(e);
        log.error({ jobId, code: error.code, error }, "step job's return value refused: failing the step");
        await this.s.apply(r.id, { type: 'step-result', ...ids, ok: false, attempts: job.attemptsMade, endedAt: Date.now(), error });
        return;
      }
      log.warn({ jobId }, 'step finished but its result was not applied: replaying it');
      await this.s.apply(r.id, { type: 'step-result', ...result });
      return;
    }
    if (state === 'failed' && job) {
      log.warn({ jobId, reason: job.failedReason }, 'step job failed outside the worker: failing the step');
      await this.s.apply(r.id, {
        type: 'step-result',
        ...ids,
        ok: false,
        attempts: job.attemptsMade,
        endedAt: Date.now(),
        error: { name: 'FerryError', code: 'STEP_JOB_FAILED', message: job.failedReason || 'the step job failed', retryable: false },
      });
      return;
    }
    const down = r.phase === 'forward' && r.plan.downFrom !== undefined && r.cursor >= r.plan.downFrom && r.cursor <= r.plan.pointOfNoReturn;
    // The liveness beat (every 400 ms) or the description (every 2 s), whichever is newer; the
    // description (the host's whole entry, parsed) only read when the beat alone is too old.
    const goneMs = down ? this.limits.hostGoneDownMs : this.limits.hostGoneMs;
    const alive = await this.s.registry.lastAlive(step.host);
    if (alive !== null && Date.now() - alive < goneMs) return;
    const host = await this.s.registry.get(step.host);
    const last = Math.max(alive ?? -Infinity, host?.lastSeen ?? -Infinity);
    const silentMs = Date.now() - last;
    if (silentMs < goneMs) return;
    const started = await this.s.store.startedSteps(r.id);
    if (r.phase === 'rollback' && step.name === 'discard-target' && !this.targetCopyEverStarted(r, started)) {
      log.warn({ silentMs }, 'target gone during rollback; its copy never ran: removal deferred to its return');
      await this.s.apply(r.id, {
        type: 'step-result',
        ...ids,
        ok: true,
        attempts: 0,
        endedAt: Date.now(),
        output: { stopped: false, removed: false, deferred: `${step.host} unreachable; its worker removes the copy when it returns` },
      });
      return;
    }
    if (r.phase === 'forward' && r.cursor <= r.plan.pointOfNoReturn && !started.has(fields.step('forward', r.cursor))) {
      // The host never began this step, so it has done nothing that needs undoing there: failing it
      // rolls the migration back. Should the host return, the queued step meets a newer epoch.
      log.error({ silentMs }, 'host gone before it began the step: failing it');
      await this.s.apply(r.id, {
        type: 'step-result',
        ...ids,
        ok: false,
        attempts: 0,
        endedAt: Date.now(),
        error: { name: 'FerryError', code: 'HOST_UNREACHABLE', message: `host ${step.host} has not reported for ${Math.round(silentMs / 1000)} s and never began ${step.name}`, retryable: false },
      });
      return;
    }
    log.error({ silentMs }, 'host gone: pausing');
    await this.s.apply(r.id, {
      type: 'pause',
      error: { name: 'FerryError', code: 'HOST_UNREACHABLE', message: `host ${step.host} has not reported for ${Math.round(silentMs / 1000)} s; step ${step.name} waits for it (ferry retry or ferry cancel)`, retryable: false },
    });
  }
}
