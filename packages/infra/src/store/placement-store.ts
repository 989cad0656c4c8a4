import type { RedisClient } from '../redis/connection.js';
import { fields, keys, parseOrThrow, RebalancePolicy, type Keys, type RebalancePolicyInput } from '@ferry/core';

/**
 * What operators decide about placement, kept in Redis for every scheduler and CLI: pins (never
 * moved by a round), cordons (hosts that take nothing), anti-affinity groups (never on one host
 * together), cooldowns (left alone after a move) and the rebalancing policy.
 */
export class PlacementStore {
  readonly k: Keys;
  constructor(
    readonly redis: RedisClient,
    prefix: string,
  ) {
    this.k = keys(prefix);
  }

  /** Pins a container: to `host`, or wherever it runs when no host is given. */
  async pin(container: string, host?: string): Promise<void> {
    await this.redis.hset(this.k.pins, container, host ?? fields.pinnedInPlace);
  }

  async unpin(container: string): Promise<boolean> {
    return (await this.redis.hdel(this.k.pins, container)) === 1;
  }

  /** Container → the host it is pinned to, or `true` when pinned in place. */
  async pins(): Promise<Map<string, string | true>> {
    const all = await this.redis.hgetall(this.k.pins);
    return new Map(Object.entries(all).map(([c, h]) => [c, h === fields.pinnedInPlace ? true : h]));
  }

  async cordon(host: string): Promise<void> {
    await this.redis.sadd(this.k.cordons, host);
  }

  async uncordon(host: string): Promise<boolean> {
    return (await this.redis.srem(this.k.cordons, host)) === 1;
  }

  async cordoned(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.k.cordons));
  }

  /** Puts containers in an anti-affinity group (each container is in one group at most). */
  async group(group: string, containers: readonly string[]): Promise<void> {
    if (containers.length) await this.redis.hset(this.k.antiAffinity, ...containers.flatMap((c) => [c, group]));
  }

  /** Takes containers out of their groups; how many were in one. */
  async ungroup(containers: readonly string[]): Promise<number> {
    return containers.length ? this.redis.hdel(this.k.antiAffinity, ...containers) : 0;
  }

  /** Container → its anti-affinity group. */
  async groups(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.k.antiAffinity)));
  }

  async coolDown(container: string, until: number): Promise<void> {
    await this.redis.hset(this.k.cooldowns, container, String(until));
  }

  /** Containers still cooling down at `now`, with until when. */
  async cooldowns(now = Date.now()): Promise<Map<string, number>> {
    const all = await this.redis.hgetall(this.k.cooldowns);
    return new Map(
      Object.entries(all)
        .map(([c, t]) => [c, Number(t)] as const)
        .filter(([, t]) => t > now),
    );
  }

  /** The policy in force: the stored settings over the defaults. */
  async policy(): Promise<RebalancePolicy> {
    const raw = await this.redis.get(this.k.rebalancePolicy);
    return RebalancePolicy.parse(raw ? JSON.parse(raw) : {});
  }

  /**
   * Changes policy settings; every problem of the result is reported at once (ValidationError) and
   * nothing is stored then.
   */
  async setPolicy(changes: RebalancePolicyInput): Promise<RebalancePolicy> {
    const raw = await this.redis.get(this.k.rebalancePolicy);
    const next = parseOrThrow(RebalancePolicy, { ...(raw ? JSON.parse(raw) : {}), ...changes }, 'policy');
    await this.redis.set(this.k.rebalancePolicy, JSON.stringify(next));
    return next;
  }
}
