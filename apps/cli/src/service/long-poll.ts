import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Reads until `ready` says the value is worth answering with, or `waitMs` has passed (then answers
 * with the last one read); without `waitMs`, answers with the first. How a long-polling call of
 * localFerry waits for a change in Redis, reading every `everyMs`.
 */
export async function longPoll<T>(read: () => Promise<T>, ready: (v: T) => boolean, waitMs: number | undefined, everyMs = 150): Promise<T> {
  const end = Date.now() + (waitMs ?? 0);
  for (;;) {
    const v = await read();
    const left = end - Date.now();
    if (waitMs === undefined || ready(v) || left <= 0) return v;
    await sleep(Math.min(everyMs, left));
  }
}
