#!/usr/bin/env node
/**
 * bench:scale's raw BullMQ consumer: one Worker taking empty jobs off one queue and doing nothing
 * with them. Prints `ready` once it runs and `done <ms>` (the wall clock) when the `--jobs`th job
 * has completed. The ceiling ferry's step throughput is compared with (raw.ts).
 */
import { Worker } from 'bullmq';
import { connect } from '@ferry/infra';
import { parseArgsOrExit, usageError } from '../../args.js';

const NAME = 'bench:scale raw worker';
const USAGE = 'raw-worker.js --redis URL --prefix P --queue Q --jobs N --concurrency N';
const v = parseArgsOrExit(NAME, USAGE, {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  queue: { type: 'string' },
  jobs: { type: 'string' },
  concurrency: { type: 'string' },
});
if (!v.redis || !v.prefix || !v.queue || !v.jobs || !v.concurrency) usageError(NAME, USAGE, 'every option is required');
const total = Number(v.jobs);
const redis = connect(v.redis);
let completed = 0;
const worker = new Worker(v.queue, async () => undefined, { connection: redis, prefix: v.prefix, concurrency: Number(v.concurrency) });
worker.on('completed', () => {
  if (++completed === total) process.stdout.write(`done ${Date.now()}\n`);
});
await worker.waitUntilReady();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
await worker.close();
await redis.quit().catch(() => redis.disconnect());
