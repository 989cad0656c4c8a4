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

/**
 * The door every job of this host's queues passes before anything else (no lock, no mark, no
 * step): signed by the control plane over its queue, id, name, payload (with its fence) and expiry,
 * not expired, and not a job this worker already finished (its local ReplayGuard). A BullMQ retry
 * of a job is the same job not yet finished, so it passes; a finished one re-added (same id or
 * another) does not. Exec and toolbox jobs run at most once: they are recorded as they are admitted.
 */
export class JobGate {
  constructor(
    private readonly controlKey: KeyObject,
    private readonly replay: ReplayGuard,
    private readonly log: Logger,
  ) {}

  async admit(job: Job, opts: { once?: boolean } = {}): Promise<VerifiedJob> {
    const seen = { queue: job.queueName, jobId: job.id, name: job.name };
    try {
      const v = verifyJob(this.controlKey, { ...seen, data: job.data });
      const fresh = opts.once ? await this.replay.claim(v.sig, v.exp) : !(await this.replay.has(v.sig));
      if (!fresh) throw trustError(TRUST_CODES.replayed, `job ${job.id} (${job.name}) on ${job.queueName} was already ${opts.once ? 'run' : 'finished'} by this worker; refused as a replay`);
      return v;
    } catch (e) {
      const error = toErrorData(e);
      this.log.error({ code: error.code, ...seen, error }, 'job refused');
      throw new JobRefused(error);
    }
  }

  /** A job has finished for good (its result reported): from now on it is a replay. */
  finished(v: VerifiedJob): Promise<void> {
    return this.replay.record(v.sig, v.exp);
  }
}
