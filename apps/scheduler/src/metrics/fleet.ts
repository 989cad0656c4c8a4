import { Counter, Gauge, type Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { keys, OPERATION_KINDS, queueNames, type RecordState } from '@ferry/core';
import type { OperationStore, Queues } from '@ferry/infra';

export interface FleetLimits {
  /** The newest this many records are counted by kind and state (the reconciler reads as many). */
  operations: number;
  /** Queues and heartbeats of at most this many hosts (by name). */
  hosts: number;
  /** A scrape gives up on Redis after this long: the gauges are left out, the scrape still answers. */
  timeoutMs: number;
  /** Scrapes within this long of one another share one read of Redis. */
  reuseMs: number;
}

const DEFAULTS: FleetLimits = { operations: 500, hosts: 500, timeoutMs: 3000, reuseMs: 1000 };
const STATES: readonly RecordState[] = ['pending', 'running', 'paused', 'rolling-back', 'done', 'rolled-back', 'rejected'];

interface QueueFigures {
  queue: string;
  waiting: number;
  active: number;
  delayed: number;
  /** When the oldest job still waiting was added (ms). */
  oldestAt?: number;
}

interface Snapshot {
  at: number;
  operations: Map<string, number>;
  alive: Map<string, number>;
  queues: QueueFigures[];
}

/**
 * Gauges read from Redis when Prometheus scrapes (prom-client's collect callbacks), not kept up to
 * date in between: what every scheduler would report alike (use max() over them). One read serves
 * all of them, bounded in records, hosts and time.
 */
export class FleetGauges {
  private readonly limits: FleetLimits;
  private last?: { at: number; snap: Promise<Snapshot | null> };
  private readonly errors: Counter;

  constructor(
    registry: Registry,
    private readonly src: { store: OperationStore; queues: Queues; prefix: string; log: Logger },
    limits: Partial<FleetLimits> = {},
  ) {
    this.limits = { ...DEFAULTS, ...limits };
    const registers = [registry];
    const snap = () => this.snapshot();
    this.errors = new Counter({ name: 'ferry_metrics_redis_errors_total', help: 'Scrapes whose read of Redis failed or timed out (their Redis-backed gauges were left out).', registers });
    new Gauge({
      name: 'ferry_operations',
      help: `Operations by kind and state, among the newest ${this.limits.operations} records in Redis.`,
      labelNames: ['kind', 'state'],
      registers,
      async collect() {
        this.reset();
        const s = await snap();
        if (!s) return;
        for (const kind of OPERATION_KINDS) for (const state of STATES) this.set({ kind, state }, s.operations.get(`${kind} ${state}`) ?? 0);
      },
    });
    new Gauge({
      name: 'ferry_worker_heartbeat_age_seconds',
      help: "Seconds since each host's worker last marked itself alive (it beats every 400 ms; the reconciler takes a host silent for 30 s as gone, 5 s while a container is down).",
      labelNames: ['host'],
      registers,
      async collect() {
        this.reset();
        const s = await snap();
        for (const [host, at] of s?.alive ?? []) this.set({ host }, Math.max(0, s!.at - at) / 1000);
      },
    });
    new Gauge({
      name: 'ferry_queue_depth',
      help: 'Jobs on each queue (host-<name>: its worker\'s steps; scheduler: results and submissions) by state: waiting (to be taken), active (being run), delayed (backing off before a retry).',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        const s = await snap();
        for (const q of s?.queues ?? []) {
          this.set({ queue: q.queue, state: 'waiting' }, q.waiting);
          this.set({ queue: q.queue, state: 'active' }, q.active);
          this.set({ queue: q.queue, state: 'delayed' }, q.delayed);
        }
      },
    });
    new Gauge({
      name: 'ferry_queue_oldest_job_age_seconds',
      help: 'Age of the oldest job still waiting on each queue (0 when none waits): grows while a host\'s worker is down or stuck.',
      labelNames: ['queue'],
      registers,
      async collect() {
        this.reset();
        const s = await snap();
        for (const q of s?.queues ?? []) this.set({ queue: q.queue }, q.oldestAt === undefined ? 0 : Math.max(0, s!.at - q.oldestAt) / 1000);
      },
    });
  }

  /** The read of Redis for this scrape: shared by its gauges, and reused briefly by the next. */
  private snapshot(): Promise<Snapshot | null> {
    const now = Date.now();
    if (this.last && now - this.last.at < this.limits.reuseMs) return this.last.snap;
    const snap = withTimeout(this.read(now), this.limits.timeoutMs).catch((err: unknown) => {
      this.errors.inc();
      this.src.log.warn({ err }, 'metrics: reading Redis failed; its gauges are left out of this scrape');
      return null;
    });
    this.last = { at: now, snap };
    return snap;
  }

  private async read(at: number): Promise<Snapshot> {
    const { store, queues } = this.src;
    const k = keys(this.src.prefix);
    const [records, alive, described] = await Promise.all([store.list(this.limits.operations), store.redis.hgetall(k.hostsAlive), store.redis.hkeys(k.hosts)]);
    const operations = new Map<string, number>();
    for (const r of records) operations.set(`${r.kind} ${r.state}`, (operations.get(`${r.kind} ${r.state}`) ?? 0) + 1);
    const hosts = [...new Set([...Object.keys(alive), ...described])].sort().slice(0, this.limits.hosts);
    const aliveAt = new Map(hosts.filter((h) => alive[h] !== undefined).map((h) => [h, Number(alive[h])] as const));
    const figures = await Promise.all([
      queueFigures(queueNames.scheduler, queues.scheduler),
      ...hosts.map((h) => queueFigures(queueNames.host(h), queues.host(h))),
    ]);
    return { at, operations, alive: aliveAt, queues: figures };
  }
}

async function queueFigures(name: string, q: Queue): Promise<QueueFigures> {
  const [counts, oldest] = await Promise.all([q.getJobCounts('wait', 'prioritized', 'active', 'delayed'), q.getJobs(['wait'], 0, 0, true)]);
  const oldestAt = oldest[0]?.timestamp;
  return {
    queue: name,
    waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0),
    active: counts.active ?? 0,
    delayed: counts.delayed ?? 0,
    ...(oldestAt !== undefined ? { oldestAt } : {}),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
