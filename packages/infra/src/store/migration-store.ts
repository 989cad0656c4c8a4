import type { Redis } from 'ioredis';
import { FerryError, keys, type Keys, type MigrationRecord } from '@ferry/core';

// Compare-and-set on the record's version, so two schedulers (or a stale one) never overwrite
// each other: the loser re-reads and re-applies its event.
const SAVE_IF_VERSION = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = cjson.decode(cur)['version']
  if tostring(v) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '-1' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

export interface ProgressEntry {
  phase: string;
  index: number;
  stage: string;
  at: number;
  [k: string]: unknown;
}

/** Migration records, progress, container locks and ownership epochs in Redis. */
export class MigrationStore {
  readonly k: Keys;
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.k = keys(prefix);
  }

  async get(id: string): Promise<MigrationRecord | null> {
    const raw = await this.redis.get(this.k.migration(id));
    return raw ? (JSON.parse(raw) as MigrationRecord) : null;
  }

  async mustGet(id: string): Promise<MigrationRecord> {
    const r = await this.get(id);
    if (!r) throw new FerryError('MIGRATION_NOT_FOUND', `no migration with id ${id}`);
    return r;
  }

  /** Saves `next` only if the stored version is still `next.version`; bumps it. */
  async save(next: MigrationRecord, isNew = false): Promise<boolean> {
    const expected = isNew ? '-1' : String(next.version);
    const stored = { ...next, version: isNew ? 0 : next.version + 1 };
    const ok = (await this.redis.eval(SAVE_IF_VERSION, 1, this.k.migration(next.id), expected, JSON.stringify(stored))) === 1;
    if (ok && isNew) await this.redis.zadd(this.k.migrations, next.createdAt, next.id);
    return ok;
  }

  /** Newest first. */
  async list(limit = 50): Promise<MigrationRecord[]> {
    const ids = await this.redis.zrevrange(this.k.migrations, 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.k.migration(id)));
    return raws.filter((x): x is string => x !== null).map((x) => JSON.parse(x) as MigrationRecord);
  }

  async setProgress(id: string, p: ProgressEntry): Promise<void> {
    await this.redis.hset(this.k.progress(id), `${p.phase}.${p.index}`, JSON.stringify(p));
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
    const field = `${phase}.${index}.${run}`;
    await this.redis.hsetnx(this.k.starts(id), field, String(at));
    return Number(await this.redis.hget(this.k.starts(id), field));
  }

  /** `phase.index` of every step some worker began (in any run). */
  async startedSteps(id: string): Promise<Set<string>> {
    const fields = await this.redis.hkeys(this.k.starts(id));
    return new Set(fields.map((f) => f.split('.').slice(0, 2).join('.')));
  }

  /** Counts one more re-enqueue of a lost step job; returns the count. */
  async countReplay(id: string, phase: string, index: number, run: number): Promise<number> {
    return this.redis.hincrby(this.k.replays(id), `${phase}.${index}.${run}`, 1);
  }

  /** The container's ownership: epoch and owning host (fencing). */
  async owner(container: string): Promise<{ epoch: number; host: string | null }> {
    const [epoch, host] = await this.redis.hmget(this.k.owner(container), 'epoch', 'host');
    return { epoch: Number(epoch ?? 0), host: host ?? null };
  }

  /** A new operation's epoch: one above every epoch the container has had. */
  async nextEpoch(container: string): Promise<number> {
    // An owner kept as a bare counter (the first layout) becomes a hash, keeping its epoch.
    const r = await this.redis.eval(
      `if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
         local e = redis.call('GET', KEYS[1])
         redis.call('DEL', KEYS[1])
         redis.call('HSET', KEYS[1], 'epoch', e)
       end
       return redis.call('HINCRBY', KEYS[1], 'epoch', 1)`,
      1,
      this.k.owner(container),
    );
    return Number(r);
  }

  /** Moves ownership forward to `epoch`/`host`; never back. Returns the epoch in force. */
  async fence(container: string, epoch: number, host: string): Promise<number> {
    const r = await this.redis.eval(
      `local cur = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
       if cur <= tonumber(ARGV[1]) then
         redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'host', ARGV[2])
         return tonumber(ARGV[1])
       end
       return cur`,
      1,
      this.k.owner(container),
      String(epoch),
      host,
    );
    return Number(r);
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
    await this.redis.eval(
      `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
      1,
      this.k.lock(container),
      migrationId,
    );
  }
}
