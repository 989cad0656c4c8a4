import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { queueNames, type RebalanceJob, type SchedulerJob, type StepJobData } from '@ferry/core';

/**
 * The queues ferry uses: one for the scheduler, one per host (named after the stable host id),
 * all under one prefix. Step jobs are retried by BullMQ with exponential backoff; completed
 * jobs are kept for a while so a duplicate enqueue with the same id stays a no-op.
 */
export class Queues {
  readonly scheduler: Queue<SchedulerJob>;
  private readonly hosts = new Map<string, Queue<StepJobData>>();
  private rebalanceQueue?: Queue<RebalanceJob>;

  constructor(
    private readonly connection: Redis,
    readonly prefix: string,
  ) {
    this.scheduler = new Queue<SchedulerJob>(queueNames.scheduler, { connection, prefix });
  }

  host(name: string): Queue<StepJobData> {
    let q = this.hosts.get(name);
    if (!q) {
      q = new Queue<StepJobData>(queueNames.host(name), { connection: this.connection, prefix: this.prefix });
      this.hosts.set(name, q);
    }
    return q;
  }

  /** Rebalance rounds (made when first asked for). */
  get rebalance(): Queue<RebalanceJob> {
    this.rebalanceQueue ??= new Queue<RebalanceJob>(queueNames.rebalance, { connection: this.connection, prefix: this.prefix });
    return this.rebalanceQueue;
  }

  async close(): Promise<void> {
    await Promise.all([this.scheduler.close(), this.rebalanceQueue?.close(), ...[...this.hosts.values()].map((q) => q.close())]);
  }
}

export const KEEP_JOBS = { removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 }, removeOnFail: { age: 30 * 24 * 3600 } };
