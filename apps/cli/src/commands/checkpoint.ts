import type { Command } from 'commander';
import { newMigrationId, parseCheckpointRequest, parseRestoreRequest, shownState, ValidationError, type HostInfo, type OperationKind } from '@ferry/core';
import type { Client } from '../client.js';
import type { Ferry } from '../service/ferry.js';
import { EXIT, ExitError } from '../exit-error.js';
import { json, print } from '../entry.js';
import { enqueueRequest } from '../client.js';

const bad = (what: string, msg: string) => new ExitError(EXIT.badInput, `invalid ${what} request: ${msg}`);
const knownHosts = (hosts: HostInfo[]) => hosts.map((h) => h.name).join(', ') || 'none';

async function submit(c: Client, op: OperationKind, container: string, request: object): Promise<string> {
  const busy = await c.store.lockHolder(container);
  if (busy) throw new ExitError(EXIT.badInput, `container ${container} is being worked on by ${busy} (see: ferry status ${busy})`);
  const id = newMigrationId(Date.now());
  await enqueueRequest(c, 'submit', { kind: 'submit', op, migrationId: id, request }, `submit.${id}`);
  return id;
}

/**
 * `ferry checkpoint`, checked against the registry first: the container runs on the host (default:
 * the one that has it) and that host can checkpoint. Bad input exits 2 and touches nothing.
 */
export async function submitCheckpoint(c: Client, a: { container: string; host?: string }): Promise<string> {
  const hosts = await c.registry.list();
  const holders = hosts.filter((h) => h.containers.some((x) => x.name === a.container));
  if (!a.host && holders.length > 1) throw bad('checkpoint', `host: '${a.container}' exists on ${holders.map((h) => h.name).join(' and ')}; say which with --host`);
  const where = a.host ?? holders[0]?.name;
  if (!where) throw bad('checkpoint', `container: '${a.container}' does not exist on any registered host`);
  let request;
  try {
    request = parseCheckpointRequest({ container: a.container, host: where });
  } catch (e) {
    if (e instanceof ValidationError) throw bad('checkpoint', e.message);
    throw e;
  }
  const host = hosts.find((h) => h.name === request.host);
  if (!host) throw bad('checkpoint', `host: unknown host '${request.host}' (known hosts: ${knownHosts(hosts)})`);
  const ct = host.containers.find((x) => x.name === request.container);
  if (!ct) throw bad('checkpoint', `container: '${request.container}' does not exist on host ${host.name}`);
  if (ct.state !== 'RUNNING') throw bad('checkpoint', `container: '${request.container}' is ${shownState(ct)} on ${host.name}; only a running container can be checkpointed`);
  if (!host.capabilities.checkpoint) throw bad('checkpoint', `host: ${host.name} cannot checkpoint (${host.capabilities.checkpointReason ?? 'no checkpoint support'})`);
  return submit(c, 'checkpoint', request.container, request);
}

/**
 * `ferry restore`, checked against the registry first: the container is checkpointed on a host,
 * the target (default: that host) is known, can restore, and has no container of that name.
 */
export async function submitRestore(c: Client, a: { container: string; to?: string }): Promise<string> {
  const hosts = await c.registry.list();
  const holders = hosts.filter((h) => h.containers.some((x) => x.name === a.container && x.checkpoint && x.state === 'STOPPED'));
  if (!holders.length) {
    const there = hosts.flatMap((h) => h.containers.filter((x) => x.name === a.container).map((x) => `${shownState(x)} on ${h.name}`));
    throw bad('restore', `container: '${a.container}' is not checkpointed on any registered host${there.length ? ` (it is ${there.join(', ')})` : ''}`);
  }
  if (holders.length > 1) throw bad('restore', `container: '${a.container}' is checkpointed on ${holders.map((h) => h.name).join(' and ')}`);
  const from = holders[0]!;
  let request;
  try {
    request = parseRestoreRequest({ container: a.container, from: from.name, to: a.to ?? from.name });
  } catch (e) {
    if (e instanceof ValidationError) throw bad('restore', e.message);
    throw e;
  }
  const target = hosts.find((h) => h.name === request.to);
  if (!target) throw bad('restore', `to: unknown host '${request.to}' (known hosts: ${knownHosts(hosts)})`);
  if (!target.capabilities.checkpoint) throw bad('restore', `to: ${target.name} cannot restore a checkpoint (${target.capabilities.checkpointReason ?? 'no checkpoint support'})`);
  if (target !== from && target.containers.some((x) => x.name === request.container)) {
    throw bad('restore', `to: a container '${request.container}' already exists on ${target.name}`);
  }
  return submit(c, 'restore', request.container, request);
}

type WithFerry = <T>(fn: (f: Ferry) => Promise<T>) => Promise<T>;
type Finish = (f: Ferry, id: string, asJson: boolean) => Promise<void>;

/** Registers `ferry checkpoint` and `ferry restore` (the seed's OpenVZ CPT: checkpoint to disk, restore later). */
export function registerCheckpointCommands(program: Command, withFerry: WithFerry, finish: Finish): void {
  const done = async (f: Ferry, id: string, o: { wait?: boolean; json?: boolean }) => {
    if (o.wait) return finish(f, id, Boolean(o.json));
    if (o.json) json({ id });
    else print(`${id}\nwatch it: ferry watch ${id}`);
  };
  program
    .command('checkpoint')
    .description("dump a running container's processes and memory to its host's disk and stop it (state: checkpointed)")
    .argument('<container>', 'container name')
    .option('--host <host>', 'its host (default: the one that has it)')
    .option('--wait', 'wait until the checkpoint ends; exit 0 only if done')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  ferry checkpoint web --wait',
        '  ferry checkpoint web --host h1 --json',
        '',
        'Needs a host that can checkpoint (ferry worker --live and a working CRIU; ferry hosts shows it).',
        'The images stay in the container\'s dir until ferry restore; a failed dump leaves it running.',
      ].join('\n'),
    )
    .action(async (container: string, o: { host?: string; wait?: boolean; json?: boolean }) => {
      await withFerry(async (f) => done(f, (await f.checkpoint({ container, ...(o.host ? { host: o.host } : {}) })).id, o));
    });
  program
    .command('restore')
    .description('bring a checkpointed container back from its images, on its host or another one')
    .argument('<container>', 'container name')
    .option('--to <host>', 'restore it on this host (default: where it was checkpointed); its files and images move there first')
    .option('--wait', 'wait until the restore ends; exit 0 only if done')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  ferry restore web --wait',
        '  ferry restore web --to h2 --wait --json',
        '',
        'With --to another host the source copy is removed after the container runs there; a failure',
        'before that leaves it checkpointed where it was.',
      ].join('\n'),
    )
    .action(async (container: string, o: { to?: string; wait?: boolean; json?: boolean }) => {
      await withFerry(async (f) => done(f, (await f.restore({ container, ...(o.to ? { to: o.to } : {}) })).id, o));
    });
}
