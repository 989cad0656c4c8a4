/**
 * Redis key, hash field and BullMQ queue names: the one place that spells them (the Lua scripts in
 * packages/infra/commands take theirs as KEYS/ARGV). Everything lives under one prefix, so a test
 * (or a second ferry installation) can use a fresh one. BullMQ forbids ':' in queue names and
 * custom job ids.
 */
export const DEFAULT_PREFIX = 'ferry';

/**
 * The prefix as a Redis Cluster hash tag: `ferry` → `{ferry}`. A Cluster places a key by the text
 * between its first `{` and the next `}` when there is one, so every key under `{ferry}:` (ferry's
 * and BullMQ's) lands in one slot, as the multi-key Lua scripts of both need (BullMQ asks for a
 * `{...}` prefix on Cluster). A prefix that already holds a hash tag is kept as it is.
 */
export function hashTagged(prefix: string): string {
  const open = prefix.indexOf('{');
  const close = open < 0 ? -1 : prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix : `{${prefix}}`;
}

export const queueNames = {
  scheduler: 'scheduler',
  /** Rebalance rounds: one at a time across every scheduler process (global concurrency 1). */
  rebalance: 'rebalance',
  host: (host: string) => `host-${host}`,
};

export function keys(prefix: string) {
  return {
    /** An operation's record: a hash of `fields.record` (JSON) and `fields.version`. */
    migration: (id: string) => `${prefix}:mig:${id}`,
    /** Field `<phase>.<index>` → the step's latest progress entry (JSON); advisory, shown by status. */
    progress: (id: string) => `${prefix}:mig:${id}:progress`,
    /** Field `<phase>.<index>.<run>` → when a worker first began that step run (ms): it may have acted. */
    starts: (id: string) => `${prefix}:mig:${id}:starts`,
    /** Field `<phase>.<index>.<run>` → how often the reconciler re-enqueued a lost step job. */
    replays: (id: string) => `${prefix}:mig:${id}:replays`,
    /** The operation's log (`ferry logs`), a stream of OperationLogEntry (operation-log.ts); removed with the record. */
    operationLog: (id: string) => `${prefix}:mig:${id}:log`,
    /** Every operation's id, scored by its creation time (ms). */
    migrations: `${prefix}:migs`,
    /**
     * The operations not ended yet, scored by creation time: what the reconciler looks at, however
     * many have ended since. A hint kept beside the records (added when one is created, removed
     * when one is saved ended): whoever reads it checks the record.
     */
    openOperations: `${prefix}:migs:open`,
    /** Which migration holds a container: one migration per container at a time. */
    lock: (container: string) => `${prefix}:lock:${container}`,
    /** Ownership epoch of a container, raised at each handover (fencing). */
    owner: (container: string) => `${prefix}:owner:${container}`,
    host: (host: string) => `${prefix}:host:${host}`,
    hosts: `${prefix}:hosts`,
    /** Host name → when its worker last said it is alive (ms); cheap, apart from the description. */
    hostsAlive: `${prefix}:hosts-alive`,
    /** Placement: container → the host it is pinned to (`*`: wherever it is); never moved by a round. */
    pins: `${prefix}:pins`,
    /** Placement: hosts that take no container (a set). */
    cordons: `${prefix}:cordons`,
    /** Placement: container → its anti-affinity group (containers of one group never share a host). */
    antiAffinity: `${prefix}:anti-affinity`,
    /** Placement: container → until when (ms) rebalancing leaves it alone. */
    cooldowns: `${prefix}:cooldowns`,
    /** The rebalancing policy (JSON, read through RebalancePolicy). */
    rebalancePolicy: `${prefix}:rebalance:policy`,
    /** One rebalance round (JSON RebalanceRound): its snapshot digest, plan, reasons, each move's outcome. */
    rebalanceRound: (id: string) => `${prefix}:rebalance:round:${id}`,
    /** Rounds by start time (a sorted set of round ids; the oldest beyond a few hundred are dropped). */
    rebalanceRounds: `${prefix}:rebalance:rounds`,
    /** Automatic gc's lease (a random token, with an expiry): one collection at a time across schedulers. */
    gcLease: `${prefix}:gc:lease`,
    /**
     * The schedulers' leader lease (its holder's token, expiring unless renewed): the one scheduler
     * that runs reconciler passes and rebalance rounds; the token fences the reconciler's saves.
     */
    leaderLease: `${prefix}:lease:leader`,
    /** API tokens: token id → its record (JSON TokenRecord, signed by the control key; api/token.ts). */
    apiTokens: `${prefix}:api:tokens`,
    /** The API's audit log (`ferry audit`), a stream of AuditEntry (api/audit.ts), XADD MAXLEN ~. */
    audit: `${prefix}:audit`,
    /** Patterns (for SCAN) that gc sweeps for leftovers: records and their hashes, locks, owners. */
    migrationAll: `${prefix}:mig:*`,
    lockAll: `${prefix}:lock:*`,
    ownerAll: `${prefix}:owner:*`,
    /** Pattern (for KEYS/SCAN) matching every key under the prefix, BullMQ's included. */
    all: `${prefix}:*`,
  };
}
export type Keys = ReturnType<typeof keys>;

