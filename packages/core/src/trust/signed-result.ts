/**
 * Step results are signed by the host that ran the step (its own Ed25519 key): the scheduler
 * applies a result only when it verifies against the planned host's public key from its trusted
 * directory (not Redis). The signature travels beside the result's fields, as `by` and `sig`.
 */
import { z } from 'zod';
import type { StepResultData } from '../jobs.js';
import { HostName } from '../names.js';
import { canonicalJson } from './canonical.js';

export const ResultAuth = z.object({
  /** The host that ran the step and signed the result. */
  by: HostName,
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'not an Ed25519 signature (base64)'),
});
export type ResultAuth = z.infer<typeof ResultAuth>;

/** A step result as a worker reports it (result job) and returns it (the step job's return value). */
export type SignedStepResult = StepResultData & ResultAuth;

/** The bytes a host signs: a purpose tag, the host, and the result (which names its step run). */
export function resultMessage(by: string, result: StepResultData): string {
  return canonicalJson({ purpose: 'ferry/step-result/v1', by, result });
}

/** Splits a reported result into the result and its (unchecked) signature fields. */
export function splitResultAuth(data: unknown): { result: unknown; auth: unknown } {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { result: data, auth: undefined };
  const { by, sig, ...result } = data as Record<string, unknown>;
  return { result, auth: by === undefined && sig === undefined ? undefined : { by, sig } };
}
