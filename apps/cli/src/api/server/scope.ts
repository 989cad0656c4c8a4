import type { HostInfo, StoredRecord } from '@ferry/core';
import type { Client } from '../../client.js';

/** The containers a request of any operation kind names: its container, a clone's new name, a unify's list. */
export function containersOfRequest(request: unknown): string[] {
  const r = (request ?? {}) as { container?: unknown; name?: unknown; containers?: unknown };
  const out = new Set<string>();
  if (typeof r.container === 'string') out.add(r.container);
  if (typeof r.name === 'string') out.add(r.name);
  if (Array.isArray(r.containers)) for (const c of r.containers) if (typeof c === 'string') out.add(c);
  return [...out];
}

export const containersOfRecord = (r: StoredRecord): string[] => containersOfRequest(r.request);

/**
 * The containers of the operation `id`: from its record, or, just submitted and not planned yet,
 * from its queued request; null when neither exists.
 */
export async function containersOfOperation(c: Client, id: string): Promise<string[] | null> {
  const r = await c.store.get(id);
  if (r) return containersOfRecord(r);
  const job = await c.queues.scheduler.getJob(`submit.${id}`);
  return job ? containersOfRequest((job.data as { request?: unknown }).request) : null;
}

type InScope = (container: string) => boolean;

/** What a `filter` call answers a scoped token with: only what is in its scope. */
export const scopeFilters: Record<string, (out: unknown, inScope: InScope) => unknown> = {
  operations: (out, inScope) => (out as StoredRecord[]).filter((r) => {
    const cs = containersOfRecord(r);
    return cs.length > 0 && cs.every(inScope);
  }),
  hosts: (out, inScope) => (out as HostInfo[]).map((h) => ({ ...h, containers: h.containers.filter((x) => inScope(x.name)) })),
  groups: (out, inScope) => {
    const groups: Record<string, string[]> = {};
    for (const [g, cs] of Object.entries(out as Record<string, string[]>)) {
      const mine = cs.filter(inScope);
      if (mine.length) groups[g] = mine;
    }
    return groups;
  },
};
