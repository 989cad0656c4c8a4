import type { HostInfo } from '../host.js';
import type { ContainerLoad, HostLoad, Snapshot } from './snapshot.js';

/** What operators decided (PlacementStore) and what is in flight, as a round reads it. */
export interface PlacementState {
  /** Container → the host it is pinned to, or `true` when pinned where it is. */
  pins: ReadonlyMap<string, string | true>;
  cordons: ReadonlySet<string>;
  /** Container → until when (ms) it is left alone. */
  cooldowns: ReadonlyMap<string, number>;
  /** Container → its anti-affinity group. */
  groups?: ReadonlyMap<string, string>;
  /** Containers an operation holds now: they stay where they are this round. */
  busy?: ReadonlySet<string>;
}

/** Why a host or container is not in the snapshot as it is in the registry. */
export interface SnapshotNote {
  host?: string;
  container?: string;
  why: string;
}

/** A host whose worker has not published for this long is left out (its containers with it). */
export const STALE_HOST_MS = 30_000;

/**
 * The snapshot a round plans from, out of what the workers published (HostInfo with capacity and
 * per-container load) and the placement state. Pure. Left out, with a note: hosts whose worker is
 * silent or does not measure load. Kept where they are (pinned in place), with a note: containers an
 * operation holds, containers seen on more than one host (a move in progress), and containers whose
 * root filesystem size is not measured yet (a move's cost would be unknown).
 */
export function snapshotOf(hosts: readonly HostInfo[], placement: PlacementState, now: number, staleMs = STALE_HOST_MS): { snapshot: Snapshot; notes: SnapshotNote[] } {
  const notes: SnapshotNote[] = [];
  const live: HostLoad[] = [];
  const infos: HostInfo[] = [];
  for (const h of hosts) {
    if (now - h.lastSeen > staleMs) {
      notes.push({ host: h.name, why: `its worker has not reported for ${Math.round((now - h.lastSeen) / 1000)} s` });
      continue;
    }
    if (!h.capacity) {
      notes.push({ host: h.name, why: 'its worker does not report load' });
      continue;
    }
    infos.push(h);
    live.push({ name: h.name, cpus: h.capacity.cpus, memBytes: h.capacity.memBytes, freeDiskBytes: h.freeBytes, cordoned: placement.cordons.has(h.name), live: h.capabilities.checkpoint });
  }
  const seen = new Map<string, number>();
  for (const h of infos) for (const c of h.containers) seen.set(c.name, (seen.get(c.name) ?? 0) + 1);
  const containers: ContainerLoad[] = [];
  for (const h of infos) {
    for (const c of h.containers) {
      const running = c.state === 'RUNNING';
      const stay: string[] = [];
      if (placement.busy?.has(c.name)) stay.push('an operation holds it');
      if ((seen.get(c.name) ?? 0) > 1) {
        // A copy elsewhere (a move in progress, or one left behind): only the running one counts.
        if (!running) continue;
        stay.push('it exists on more than one host');
      }
      if (c.load?.diskBytes === undefined) stay.push('its root filesystem is not measured yet');
      const pin = placement.pins.get(c.name);
      const cooldown = placement.cooldowns.get(c.name);
      const group = placement.groups?.get(c.name);
      for (const why of stay) notes.push({ container: c.name, host: h.name, why });
      containers.push({
        name: c.name,
        host: h.name,
        running,
        cpu: c.load?.cpu ?? 0,
        memBytes: c.load?.memBytes ?? 0,
        diskBytes: c.load?.diskBytes ?? 0,
        ...(stay.length ? { pinned: true as const } : pin !== undefined ? { pinned: pin } : {}),
        ...(cooldown !== undefined && cooldown > now ? { cooldownUntil: cooldown } : {}),
        ...(group !== undefined ? { group } : {}),
      });
    }
  }
  return { snapshot: { at: now, hosts: live, containers }, notes };
}

/**
 * A digest of what a plan depends on: hosts, capacities, cordons, where each container is, its
 * load (CPU to 0.01, memory and disk to the MiB) and its constraints. Two rounds with the same
 * digest saw the same cluster.
 */
export function snapshotDigest(s: Snapshot): string {
  const mib = (b: number) => Math.round(b / 2 ** 20);
  const hosts = [...s.hosts].sort((a, b) => a.name.localeCompare(b.name)).map((h) => [h.name, h.cpus, mib(h.memBytes), mib(h.freeDiskBytes), h.cordoned, h.live]);
  const cts = [...s.containers]
    .sort((a, b) => a.name.localeCompare(b.name) || a.host.localeCompare(b.host))
    .map((c) => [c.name, c.host, c.running, Math.round(c.cpu * 100) / 100, mib(c.memBytes), mib(c.diskBytes), c.pinned ?? null, c.group ?? null, c.cooldownUntil ?? null]);
  return fnv1a64(JSON.stringify({ hosts, cts }));
}

/** FNV-1a, 64 bits, as 16 hex digits: stable across processes and versions of Node (core does no I/O). */
function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}
