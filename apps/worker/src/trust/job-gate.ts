import type { KeyObject } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { toErrorData, TRUST_CODES, trustError, type ErrorData } from '@ferry/core';
import { verifyJob, type ReplayGuard, type VerifiedJob } from '@ferry/infra';

/** What a worker trusts: the control plane's public key; and its own host key, to sign results. */
export interface WorkerTrust {
  controlKey: KeyObject;
  hostKey: KeyObject;
}

/** A job refused before anything ran: BullMQ fails it at once (never retried), its reason `CODE: message`. */
export class JobRefused extends UnrecoverableError {
  constructor(readonly error: ErrorData) {
    super(`${error.code}: ${error.message}`);
  }
}

/** A job admitted: verified; `reported` when this worker finished it before (what it reported then). */
export type AdmittedJob = VerifiedJob & { reported?: unknown };

/**
 * The door every job of this host's queues passes before anything else (no lock, no mark, no
 * step): signed by the control plane over its queue, id, name, payload (with its fence) and expiry,
 * not expired, and not a job this worker already finished (its local ReplayGuard). A BullMQ retry
 * of a job is the same job not yet finished, so it passes; a finished one re-added (same id or
 * another) runs nothing: where its outcome was recorded (a step's signed result) it is admitted
 * with that outcome, `reported`, for the caller to report again and run nothing — a Redis failover
 * can lose the writes that followed the job's end, bringing it back — and it is refused otherwise.
 * Exec and toolbox jobs run at most once: they are recorded as they are admitted.
 */
export class JobGate {
  constructor(
    private readonly controlKey: KeyObject,
    private readonly replay: ReplayGuard,
    private readonly log: Logger,
  ) {}

  async admit(job: Job, opts: { once?: boolean } = {}): Promise<AdmittedJob> {
    const seen = { queue: job.queueName, jobId: job.id, name: job.name };
    try {
      const v = verifyJob(this.controlKey, { ...seen, data: job.data });
      const fresh = opts.once ? await this.replay.claim(v.sig, v.exp) : !(await this.replay.has(v.sig));
      const reported = fresh || opts.once ? undefined : await this.replay.outcome(v.sig);
      if (reported !== undefined) {
        this.log.warn(seen, 'job finished here before came back (Redis lost what followed its end): its result is reported again, nothing runs');
        return { ...v, reported };
      }
      if (!fresh) throw trustError(TRUST_CODES.replayed, `job ${job.id} (${job.name}) on ${job.queueName} was already ${opts.once ? 'run' : 'finished'} by this worker; refused as a replay`);
      return v;
    } catch (e) {
      const error = toErrorData(e);
      this.log.error({ code: error.code, ...seen, error }, 'job refused');
      throw new JobRefused(error);
    }
  }

  /** A job has finished for good (its result reported, kept as its outcome): from now on it is a replay. */
  finished(v: VerifiedJob, outcome?: unknown): Promise<void> {
    return this.replay.record(v.sig, v.exp, outcome);
  }
}
