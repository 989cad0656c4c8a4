import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.js';
import { readJson } from '../json-files.js';

/**
 * A checkpoint on disk (`ferry checkpoint`): CRIU's images in the container's own dir, so they
 * travel with it (a restore on another host copies the dir). Written into CHECKPOINT_TMP first;
 * the manifest is its last file, then the dir is renamed to CHECKPOINT_DIR: a CHECKPOINT_DIR with
 * a manifest is complete. A stopped container with one is `checkpointed` (read from disk, so a
 * restarted worker says the same).
 */
export const CHECKPOINT_DIR = '.ferry-checkpoint';
export const CHECKPOINT_TMP = '.ferry-checkpoint.tmp';
const MANIFEST = 'ferry-checkpoint.json';

export interface CheckpointManifest {
  version: 1;
  container: string;
  host: string;
  /** The operation that took it. */
  operation: string;
  /** When the dump was complete. */
  at: number;
  /** Digest of the container's config file when it was dumped (runtimes with a config file). */
  configDigest?: string;
}

export function checkpointDir(runtime: Runtime, name: string): string {
  return join(runtime.containerDir(name), CHECKPOINT_DIR);
}

export function checkpointTmp(runtime: Runtime, name: string): string {
  return join(runtime.containerDir(name), CHECKPOINT_TMP);
}

export function manifestPath(dir: string): string {
  return join(dir, MANIFEST);
}

/** The manifest of the complete checkpoint of `name` here, or null. */
export async function readCheckpoint(runtime: Runtime, name: string): Promise<CheckpointManifest | null> {
  return readJson<CheckpointManifest>(manifestPath(checkpointDir(runtime, name))).catch(() => null);
}

/** sha256 of the container's config file, or undefined (no config file, or unreadable). */
export async function configDigest(runtime: Runtime, name: string): Promise<string | undefined> {
  const p = runtime.configPath?.(runtime.containerDir(name));
  if (!p) return undefined;
  const text = await readFile(p).catch(() => undefined);
  return text === undefined ? undefined : createHash('sha256').update(text).digest('hex');
}
