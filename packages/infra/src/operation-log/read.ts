import type { RedisClient } from '../redis/connection.js';
import { decodeOperationLogEntry, keys, type OperationLogEntry } from '@ferry/core';

/** An entry with its stream id (the order entries reached Redis in, across every host). */
export type OperationLogLine = OperationLogEntry & { id: string };

const PAGE = 500;

/**
 * An operation's log entries after stream id `after` (all of them for '-'), oldest first, at most
 * `limit`. Entries this version cannot read are skipped, yet counted as read: `last` is the id to
 * read on from (`after` itself when there was nothing new).
 */
export async function readOperationLog(redis: RedisClient, prefix: string, opId: string, after = '-', limit = 10_000): Promise<{ lines: OperationLogLine[]; last: string }> {
  const key = keys(prefix).operationLog(opId);
  const lines: OperationLogLine[] = [];
  let last = after;
  for (let n = 0; n < limit; ) {
    const batch = await redis.xrange(key, last === '-' ? '-' : `(${last}`, '+', 'COUNT', Math.min(PAGE, limit - n));
    for (const [id, fields] of batch) {
      const e = decodeOperationLogEntry(fields);
      if (e) lines.push({ id, ...e });
    }
    n += batch.length;
    if (batch.length) last = batch.at(-1)![0];
    if (batch.length < PAGE) break;
  }
  return { lines, last };
}
