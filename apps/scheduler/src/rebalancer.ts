import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  moveOpen,
  outcomeOf,
  planRebalance,
  queueNames,
  roundMigrationId,
  snapshotDigest,
  type MigrationRequestInput,
  type RebalanceJob,
  type RebalanceRound,
} from '@ferry/core';
import { HostRegistry, OperationStore, PlacementStore, Queues, readCluster, RoundStore } from '@ferry/infra';

export interface RebalancerOptions {
  redis: Redis;
  prefix: string;
  log: Logger;
  /** Submits a migration through the scheduler's ordinary path (a `submit` job on its queue). */
  submit(migrationId: string, request: MigrationRequestInput): Promise<void>;
  /** How often a round looks at its moves' records (default 1 s). */
  pollMs?: number;
  /** A round stops waiting for its moves this long after it began (default 1 h); they go on. */
  moveTimeoutMs?: number;
}

/**
 * Runs rebalance rounds, the jobs of queue `rebalance`: automatic ones from the BullMQ job scheduler
 * `REBALANCE_AUTO` (`ferry rebalance auto on`), and rounds asked for now (`ferry rebalance`). One at a
 * time across every scheduler process (the queue's global concurrency is 1). A round reads the
 * cluster (the registry's load, pins, cordons, cooldowns, the policy), plans with `planRebalance`,
 * records the round, then submits each move as an ordinary migration and waits until every move has
 * ended (done, rolled back, paused, rejected), so the next round plans from where things are. Every
 * moved container, and every container whose move failed, cools down. A round is resumable: a
 * scheduler killed in the middle leaves the job to another (or to itself once restarted), which finds
 * the recorded round and goes on from it; the moves' migration ids are made from the round's id, so no
 * move is submitted twice.
 */
export class Rebalancer {
  readonly store: OperationStore;
  readonly registry: HostRegistry;
  readonly placement: PlacementStore;
  readonly rounds: RoundStore;
  private readonly queues: Queues;
  private worker?: Worker<RebalanceJob>;
  private stopping = false;

  constructor(private readonly o: RebalancerOptions) {
    this.store = new OperationStore(o.redis, o.prefix);
    this.registry = new HostRegistry(o.redis, o.prefix);
    this.placement = new PlacementStore(o.redis, o.prefix);
    this.rounds = new RoundStore(o.redis, o.prefix);
    this.queues = new Queues(o.redis, o.prefix);
  }

  async start(): Promise<void> {
    await this.queues.rebalance.setGlobalConcurrency(1);
    this.worker = new Worker<RebalanceJob>(queueNames.rebalance, (job, token) => this.handle(job, token), {
      connection: this.o.redis,
      prefix: this.o.prefix,
      concurrency: 1,
      // A scheduler killed mid-round leaves the job active: taken again, it resumes the round.
      maxStalledCount: 10,
    });
    this.worker.on('failed', (job, err) => this.o.log.error({ err, jobId: job?.id }, 'rebalance round failed'));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.worker?.close();
    await this.queues.close();
  }

  private async handle(job: Job<RebalanceJob>, token?: string): Promise<RebalanceRound> {
    try {
      return await this.round(job.data.roundId ?? roundIdOfJob(job.id ?? job.name), job.data.trigger, { allowRestart: job.data.allowRestart === true });
    } catch (e) {
      if (!(e instanceof Stopping) || !token) throw e;
      // Handed back unfinished: the next scheduler (or this one restarted) resumes the round.
      await job.moveToDelayed(Date.now() + 500, token);
      throw new DelayedError();
    }
  }

  /** Runs (or resumes) the round `id` until every move has ended; returns its record. */
  async round(id: string, trigger: RebalanceJob['trigger'], o: { allowRestart?: boolean } = {}): Promise<RebalanceRound> {
    const log = this.o.log.child({ round: id });
    let r = await this.rounds.get(id);
    if (!r) {
      const now = Date.now();
      const view = await readCluster(this);
      const policy = o.allowRestart ? { ...view.policy, allowRestart: true } : view.policy;
      const { moves, ...plan } = planRebalance(view.snapshot, policy);
      r = {
        id,
        trigger,
        state: moves.length ? 'planned' : 'done',
        startedAt: now,
        ...(moves.length ? {} : { endedAt: now }),
        digest: snapshotDigest(view.snapshot),
        policy,
        notes: view.notes,
        plan,
        moves: moves.map((m, i) => ({ ...m, migrationId: roundMigrationId(id, i), outcome: 'pending' as const })),
      };
      await this.rounds.save(r);
      log.info({ trigger, digest: r.digest, moves: r.moves.map((m) => `${m.container} ${m.from}->${m.to}`), note: plan.note }, 'rebalance round planned');
    }
    if (r.state === 'done') return r;
    if (r.state === 'planned') {
      for (const m of r.moves) {
        // Cooling down from the moment it is asked for: a round that dies here moves it no sooner.
        await this.placement.coolDown(m.container, Date.now() + r.policy.cooldownMs);
        await this.o.submit(m.migrationId, { container: m.container, from: m.from, to: m.to, mode: m.mode });
      }
      r = { ...r, state: 'moving' };
      await this.rounds.save(r);
    }
    const deadline = r.startedAt + (this.o.moveTimeoutMs ?? 3_600_000);
    while (r.moves.some((m) => moveOpen(m.outcome))) {
      let changed = false;
      for (const m of r.moves) {
        if (!moveOpen(m.outcome)) continue;
        const rec = await this.store.get(m.migrationId);
        if (!rec) continue;
        const outcome = outcomeOf(rec.state);
        if (outcome === m.outcome) continue;
        changed = true;
        m.outcome = outcome;
        if (!moveOpen(outcome)) {
          m.endedAt = Date.now();
          if (outcome !== 'done' && rec.error) m.error = `${rec.error.code}: ${rec.error.message}`;
          await this.placement.coolDown(m.container, m.endedAt + r.policy.cooldownMs);
          log.info({ container: m.container, from: m.from, to: m.to, migrationId: m.migrationId, outcome }, 'rebalance move ended');
        }
      }
      if (Date.now() > deadline) {
        for (const m of r.moves) if (moveOpen(m.outcome)) m.outcome = 'timed-out';
        changed = true;
      }
      if (changed) await this.rounds.save(r);
      // Stopping (SIGTERM): the job is handed back unfinished and resumed by the next scheduler.
      if (this.stopping) throw new Stopping();
      if (r.moves.some((m) => moveOpen(m.outcome))) await sleep(this.o.pollMs ?? 1000);
    }
    r = { ...r, state: 'done', endedAt: Date.now() };
    await this.rounds.save(r);
    log.info({ outcomes: r.moves.map((m) => `${m.container}: ${m.outcome}`) }, 'rebalance round done');
    return r;
  }
}

/** An automatic round's id, from its job's id (stable across a resume of the same job). */
export function roundIdOfJob(jobId: string): string {
  return `r-${createHash('sha256').update(jobId).digest('hex').slice(0, 12)}`;
}

class Stopping extends Error {
  override name = 'Stopping';
  constructor() {
    super('scheduler stopping: the round resumes in the next one');
  }
}
