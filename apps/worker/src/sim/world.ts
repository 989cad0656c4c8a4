import { createHash } from 'node:crypto';
import { FerryError } from '@ferry/core';
import { Faults } from './faults.js';

/**
 * FAKE. The in-memory world of simulated hosts (the fast workflow tier, bench:scale): hosts, their
 * containers and what the steps keep on their disks, shared by every fake host's runtime and fake
 * steps in one process.
 * It stands for LXC, rsync, sshd and the hosts' file systems; it never replaces the host and lab
 * tiers, which test the same behaviour with the real tools.
 *
 * Every change of a container's state goes through `setState`, `add` or `remove`, where the
 * world checks its one invariant at once (no sampling gap): a container name is active (running or
 * frozen) on at most one host at any moment. Breaches are kept in `violations`.
 */

/** The states the fake runtime knows (LXC's transitional ones never show: changes are instant). */
export type FakeState = 'RUNNING' | 'STOPPED' | 'FROZEN';

/** What a container's config says (LXC: the `config` file in its dir). */
export interface FakeConfig {
  ip?: string;
  mac?: string;
  hostname?: string;
  /** What it was created from (LXC: the template path recorded in its config). */
  template?: string;
  /** Host directories bind-mounted into it. */
  bindMounts: string[];
  /**
   * The host whose paths the config names: a copy's config names its source's until the target
   * adopts it (`Runtime.adoptConfig`); LXC would start such a copy on the source's rootfs path.
   */
  pathsOf: string;
}

export interface FakeContainer {
  name: string;
  state: FakeState;
  /** Absent: the dir exists but holds no config (a copy that has its marker only): the runtime does not know it. */
  config?: FakeConfig;
  /** The root file system: path (relative, no leading '/') → content. */
  files: Map<string, string>;
  /** The operation filling this dir (the `.ferry-migration` marker a transfer puts first). */
  marker?: string;
  /** A checkpoint dump sent into this dir (live mode): restore starts from it. */
  dump?: { files: Map<string, string> };
  /** PID of its init while it runs (or is frozen). */
  pid?: number;
  /**
   * A checkpoint on disk in its dir (`ferry checkpoint`; the real one: `.ferry-checkpoint/`): a
   * copy of the dir carries it along. Stopped with one: `checkpointed`.
   */
  checkpoint?: { at: number; operation: string; files: [string, string][] };
}

export interface FakeHost {
  name: string;
  containers: Map<string, FakeContainer>;
  /** What the steps keep per operation on this host (the real ones: `<stateDir>/<id>/*.json`). */
  scratch: Map<string, Map<string, unknown>>;
  freeBytes: number;
  /** Whether the runtime can checkpoint/restore (declared in its capabilities). */
  checkpoint: boolean;
  /** Gratuitous ARP sent from this host: which address, when. */
  announced: { container: string; ip: string; at: number }[];
  /** Host directories that exist (what a bind mount's source must be on a target). */
  dirs: Set<string>;
}

/** One change of a container on a host, in order. */
export interface WorldEvent {
  at: number;
  host: string;
  container: string;
  /** `absent`: not on the host (created or removed). */
  from: FakeState | 'absent';
  to: FakeState | 'absent';
}

export interface NewContainer {
  state?: FakeState;
  ip?: string;
  mac?: string;
  hostname?: string;
  template?: string;
  bindMounts?: string[];
  files?: Record<string, string>;
}

let nextPid = 1000;

/** A digest of a file map (what the real steps' manifest digest stands for). */
export function filesDigest(files: ReadonlyMap<string, string>): string {
  const h = createHash('sha256');
  for (const [p, c] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`${p}\0${c}\0`);
  return h.digest('hex');
}

export function filesBytes(files: ReadonlyMap<string, string>): number {
  let n = 0;
  for (const c of files.values()) n += Buffer.byteLength(c);
  return n;
}

export class FakeWorld {
  readonly hosts = new Map<string, FakeHost>();
  readonly faults = new Faults();
  readonly events: WorldEvent[] = [];
  /** Every breach of "active on at most one host", as it happened. */
  readonly violations: string[] = [];
  /** Links between hosts that are cut (`a|b`, sorted): transfers and ssh checks fail across them. */
  private readonly cut = new Set<string>();
  /**
   * What each container uses while it runs (CPUs, memory, rootfs bytes), wherever it runs: the fake
   * hosts' load meter (meter.ts) reports it. Containers not listed use nothing and measure 1 MiB.
   */
  readonly loads = new Map<string, { cpu: number; memBytes: number; diskBytes: number }>();
  private readonly listeners = new Set<(e: WorldEvent) => void>();

  addHost(name: string, opts: { freeBytes?: number; checkpoint?: boolean; dirs?: string[] } = {}): FakeHost {
    const h: FakeHost = {
      name,
      containers: new Map(),
      scratch: new Map(),
      freeBytes: opts.freeBytes ?? 1e12,
      checkpoint: opts.checkpoint ?? false,
      announced: [],
      dirs: new Set(opts.dirs ?? []),
    };
    this.hosts.set(name, h);
    return h;
  }

