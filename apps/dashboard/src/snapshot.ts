import { isTerminal, summarize, type HostInfo, type OperationSummary, type StoredRecord } from '@ferry/core';
import type { HostRegistry, OperationStore, ProgressEntry } from '@ferry/infra';

/** The readers the dashboard shows: the ones the CLI uses (`ferry hosts`, `list`, `watch`). */
export interface DashboardSource {
  store: OperationStore;
  registry: HostRegistry;
}

export interface OperationView {
  record: StoredRecord;
  summary: OperationSummary;
  /** Each running step's latest progress, by `<phase>.<index>` (running operations only). */
  progress: Record<string, ProgressEntry>;
}

/** What one refresh of the page shows, as read at `at`. */
export interface Snapshot {
  at: number;
  hosts: HostInfo[];
  /** When each host's worker last beat (its heartbeat; the registry entry's lastSeen is older). */
  alive: Map<string, number>;
  /** Not ended (pending, running, paused, rolling back), newest first. */
  active: OperationView[];
  /** Ended (done, rolled back, rejected), newest first. */
  ended: OperationView[];
}

export interface SnapshotLimits {
  /** The newest this many records are read (their versions at every refresh, a record when it changed). */
  records: number;
  /** Ended operations shown, at most. */
  history: number;
}

export const SNAPSHOT_LIMITS: SnapshotLimits = { records: 200, history: 50 };

/**
 * Reads what the dashboard shows, bounded: the hosts as their workers publish them, the newest
 * records (kept between reads, read again only when their version moved) and the progress of the
 * running ones. One reader serves every open page.
 */
export class SnapshotReader {
  private readonly known = new Map<string, StoredRecord>();
  private readonly limits: SnapshotLimits;

  constructor(
    private readonly src: DashboardSource,
    limits: Partial<SnapshotLimits> = {},
  ) {
    this.limits = { ...SNAPSHOT_LIMITS, ...limits };
  }

  async read(): Promise<Snapshot> {
    const { store, registry } = this.src;
    const [hosts, alive, records] = await Promise.all([registry.list(), registry.alive(), store.recent(this.limits.records, this.known)]);
    const live = records.filter((r) => !isTerminal(r.state));
    const progress = await Promise.all(live.map((r) => store.progress(r.id)));
    const ended = records.filter((r) => isTerminal(r.state)).slice(0, this.limits.history);
    return {
      at: Date.now(),
      hosts,
      alive,
      active: live.map((record, i) => ({ record, summary: summarize(record), progress: progress[i]! })),
      ended: ended.map((record) => ({ record, summary: summarize(record), progress: {} })),
    };
  }
}
