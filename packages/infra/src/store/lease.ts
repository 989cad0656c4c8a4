import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisClient } from '../redis/connection.js';
import type { Logger } from 'pino';
import { FerryError } from '@ferry/core';
import { scripts } from '../redis/scripts.js';

/** What a fenced action carries: the lease and the token its holder took it with. */
export interface LeaseFence {
  key: string;
  token: string;
}

export interface LeaseOptions {
  /** How long the lease outlives its holder's last renewal (a holder killed -9 is replaced after this). */
  ttlMs: number;
  /** How often a holding `run()` renews it (and a waiting one tries to take it); well under `ttlMs`. */
  renewEveryMs?: number;
  /** Shown in the token (`<holder>.<random>`), so `GET <key>` says who holds it. */
  holder?: string;
  log?: Logger;
  /** Called once each time this process takes the lease (after being without it). */
  onGained?(token: string): void;
  /** Called once each time it finds it no longer holds it (renewal refused, or its time ran out). */
  onLost?(): void;
}

/** Thrown by fenced actions of a holder that no longer holds its lease. */
export const LEASE_LOST = 'LEASE_LOST';

export function leaseLost(key: string): FerryError {
  return new FerryError(LEASE_LOST, `the lease ${key} is no longer held by this process; the action was not taken`, { retryable: true });
}

/**
 * A lease across processes: a Redis key holding its holder's random token, with an expiry that the
 * holder renews (hold-lease-1.lua). At most one process holds it at a time; one killed -9 is
 * replaced `ttlMs` after its last renewal. The token is the fencing token: actions that must happen
 * in one place pass `fence()` to writes that check it in Redis (save-if-leased-2.lua), so a holder
 * that was paused past its expiry and resumed cannot act, whatever it still believes. Locally, the
 * holder also counts itself out once `ttlMs` has passed since it sent its last successful renewal
 * (measured from before the call, so it never overestimates), before Redis would tell it.
 */
export class Lease {
  private token?: string;
  private validUntil = 0;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<boolean>;
  private readonly holder: string;

  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    private readonly o: LeaseOptions,
  ) {
    this.holder = o.holder ?? `${hostname()}:${process.pid}`;
  }

  /** Whether this process holds the lease now (as far as it can know without asking Redis). */
  get held(): boolean {
    return this.token !== undefined && Date.now() < this.validUntil;
  }

  /** The fence for an action to take now, or null when the lease is not held. */
  fence(): LeaseFence | null {
    return this.held && this.token ? { key: this.key, token: this.token } : null;
  }

  /** The fence, or LEASE_LOST. */
  mustFence(): LeaseFence {
    const f = this.fence();
    if (!f) throw leaseLost(this.key);
    return f;
  }

  /**
   * Asks Redis whether this process still holds the lease; LEASE_LOST if not. For actions that
   * cannot check the token atomically with their write (they must be idempotent).
   */
  async check(): Promise<void> {
    const f = this.mustFence();
    if ((await this.redis.get(this.key)) !== f.token) {
      this.lose();
      throw leaseLost(this.key);
    }
  }

  /** Takes or renews the lease once; whether this process holds it afterwards. */
  tick(): Promise<boolean> {
    this.ticking ??= this.hold().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** Keeps trying to take the lease, and renewing it once held, every `renewEveryMs`. */
  run(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.renewEveryMs ?? Math.max(100, Math.floor(this.o.ttlMs / 3)));
  }

  /** Stops renewing and gives the lease back if held (SIGTERM): another process takes it at its next try. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking?.catch(() => undefined);
    const token = this.token;
    if (!token) return;
    this.token = undefined;
    this.validUntil = 0;
    await scripts(this.redis).releaseLock(this.key, token).catch(() => undefined);
    this.o.log?.info({ lease: this.key, token }, 'lease released');
  }

  /** Stops renewing without giving it back (kill -9 in tests): it lapses after `ttlMs`. */
  abandon(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.token = undefined;
    this.validUntil = 0;
  }

  private async hold(): Promise<boolean> {
    const sent = Date.now();
    const fresh = `${this.holder}.${randomBytes(8).toString('hex')}`;
    let got: string | null;
    try {
      got = await scripts(this.redis).holdLease(this.key, this.token ?? '', fresh, this.o.ttlMs);
    } catch (err) {
      // Redis unreachable: still held until its time runs out (the `held` getter counts it).
      this.o.log?.warn({ err, lease: this.key }, 'lease renewal failed');
      if (this.token && !this.held) this.lose();
      return this.held;
    }
    if (got === null) {
      this.lose();
      return false;
    }
    const gained = got !== this.token;
    this.token = got;
    this.validUntil = sent + this.o.ttlMs;
    if (gained) {
      this.o.log?.info({ lease: this.key, token: got }, 'lease taken');
      this.o.onGained?.(got);
    }
    return true;
  }

  private lose(): void {
    if (this.token === undefined) return;
    this.o.log?.warn({ lease: this.key, token: this.token }, 'lease lost');
    this.token = undefined;
    this.validUntil = 0;
    this.o.onLost?.();
  }
}
