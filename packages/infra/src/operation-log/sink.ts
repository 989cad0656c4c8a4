import type { RedisClient } from '../redis/connection.js';
import { encodeOperationLogEntry, keys, OPERATION_LOG, operationLogEntry, type OperationLogEntry } from '@ferry/core';

export interface OperationLogSinkOptions {
  /** The logging process when it is not a host's worker (`scheduler`); a worker's lines name their host. */
  source?: string;
  /** Entries kept per operation (default OPERATION_LOG.maxLen). */
  maxLen?: number;
  /** Lines per second per operation, sustained, and at once (defaults OPERATION_LOG.perSecond, .burst). */
  perSecond?: number;
  burst?: number;
  /** Lines waiting for Redis at most (default 2,000): beyond, while Redis is slow or away, lines are lost. */
  maxPending?: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Lines refused by the rate since the last one written: said in the next one that is. */
  dropped: number;
}

const BATCH = 200;

/**
 * A pino destination (one JSON line per write) that appends each line about an operation, info and
 * above, to that operation's log stream (keys.operationLog) — XADD MAXLEN ~, each line cut to
 * OPERATION_LOG.lineBytes. Logging must never wait for Redis nor fail because of it: `write` only
 * queues (bounded), a batch goes out as one pipeline after the current tick, and whatever Redis
 * answers, errors included, is counted, never thrown. Each operation's lines are rate-bounded (a
 * token bucket per operation), so one step logging in a loop cannot flood its stream; the lines
 * dropped are said in the next line that is written.
 */
export class OperationLogSink {
  private readonly k: ReturnType<typeof keys>;
  private readonly buckets = new Map<string, Bucket>();
  private pending: { id: string; entry: OperationLogEntry }[] = [];
  private flushing?: Promise<void>;
  private scheduled = false;
  /** Lines lost: refused by the rate, beyond maxPending, or refused by Redis. */
  readonly lost = { rate: 0, pending: 0, redis: 0 };

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly o: OperationLogSinkOptions = {},
  ) {
    this.k = keys(prefix);
  }

  /** pino's destination interface: one serialized line (JSON and a newline). Never throws. */
  write(line: string): boolean {
    try {
      if (!line.includes('"migrationId"')) return true; // most of a worker's lines: cheap to skip
      const e = operationLogEntry(JSON.parse(line) as Record<string, unknown>, this.o.source);
      if (e) this.add(e.id, e.entry);
    } catch {
      // A line that is not JSON is no operation's.
    }
    return true;
  }

  private add(id: string, entry: OperationLogEntry): void {
    const b = this.take(id, entry.time);
    if (!b) return;
    if (b.dropped) {
      this.enqueue(id, { time: entry.time, host: entry.host, level: 'warn', msg: `${b.dropped} log lines dropped here (over ${this.o.perSecond ?? OPERATION_LOG.perSecond} lines/s)` });
      b.dropped = 0;
    }
    this.enqueue(id, entry);
  }

  /** The operation's bucket with a token taken, or null (the line is dropped and counted). */
  private take(id: string, now: number): Bucket | null {
    const rate = this.o.perSecond ?? OPERATION_LOG.perSecond;
    const burst = this.o.burst ?? OPERATION_LOG.burst;
    let b = this.buckets.get(id);
    if (!b) {
      if (this.buckets.size >= 1000) this.forgetFull(now, rate, burst);
      b = { tokens: burst, at: now, dropped: 0 };
      this.buckets.set(id, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = Math.max(b.at, now);
    if (b.tokens < 1) {
      b.dropped++;
      this.lost.rate++;
      return null;
    }
    b.tokens--;
    return b;
  }

  /** Forgets buckets that have filled up again and dropped nothing: a new one would be the same. */
  private forgetFull(now: number, rate: number, burst: number): void {
    for (const [id, b] of this.buckets) if (!b.dropped && b.tokens + ((now - b.at) / 1000) * rate >= burst) this.buckets.delete(id);
  }

  private enqueue(id: string, entry: OperationLogEntry): void {
    if (this.pending.length >= (this.o.maxPending ?? 2000)) {
      this.lost.pending++;
      return;
    }
    this.pending.push({ id, entry });
    this.kick();
  }

  /** A flush after this tick (lines logged together go out together), unless one is due or running. */
  private kick(): void {
    if (this.scheduled || this.flushing || !this.pending.length) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        this.kick(); // lines queued after the loop's last look
      });
    });
  }

  /** Sends what is pending, a pipeline of up to BATCH entries at a time, until nothing is. */
  private async flush(): Promise<void> {
    const maxLen = String(this.o.maxLen ?? OPERATION_LOG.maxLen);
    while (this.pending.length) {
      const batch = this.pending.splice(0, BATCH);
      const pipe = this.redis.pipeline();
      for (const { id, entry } of batch) pipe.xadd(this.k.operationLog(id), 'MAXLEN', '~', maxLen, '*', ...encodeOperationLogEntry(entry));
      const replies = await pipe.exec().catch(() => null);
      this.lost.redis += replies ? replies.filter(([err]) => err).length : batch.length;
    }
  }

  /** Waits (at most `timeoutMs`) until what was written so far has reached Redis or been given up. */
  async drain(timeoutMs = 2000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while ((this.pending.length || this.flushing || this.scheduled) && Date.now() < end) {
      await Promise.race([this.flushing ?? new Promise((r) => setImmediate(r)), new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())))]);
    }
  }
}
