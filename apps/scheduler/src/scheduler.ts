import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import {
  currentSteps,
  FerryError,
  fencedContainer,
  newRecord,
  requestOf,
  queueNames,
  toErrorData,
  transition,
  isTerminal,
  withRecord,
  withWorkflow,
  type Command,
  type HostInfo,
  type MigrationRequestInput,
  type OperationEvent,
  type OperationKind,
  type OperationRecord,
  type Peer,
  type RejectedRecord,
  type SchedulerJob,
  type Workflow,
  JOB_TTL_MS,
  parseDuration,
  retentionFromEnv,
  type RetentionPolicy,
} from '@ferry/core';
import { HostRegistry, JobSigner, Lease, OperationLogSink, OperationStore, Queues, replicated, teeOperationLog, type LeaseFence, type MetricsListen, type RedisClient } from '@ferry/infra';
import { jobsOf, stepJob } from './step-jobs.js';
import { SchedulerGate, type AdmittedJob, type SchedulerTrust } from './trust/scheduler-gate.js';
import { Reconciler, type ReconcilerPort } from './reconciler.js';
import { Rebalancer } from './rebalancer.js';
import { Collector } from './collector.js';
import { SchedulerMetrics } from './metrics/index.js';

export interface SchedulerOptions {
  redis: RedisClient;
  prefix: string;
  log: Logger;
  /** Keys (from files, never Redis): requests and results are checked, every job enqueued is signed. */
  trust: SchedulerTrust;
  reconcileEveryMs?: number;
  /** Rebalance rounds (queue `rebalance`): on by default; how often a round looks at its moves. */
  rebalance?: false | { pollMs?: number; moveTimeoutMs?: number };
  /**
   * Automatic gc (Collector): on by default, every FERRY_GC_EVERY (default 10 min) under the
   * retention policy from the environment (retentionFromEnv).
   */
  gc?: false | { everyMs?: number; policy?: RetentionPolicy };
  /** A Prometheus endpoint (`ferry scheduler --metrics`); none when absent. */
  metrics?: MetricsListen;
  /**
   * The leader lease (`<prefix>:lease:leader`): the one scheduler that runs reconciler passes and
   * rebalance rounds. Its holder renews it every `renewEveryMs` (default 1 s); one killed -9 is
   * replaced `ttlMs` (default 3 s) after its last renewal.
   */
  leader?: { ttlMs?: number; renewEveryMs?: number };
  /**
   * Leave an ended operation's jobs to the queues' retention instead of removing them (see
   * forgetJobs): for diagnostics that read them afterwards (`npm run bench:scale -- --parts`).
   * Default: FERRY_KEEP_ENDED_JOBS=1 in the environment, else off.
   */
  keepEndedJobs?: boolean;
}

/**
 * States of a job that waits to be taken. Not `active`: a job in hand may be in the hand of a
 * scheduler that died (its lock lapses only after SCHEDULER_JOB_LOCK), which the reconciler must
 * not wait for.
 */
