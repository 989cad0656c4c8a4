import type { KeyObject } from 'node:crypto';
import { HOST_ENTRY_SIG, HostInfo, hostEntryMessage, TRUST_CODES, trustError } from '@ferry/core';
import { signText, verifyText } from './ed25519.js';
import type { HostKeySource } from './result-signing.js';

/** A host signs its own registry entry with its key; the signature is stored beside the entry's fields. */
export function signHostEntry(hostKey: KeyObject, info: HostInfo): string {
  return signText(hostKey, hostEntryMessage(info));
}

/**
 * A registry entry as stored (`raw`: the parsed JSON, signature included), accepted only when it
 * is `name`'s and signed by `name`'s trusted key, over exactly the fields stored. Returns it parsed;
 * throws a FerryError with a TRUST_CODES code otherwise.
 */
export async function verifyHostEntry(keys: HostKeySource, name: string, raw: unknown): Promise<HostInfo> {
  const { [HOST_ENTRY_SIG]: sig, ...entry } = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  if (typeof sig !== 'string') throw trustError(TRUST_CODES.unsignedHostEntry, `host ${name}'s registry entry carries no signature of its own; not planned from`);
  const key = await keys.get(name);
  if (!key) throw trustError(TRUST_CODES.noHostKey, `no trusted public key for host ${name} in ${keys.where}; its registry entry is not planned from`);
  const info = HostInfo.safeParse(entry);
  if (!info.success || info.data.name !== name || !verifyText(key, hostEntryMessage(entry), sig)) {
    throw trustError(TRUST_CODES.badHostEntrySignature, `host ${name}'s registry entry is not signed by its trusted key (changed in Redis, or another host's); not planned from`);
  }
  return info.data;
}
