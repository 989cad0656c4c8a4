import { Queue, type JobsOptions, type QueueOptions } from 'bullmq';
import type { RedisClient } from './connection.js';
import { queueNames, type RebalanceJob, type SchedulerJob, type StepJobData } from '@ferry/core';

/**
 * How long BullMQ keeps finished jobs, on every queue ferry adds to (the Queues below make it each
 * queue's default, and the step and result jobs name it too). A completed job is kept for a day,
 * and at most the newest 1,000 per queue: long enough for the reconciler to replay a step's result
 * that never arrived (it needs the completed step job) and for a duplicate enqueue with the same
 * deterministic id to stay a no-op; a failed job a week, at most 1,000. BullMQ applies the count
 * and age each time a job of the queue finishes; `ferry gc` also cleans by age queues gone quiet.
 * Step and result jobs do not wait for it: the scheduler removes an operation's when it ends.
 */
export const JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 1000 },
} satisfies Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'>;

/** The same, under the name the step and result jobs use. */
export const KEEP_JOBS = JOB_RETENTION;

/**
 * Entries of each queue's event stream (`<queue>:events`): BullMQ trims it (XADD MAXLEN ~); ferry
 * reads no events. Small, because there is one stream per host queue: at 1,000 entries they were
 * most of what Redis held at 500 hosts once finished jobs no longer stayed (bench:scale).
 */
export const EVENTS_MAX_LEN = 100;

/** Options for every queue ferry opens: its prefix, the job retention as default, a short event stream. */
export function queueOptions(connection: RedisClient, prefix: string): QueueOptions {
  return { connection, prefix, defaultJobOptions: { ...JOB_RETENTION }, streams: { events: { maxLen: EVENTS_MAX_LEN } } };
}

/**
 * The queues ferry uses: one for the scheduler, one per host (named after the stable host id),
 * all under one prefix. Step jobs are retried by BullMQ with exponential backoff; finished jobs
 * are kept as JOB_RETENTION says.
 */
export class Queues {
  readonly scheduler: Queue<SchedulerJob>;
  private readonly hosts = new Map<string, Queue<StepJobData>>();
  private rebalanceQueue?: Queue<RebalanceJob>;

  constructor(
    private readonly connection: RedisClient,
    readonly prefix: string,
  ) {
    this.scheduler = quiet(new Queue<SchedulerJob>(queueNames.scheduler, queueOptions(connection, prefix)));
  }

  host(name: string): Queue<StepJobData> {
    let q = this.hosts.get(name);
    if (!q) {
      q = quiet(new Queue<StepJobData>(queueNames.host(name), queueOptions(this.connection, this.prefix)));
      this.hosts.set(name, q);
    }
    return q;
  }

  /** Rebalance rounds (made when first asked for). */
  get rebalance(): Queue<RebalanceJob> {
    this.rebalanceQueue ??= quiet(new Queue<RebalanceJob>(queueNames.rebalance, queueOptions(this.connection, this.prefix)));
    return this.rebalanceQueue;
  }

  async close(): Promise<void> {
    await Promise.all([this.scheduler.close(), this.rebalanceQueue?.close(), ...[...this.hosts.values()].map((q) => q.close())]);
  }
}

/**
 * A queue's 'error' events are its connection's (Redis restarting, a failover): the connection
 * reconnects by itself, its owner logs the outage once (`connect`'s log), and each command fails or
 * waits for its caller to see. Without a listener BullMQ would print every reconnect attempt.
 */
function quiet<Q extends Queue>(q: Q): Q {
  q.on('error', () => undefined);
  return q;
}
