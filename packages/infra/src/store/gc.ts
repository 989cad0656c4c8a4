import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import {
  bullmqKeys,
  fields,
  isTerminal,
  keys,
  queueNames,
  retentionJudge,
  toolboxKeys,
  toolboxQueues,
  type RetentionPolicy,
  type StoredRecord,
  type StepJobData,
} from '@ferry/core';
import { JOB_RETENTION } from '../redis/queues.js';
import { scripts } from '../redis/scripts.js';
import type { RedisClient } from '../redis/connection.js';
import { masters, serverOf } from '../redis/nodes.js';
import { HostRegistry } from './host-registry.js';

/** What one collection found and removed (or, dry, would remove). */
export interface GcReport {
  dryRun: boolean;
  policy: RetentionPolicy;
  operations: {
    /** Records looked at (every one in the index). */
    seen: number;
    /** Not ended: never removed. */
    open: number;
    kept: number;
    removed: number;
    /** The first few removed, newest first. */
    removedIds: string[];
    /** Index entries without a record, and hashes of records that are gone. */
    leftovers: number;
  };
  /** Container locks still held by an operation that has ended (a scheduler died before releasing them). */
  locksReleased: string[];
  /** Ownership epochs of containers on no host, unheld, with no unfinished step job fenced on them. */
  ownersRemoved: number;
  /** Cooldowns that have run out. */
  cooldownsRemoved: number;
  /** Finished jobs past JOB_RETENTION's age, per queue (BullMQ applies the count itself). */
  jobsRemoved: Record<string, number>;
  /** Hosts silent past the policy's hostForgetMs (or never registered) that no open operation names. */
  hostsForgotten: string[];
  /** Their queues, removed when no job of theirs was unfinished. */
  queuesRemoved: string[];
  /** exec and toolbox keys found without an expiry (a worker or CLI died between two writes): given one. */
  expiriesSet: number;
  /** Redis INFO memory used_memory, bytes, before and after. */
  memory: { before: number; after: number };
  ms: number;
}

export interface GcOptions {
  policy: RetentionPolicy;
  dryRun?: boolean;
  now?: number;
  log?: Logger;
}

const PAGE = 500;
/** What a leftover exec or toolbox key without an expiry is given (a live session refreshes its own). */
const LEFTOVER_TTL_S = 3600;
const UNFINISHED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * Redis INFO memory's used_memory, bytes: of the server holding the keys under `prefix` (on a
 * Cluster, the master serving the prefix's hash tag; elsewhere the one server).
 */
export async function usedMemory(redis: RedisClient, prefix = ''): Promise<number> {
  const info = await (await serverOf(redis, `${prefix}:`)).info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

/** Every key matching `pattern` (SCAN, never KEYS; on a Cluster, on every master). */
async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const out: string[] = [];
  for (const server of masters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
  }
  return [...new Set(out)];
}

/** The host a per-host queue serves (`host-`, `exec-`, `toolbox-`), or null for ferry's shared queues. */
function hostOfQueue(queue: string): string | null {
  for (const make of [queueNames.host, toolboxQueues.exec, toolboxQueues.admin]) {
    const head = make('');
    if (queue.startsWith(head) && queue.length > head.length) return queue.slice(head.length);
  }
  return null;
}

/** The hosts whose steps an operation runs or may run (forward and rollback). */
function hostsOf(r: StoredRecord): string[] {
  if (r.state === 'rejected') return [];
  return [...r.steps, ...r.rollback].map((s) => s.host);
}

/**
 * One garbage collection of everything ferry writes to Redis under `prefix`, as the retention
 * policy says; the owner of each key family is listed in docs/redis-keys.md. It never removes the
 * record of an operation that has not ended (nor one that changed since it was judged: the removal
 * is compare-and-set on the record's version), a lock an open operation holds, a job that is not
 * finished, or the queue of a host an open operation names. Safe to run beside schedulers and
 * workers; the scheduler runs it itself under a lease, one at a time (Collector).
 */
