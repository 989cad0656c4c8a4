import { stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { HostName } from '@ferry/core';
import { readPublicKeyFile, writePublicKeyFile } from './key-files.js';
import type { HostKeySource } from './result-signing.js';
import { hostKeyFile } from './trust-paths.js';

/**
 * A directory of trusted host public keys, `<dir>/<host>.pub`: on the scheduler's host, filled by
 * the operator (or, on one machine, by the workers themselves). Read again when a file changes.
 */
export class HostKeyDir implements HostKeySource {
  private readonly cache = new Map<string, { stamp: string; key: KeyObject | null }>();

  constructor(readonly where: string) {}

  async get(host: string): Promise<KeyObject | null> {
    if (!HostName.safeParse(host).success) return null;
    const file = hostKeyFile(this.where, host);
    const st = await stat(file).catch(() => null);
    if (!st) return null;
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(host);
    if (hit?.stamp === stamp) return hit.key;
    const key = await readPublicKeyFile(file).catch(() => null); // unreadable or not a key: not trusted
    this.cache.set(host, { stamp, key });
    return key;
  }

  /** A worker writes its own public key here (on one machine, the scheduler's directory). */
  publish(host: string, key: KeyObject): Promise<'written' | 'unchanged' | 'replaced'> {
    return writePublicKeyFile(hostKeyFile(this.where, host), key);
  }
}
