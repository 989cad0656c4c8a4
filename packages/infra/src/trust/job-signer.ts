import type { KeyObject } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { JobAuth, jobMessage, splitAuth, TRUST_CODES, trustError, type SignedJobFields } from '@ferry/core';
import { signText, verifyText } from './ed25519.js';

/** What JobSigner.add needs of a BullMQ queue (any Queue<D> fits). */
export interface SignableQueue<D> {
  readonly name: string;
  add(name: string, data: D, opts?: JobsOptions): Promise<unknown>;
}

/**
 * The control plane's signer: every job a worker or the scheduler acts on is put on its queue
 * through here, signed over (queue, job id, name, payload with its fence, expiry).
 */
export class JobSigner {
  constructor(
    private readonly key: KeyObject,
    private readonly now: () => number = Date.now,
  ) {}

  /** `data` with its `auth`: signed for `jobId` on `queue`, valid for `ttlMs`. */
  sign<D extends object>(queue: string, jobId: string, name: string, data: D, ttlMs: number): D & { auth: JobAuth } {
    const { payload } = splitAuth(data);
    const exp = this.now() + ttlMs;
    const sig = signText(this.key, jobMessage({ queue, jobId, name, payload, exp }));
    return { ...(payload as D), auth: { v: 1, exp, sig } };
  }

  /** Adds a signed job; its id must be given (it is signed). */
  async add<D extends object>(queue: SignableQueue<D>, name: string, data: D, opts: JobsOptions & { jobId: string }, ttlMs: number): Promise<void> {
    await queue.add(name, this.sign(queue.name, opts.jobId, name, data, ttlMs), opts);
  }
}

/** A job as it reached its consumer: where from, and its data (payload and `auth`). */
export interface ReceivedJob {
  queue: string;
  jobId: string | undefined;
  name: string;
  data: unknown;
}

/** What a verified job is: its payload, its expiry and signature (the replay record's key). */
export interface VerifiedJob {
  payload: unknown;
  exp: number;
  sig: string;
}

/**
 * Checks a job against the control plane's public key: signed, by that key, over exactly these
 * fields, and not expired. Throws a FerryError with a TRUST_CODES code otherwise. Replays are the
 * consumer's to check (ReplayGuard): only it knows what it already finished.
 */
export function verifyJob(controlKey: KeyObject, job: ReceivedJob, now = Date.now()): VerifiedJob {
  const { payload, auth } = splitAuth(job.data);
  const what = `job ${job.jobId ?? '(no id)'} (${job.name}) on ${job.queue}`;
  if (auth === undefined) throw trustError(TRUST_CODES.unsigned, `${what} carries no control-plane signature; refused`);
  const a = JobAuth.safeParse(auth);
  if (!a.success || job.jobId === undefined) throw trustError(TRUST_CODES.badSignature, `${what} carries a malformed signature; refused`);
  const fields: SignedJobFields = { queue: job.queue, jobId: job.jobId, name: job.name, payload, exp: a.data.exp };
  if (!verifyText(controlKey, jobMessage(fields), a.data.sig)) {
    throw trustError(TRUST_CODES.badSignature, `${what} is not signed by the control-plane key over its id, name, queue, payload and expiry; refused`);
  }
  if (a.data.exp <= now) throw trustError(TRUST_CODES.expired, `${what} expired ${Math.round((now - a.data.exp) / 1000)} s ago; refused`);
  return { payload, exp: a.data.exp, sig: a.data.sig };
}
