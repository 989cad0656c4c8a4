import type { RedisClient } from '../redis/connection.js';
import { AUDIT, decodeAuditEntry, encodeAuditEntry, keys, type AuditEntry, type AuditLine } from '@ferry/core';

/**
 * The API's audit log in Redis (keys.ts `audit`): one stream entry per request, trimmed to about
 * `maxLen` entries (XADD MAXLEN ~) so it stays bounded whatever the traffic.
 */
export class AuditLog {
  private readonly key: string;

  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
    readonly maxLen: number = AUDIT.maxLen,
  ) {
    this.key = keys(prefix).audit;
  }

  async append(e: AuditEntry): Promise<string> {
    return (await this.redis.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', ...encodeAuditEntry(e)))!;
  }

  /**
   * Entries oldest first: the newest `limit` ones, or, after stream id `after`, the next `limit`.
   * Entries this version cannot read are skipped.
   */
  async read(o: { limit: number; after?: string }): Promise<AuditLine[]> {
    const raw = o.after !== undefined ? await this.redis.xrange(this.key, `(${o.after}`, '+', 'COUNT', o.limit) : (await this.redis.xrevrange(this.key, '+', '-', 'COUNT', o.limit)).reverse();
    const out: AuditLine[] = [];
    for (const [id, fields] of raw) {
      const e = decodeAuditEntry(fields);
      if (e) out.push({ id, ...e });
    }
    return out;
  }
}
