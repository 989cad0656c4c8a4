import type { Logger } from 'pino';
import { keys, type RetentionPolicy } from '@ferry/core';
import { collectGarbage, Lease, type GcReport, type RedisClient } from '@ferry/infra';

export interface CollectorOptions {
  redis: RedisClient;
  prefix: string;
  log: Logger;
  /** How often a collection is tried (the first one period after start). */
  everyMs: number;
  policy: RetentionPolicy;
  /** How long the lease outlives its holder's last renewal if it dies mid-collection (default 60 s; renewed every third of it). */
  leaseMs?: number;
}

/**
 * Automatic gc: every `everyMs` each scheduler tries to take the lease `<prefix>:gc:lease` (a Lease,
 * renewed while it collects); the one that gets it collects (collectGarbage), the others skip that
 * period. One collection at a time across every scheduler process; were two to overlap (a holder
 * paused past the lease's expiry), every removal is compare-and-set, so the second only finds less
 * to do.
 */
export class Collector {
  private timer?: NodeJS.Timeout;
  private running?: Promise<GcReport | null>;
  private readonly key: string;

  constructor(private readonly o: CollectorOptions) {
    this.key = keys(o.prefix).gcLease;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick().catch((err: unknown) => this.o.log.error({ err }, 'gc failed')), this.o.everyMs);
    this.timer.unref();
  }

  /** No more collections; waits for one in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One collection now if no other runs (here or in another scheduler); its report, or null when skipped. */
  tick(): Promise<GcReport | null> {
    this.running ??= this.collect().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async collect(): Promise<GcReport | null> {
    const lease = new Lease(this.o.redis, this.key, { ttlMs: this.o.leaseMs ?? 60_000 });
    if (!(await lease.tick())) return null;
    lease.run(); // renewed while the collection lasts, given back after it
    try {
      return await collectGarbage(this.o.redis, this.o.prefix, { policy: this.o.policy, log: this.o.log });
    } finally {
      await lease.release();
    }
  }
}
