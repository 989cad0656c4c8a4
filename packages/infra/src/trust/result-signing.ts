import type { KeyObject } from 'node:crypto';
import { ResultAuth, resultMessage, splitResultAuth, TRUST_CODES, trustError, type SignedStepResult, type StepResultData } from '@ferry/core';
import { signText, verifyText } from './ed25519.js';

/** A host signs the result of a step it ran, with its own key. */
export function signResult(hostKey: KeyObject, host: string, result: StepResultData): SignedStepResult {
  return { ...result, by: host, sig: signText(hostKey, resultMessage(host, result)) };
}

/** Where the scheduler finds a host's trusted public key (never the Redis registry). */
export interface HostKeySource {
  /** The host's public key, or null when none is trusted for it. */
  get(host: string): Promise<KeyObject | null>;
  /** Where keys come from, for messages. */
  readonly where: string;
}

/**
 * Accepts a reported result only from `plannedHost`, signed by that host's trusted key. Returns the
 * result without its signature fields; throws a FerryError with a TRUST_CODES code otherwise.
 */
export async function verifyResult(keys: HostKeySource, plannedHost: string, reported: unknown): Promise<StepResultData> {
  const { result, auth } = splitResultAuth(reported);
  const r = result as Partial<StepResultData> | null;
  const what = `result of ${r?.migrationId ?? '?'} ${r?.phase ?? '?'}.${r?.index ?? '?'} run ${r?.run ?? '?'}`;
  if (auth === undefined) throw trustError(TRUST_CODES.unsignedResult, `${what} carries no host signature; refused`);
  const a = ResultAuth.safeParse(auth);
  if (!a.success) throw trustError(TRUST_CODES.badResultSignature, `${what} carries a malformed signature; refused`);
  if (a.data.by !== plannedHost) throw trustError(TRUST_CODES.wrongHost, `${what} comes from ${a.data.by}, but the step was planned on ${plannedHost}; refused`);
  const key = await keys.get(plannedHost);
  if (!key) throw trustError(TRUST_CODES.noHostKey, `no trusted public key for host ${plannedHost} in ${keys.where}; ${what} refused`);
  if (!verifyText(key, resultMessage(a.data.by, result as StepResultData), a.data.sig)) {
    throw trustError(TRUST_CODES.badResultSignature, `${what} is not signed by ${plannedHost}'s trusted key; refused`);
  }
  return result as StepResultData;
}
