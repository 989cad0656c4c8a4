import { connect, createLogger, ensureRedis } from '@ferry/infra';
import { DEFAULT_PREFIX } from '@ferry/core';
import { Scheduler } from './scheduler.js';

/** Runs a scheduler until SIGTERM/SIGINT. */
export async function runScheduler(): Promise<void> {
  const log = createLogger('scheduler');
  const { url } = await ensureRedis();
  const redis = connect(url);
  const s = new Scheduler({ redis, prefix: process.env.FERRY_PREFIX ?? DEFAULT_PREFIX, log });
  await s.start();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info('scheduler stopping');
  await s.stop();
  redis.disconnect();
}
