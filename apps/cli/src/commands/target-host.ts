import { ContainerName, HostName, type HostInfo } from '@ferry/core';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';

/** A host whose worker has not reported for this long is treated as down. */
const STALE_MS = 30_000;

function firstIssue(r: { success: false; error: { issues: { message: string }[] } }): string {
  return r.error.issues[0]?.message ?? 'invalid';
}

/**
 * The host a toolbox command goes to, from the registry (what each worker last published):
 * `running` — the host where the container is RUNNING; `exists` — the one running it, else the only
 * one that has it. `--host` picks one; several candidates without it are bad input, as is a missing
 * or (for `running`) stopped container. A host whose worker is silent is a failure (exit 1).
 */
export async function targetHost(c: Client, container: string, host: string | undefined, need: 'running' | 'exists'): Promise<HostInfo> {
  const name = ContainerName.safeParse(container);
  if (!name.success) throw new ExitError(EXIT.badInput, `container: ${firstIssue(name)}`);
  if (host !== undefined) {
    const h = HostName.safeParse(host);
    if (!h.success) throw new ExitError(EXIT.badInput, `--host: ${firstIssue(h)}`);
  }
  const hosts = await c.registry.list();
  const known = hosts.map((h) => h.name).join(', ') || 'none: start a worker on each host (ferry worker --host NAME)';
  const stateOn = (h: HostInfo) => h.containers.find((x) => x.name === container)?.state;
  let chosen: HostInfo | undefined;
  if (host !== undefined) {
    chosen = hosts.find((h) => h.name === host);
    if (!chosen) throw new ExitError(EXIT.badInput, `--host: unknown host '${host}' (known hosts: ${known})`);
    const state = stateOn(chosen);
    if (!state) throw new ExitError(EXIT.badInput, `container: '${container}' does not exist on host ${chosen.name}`);
    if (need === 'running' && state !== 'RUNNING') throw new ExitError(EXIT.badInput, `container ${container} is ${state} on ${chosen.name}, not RUNNING`);
  } else {
    const having = hosts.filter((h) => stateOn(h));
    if (!having.length) throw new ExitError(EXIT.badInput, `container: '${container}' does not exist on any host (known hosts: ${known})`);
    const running = having.filter((h) => stateOn(h) === 'RUNNING');
    const where = having.map((h) => `${stateOn(h)} on ${h.name}`).join(', ');
    if (running.length > 1) throw new ExitError(EXIT.badInput, `container ${container} runs on several hosts (${where}): choose one with --host`);
    if (running.length === 1) chosen = running[0];
    else if (need === 'running') throw new ExitError(EXIT.badInput, `container ${container} is not running (${where})`);
    else if (having.length === 1) chosen = having[0];
    else throw new ExitError(EXIT.badInput, `container ${container} exists on several hosts (${where}): choose one with --host`);
  }
  return live(chosen!);
}

/** A host whose worker has gone silent is a failure (exit 1), not bad input. */
function live(h: HostInfo): HostInfo {
  const age = Date.now() - h.lastSeen;
  if (age > STALE_MS) throw new ExitError(EXIT.failed, `host ${h.name}: its worker has not reported for ${Math.round(age / 1000)} s; is it running?`);
  return h;
}

/**
 * A host named for what it does itself (`ferry run <host>`), from the registry: a bad name or a host
 * no worker has registered is bad input naming `field`; a silent worker a failure.
 */
export async function namedHost(c: Client, host: string, field: string): Promise<HostInfo> {
  const h = HostName.safeParse(host);
  if (!h.success) throw new ExitError(EXIT.badInput, `${field}: ${firstIssue(h)}`);
  const hosts = await c.registry.list();
  const found = hosts.find((x) => x.name === host);
  if (!found) {
    const known = hosts.map((x) => x.name).join(', ') || 'none: start a worker on each host (ferry worker --host NAME)';
    throw new ExitError(EXIT.badInput, `${field}: unknown host '${host}' (known hosts: ${known})`);
  }
  return live(found);
}