/** Keys of the container toolbox (see toolbox.ts): exec sessions and request replies. */
export function toolboxKeys(prefix: string) {
  return {
    /** Output of an exec session, a stream: see ExecEntry. */
    execOut: (id: string) => `${prefix}:exec:${id}`,
    /** Signals the CLI asks for, a stream of entries with one field, `fields.execSignal`. */
    execCtl: (id: string) => `${prefix}:exec:${id}:ctl`,
    /** Exists (short TTL, refreshed) while the CLI is attached; gone → the worker ends the process. */
    execClient: (id: string) => `${prefix}:exec:${id}:client`,
    /** Exists (short TTL, refreshed) while a worker runs the session; gone → the CLI gives up. */
    execWorker: (id: string) => `${prefix}:exec:${id}:worker`,
    /** Set once by the worker that takes the session: a job delivered twice never runs twice. */
    execClaim: (id: string) => `${prefix}:exec:${id}:claim`,
    /** Pattern (for KEYS/SCAN) matching every exec session's keys. */
    execAll: `${prefix}:exec:*`,
    /** The answer to a toolbox request: a list holding one JSON ToolboxReply. */
    reply: (id: string) => `${prefix}:toolbox:${id}:reply`,
    /** Pattern (for KEYS/SCAN) matching every toolbox reply. */
    replyAll: `${prefix}:toolbox:*:reply`,
  };
}
export type ToolboxKeys = ReturnType<typeof toolboxKeys>;

/**
 * Field names inside the hashes (and streams) above. A step is named `<phase>.<index>`, one run
 * of it `<phase>.<index>.<run>`.
 */
export const fields = {
  /** Fields of `migration(id)`: the record as JSON, and its version apart (compared without decoding the JSON). */
  record: 'record',
  version: 'version',
  /** A step, `<phase>.<index>`: as `startedSteps()` names it. */
  step: (phase: string, index: number): string => `${phase}.${index}`,
  /** Field of `progress(id)`: the step's latest progress entry. */
  progress: (phase: string, index: number): string => fields.step(phase, index),
  /** Field of `starts(id)`: one run of a step. */
  start: (phase: string, index: number, run: number): string => `${fields.step(phase, index)}.${run}`,
  /** Field of `replays(id)`: one run of a step, as `start`. */
  replay: (phase: string, index: number, run: number): string => fields.start(phase, index, run),
  /** The step (`step(phase, index)`) a `start` or `replay` field is a run of. */
  stepOfRun: (field: string): string => field.split('.').slice(0, 2).join('.'),
  /** Fields of `owner(container)`: the ownership epoch and the owning host. */
  owner: { epoch: 'epoch', host: 'host' },
  /** Value of `pins` for a container pinned wherever it is. */
  pinnedInPlace: '*',
  /** Field of `hosts` and `hostsAlive`: the host's name. */
  host: (name: string): string => name,
  /** Field of an `execCtl(id)` stream entry: the signal to deliver. */
  execSignal: 'signal',
} as const;

/** Keys BullMQ owns that ferry reads itself. */
export const bullmqKeys = {
  /** A job's hash (data, options, `timestamp`, `processedOn`, `finishedOn`...), as `queue.toKey(jobId)` names it. */
  job: (prefix: string, queue: string, jobId: string): string => `${prefix}:${queue}:${jobId}`,
  /** A job's lock (its holder's token), from the job's key (`queue.toKey(jobId)`). */
  jobLock: (jobKey: string): string => `${jobKey}:lock`,
  /** Pattern (for SCAN) matching every queue's meta hash under the prefix: one per queue. */
  metaAll: (prefix: string): string => `${prefix}:*:meta`,
  /** The queue a meta key (as `metaAll` matches) belongs to, or null for another key. */
  queueOfMeta: (prefix: string, key: string): string | null => {
    const m = key.startsWith(`${prefix}:`) && key.endsWith(':meta') ? key.slice(prefix.length + 1, -':meta'.length) : '';
    return m && !m.includes(':') ? m : null;
  },
};

/** The BullMQ job scheduler that runs automatic rebalance rounds (`ferry rebalance auto on`). */
export const REBALANCE_AUTO = 'rebalance-auto';

/** Job id of a round asked for now (`ferry rebalance`). */
export function roundJobId(roundId: string): string {
  return `round.${roundId}`;
}

/** A round's id: `r-` and base-36 digits (its migrations' ids are made from it). */
export function newRoundId(now: number, random: () => number = Math.random): string {
  return `r-${newMigrationId(now, random).slice(2)}`;
}

/** The migration of a round's `index`th move: deterministic, so a round resumed after a crash submits no move twice. */
export function roundMigrationId(roundId: string, index: number): string {
  return `m-${roundId.slice(2)}x${index.toString(36)}`;
}

export type Phase = 'forward' | 'rollback';

export function stepJobId(migrationId: string, phase: Phase, index: number, run: number): string {
  return `${migrationId}.${phase}.${index}.r${run}`;
}

export function advanceJobId(migrationId: string, phase: Phase, index: number, run: number): string {
  return `adv.${stepJobId(migrationId, phase, index, run)}`;
}

export function newMigrationId(now: number, random: () => number = Math.random): string {
  const rand = Math.floor(random() * 36 ** 6)
    .toString(36)
    .padStart(6, '0');
  return `m-${now.toString(36)}${rand}`;
}
