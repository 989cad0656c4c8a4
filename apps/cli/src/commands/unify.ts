import { newMigrationId, parseUnifyRequest, ValidationError } from '@ferry/core';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { enqueueRequest } from '../client.js';

export interface UnifyArgs {
  containers: string[];
  host?: string;
  mode: 'dedupe' | 'hardlink';
  dryRun: boolean;
  revert: boolean;
  excludes: string[];
}

/**
 * Checks a unify against the registry (every container on one host; hardlink mode and revert
 * only on stopped ones), then submits it as a one-step workflow on that host's worker.
 */
export async function submitUnify(c: Client, a: UnifyArgs): Promise<string> {
  const hosts = await c.registry.list();
  const where = a.host ?? hosts.find((h) => h.containers.some((x) => x.name === a.containers[0]))?.name;
  let request;
  try {
    request = parseUnifyRequest({ ...a, container: a.containers[0], host: where ?? '' });
  } catch (e) {
    if (e instanceof ValidationError) {
      const why = where ? e.message : `container: '${a.containers[0]}' does not exist on any registered host`;
      throw new ExitError(EXIT.badInput, `invalid unify request: ${why}`);
    }
    throw e;
  }
  const host = hosts.find((h) => h.name === request.host);
  if (!host) throw new ExitError(EXIT.badInput, `invalid unify request: host: unknown host '${request.host}'`);
  const problems: string[] = [];
  for (const name of request.containers) {
    const ct = host.containers.find((x) => x.name === name);
    if (!ct) problems.push(`containers: '${name}' does not exist on host ${host.name}`);
    else if ((request.mode === 'hardlink' || request.revert) && ct.state !== 'STOPPED') {
      problems.push(`containers: '${name}' is ${ct.state}; hardlink mode${request.revert ? ' (and its revert)' : ''} changes files in place and needs stopped containers`);
    }
  }
  if (problems.length) throw new ExitError(EXIT.badInput, `invalid unify request: ${problems.join('; ')}`);
  for (const name of request.containers) {
    const busy = await c.store.lockHolder(name);
    if (busy) throw new ExitError(EXIT.badInput, `container ${name} is being worked on by ${busy} (see: ferry status ${busy})`);
  }
  const id = newMigrationId(Date.now());
  await enqueueRequest(c, 'submit', { kind: 'submit', op: 'unify', migrationId: id, request }, `submit.${id}`);
  return id;
}
