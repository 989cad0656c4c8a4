import type { RedisClient } from '../redis/connection.js';
import { FerryError, fields, isTerminal, keys, type Keys, type StoredRecord } from '@ferry/core';
import { scripts, type Scripts } from '../redis/scripts.js';
import { leaseLost, type LeaseFence } from './lease.js';

export interface ProgressEntry {
  phase: string;
  index: number;
  stage: string;
  at: number;
  [k: string]: unknown;
}

/** Migration records, progress, container locks and ownership epochs in Redis. */
export class OperationStore {
  readonly k: Keys;
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
  ) {
    this.k = keys(prefix);
  }

  /** The Lua scripts, registered on this connection at first use. */
  private get lua(): Scripts {
    return scripts(this.redis);
  }

  async get(id: string): Promise<StoredRecord | null> {
    const raw = await this.redis.hget(this.k.migration(id), fields.record);
    return raw ? (JSON.parse(raw) as StoredRecord) : null;
  }

  async mustGet(id: string): Promise<StoredRecord> {
    const r = await this.get(id);
    if (!r) throw new FerryError('MIGRATION_NOT_FOUND', `no operation with id ${id}`);
    return r;
  }

  /**
   * Saves `next` only if the stored version is still `next.version`; bumps it. Compare-and-set, so
   * two schedulers (or a stale one) never overwrite each other: the loser re-reads and re-applies
   * its event. With a `fence`, it saves only while that lease is still held by its token (the
   * reconciler's saves: a scheduler that lost the lease changes nothing); LEASE_LOST otherwise.
   */
  async save(next: StoredRecord, isNew = false, fence?: LeaseFence): Promise<boolean> {
    const expected = isNew ? '-1' : String(next.version);
    const stored = { ...next, version: isNew ? 0 : next.version + 1 };
    const key = this.k.migration(next.id);
    const json = JSON.stringify(stored);
    let ok: boolean;
    if (fence) {
      const r = await this.lua.saveIfLeased(key, fence.key, expected, stored.version, json, fence.token);
      if (r === 'lease-lost') throw leaseLost(fence.key);
      ok = r === 'saved';
    } else {
      ok = await this.lua.saveIfVersion(key, expected, stored.version, json);
    }
    if (ok && (isNew || isTerminal(next.state))) {
      const m = this.redis.multi();
      if (isNew) m.zadd(this.k.migrations, next.createdAt, next.id);
      if (isTerminal(next.state)) m.zrem(this.k.openOperations, next.id);
      else m.zadd(this.k.openOperations, next.createdAt, next.id);
      await m.exec();
    }
    return ok;
  }

  /**
   * The operations not ended, oldest first, however many have ended since they began. From the
   * open index, checked against each record: an id whose record ended or is gone leaves it. With
   * `newest`, the newest records are looked at too, and an unended one missing from the index (a
   * scheduler killed between the save and the index write) is put back.
   */
  async listOpen(newest = 0): Promise<StoredRecord[]> {
    const ids = await this.redis.zrange(this.k.openOperations, 0, -1);
    const raws = await this.fieldOfEach(ids, fields.record);
    const open = new Map<string, StoredRecord>();
    const ended: string[] = [];
    ids.forEach((id, i) => {
      const r = raws[i] ? (JSON.parse(raws[i]!) as StoredRecord) : null;
      if (r && !isTerminal(r.state)) open.set(id, r);
      else ended.push(id);
    });
    const missing = newest > 0 ? (await this.list(newest)).filter((r) => !isTerminal(r.state) && !open.has(r.id)) : [];
    if (ended.length || missing.length) {
      const m = this.redis.multi();
      if (ended.length) m.zrem(this.k.openOperations, ...ended);
      for (const r of missing) m.zadd(this.k.openOperations, r.createdAt, r.id);
      await m.exec();
    }
    for (const r of missing) open.set(r.id, r);
    return [...open.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Newest first. */
  async list(limit = 50): Promise<StoredRecord[]> {
    const ids = await this.redis.zrevrange(this.k.migrations, 0, limit - 1);
    const raws = await this.fieldOfEach(ids, fields.record);
    return raws.filter((x): x is string => x !== null).map((x) => JSON.parse(x) as StoredRecord);
  }

  /**
   * The newest `limit` records, newest first, as `list` gives them, reading a record again only
   * when its version moved since the copy in `known` (a cache the caller keeps between calls and
   * this call updates; records no longer among the newest leave it). For readers that poll, such as
   * the dashboard: a quiet fleet costs one version read per record.
   */
  async recent(limit: number, known: Map<string, StoredRecord>): Promise<StoredRecord[]> {
    const ids = limit > 0 ? await this.redis.zrevrange(this.k.migrations, 0, limit - 1) : []; // 0..-1 would be all
    const versions = await this.fieldOfEach(ids, fields.version);
    const stale = ids.filter((id, i) => versions[i] === null || known.get(id)?.version !== Number(versions[i]));
    const raws = await this.fieldOfEach(stale, fields.record);
    stale.forEach((id, i) => {
      const raw = raws[i];
      if (raw) known.set(id, JSON.parse(raw) as StoredRecord);
      else known.delete(id);
    });
    const newest = new Set(ids);
    for (const id of known.keys()) if (!newest.has(id)) known.delete(id);
    return ids.map((id) => known.get(id)).filter((r): r is StoredRecord => r !== undefined);
  }

  /** One field of each operation's hash, in one round trip (null where absent). */
  private async fieldOfEach(ids: string[], field: string): Promise<(string | null)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(this.k.migration(id), field);
    return ((await pipe.exec()) ?? []).map(([err, v]) => (err || typeof v !== 'string' ? null : v));
  }

  async setProgress(id: string, p: ProgressEntry): Promise<void> {
    await this.redis.hset(this.k.progress(id), fields.progress(p.phase, p.index), JSON.stringify(p));
  }

  async progress(id: string): Promise<Record<string, ProgressEntry>> {
    const h = await this.redis.hgetall(this.k.progress(id));
    return Object.fromEntries(Object.entries(h).map(([f, v]) => [f, JSON.parse(v) as ProgressEntry]));
  }

  /**
   * Marks that a worker began run `run` of step `phase.index` (it may act from now on) and returns
   * when the first such mark was made: a re-delivered job keeps the first start.
   */
  async markStarted(id: string, phase: string, index: number, run: number, at: number): Promise<number> {
    const field = fields.start(phase, index, run);
    await this.redis.hsetnx(this.k.starts(id), field, String(at));
    return Number(await this.redis.hget(this.k.starts(id), field));
  }

  /** `phase.index` of every step some worker began (in any run). */
  async startedSteps(id: string): Promise<Set<string>> {
    const runs = await this.redis.hkeys(this.k.starts(id));
    return new Set(runs.map(fields.stepOfRun));
  }

  /** Counts one more re-enqueue of a lost step job; returns the count. */
  async countReplay(id: string, phase: string, index: number, run: number): Promise<number> {
    return this.redis.hincrby(this.k.replays(id), fields.replay(phase, index, run), 1);
  }

  /** The container's ownership: epoch and owning host (fencing). */
  async owner(container: string): Promise<{ epoch: number; host: string | null }> {
    const [epoch, host] = await this.redis.hmget(this.k.owner(container), fields.owner.epoch, fields.owner.host);
    return { epoch: Number(epoch ?? 0), host: host ?? null };
  }

  /** A new operation's epoch: one above every epoch the container has had. */
  async nextEpoch(container: string): Promise<number> {
    // An owner kept as a bare counter (the first layout) becomes a hash, keeping its epoch.
    return this.lua.nextEpoch(this.k.owner(container));
  }

  /** Moves ownership forward to `epoch`/`host`; never back. Returns the epoch in force. */
  async fence(container: string, epoch: number, host: string): Promise<number> {
    return this.lua.fence(this.k.owner(container), epoch, host);
  }

  /** Takes the container's lock for a migration; returns the holder (this id when taken). */
  async lock(container: string, migrationId: string): Promise<string> {
    const key = this.k.lock(container);
    const set = await this.redis.set(key, migrationId, 'NX');
    if (set === 'OK') return migrationId;
    return (await this.redis.get(key)) ?? (await this.lock(container, migrationId));
  }

  async lockHolder(container: string): Promise<string | null> {
    return this.redis.get(this.k.lock(container));
  }

  /** Releases the lock only if this migration holds it. */
  async unlock(container: string, migrationId: string): Promise<void> {
    await this.lua.releaseLock(this.k.lock(container), migrationId);
  }
}
