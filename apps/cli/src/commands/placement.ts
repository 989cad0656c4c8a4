import { ContainerName, HostName, parseOrThrow, RebalancePolicy, type RebalancePolicyInput } from '@ferry/core';
import { PlacementStore } from '@ferry/infra';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';

const store = (c: Client) => new PlacementStore(c.redis, c.store.prefix);

/** A registered host, or bad input naming it. */
async function knownHost(c: Client, host: string): Promise<string> {
  parseOrThrow(HostName, host, 'host');
  if (!(await c.registry.get(host))) throw new ExitError(EXIT.badInput, `unknown host '${host}' (ferry hosts lists the registered ones)`);
  return host;
}

export async function pin(c: Client, container: string, host?: string): Promise<string> {
  parseOrThrow(ContainerName, container, 'container');
  if (host !== undefined) await knownHost(c, host);
  await store(c).pin(container, host);
  return host ? `${container} pinned to ${host}` : `${container} pinned where it runs`;
}

export async function unpin(c: Client, container: string): Promise<string> {
  parseOrThrow(ContainerName, container, 'container');
  return (await store(c).unpin(container)) ? `${container} unpinned` : `${container} was not pinned`;
}

export async function cordon(c: Client, host: string): Promise<string> {
  await store(c).cordon(await knownHost(c, host));
  return `${host} cordoned: no container is placed on it`;
}

export async function uncordon(c: Client, host: string): Promise<string> {
  parseOrThrow(HostName, host, 'host');
  return (await store(c).uncordon(host)) ? `${host} uncordoned` : `${host} was not cordoned`;
}

/** A group's name follows the rules of container names (letters, digits, `-`, `_`, `.`). */
const GroupName = ContainerName;

export async function groupAdd(c: Client, group: string, containers: readonly string[]): Promise<string> {
  parseOrThrow(GroupName, group, 'group');
  containers.forEach((x, i) => parseOrThrow(ContainerName, x, `containers[${i}]`));
  await store(c).group(group, containers);
  return `${containers.join(', ')} in anti-affinity group ${group}: never placed on one host together`;
}

export async function groupRemove(c: Client, containers: readonly string[]): Promise<string> {
  containers.forEach((x, i) => parseOrThrow(ContainerName, x, `containers[${i}]`));
  const n = await store(c).ungroup(containers);
  return `${n} of ${containers.length} container(s) taken out of their anti-affinity group`;
}

/** Group → its containers, sorted. */
export async function groupList(c: Client): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [container, group] of await store(c).groups()) (out[group] ??= []).push(container);
  for (const g of Object.values(out)) g.sort();
  return out;
}

/**
 * `k=v` settings into policy changes: numbers and booleans as such; the result is checked whole by
 * the store (every problem at once).
 */
export function parseSettings(settings: readonly string[]): RebalancePolicyInput {
  const known = new Set(Object.keys(RebalancePolicy.shape));
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const s of settings) {
    const i = s.indexOf('=');
    const [k, v] = i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
    if (!known.has(k)) {
      problems.push(`'${k}' is not a policy setting (one of: ${[...known].join(', ')})`);
      continue;
    }
    out[k] = v === 'true' ? true : v === 'false' ? false : v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  if (problems.length) throw new ExitError(EXIT.badInput, `invalid policy settings: ${problems.join('; ')}`);
  return out;
}

export async function policy(c: Client, settings: readonly string[]): Promise<RebalancePolicy> {
  const s = store(c);
  return settings.length ? s.setPolicy(parseSettings(settings)) : s.policy();
}