const WAITING = new Set<string>(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/** Scheduler queue jobs one scheduler handles at once. */
const SCHEDULER_CONCURRENCY = 16;

/** The scheduler queue's job lock: a scheduler killed mid-job leaves it to another within about this plus two stalled checks. */
const SCHEDULER_JOB_LOCK = { lockDuration: 10_000, stalledInterval: 5_000, maxStalledCount: 10 } as const;

/**
 * Plans migrations and advances them on step results. It never touches a host: it only decides
 * (the pure state machine in core) and puts steps on the queue of the host that must run them.
 * Any number may run on one Redis and prefix: every one takes jobs of the scheduler queue (each
 * job to one of them at a time; every record change is compare-and-set, so two applying the same
 * result apply it once and only the winner enqueues what follows), and the one holding the leader
 * lease also runs the reconciler and rebalance rounds, fenced by the lease's token.
 */
export class Scheduler {
  readonly store: OperationStore;
  readonly registry: HostRegistry;
  readonly queues: Queues;
  private readonly signer: JobSigner;
  private readonly gate: SchedulerGate;
  private worker?: Worker<SchedulerJob>;
  private reconciler?: Reconciler;
  rebalancer?: Rebalancer;
  collector?: Collector;
  private metrics?: SchedulerMetrics;
  /** Where the metrics endpoint answers, once started with `metrics`. */
  metricsUrl?: string;
  /** Held by one scheduler at a time: that one reconciles and runs rebalance rounds. */
  readonly leader: Lease;

  /** The scheduler's lines about an operation (planned, step enqueued, state changed...) to its log. */
  private readonly oplog: OperationLogSink;
  /** Aborted by stop and kill: background work (forgetJobs' later passes, one per ended operation) ends with it. */
  private readonly stopping = unboundedAbort();
  private readonly keepEndedJobs: boolean;

  constructor(readonly opts: SchedulerOptions) {
    this.keepEndedJobs = opts.keepEndedJobs ?? process.env.FERRY_KEEP_ENDED_JOBS === '1';
    this.oplog = new OperationLogSink(opts.redis, opts.prefix, { source: 'scheduler' });
    this.opts = { ...opts, log: teeOperationLog(opts.log, this.oplog) };
    this.store = new OperationStore(opts.redis, opts.prefix);
    this.registry = new HostRegistry(opts.redis, opts.prefix);
    this.queues = new Queues(opts.redis, opts.prefix);
    this.signer = new JobSigner(opts.trust.controlKey);
    this.gate = new SchedulerGate(opts.trust, this.store, this.opts.log);
    this.leader = new Lease(opts.redis, this.store.k.leaderLease, {
      ttlMs: opts.leader?.ttlMs ?? 3000,
      renewEveryMs: opts.leader?.renewEveryMs ?? 1000,
      log: this.opts.log,
      onGained: () => this.lead(),
      onLost: () => void this.rebalancer?.pause().catch((err: unknown) => this.opts.log.error({ err }, 'could not hand back the rebalance round')),
    });
  }

  /** Reconciler passes this scheduler has run (only while leading). */
  get reconcilePasses(): number {
    return this.reconciler?.passes ?? 0;
  }

  /** Whether this scheduler is the leader now (it runs the reconciler and rebalance rounds). */
  get leading(): boolean {
    return this.leader.held;
  }

  /** Became the leader: a reconcile pass at once (whatever the last leader left), and rounds taken. */
  private lead(): void {
    if (this.reconciler) void this.reconciler.tick().catch((err: unknown) => this.opts.log.error({ err }, 'reconcile failed'));
    if (this.rebalancer) void this.rebalancer.start().catch((err: unknown) => this.opts.log.error({ err }, 'could not take rebalance rounds'));
  }

  async start(): Promise<void> {
    if (this.opts.metrics) {
      // First: a port that cannot be had stops the start before any job is taken.
      this.metrics = new SchedulerMetrics({ store: this.store, queues: this.queues, prefix: this.opts.prefix, log: this.opts.log });
      this.metricsUrl = await this.metrics.serve(this.opts.metrics, this.opts.log);
    }
    // Several jobs at once, as several schedulers take them: each is a few Redis round trips, which
    // one at a time left this process waiting on Redis most of the time (bench:scale). Every record
    // change is compare-and-set, so two events of one migration handled at once apply one after
    // the other (the loser re-reads and re-applies, as between two schedulers); and a migration has
    // one step out at a time, so its results never overtake each other.
    this.worker = new Worker<SchedulerJob>(queueNames.scheduler, (job) => this.handle(job), {
      connection: this.opts.redis,
      prefix: this.opts.prefix,
      concurrency: SCHEDULER_CONCURRENCY,
      ...SCHEDULER_JOB_LOCK,
    });
    this.worker.on('failed', (job, err) => this.opts.log.error({ err, jobId: job?.id }, 'scheduler job failed'));
    // Connection errors (Redis restarting, a Sentinel failover): BullMQ reconnects by itself.
    this.worker.on('error', (err) => this.opts.log.warn({ err }, 'scheduler queue error'));
    const port: ReconcilerPort = {
      store: this.store,
      registry: this.registry,
      leading: () => this.leader.held,
      stepJob: (host, jobId) => this.queues.host(host).getJob(jobId),
      stepJobState: (host, jobId) => this.queues.host(host).getJobState(jobId),
      resultWaiting: async (jobId) => WAITING.has(await this.queues.scheduler.getJobState(jobId)),
      apply: (id, event) => this.apply(id, event, this.leader.mustFence()),
      reissue: (r) => this.reissueFenced(r),
      acceptResult: (reported) => this.gate.result(reported),
    };
    this.reconciler = new Reconciler(port, this.opts.log, this.opts.reconcileEveryMs ?? 1000);
    if (this.opts.rebalance !== false) {
      this.rebalancer = new Rebalancer({
        redis: this.opts.redis,
        prefix: this.opts.prefix,
        log: this.opts.log,
        submit: (id, request) => this.enqueueSubmit(id, request),
        fence: () => this.leader.check(),
        ...this.opts.rebalance,
      });
    }
    // Taken at once when free (a lone scheduler leads from its start), then kept or waited for.
    if (await this.leader.tick()) await this.rebalancer?.start();
    this.leader.run();
    await this.reconciler.start();
    if (this.opts.gc !== false) {
      const everyMs = this.opts.gc?.everyMs ?? gcEveryFromEnv();
      this.collector = new Collector({ redis: this.opts.redis, prefix: this.opts.prefix, log: this.opts.log.child({ component: 'gc' }), everyMs, policy: this.opts.gc?.policy ?? retentionFromEnv() });
      this.collector.start();
    }
    this.opts.log.info({ prefix: this.opts.prefix }, 'scheduler started');
  }

  /**
   * One reconcile pass now, queued behind one that runs (the reconciler also runs every
   * `reconcileEveryMs`): lost step jobs re-enqueued, steps on gone hosts failed or paused.
   */
  async reconcileNow(): Promise<void> {
    if (!this.reconciler) throw new Error('the scheduler is not started');
    await this.reconciler.tick();
  }

  /**
   * A migration asked for by the scheduler itself (a rebalance move): the same `submit` job the CLI
   * puts on the queue, with the same deterministic job id, so asking twice submits once.
   */
  async enqueueSubmit(migrationId: string, request: MigrationRequestInput): Promise<void> {
    await this.signer.add(this.queues.scheduler, 'submit', { kind: 'submit', migrationId, request }, { jobId: `submit.${migrationId}` }, JOB_TTL_MS.request);
  }

  /**
   * Finishes the job in hand, then stops (SIGTERM); a rebalance round in hand is handed back to
   * resume, and the leader lease is given back, so another scheduler leads at its next try (1 s).
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.reconciler?.stop();
    await this.rebalancer?.stop();
    await this.leader.release();
    await this.collector?.stop();
    await this.worker?.close();
    await this.oplog.drain();
    await this.metrics?.close();
    await this.queues.close();
  }

  /**
   * As under SIGKILL (tests): timers stop, jobs in hand are dropped where they are (BullMQ finds
   * them stalled), nothing is given back; the lease lapses after its TTL. The caller then closes
   * the Redis connection without a word.
   */
  async kill(): Promise<void> {
    this.stopping.abort();
    this.leader.abandon();
    this.reconciler?.stop();
    await Promise.all([this.worker?.close(true), this.rebalancer?.kill(), this.metrics?.close()]);
  }

  /**
   * Only what the gate admits is acted on: signed requests, results from their step's host. A
   * request is recorded as handled (on this scheduler's disk) once what it did is on a Redis
   * replica, where there are replicas: a failover that lost its effects (and its job's completion)
   * brings the request back, and it must be handled again, not refused as a replay. Handling one
   * again is harmless (a submit whose record exists does nothing; retry and cancel apply once).
   */
  private async handle(job: Job<SchedulerJob>): Promise<void> {
    const admitted = await this.gate.admit(job);
    await this.act(admitted.job);
    if (admitted.job.kind !== 'result') {
      const r = await replicated(this.opts.redis, this.opts.prefix).catch((err: unknown) => ({ replicas: -1, acked: 0, err }));
      if (r.replicas !== 0 && r.acked === 0) {
        // Left unrecorded: should a failover lose its effects, the request comes back and is handled again.
        this.opts.log.warn({ jobId: job.id, ...r }, 'request handled; no Redis replica acknowledged its effects within 1 s: not recorded as handled');
        return;
      }
    }
    await admitted.done();
  }

  private async act(d: AdmittedJob): Promise<void> {
    switch (d.kind) {
      case 'submit':
        return this.submit(d.migrationId, d.request, d.op ?? 'migrate');
      case 'result':
        // Applied first to the record the gate read to check it (one read fewer per step): a
        // record that moved on since fails the compare-and-set, and is read again.
        await this.apply(d.result.migrationId, { type: 'step-result', ...d.result }, undefined, d.record);
        return;
      case 'retry':
        await this.apply(d.migrationId, { type: 'retry' });
        return;
      case 'cancel':
        await this.apply(d.migrationId, { type: 'cancel' });
        return;
    }
  }

  private async submit(id: string, raw: unknown, kind: OperationKind): Promise<void> {
    if (await this.store.get(id)) return; // redelivered submit
    await withWorkflow(kind, (wf) => this.plan(wf, id, raw));
  }

  /** Reads the request, resolves its hosts, holds its containers and saves the planned record. */
  private async plan<K extends OperationKind>(wf: Workflow<K>, id: string, raw: unknown): Promise<void> {
    const log = this.opts.log.child({ migrationId: id, kind: wf.kind });
    const now = Date.now();
    let request: ReturnType<Workflow<K>['parse']>;
    try {
      request = wf.parse(raw);
    } catch (e) {
      await this.reject(id, wf.kind, raw, e, now);
      return;
    }
    const locked: string[] = [];
    try {
      const infos = new Map<string, HostInfo>();
      for (const name of wf.hostNames(request)) {
        // Planned only from the host's own signed entry: a Redis writer cannot redirect the copy.
        const info = await this.gate.hostEntry(this.registry, name);
        if (!info) throw new FerryError('UNKNOWN_HOST', `unknown host '${name}'`);
        infos.set(name, info);
      }
      const info = (name: string): HostInfo => infos.get(name) ?? unknownHost(name);
      const p = wf.plan(request, (name) => info(name).capabilities);
      for (const name of wf.holds(request)) {
        const holder = await this.store.lock(name, id);
        if (holder !== id) throw new FerryError('CONTAINER_BUSY', `container ${name} is already being worked on by ${holder}`);
        locked.push(name);
      }
      const hosts = wf.hosts(request, (name) => peerOf(info(name)));
      const epoch = await this.store.nextEpoch(request.container);
      const record = newRecord({ id, kind: wf.kind, request, plan: p, hosts, epoch, now });
      await this.store.save(record, true);
      log.info({ container: request.container, hosts: wf.hostNames(request), mode: p.mode }, `${wf.kind} planned`);
      await this.apply(id, { type: 'start' });
    } catch (e) {
      for (const name of locked) await this.store.unlock(name, id);
      await this.reject(id, wf.kind, request, e, now);
    }
  }

  private async reject(id: string, kind: OperationKind, request: unknown, e: unknown, now: number): Promise<void> {
    const error = toErrorData(e);
    this.opts.log.warn({ migrationId: id, kind, error }, 'operation rejected');
    const r: RejectedRecord = { id, kind, state: 'rejected', request, error, createdAt: now, updatedAt: now, endedAt: now, version: 0 };
    if (await this.store.save(r, true)) this.metrics?.rejected(r);
  }

  /**
   * Applies an event with compare-and-set, then carries out the resulting commands. Two schedulers
   * applying the same event: one saves, the other re-reads and finds it applied (unchanged), so the
   * commands are carried out once. With a `fence` (the reconciler's), the save also requires that
   * lease still held (LEASE_LOST otherwise). `read`: the record as the caller has just read it,
   * tried first instead of a read here.
   */
  async apply(id: string, event: OperationEvent, fence?: LeaseFence, read?: OperationRecord): Promise<OperationRecord | RejectedRecord> {
    for (let tries = 0; tries < 20; tries++) {
      const cur = tries === 0 && read ? read : await this.store.mustGet(id);
      if (cur.state === 'rejected') return cur;
      const t = transition(cur, event, Date.now());
      if (!t.changed) return cur;
      if (!(await this.store.save(t.record, false, fence))) continue; // lost a race: re-read, re-apply
      if (t.record.state !== cur.state) this.opts.log.info({ migrationId: id, event: event.type, from: cur.state }, `now ${t.record.state}`);
      const saved = { ...t.record, version: t.record.version + 1 };
      this.metrics?.transition(cur, saved, event);
      await this.carryOut(saved, t.commands);
      return saved;
    }
    throw new FerryError('STORE_CONTENTION', `could not update migration ${id}: too many concurrent writers`, { retryable: true });
  }

  /**
   * The reconciler's re-issue of a lost step job, claimed first on the record as it was read, under
   * the leader lease (a version bump, nothing else changed): an old leader resumed after losing the
   * lease, or a record that moved on since it was read, re-issues nothing. The enqueue itself is
   * idempotent (the same job id).
   */
  private async reissueFenced(r: OperationRecord): Promise<void> {
    if (!(await this.store.save(r, false, this.leader.mustFence()))) return;
    await this.reissue({ ...r, version: r.version + 1 });
  }

  /** The current step's job again, under the record's fence (a lost job: same id, same input). */
  private async reissue(r: OperationRecord): Promise<void> {
    const step = currentSteps(r)[r.cursor];
    if (!step) return;
    await this.carryOut(r, [{ type: 'enqueue', phase: r.phase, index: r.cursor, run: r.run, step, fence: { epoch: r.epoch, owner: r.owner } }]);
  }

  /**
   * An ended operation's jobs leave the queues (see jobsOf), and its submit request. Two are
   * still locked now: the result being applied (this very job) and, often, the last step's job
   * (its worker sends the result before BullMQ marks the job completed). BullMQ removes no locked
   * job, so those are tried again a few times in the background, never awaited (that would hold
   * this result's lock). Whatever still stays goes by the retention; a failure loses only space.
   */
  private async forgetJobs(r: OperationRecord): Promise<void> {
    type Q = { remove(id: string): Promise<number> };
    let left: [Q, string][] = [...jobsOf(r).flatMap((j): [Q, string][] => [[this.queues.host(j.host), j.stepJob], [this.queues.scheduler, j.resultJob]]), [this.queues.scheduler, `submit.${r.id}`]];
    const pass = async () => {
      const removed = await Promise.all(left.map(([q, id]) => q.remove(id).catch(() => 1))); // 0: locked
      left = left.filter((_, i) => removed[i] === 0);
    };
    await pass();
    void (async () => {
      for (const wait of [500, 2000, 8000]) {
        if (!left.length) return;
        await sleep(wait, undefined, { signal: this.stopping.signal });
        await pass();
      }
    })().catch(() => undefined);
  }

  /** Idempotent: step jobs have deterministic ids, so carrying out a command twice is harmless. */
  private async carryOut(r: OperationRecord, commands: Command[]): Promise<void> {
    const log = this.opts.log.child({ migrationId: r.id });
    for (const c of commands) {
      if (c.type === 'enqueue') {
        // Fence first: the owner must be in force before any step issued under it can run.
        await this.store.fence(fencedContainer(r), c.fence.epoch, c.fence.owner);
        const j = stepJob(r, c.phase, c.index, c.run, c.step);
        // Said before the add: once added, its worker may start it (and say so) at once.
        log.info({ step: c.step.name, host: c.step.host, phase: c.phase, index: c.index, run: c.run }, 'step enqueued');
        await this.signer.add(this.queues.host(c.step.host), j.name, j.data, j.opts, JOB_TTL_MS.step);
      } else if (c.type === 'finished') {
        log.info({ state: c.state }, 'migration finished');
      }
    }
    if (isTerminal(r.state)) for (const name of holds(r)) await this.store.unlock(name, r.id);
    if (commands.some((c) => c.type === 'finished') && !this.keepEndedJobs) await this.forgetJobs(r);
  }
}

/** An AbortController whose signal any number of waits may listen to (no listener-count warning). */
function unboundedAbort(): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  return c;
}

/** The containers an operation holds, as its workflow says (released once its record is terminal). */
export function holds(r: OperationRecord): string[] {
  return withRecord(r, (wf, rec) => wf.holds(requestOf(rec)));
}

/** FERRY_GC_EVERY (a duration: 90s, 10m, 1h), default 10 minutes. */
function gcEveryFromEnv(): number {
  const v = process.env.FERRY_GC_EVERY;
  if (v === undefined || v === '') return 10 * 60_000;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new Error(`FERRY_GC_EVERY must be a duration (90s, 10m, 1h), not '${v}'`);
  return ms;
}

function peerOf(h: HostInfo): Peer {
  return { name: h.name, address: h.address, sshPort: h.sshPort, sshUser: h.sshUser, lxcPath: h.lxcPath };
}

function unknownHost(name: string): never {
  throw new FerryError('UNKNOWN_HOST', `unknown host '${name}'`);
}
