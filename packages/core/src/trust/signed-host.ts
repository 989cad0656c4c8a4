/**
 * A host's registry entry (address, SSH user, LXC path, capabilities, containers, load) is signed
 * by that host's own key, as its step results are: the scheduler plans from an entry only when it
 * verifies against the host's trusted public key (its directory, never Redis). A Redis writer can
 * no longer point a migration's rsync at an address, user or path of its choosing.
 */
import { canonicalJson } from './canonical.js';

/** The field of a stored entry that holds the signature (beside the entry's own fields). */
export const HOST_ENTRY_SIG = 'sig';

/** The bytes a host signs: a purpose tag and the entry as published (every field but the signature). */
export function hostEntryMessage(entry: unknown): string {
  return canonicalJson({ purpose: 'ferry/host-entry/v1', entry });
}