export async function collectGarbage(redis: RedisClient, prefix: string, o: GcOptions): Promise<GcReport> {
  const t0 = Date.now();
  const now = o.now ?? Date.now();
  const dry = o.dryRun ?? false;
  const k = keys(prefix);
  const tk = toolboxKeys(prefix);
  const lua = scripts(redis);
  const report: GcReport = {
    dryRun: dry,
    policy: o.policy,
    operations: { seen: 0, open: 0, kept: 0, removed: 0, removedIds: [], leftovers: 0 },
    locksReleased: [],
    ownersRemoved: 0,
    cooldownsRemoved: 0,
    jobsRemoved: {},
    hostsForgotten: [],
    queuesRemoved: [],
    expiriesSet: 0,
    memory: { before: await usedMemory(redis, prefix), after: 0 },
    ms: 0,
  };

  // 1. Operations, newest first: judge every record; collect what expired (with the version judged).
  const judge = retentionJudge(o.policy, now);
  const expired: { id: string; version: string }[] = [];
  const openHosts = new Set<string>();
  const ended = new Map<string, boolean>(); // id → whether its record has ended (for the locks below)
  for (let start = 0; ; start += PAGE) {
    const ids = await redis.zrevrange(k.migrations, start, start + PAGE - 1);
    if (!ids.length) break;
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hget(k.migration(id), fields.record);
    const raws = (await pipe.exec()) ?? [];
    ids.forEach((id, i) => {
      const [err, raw] = raws[i] ?? [null, null];
      if (err) throw err;
      report.operations.seen++;
      if (typeof raw !== 'string') {
        expired.push({ id, version: '-1' });
        report.operations.leftovers++;
        return;
      }
      const r = JSON.parse(raw) as StoredRecord;
      ended.set(id, isTerminal(r.state));
      const verdict = judge(r);
      if (verdict === 'open') {
        report.operations.open++;
        for (const h of hostsOf(r)) openHosts.add(h);
      } else if (verdict === 'keep') report.operations.kept++;
      else {
        expired.push({ id, version: String(r.version) });
        report.operations.removed++;
        if (report.operations.removedIds.length < 20) report.operations.removedIds.push(id);
      }
    });
  }

  // 2. Locks whose holder has ended (released by the scheduler normally; a scheduler killed between
  // saving the end and releasing leaves them). A holder with no record may be planning right now:
  // its lock is taken before its record is saved, so it is left alone.
  const lockPrefix = k.lock('');
  for (const key of await scanKeys(redis, k.lockAll)) {
    const holder = await redis.get(key);
    if (!holder) continue;
    let done = ended.get(holder);
    if (done === undefined) {
      const raw = await redis.hget(k.migration(holder), fields.record);
      done = raw ? isTerminal((JSON.parse(raw) as StoredRecord).state) : false;
    }
    if (!done) continue;
    const container = key.slice(lockPrefix.length);
    if (dry || (await lua.releaseLock(key, holder))) report.locksReleased.push(container);
  }

  // 3. Expired records with their hashes (only if unchanged since judged).
  if (!dry) {
    for (let i = 0; i < expired.length; i += PAGE) {
      await Promise.all(
        expired.slice(i, i + PAGE).map(({ id, version }) =>
          lua.dropOperation([k.migration(id), k.progress(id), k.starts(id), k.replays(id), k.operationLog(id), k.migrations], id, version),
        ),
      );
    }
  }

  // 4. Hashes and logs of records that are gone (a late progress write or log line, or an older gc's crash).
  const migPrefix = k.migration('');
  const expiredIds = new Set(expired.map((e) => e.id));
  const aux = new Map<string, string[]>();
  for (const key of await scanKeys(redis, k.migrationAll)) {
    const rest = key.slice(migPrefix.length);
    const id = rest.split(':')[0]!;
    if (rest === id) continue; // a record itself
    aux.set(id, [...(aux.get(id) ?? []), key]);
  }
  for (const [id, ks] of aux) {
    if (expiredIds.has(id)) continue;
    if (await redis.exists(k.migration(id))) continue;
    report.operations.leftovers++;
    if (!dry) await redis.del(...ks);
  }

  // 5. Cooldowns that have run out.
  const cooldowns = await redis.hgetall(k.cooldowns);
  const over = Object.entries(cooldowns)
    .filter(([, until]) => Number(until) < now)
    .map(([c]) => c);
  report.cooldownsRemoved = over.length;
  if (!dry && over.length) await redis.hdel(k.cooldowns, ...over);

  // 6. Queues: finished jobs past their age; queues of hosts that are gone.
  // Read loosely, not through HostInfo's schema: an entry another version of the worker wrote
  // still counts as a host, with its containers.
  const registry = new HostRegistry(redis, prefix);
  const alive = await redis.hgetall(k.hostsAlive);
  let unreadable = false;
  const hosts = Object.entries(await redis.hgetall(k.hosts)).map(([name, raw]) => {
    try {
      const h = JSON.parse(raw) as { lastSeen?: unknown; containers?: { name?: unknown }[] };
      const containers = Array.isArray(h.containers) ? h.containers.map((c) => c?.name).filter((n): n is string => typeof n === 'string') : [];
      return { name, lastSeen: typeof h.lastSeen === 'number' ? h.lastSeen : 0, containers };
    } catch {
      unreadable = true;
      return { name, lastSeen: Infinity, containers: [] as string[] };
    }
  });
  for (const name of Object.keys(alive)) if (!hosts.some((h) => h.name === name)) hosts.push({ name, lastSeen: 0, containers: [] });
  const lastSeen = new Map(hosts.map((h) => [h.name, Math.max(h.lastSeen, Number(alive[h.name] ?? 0))]));
  const gone = (host: string) => !openHosts.has(host) && now - (lastSeen.get(host) ?? -Infinity) >= o.policy.hostForgetMs;
  const queues = (await scanKeys(redis, bullmqKeys.metaAll(prefix))).map((key) => bullmqKeys.queueOfMeta(prefix, key)).filter((q): q is string => q !== null);
  const fenced = new Set<string>(); // containers an unfinished step job is fenced on
  const blocked = new Set<string>(); // gone hosts with a queue still holding unfinished jobs: kept
  for (const name of queues.sort()) {
    const q = new Queue(name, { connection: redis, prefix, skipMetasUpdate: true });
    try {
      const host = hostOfQueue(name);
      const counts = await q.getJobCounts(...UNFINISHED);
      const unfinished = Object.values(counts).reduce((a, b) => a + b, 0);
      if (host !== null && name === queueNames.host(host) && unfinished > 0) {
        for (const job of await q.getJobs([...UNFINISHED], 0, -1)) {
          const c = (job?.data as Partial<StepJobData> | undefined)?.fence?.container;
          if (typeof c === 'string') fenced.add(c);
        }
      }
      if (host !== null && gone(host)) {
        if (unfinished === 0) {
          report.queuesRemoved.push(name);
          if (!dry) await q.obliterate();
          continue;
        }
        blocked.add(host);
      }
      let removed = 0;
      for (const [type, age] of [
        ['completed', JOB_RETENTION.removeOnComplete.age],
        ['failed', JOB_RETENTION.removeOnFail.age],
      ] as const) {
        const graceMs = age * 1000;
        if (dry) removed += await redis.zcount(q.toKey(type), '-inf', String(now - graceMs));
        // clean() counts its grace back from the clock; `now` may be given later than it.
        else for (let n = 1; n > 0; removed += n) n = (await q.clean(Math.max(0, graceMs - (now - Date.now())), 1000, type)).length;
      }
      if (removed) report.jobsRemoved[name] = removed;
    } finally {
      await q.close();
    }
  }
  const forgotten = new Set(hosts.filter((h) => gone(h.name) && !blocked.has(h.name)).map((h) => h.name));
  for (const h of forgotten) {
    report.hostsForgotten.push(h);
    if (!dry) await registry.remove(h);
  }

  // 7. Ownership epochs of containers that are on no (remaining) host, held by nothing, and named
  // by no unfinished step job: a later operation on that name starts again from epoch 1.
  // A host entry that could not be read may name any container: then none is forgotten.
  const present = new Set(hosts.filter((h) => !forgotten.has(h.name)).flatMap((h) => h.containers));
  const ownerPrefix = k.owner('');
  for (const key of unreadable ? [] : await scanKeys(redis, k.ownerAll)) {
    const container = key.slice(ownerPrefix.length);
    if (present.has(container) || fenced.has(container)) continue;
    if ((await redis.type(key)) !== 'hash') continue;
    const epoch = (await redis.hget(key, fields.owner.epoch)) ?? '0';
    if (dry) {
      if (!(await redis.exists(k.lock(container)))) report.ownersRemoved++;
    } else if (await lua.dropOwner(key, k.lock(container), epoch)) report.ownersRemoved++;
  }

  // 8. exec and toolbox keys without an expiry: every one of them is written with one, in a second
  // command after the first (a process that died between them leaves it without).
  for (const pattern of [tk.execAll, tk.replyAll]) {
    for (const key of await scanKeys(redis, pattern)) {
      if ((await redis.pttl(key)) !== -1) continue;
      report.expiriesSet++;
      if (!dry) await redis.expire(key, LEFTOVER_TTL_S);
    }
  }

  report.memory.after = await usedMemory(redis, prefix);
  report.ms = Date.now() - t0;
  o.log?.info({ dryRun: dry, operations: report.operations, jobsRemoved: report.jobsRemoved, hostsForgotten: report.hostsForgotten, ownersRemoved: report.ownersRemoved, ms: report.ms }, 'garbage collected');
  return report;
}
