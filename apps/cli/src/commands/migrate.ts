import {
  FerryError,
  isTerminal,
  newMigrationId,
  parseMigrationRequest,
  workflows,
  ValidationError,
  type StoredRecord,
  type MigrationRequestInput,
} from '@ferry/core';
import type { Client } from '../client.js';
import type { Ferry } from '../service/ferry.js';
import { EXIT, ExitError } from '../exit-error.js';
import { enqueueRequest } from '../client.js';

/** A host whose worker has not reported for this long is treated as down. */
const STALE_MS = 30_000;

/**
 * Checks a request against the registry before anything is enqueued: names, hosts, the
 * container's presence on the source, a migration already holding it, the plan itself.
 * Every failure here is bad input (exit 2) and leaves everything untouched.
 */
export async function checkRequest(c: Client, input: MigrationRequestInput) {
  let request;
  try {
    request = parseMigrationRequest(input);
  } catch (e) {
    if (e instanceof ValidationError) throw new ExitError(EXIT.badInput, `invalid migration request: ${e.message}`);
    throw e;
  }
  const hosts = await c.registry.list();
  const known = hosts.map((h) => h.name).join(', ') || 'none: start a worker on each host (ferry worker --host NAME)';
  const source = hosts.find((h) => h.name === request.from);
  const target = hosts.find((h) => h.name === request.to);
  const problems: string[] = [];
  if (!source) problems.push(`from: unknown host '${request.from}' (known hosts: ${known})`);
  if (!target) problems.push(`to: unknown host '${request.to}' (known hosts: ${known})`);
  if (source && !source.containers.some((x) => x.name === request.container)) {
    problems.push(`container: '${request.container}' does not exist on host ${source.name}`);
  }
  if (problems.length) throw new ExitError(EXIT.badInput, `invalid migration request: ${problems.join('; ')}`);
  for (const h of [source!, target!]) {
    const age = Date.now() - h.lastSeen;
    if (age > STALE_MS) {
      throw new ExitError(EXIT.failed, `host ${h.name}: its worker has not reported for ${Math.round(age / 1000)} s; is it running?`);
    }
  }
  const holder = await c.store.lockHolder(request.container);
  if (holder) {
    throw new ExitError(EXIT.badInput, `container ${request.container} is already being migrated by ${holder} (see: ferry status ${holder})`);
  }
  try {
    workflows.migrate.plan(request, (host) => (host === request.from ? source!.capabilities : target!.capabilities));
  } catch (e) {
    if (e instanceof FerryError) throw new ExitError(EXIT.badInput, `invalid migration request: ${e.message}`);
    throw e;
  }
  return request;
}

export async function submitMigration(c: Client, input: MigrationRequestInput): Promise<string> {
  const request = await checkRequest(c, input);
  const id = newMigrationId(Date.now());
  await enqueueRequest(c, 'submit', { kind: 'submit', migrationId: id, request }, `submit.${id}`);
  return id;
}

/**
 * Waits until the operation (any kind) ends or pauses, through `operation` (a long poll: it answers
 * when the record or its progress changes). `onUpdate` sees each new version of the record.
 */
export async function waitFor(
  f: Pick<Ferry, 'operation'>,
  id: string,
  onUpdate?: (r: StoredRecord) => void,
  timeoutMs = 30 * 60_000,
  /** Only a record newer than this version counts (after a retry or cancel was requested). */
  afterVersion = -1,
): Promise<StoredRecord> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  let stamp: string | undefined;
  while (Date.now() < deadline) {
    const v = await f.operation({ id, ...(stamp !== undefined ? { changedFrom: stamp } : {}), waitMs: Math.max(0, Math.min(20_000, deadline - Date.now())) });
    const r = v?.record;
    stamp = v?.stamp;
    if (r && r.version !== seen) {
      seen = r.version;
      onUpdate?.(r);
    }
    if (r && r.version > afterVersion && (isTerminal(r.state) || r.state === 'paused')) return r;
  }
  throw new ExitError(EXIT.failed, `operation ${id} did not finish within ${Math.round(timeoutMs / 1000)} s (it goes on; see ferry status ${id})`);
}

/** The record of a submitted operation once the scheduler has saved it (null if it never does). */
export async function planned(f: Pick<Ferry, 'operation'>, id: string, timeoutMs = 60_000): Promise<StoredRecord | null> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
    const v = await f.operation({ id, waitMs: Math.min(20_000, Math.max(0, end - Date.now())) });
    if (v) return v.record;
  }
  return null;
}

/** done → 0; anything else an operation that failed. */
export function exitCodeOf(r: StoredRecord): number {
  return r.state === 'done' ? EXIT.ok : EXIT.failed;
}
