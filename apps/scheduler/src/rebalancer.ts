import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, Worker, type Job } from 'bullmq';
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
import { HostRegistry, LEASE_LOST, OperationStore, PlacementStore, Queues, readCluster, RoundStore, type RedisClient } from '@ferry/infra';

export interface RebalancerOptions {
  redis: RedisClient;
  prefix: string;
  log: Logger;
  /** Submits a migration through the scheduler's ordinary path (a `submit` job on its queue). */
  submit(migrationId: string, request: MigrationRequestInput): Promise<void>;
  /** How often a round looks at its moves' records (default 1 s). */
  pollMs?: number;
  /** A round stops waiting for its moves this long after it began (default 1 h); they go on. */
  moveTimeoutMs?: number;
  /**
   * Checked before each write a round makes (its record, a cooldown, a submit): throws LEASE_LOST
   * once this scheduler is no longer the leader, and the round is handed back to the next one.
   */
  fence?: () => Promise<void>;
}

/**
 * Runs rebalance rounds, the jobs of queue `rebalance`: automatic ones from the BullMQ job scheduler
 * `REBALANCE_AUTO` (`ferry rebalance auto on`), and rounds asked for now (`ferry rebalance`). One at a
 * time across every scheduler process: only the leader (the scheduler holding the leader lease)
 * takes rounds, each write of a round is checked against that lease first (`fence`), and the queue's
 * global concurrency is 1 besides. BullMQ's global concurrency alone does not make it true: a holder
 * paused past its job's lock is taken for dead, another takes the round, and the first, resumed,
 * would go on writing. A round reads the
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
  /** Taking rounds starts and stops as leadership comes and goes: one switch at a time. */
  private switching: Promise<void> = Promise.resolve();

  constructor(private readonly o: RebalancerOptions) {
    this.store = new OperationStore(o.redis, o.prefix);
    this.registry = new HostRegistry(o.redis, o.prefix);
    this.placement = new PlacementStore(o.redis, o.prefix);
    this.rounds = new RoundStore(o.redis, o.prefix);
    this.queues = new Queues(o.redis, o.prefix);
  }

  /** Begins taking rounds (this scheduler became the leader). */
  start(): Promise<void> {
    return this.switch(async () => {
      if (this.worker) return;
      this.stopping = false;
      await this.queues.rebalance.setGlobalConcurrency(1);
      this.worker = new Worker<RebalanceJob>(queueNames.rebalance, (job, token) => this.handle(job, token), {
        connection: this.o.redis,
        prefix: this.o.prefix,
        concurrency: 1,
        // A scheduler killed mid-round leaves the job active: taken again, it resumes the round,
        // within lockDuration + 2 stalled checks (about 20 s; the round's moves go on meanwhile).
        lockDuration: 10_000,
        stalledInterval: 5_000,
        maxStalledCount: 10,
      });
      this.worker.on('failed', (job, err) => this.o.log.error({ err, jobId: job?.id }, 'rebalance round failed'));
      this.worker.on('error', (err) => this.o.log.warn({ err }, 'rebalance queue error')); // reconnects by itself
    });
  }

  /** Stops taking rounds; a round in hand is handed back to resume in the next leader. */
  pause(): Promise<void> {
    return this.switch(async () => {
      const w = this.worker;
      if (!w) return;
      this.stopping = true;
      await w.close();
      this.worker = undefined;
    });
  }

  async stop(): Promise<void> {
    await this.pause();
    await this.queues.close();
  }

  /** As under SIGKILL (tests): the round in hand is left active, for BullMQ to find stalled. */
  async kill(): Promise<void> {
    this.stopping = true;
    await this.worker?.close(true);
    this.worker = undefined;
  }

  private switch(f: () => Promise<void>): Promise<void> {
    this.switching = this.switching.then(f, f);
    return this.switching;
  }

  private async fenced(): Promise<void> {
    if (this.stopping) throw new Stopping();
    await this.o.fence?.();
  }

  private async handle(job: Job<RebalanceJob>, token?: string): Promise<RebalanceRound> {
    try {
      return await this.round(job.data.roundId ?? roundIdOfJob(job.id ?? job.name), job.data.trigger, { allowRestart: job.data.allowRestart === true });
    } catch (e) {
      const leaseLost = (e as { code?: unknown }).code === LEASE_LOST;
      if (!(e instanceof Stopping || leaseLost) || !token) throw e;
      if (leaseLost) this.o.log.warn({ jobId: job.id }, 'no longer the leader: rebalance round handed back');
      // Handed back unfinished: the next leader (or this one restarted) resumes the round. A
      // holder whose job lock has lapsed meanwhile is refused here by BullMQ, which is as well.
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
      await this.fenced();
      await this.rounds.save(r);
      log.info({ trigger, digest: r.digest, moves: r.moves.map((m) => `${m.container} ${m.from}->${m.to}`), note: plan.note }, 'rebalance round planned');
    }
    if (r.state === 'done') return r;
    if (r.state === 'planned') {
      for (const m of r.moves) {
        await this.fenced();
        // Cooling down from the moment it is asked for: a round that dies here moves it no sooner.
        await this.placement.coolDown(m.container, Date.now() + r.policy.cooldownMs);
        await this.o.submit(m.migrationId, { container: m.container, from: m.from, to: m.to, mode: m.mode });
      }
      r = { ...r, state: 'moving' };
      await this.fenced();
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
          await this.fenced();
          await this.placement.coolDown(m.container, m.endedAt + r.policy.cooldownMs);
          log.info({ container: m.container, from: m.from, to: m.to, migrationId: m.migrationId, outcome }, 'rebalance move ended');
        }
      }
      if (Date.now() > deadline) {
        for (const m of r.moves) if (moveOpen(m.outcome)) m.outcome = 'timed-out';
        changed = true;
      }
      // Stopping (SIGTERM, or the lease lost): the job is handed back unfinished, resumed by the next leader.
      if (this.stopping) throw new Stopping();
      if (changed) {
        await this.fenced();
        await this.rounds.save(r);
      }
      if (r.moves.some((m) => moveOpen(m.outcome))) await sleep(this.o.pollMs ?? 1000);
    }
    r = { ...r, state: 'done', endedAt: Date.now() };
    await this.fenced();
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
