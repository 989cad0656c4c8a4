import { newMigrationId, parseCloneRequest, randomMac, ValidationError, type CloneRequestInput } from '@ferry/core';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { enqueueRequest } from '../client.js';

/**
 * Checks a clone against the registry before anything is copied: the source exists (and where),
 * the new name and IP are free on every host, a static-IP source gets a new --ip, the target host
 * is known. Bad input exits 2 and touches nothing.
 */
export async function checkClone(c: Client, input: Omit<CloneRequestInput, 'from' | 'to'> & { from?: string; to?: string }) {
  const hosts = await c.registry.list();
  const holders = hosts.filter((h) => h.containers.some((x) => x.name === input.container));
  const from = input.from ?? (holders.length === 1 ? holders[0]!.name : undefined);
  let request;
  try {
    request = parseCloneRequest({ ...input, from: from ?? input.from ?? '', to: input.to ?? from ?? '' });
  } catch (e) {
    if (e instanceof ValidationError && from) throw new ExitError(EXIT.badInput, `invalid clone request: ${e.message}`);
    if (e instanceof ValidationError && !holders.length) throw new ExitError(EXIT.badInput, `invalid clone request: container: '${input.container}' does not exist on any registered host`);
    if (e instanceof ValidationError) throw new ExitError(EXIT.badInput, `invalid clone request: ${e.message}`);
    throw e;
  }
  const problems: string[] = [];
  if (!from && holders.length > 1) problems.push(`from: '${request.container}' exists on ${holders.map((h) => h.name).join(' and ')}; say which with --from`);
  const source = hosts.find((h) => h.name === request.from);
  const target = hosts.find((h) => h.name === request.to);
  const known = hosts.map((h) => h.name).join(', ') || 'none';
  if (!source) problems.push(`from: unknown host '${request.from}' (known hosts: ${known})`);
  if (!target) problems.push(`to: unknown host '${request.to}' (known hosts: ${known})`);
  const src = source?.containers.find((x) => x.name === request.container);
  if (source && !src) problems.push(`container: '${request.container}' does not exist on host ${source.name}`);
  if (src && src.state !== 'STOPPED' && !request.freeze) {
    problems.push(`container: '${request.container}' is ${src.state} on ${source!.name}; a copy of a running container can be inconsistent: stop it or pass --freeze`);
  }
  const nameUsed = hosts.find((h) => h.containers.some((x) => x.name === request.name));
  if (nameUsed) problems.push(`name: '${request.name}' is already a container on host ${nameUsed.name}`);
  if (request.ip) {
    const ipUsed = hosts.flatMap((h) => h.containers.map((x) => ({ h, x }))).find(({ x }) => x.ip === request.ip);
    if (ipUsed) problems.push(`ip: ${request.ip} is already used by ${ipUsed.x.name} on ${ipUsed.h.name}`);
  } else if (src?.ip) {
    problems.push(`ip: the source has the static address ${src.ip}; give the clone its own with --ip`);
  }
  if (problems.length) throw new ExitError(EXIT.badInput, `invalid clone request: ${problems.join('; ')}`);
  const busy = (await c.store.lockHolder(request.container)) ?? (await c.store.lockHolder(request.name));
  if (busy) throw new ExitError(EXIT.badInput, `container ${request.container} or ${request.name} is being worked on by ${busy} (see: ferry status ${busy})`);
  const macs = new Set(hosts.flatMap((h) => h.containers.map((x) => x.mac)));
  let mac = randomMac();
  while (macs.has(mac)) mac = randomMac();
  return { ...request, mac };
}

export async function submitClone(c: Client, input: Parameters<typeof checkClone>[1]): Promise<string> {
  const request = await checkClone(c, input);
  const id = newMigrationId(Date.now());
  await enqueueRequest(c, 'submit', { kind: 'submit', op: 'clone', migrationId: id, request }, `submit.${id}`);
  return id;
}
