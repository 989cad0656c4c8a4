import { createLogger, openRedis } from '@ferry/infra';
import { describeRedisTarget } from '@ferry/core';
import { Scheduler } from './scheduler.js';
import { loadSchedulerTrust, type SchedulerTrustFlags } from './trust/trust-files.js';
import type { SchedulerRunOptions } from './flags.js';

/** Runs a scheduler until SIGTERM/SIGINT. */
export async function runScheduler(opts: SchedulerRunOptions & { trust?: SchedulerTrustFlags } = {}): Promise<void> {
  const log = createLogger('scheduler');
  const trust = await loadSchedulerTrust(opts.trust ?? {}, log);
  const { redis, prefix, target } = await openRedis(process.env, { log });
  log.info({ redis: describeRedisTarget(target), prefix }, 'redis');
  const s = new Scheduler({ redis, prefix, log, trust, ...(opts.metrics ? { metrics: opts.metrics } : {}) });
  try {
    await s.start();
  } catch (e) {
    // A start refused (say, the metrics port taken): nothing else keeps the process up.
    await s.stop().catch(() => undefined);
    redis.disconnect();
    throw e;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info('scheduler stopping');
  await s.stop();
  redis.disconnect();
}
