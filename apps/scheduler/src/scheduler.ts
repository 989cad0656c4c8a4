import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  FerryError,
  newRecord,
  kindOf,
  parseCloneRequest,
  parseUnifyRequest,
  planUnify,
  type UnifyRequest,
  parseMigrationRequest,
  plan,
  planClone,
  type CloneRequest,
  type MigrationRequest,
  type OperationKind,
  queueNames,
  toErrorData,
  transition,
  isTerminal,
  type Command,
  type MigrationEvent,
  type MigrationRecord,
  type SchedulerJob,
} from '@ferry/core';
import { HostRegistry, MigrationStore, Queues } from '@ferry/infra';
import { stepJob } from './step-jobs.js';

/** The containers an operation holds: none of them may be in another operation meanwhile. */
function lockedNames(kind: OperationKind, request: MigrationRequest | CloneRequest | UnifyRequest): string[] {
  if (kind === 'clone') return [request.container, (request as CloneRequest).name];
  if (kind === 'unify') return (request as UnifyRequest).containers;
  return [request.container];
}
import { Reconciler } from './reconciler.js';

export interface SchedulerOptions {
  redis: Redis;
  prefix: string;
  log: Logger;
  reconcileEveryMs?: number;
}

/**
 * Plans migrations and advances them on step results. It never touches a host: it only decides
 * (the pure state machine in core) and puts steps on the queue of the host that must run them.
 */
export class Scheduler {
  readonly store: MigrationStore;
  readonly registry: HostRegistry;
  readonly queues: Queues;
  private worker?: Worker<SchedulerJob>;
  private reconciler?: Reconciler;

  constructor(readonly opts: SchedulerOptions) {
    this.store = new MigrationStore(opts.redis, opts.prefix);
    this.registry = new HostRegistry(opts.redis, opts.prefix);
    this.queues = new Queues(opts.redis, opts.prefix);
  }

  async start(): Promise<void> {
    // One job at a time: events of a migration apply in order; each takes milliseconds.
    this.worker = new Worker<SchedulerJob>(queueNames.scheduler, (job) => this.handle(job), {
      connection: this.opts.redis,
      prefix: this.opts.prefix,
      concurrency: 1,
    });
    this.worker.on('failed', (job, err) => this.opts.log.error({ err, jobId: job?.id }, 'scheduler job failed'));
    this.reconciler = new Reconciler(this, this.opts.log, this.opts.reconcileEveryMs ?? 1000);
    await this.reconciler.start();
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

  /** Finishes the job in hand, then stops (SIGTERM). */
  async stop(): Promise<void> {
    this.reconciler?.stop();
    await this.worker?.close();
    await this.queues.close();
  }

  private async handle(job: Job<SchedulerJob>): Promise<void> {
    const d = job.data;
    switch (d.kind) {
      case 'submit':
        return this.submit(d.migrationId, d.request, d.op ?? 'migrate');
      case 'result':
        await this.apply(d.result.migrationId, { type: 'step-result', ...d.result });
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
    const log = this.opts.log.child({ migrationId: id, kind });
    const now = Date.now();
    let request: MigrationRequest | CloneRequest | UnifyRequest;
    try {
      request = kind === 'clone' ? parseCloneRequest(raw) : kind === 'unify' ? parseUnifyRequest(raw) : parseMigrationRequest(raw);
    } catch (e) {
      await this.reject(id, raw, e, now);
      return;
    }
    const [source, target] = await Promise.all([this.registry.get(request.from), this.registry.get(request.to)]);
    const locked: string[] = [];
    try {
      if (!source) throw new FerryError('UNKNOWN_HOST', `unknown host '${request.from}'`);
      if (!target) throw new FerryError('UNKNOWN_HOST', `unknown host '${request.to}'`);
      const p =
        kind === 'clone'
          ? planClone(request as CloneRequest)
          : kind === 'unify'
            ? planUnify(request as UnifyRequest)
            : plan(request as MigrationRequest, { source: source.capabilities, target: target.capabilities });
      // A clone holds its source (it may freeze it) and its new name (two clones must not race for it).
      for (const name of lockedNames(kind, request)) {
        const holder = await this.store.lock(name, id);
        if (holder !== id) throw new FerryError('CONTAINER_BUSY', `container ${name} is already being worked on by ${holder}`);
        locked.push(name);
      }
      const peer = (h: typeof source) => ({ name: h.name, address: h.address, sshPort: h.sshPort, sshUser: h.sshUser, lxcPath: h.lxcPath });
      const epoch = await this.store.nextEpoch(request.container);
      const record = newRecord({ id, kind, request, plan: p, hosts: { source: peer(source), target: peer(target) }, epoch, now });
      await this.store.save(record, true);
      log.info({ container: request.container, from: request.from, to: request.to, mode: p.mode }, `${kind} planned`);
      await this.apply(id, { type: 'start' });
    } catch (e) {
      for (const name of locked) await this.store.unlock(name, id);
      await this.reject(id, request, e, now);
    }
  }

  private async reject(id: string, request: unknown, e: unknown, now: number): Promise<void> {
    const error = toErrorData(e);
    this.opts.log.warn({ migrationId: id, error }, 'migration rejected');
    const r = { id, request, state: 'rejected', error, createdAt: now, updatedAt: now, endedAt: now, steps: [], rollback: [], version: 0 };
    await this.store.save(r as unknown as MigrationRecord, true);
  }

  /** Applies an event with compare-and-set, then carries out the resulting commands. */
  async apply(id: string, event: MigrationEvent): Promise<MigrationRecord> {
    for (let tries = 0; tries < 20; tries++) {
      const cur = await this.store.mustGet(id);
      if (cur.state === 'rejected') return cur;
      const t = transition(cur, event, Date.now());
      if (!t.changed) return cur;
      if (!(await this.store.save(t.record))) continue; // lost a race: re-read, re-apply
      const saved = { ...t.record, version: t.record.version + 1 };
      await this.carryOut(saved, t.commands);
      return saved;
    }
    throw new FerryError('STORE_CONTENTION', `could not update migration ${id}: too many concurrent writers`, { retryable: true });
  }

  /** Idempotent: step jobs have deterministic ids, so carrying out a command twice is harmless. */
  async carryOut(r: MigrationRecord, commands: Command[]): Promise<void> {
    const log = this.opts.log.child({ migrationId: r.id });
    for (const c of commands) {
      if (c.type === 'enqueue') {
        // Fence first: the owner must be in force before any step issued under it can run.
        await this.store.fence(r.request.container, c.fence.epoch, c.fence.owner);
        const j = stepJob(r, c.phase, c.index, c.run, c.step);
        await this.queues.host(c.step.host).add(j.name, j.data, j.opts);
        log.info({ step: c.step.name, host: c.step.host, phase: c.phase, index: c.index, run: c.run }, 'step enqueued');
      } else if (c.type === 'finished') {
        log.info({ state: c.state }, 'migration finished');
      }
    }
    if (isTerminal(r.state)) for (const name of lockedNames(kindOf(r), r.request)) await this.store.unlock(name, r.id);
  }
}