  host(name: string): FakeHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`fake world: no host ${name}`);
    return h;
  }

  container(host: string, name: string): FakeContainer | undefined {
    return this.host(host).containers.get(name);
  }

  /** A container as `lxc-create` would leave it (and started, when asked). */
  create(host: string, name: string, c: NewContainer = {}): FakeContainer {
    const config: FakeConfig = {
      bindMounts: c.bindMounts ?? [],
      pathsOf: host,
      ...(c.ip ? { ip: c.ip } : {}),
      ...(c.mac ? { mac: c.mac } : {}),
      ...(c.hostname ? { hostname: c.hostname } : {}),
      ...(c.template ? { template: c.template } : {}),
    };
    const files = new Map(Object.entries(c.files ?? { 'etc/hostname': `${name}\n`, 'etc/hosts': `127.0.0.1 localhost\n127.0.1.1 ${name}\n` }));
    const state = c.state ?? 'STOPPED';
    const entry: FakeContainer = { name, state, config, files, ...(state !== 'STOPPED' ? { pid: nextPid++ } : {}) };
    this.add(host, entry);
    return entry;
  }

  /** Puts a container (or a copy's dir) on a host. */
  add(host: string, c: FakeContainer): void {
    const h = this.host(host);
    if (h.containers.has(c.name)) throw new Error(`fake world: ${c.name} is already on ${host}`);
    h.containers.set(c.name, c);
    this.record(host, c.name, 'absent', c.state);
  }

  remove(host: string, name: string): void {
    const h = this.host(host);
    const c = h.containers.get(name);
    if (!c) return;
    h.containers.delete(name);
    this.record(host, name, c.state, 'absent');
  }

  setState(host: string, name: string, state: FakeState): void {
    const c = this.container(host, name);
    if (!c) throw new Error(`fake world: no ${name} on ${host}`);
    const from = c.state;
    if (from === state) return;
    c.state = state;
    if (state === 'STOPPED') delete c.pid;
    else c.pid ??= nextPid++;
    this.record(host, name, from, state);
  }

  /** Hosts where the container has processes (running or frozen). */
  activeOn(name: string): string[] {
    return [...this.hosts.values()].filter((h) => {
      const s = h.containers.get(name)?.state;
      return s !== undefined && s !== 'STOPPED';
    }).map((h) => h.name);
  }

  /** Hosts where the container runs (not frozen). */
  runningOn(name: string): string[] {
    return [...this.hosts.values()].filter((h) => h.containers.get(name)?.state === 'RUNNING').map((h) => h.name);
  }

  /** Hosts that hold the container or a dir of it. */
  presentOn(name: string): string[] {
    return [...this.hosts.values()].filter((h) => h.containers.has(name)).map((h) => h.name);
  }

  /** Called with every change, in order (after the invariant is checked). */
  onChange(f: (e: WorldEvent) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** The states a container went through on a host, in order, from `absent` (before it was there). */
  historyOf(host: string, name: string): (FakeState | 'absent')[] {
    const evs = this.events.filter((e) => e.host === host && e.container === name);
    return evs.length ? [evs[0]!.from, ...evs.map((e) => e.to)] : [];
  }

  cutLink(a: string, b: string): void {
    this.cut.add([a, b].sort().join('|'));
  }

  healLink(a: string, b: string): void {
    this.cut.delete([a, b].sort().join('|'));
  }

  /** Throws what ssh or rsync would report across a cut link (retryable: the link may come back). */
  reach(from: string, to: string, code: 'PEER_UNREACHABLE' | 'TRANSFER_NETWORK'): FakeHost {
    if (from !== to && this.cut.has([from, to].sort().join('|'))) {
      throw new FerryError(code, `fake world: the link ${from} <-> ${to} is cut`, { retryable: true });
    }
    return this.host(to);
  }

  // Per-operation records of a host (the steps' `<stateDir>/<id>/<file>`).
  readRecord<T>(host: string, migrationId: string, file: string): T | null {
    return (this.host(host).scratch.get(migrationId)?.get(file) as T | undefined) ?? null;
  }

  writeRecord(host: string, migrationId: string, file: string, value: unknown): void {
    const h = this.host(host);
    let m = h.scratch.get(migrationId);
    if (!m) h.scratch.set(migrationId, (m = new Map()));
    m.set(file, structuredClone(value));
  }

  deleteRecord(host: string, migrationId: string, file: string): void {
    this.host(host).scratch.get(migrationId)?.delete(file);
  }

  removeScratch(host: string, migrationId: string): void {
    this.host(host).scratch.delete(migrationId);
  }

  private record(host: string, container: string, from: FakeState | 'absent', to: FakeState | 'absent'): void {
    const e: WorldEvent = { at: Date.now(), host, container, from, to };
    this.events.push(e);
    const active = this.activeOn(container);
    if (active.length > 1) this.violations.push(`${new Date(e.at).toISOString()} ${container} active on ${active.join(' and ')} (after ${host}: ${from} -> ${to})`);
    for (const f of this.listeners) f(e);
  }
}
