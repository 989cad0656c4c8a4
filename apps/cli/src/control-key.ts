import type { KeyObject } from 'node:crypto';
import { FerryError } from '@ferry/core';
import { loadOrCreatePrivateKey, publicPathOf, trustPaths } from '@ferry/infra';

let loaded: Promise<KeyObject> | undefined;

/**
 * The control-plane private key from its file (FERRY_CONTROL_KEY, default `<state
 * dir>/keys/control.key`), read once and made (with its public half beside it, for workers) when
 * there is none yet. What signs every job and request the CLI puts on a queue when it talks to
 * Redis itself, and what the API server signs with: its clients never hold it.
 */
export function controlKeyFromFiles(): Promise<KeyObject> {
  loaded ??= loadControlKey().catch((e: unknown) => {
    loaded = undefined;
    throw e;
  });
  return loaded;
}

/** The key at `path` (default: as above), read (or made) now. */
export async function loadControlKey(path?: string): Promise<KeyObject> {
  const paths = trustPaths();
  const file = path ?? paths.controlKey;
  try {
    return (await loadOrCreatePrivateKey(file, { publicPath: path ? publicPathOf(path) : paths.controlPub })).key;
  } catch (e) {
    if (e instanceof FerryError) throw e;
    throw new FerryError(
      'CONTROL_KEY_UNREADABLE',
      `cannot read the control-plane key ${file}: ${(e as Error).message} (run ferry as root where the scheduler runs, set FERRY_CONTROL_KEY, or go through ferry's API: FERRY_API and FERRY_TOKEN)`,
    );
  }
}
