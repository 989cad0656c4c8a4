/**
 * What the control plane signs on every job a worker (or the scheduler) acts on, and how the
 * signature travels: beside the job's own fields, as `auth` in the job data. Pure: the Ed25519
 * arithmetic is in packages/infra/src/trust. See README "Security model".
 */
import { z } from 'zod';
import { canonicalJson } from './canonical.js';

/** The job data field that carries the signature; everything else in the data is the payload. */
export const AUTH_FIELD = 'auth';

/** An Ed25519 signature, base64 (64 bytes: 88 characters with padding). */
export const Signature = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'not an Ed25519 signature (base64)');

/** `auth` of a job signed by the control plane: until when it may start, and the signature. */
export const JobAuth = z.strictObject({
  v: z.literal(1),
  /** Expiry (ms since the epoch): a job not started by then is refused, a retry after it too. */
  exp: z.int().positive(),
  sig: Signature,
});
export type JobAuth = z.infer<typeof JobAuth>;

/**
 * How long a signed job stays valid. Step jobs and operation requests may wait in their queue
 * while a worker or the scheduler restarts, or BullMQ retries them with backoff: a day, as long as
 * a finished job is kept (JOB_RETENTION). A reissued step (the reconciler) is signed anew. Exec
 * and toolbox jobs are answered within seconds or not at all (the CLI gives up after 30 s).
 */
export const JOB_TTL_MS = {
  step: 24 * 3600_000,
  request: 24 * 3600_000,
  toolbox: 5 * 60_000,
} as const;

/** The fields a control-plane signature covers. */
export interface SignedJobFields {
  /** The queue it was put on (without the prefix): a job moved to another host's queue fails. */
  queue: string;
  /** BullMQ's job id: the same payload re-added under another id fails. */
  jobId: string;
  /** BullMQ's job name (the step, the request kind). */
  name: string;
  /** The job data without `auth`. */
  payload: unknown;
  exp: number;
}

/**
 * The bytes signed: a purpose tag (a signature made for one use is never valid for another), the
 * fields above, and the payload's ownership fence again on its own (null when the job has none),
 * so the fence is named among what is signed whatever the payload's shape.
 */
export function jobMessage(f: SignedJobFields): string {
  const fence = (f.payload as { fence?: unknown } | null)?.fence ?? null;
  return canonicalJson({ purpose: 'ferry/job/v1', queue: f.queue, jobId: f.jobId, name: f.name, fence, exp: f.exp, payload: f.payload });
}

/** Splits job data into its payload and its `auth` (unknown: not yet checked). */
export function splitAuth(data: unknown): { payload: unknown; auth: unknown } {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { payload: data, auth: undefined };
  const { [AUTH_FIELD]: auth, ...payload } = data as Record<string, unknown>;
  return { payload, auth };
}
