import { FerryError } from '../errors/index.js';

/**
 * Stable codes of refused jobs, requests and results: logged with every refusal, in a refused
 * BullMQ job's failedReason (`CODE: message`), and in a refused operation's rejected record.
 */
export const TRUST_CODES = {
  /** A job or request without `auth`. */
  unsigned: 'UNSIGNED_JOB',
  /** `auth` there, but not a signature by the control-plane key over these fields. */
  badSignature: 'BAD_JOB_SIGNATURE',
  /** Signed, but its expiry has passed. */
  expired: 'JOB_EXPIRED',
  /** Signed and valid, but this process already finished (or began, for exec) that very job. */
  replayed: 'JOB_REPLAYED',
  /** A step result without a host's signature. */
  unsignedResult: 'UNSIGNED_RESULT',
  /** A result signed by, or claiming, a host other than the one the step was planned on. */
  wrongHost: 'RESULT_NOT_FROM_STEP_HOST',
  /** A result whose signature does not verify with its host's trusted public key. */
  badResultSignature: 'BAD_RESULT_SIGNATURE',
  /** No trusted public key for the host (scheduler's host key directory). */
  noHostKey: 'NO_HOST_KEY',
  /** A host's registry entry without its signature. */
  unsignedHostEntry: 'UNSIGNED_HOST_ENTRY',
  /** A host's registry entry not signed by that host's trusted key (changed, or another's). */
  badHostEntrySignature: 'BAD_HOST_ENTRY_SIGNATURE',
} as const;
export type TrustCode = (typeof TRUST_CODES)[keyof typeof TRUST_CODES];

/** A refusal: never retryable (a forged job does not become genuine by waiting). */
export function trustError(code: TrustCode, message: string): FerryError {
  return new FerryError(code, message, { retryable: false });
}
