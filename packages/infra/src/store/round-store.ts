import type { RedisClient } from '../redis/connection.js';
import { keys, type Keys, type RebalanceRound } from '@ferry/core';

/** Rounds kept in history; older ones are dropped as new ones are recorded. */
const KEEP_ROUNDS = 500;

/** Rebalance rounds as recorded in Redis: one JSON value a round, and their order by start time. */
export class RoundStore {
  readonly k: Keys;
  constructor(
    readonly redis: RedisClient,
    prefix: string,
  ) {
    this.k = keys(prefix);
  }

  async save(r: RebalanceRound): Promise<void> {
    await this.redis.multi().set(this.k.rebalanceRound(r.id), JSON.stringify(r)).zadd(this.k.rebalanceRounds, r.startedAt, r.id).exec();
    const old = await this.redis.zrange(this.k.rebalanceRounds, 0, -(KEEP_ROUNDS + 1));
    if (old.length) await this.redis.multi().zrem(this.k.rebalanceRounds, ...old).del(...old.map((id) => this.k.rebalanceRound(id))).exec();
  }

  async get(id: string): Promise<RebalanceRound | null> {
    const raw = await this.redis.get(this.k.rebalanceRound(id));
    return raw ? (JSON.parse(raw) as RebalanceRound) : null;
  }

  /** The latest rounds, newest first. */
  async list(limit = 20): Promise<RebalanceRound[]> {
    const ids = await this.redis.zrevrange(this.k.rebalanceRounds, 0, limit - 1);
    if (!ids.length) return [];
    const raws = await this.redis.mget(...ids.map((id) => this.k.rebalanceRound(id)));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as RebalanceRound);
  }
}
