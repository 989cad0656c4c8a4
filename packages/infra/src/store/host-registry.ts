import type { RedisClient } from '../redis/connection.js';
import { fields, HOST_ENTRY_SIG, HostInfo, keys, type Keys } from '@ferry/core';

/** Hosts as their workers publish them: address, LXC path, capabilities, containers, free space. */
export class HostRegistry {
  readonly k: Keys;
  constructor(
    readonly redis: RedisClient,
    prefix: string,
  ) {
    this.k = keys(prefix);
  }

  /** The entry, with its host's signature beside its fields (see signHostEntry). */
  async publish(info: HostInfo, sig?: string): Promise<void> {
    await this.redis.hset(this.k.hosts, fields.host(info.name), JSON.stringify(sig === undefined ? info : { ...info, [HOST_ENTRY_SIG]: sig }));
  }

  /** The entry as stored, signature and all, unchecked (for verifyHostEntry); null when there is none. */
  async raw(name: string): Promise<unknown> {
    const raw = await this.redis.hget(this.k.hosts, fields.host(name));
    if (!raw) return null;
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return {};
    }
  }

  /** The worker's liveness beat: one HSET, so it keeps its pace even when describing the host is slow. */
  async markAlive(name: string, at = Date.now()): Promise<void> {
    await this.redis.hset(this.k.hostsAlive, fields.host(name), String(at));
  }

  /** When the host's worker last marked itself alive, or null if it never did. */
  async lastAlive(name: string): Promise<number | null> {
    const raw = await this.redis.hget(this.k.hostsAlive, fields.host(name));
    return raw === null ? null : Number(raw);
  }

  /** When each host's worker last marked itself alive (ms), by host name. */
  async alive(): Promise<Map<string, number>> {
    const all = await this.redis.hgetall(this.k.hostsAlive);
    return new Map(Object.entries(all).map(([name, at]) => [name, Number(at)]));
  }

  async get(name: string): Promise<HostInfo | null> {
    const raw = await this.redis.hget(this.k.hosts, fields.host(name));
    if (!raw) return null;
    const parsed = HostInfo.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  async list(): Promise<HostInfo[]> {
    const all = await this.redis.hgetall(this.k.hosts);
    return Object.values(all)
      .map((raw) => HostInfo.safeParse(JSON.parse(raw)))
      .filter((p) => p.success)
      .map((p) => p.data)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async remove(name: string): Promise<void> {
    await this.redis.multi().hdel(this.k.hosts, fields.host(name)).hdel(this.k.hostsAlive, fields.host(name)).exec();
  }
}
