import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import type { RedisClient as Redis } from '@ferry/infra';
import { queueOptions } from '@ferry/infra';
import { startChild } from './procs.js';

export interface RawFigures {
  jobs: number;
  ms: number;
  jobsPerSec: number;
  /** Adds in flight at once (the producer) and the consumer's concurrency. */
  window: number;
  concurrency: number;
}

/**
 * Raw BullMQ on the same Redis, the ceiling: `jobs` empty jobs added one call each (up to `window`
 * adds in flight, from this process) to one queue with ferry's queue options (retention, event
 * stream), taken and completed by one Worker in another process; from the first add to the last
 * completion.
 */
export async function rawBullmq(redis: Redis, url: string, prefix: string, jobs: number, window = 64, concurrency = 32): Promise<RawFigures> {
  const queue = new Queue('raw', queueOptions(redis, prefix));
  let done: (at: number) => void = () => undefined;
  let ready: () => void = () => undefined;
  let fail: (e: unknown) => void = () => undefined;
  const finished = new Promise<number>((resolve, reject) => {
    done = resolve;
    fail = reject;
  });
  const started = Promise.race([new Promise<void>((r) => (ready = r)), finished.then(() => undefined)]);
  const script = fileURLToPath(new URL('./raw-worker.js', import.meta.url));
  const child = await startChild([process.execPath, script, '--redis', url, '--prefix', prefix, '--queue', 'raw', '--jobs', String(jobs), '--concurrency', String(concurrency)], {
    onLine: (line) => {
      if (line === 'ready') ready();
      else if (line.startsWith('done ')) done(Number(line.slice(5)));
    },
    onExit: (e) => fail(new Error(`the raw BullMQ worker exited: ${String(e)}`)),
  });
  try {
    await started;
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: window }, async () => {
        while (next < jobs) {
          next++;
          await queue.add('raw', {});
        }
      }),
    );
    const ms = (await finished) - t0;
    return { jobs, ms, jobsPerSec: (jobs * 1000) / ms, window, concurrency };
  } finally {
    await child.stop();
    await queue.close();
  }
}
