import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { queueNames, type StepJobData, type StepResultData } from '@ferry/core';
import { HostRegistry, OperationLogSink, OperationStore, Queues, ReplayGuard, signHostEntry, signResult, teeOperationLog, type MetricsListen, type RedisClient } from '@ferry/infra';
import type { HostConfig } from './config.js';
import type { StepContext } from './context.js';
import { Heartbeat } from './heartbeat.js';
import { createProcessor, type StepTable } from './processor.js';
import { Toolbox } from './exec/toolbox.js';
import { sweepAbandonedCopies } from './sweep.js';
import { sshRun, sshTargetFor } from './transfer/ssh.js';
import { claimHost, reclaimJobs, releaseHost, settleOrphans, WORKER_ENV } from './predecessor.js';
import type { Runtime } from './runtime/runtime.js';
import { CgroupLoadMeter, type LoadMeter } from './load/load-meter.js';
import { WorkerMetrics } from './metrics.js';
import { JobGate, type WorkerTrust } from './trust/job-gate.js';

export interface HostWorkerOptions {
  redis: RedisClient;
  prefix: string;
  host: HostConfig;
  runtime: Runtime;
  log: Logger;
  /** The control plane's public key (only jobs it signed run) and this host's key (signs results). */
  trust: WorkerTrust;
  concurrency?: number;
  /** Most bulk transfers at once on this host (default 2). */
  maxTransfers?: number;
  /** A peer silent this long is gone: a step against it stops retrying (default 20 s). */
  peerGoneMs?: number;
  /** The same while the container is frozen or stopped for the step (default 1.5 s). */
  peerGoneAtRestMs?: number;
  /**
   * The step implementations (default: the worker's own, `steps/`). Only simulated hosts (the
   * fast workflow tier, bench:scale) give others: fakes that act on an in-memory world (sim/).
   */
  steps?: StepTable;
  /**
   * Measures the host's capacity and its containers' load for the heartbeat (default: from their
   * cgroups, CgroupLoadMeter). The fast tier's fake hosts give loads of their own.
   */
  meter?: LoadMeter;
  /** A Prometheus endpoint of this worker's steps (`ferry worker --metrics`); none when absent. */
  metrics?: MetricsListen;
}

/**
 * The worker of one host: consumes only the queue named after this host and runs its steps
 * with the real tools. One worker per host: a second one refuses to start. The jobs of a worker
 * killed mid-step come back when its successor starts (or, if none does, after `lockDuration`);
 * steps are idempotent, so running one again is safe.
 */
export class HostWorker {
  private worker?: Worker<StepJobData, StepResultData>;
  private heartbeat: Heartbeat;
  /** exec, mount, umount, show: straight to this host, outside the workflow (see exec/toolbox.ts). */
  private toolbox?: Toolbox;
  private readonly abort = new AbortController();
  /** Set when stop() is called, before the grace period: from then on no step starts. */
  private closing = false;
  readonly store: OperationStore;
  readonly registry: HostRegistry;
  readonly queues: Queues;
  /** Each step's lines, info and above, to its operation's log (`ferry logs`); never waits for Redis. */
  private readonly oplog: OperationLogSink;
  private readonly metrics?: WorkerMetrics;
  /** Where the metrics endpoint answers, once started with `metrics`. */
  metricsUrl?: string;

  constructor(private readonly o: HostWorkerOptions) {
    this.store = new OperationStore(o.redis, o.prefix);
    this.registry = new HostRegistry(o.redis, o.prefix);
    this.queues = new Queues(o.redis, o.prefix);
    this.oplog = new OperationLogSink(o.redis, o.prefix);
    if (o.metrics) this.metrics = new WorkerMetrics(o.host.name);
    // Each entry signed with this host's key: the scheduler plans from no other (verifyHostEntry).
    const publisher: Pick<HostRegistry, 'publish' | 'markAlive'> = {
      publish: (info) => this.registry.publish(info, signHostEntry(o.trust.hostKey, info)),
      markAlive: (name, at) => this.registry.markAlive(name, at),
    };
    this.heartbeat = new Heartbeat(o.host, o.runtime, publisher, o.log, o.meter ?? new CgroupLoadMeter(o.runtime, o.log));
  }

  async start(): Promise<void> {
    await mkdir(this.o.host.stateDir, { recursive: true });
    const log = this.o.log.child({ host: this.o.host.name });
    // The jobs this host finished, on its own disk: a finished job re-added to Redis is a replay.
    const gate = new JobGate(this.o.trust.controlKey, await ReplayGuard.open(join(this.o.host.stateDir, 'trust', 'seen-jobs')), log);
    const ctxFor = (stepLog: Logger, progress: StepContext['progress']): StepContext => ({
      host: this.o.host,
      runtime: this.o.runtime,
      log: stepLog,
      progress,
      peerInfo: (name) => this.registry.get(name),
      signal: this.abort.signal,
    });
    const processor = createProcessor({
      store: this.store,
      registry: this.registry,
      maxTransfers: this.o.maxTransfers ?? 2,
      peerGoneMs: this.o.peerGoneMs ?? 20_000,
      // Frozen means hurry: its beat comes every 400 ms, so 1.5 s is several missed beats, and a
      // false alarm only rolls the migration back (the source resumes), while waiting is an outage.
      peerGoneAtRestMs: this.o.peerGoneAtRestMs ?? 1_500,
      queues: this.queues,
      log: teeOperationLog(log, this.oplog),
      stopping: () => this.abort.signal.aborted,
      closing: () => this.closing,
      context: ctxFor,
      gate,
      signResult: (r) => signResult(this.o.trust.hostKey, this.o.host.name, r),
      // Fake steps (the fast tier) have fake hosts without sshd: no SSH probe there.
      ...(this.o.steps ? { steps: this.o.steps } : { peerAnswers: (name: string) => this.peerAnswers(name) }),
    });
    const worker = new Worker<StepJobData, StepResultData>(
      queueNames.host(this.o.host.name),
      async (job, token) => {
        try {
          const run = () => processor(job, token);
          return await (this.metrics ? this.metrics.track(job.data, run, () => this.abort.signal.aborted) : run());
        } finally {
          void this.heartbeat.beat();
        }
      },
      {
        connection: this.o.redis,
        prefix: this.o.prefix,
        concurrency: this.o.concurrency ?? 4,
        lockDuration: 15_000,
        stalledInterval: 5_000,
        // A worker killed mid-step must not fail the job: the step runs again after a restart.
        maxStalledCount: 20,
        autorun: false, // not before this process holds the host (claimHost)
      },
    );
    worker.on('error', (err) => log.error({ err }, 'worker error'));
    this.worker = worker;
    try {
      const predecessor = await claimHost(this.o.host.stateDir, this.o.host.name, worker.id);
      process.env[WORKER_ENV] = worker.id; // inherited by every tool this worker runs
      if (predecessor) {
        const orphans = await settleOrphans(predecessor);
        const moved = await reclaimJobs(this.queues.host(this.o.host.name), this.o.redis, predecessor);
        if (moved.length || orphans.killed.length || orphans.waited.length) {
          log.warn({ predecessorPid: predecessor.pid, jobs: moved, orphans }, 'took back the steps of a worker that died');
        }
      }
      // Once the host is ours (a second worker is refused above, not by a taken port).
      if (this.o.metrics && this.metrics) this.metricsUrl = await this.metrics.serve(this.o.metrics, log);
      await this.heartbeat.start();
      await sweepAbandonedCopies(ctxFor(log, () => undefined), this.store).catch((err: unknown) => log.warn({ err }, 'sweep of abandoned copies failed'));
      void this.o.runtime.emptyTrash?.();
      worker.run().catch((err: unknown) => log.error({ err }, 'worker stopped'));
      this.toolbox = new Toolbox({ redis: this.o.redis, prefix: this.o.prefix, host: this.o.host, runtime: this.o.runtime, log, gate, lockHolder: (c) => this.store.lockHolder(c) });
      this.toolbox.start();
    } catch (e) {
      // A refused or half-started worker lets go of everything (and of the host, if it took it).
      await this.stop(0).catch(() => undefined);
      throw e;
    }
    log.info({ queue: queueNames.host(this.o.host.name), lxcPath: this.o.host.lxcPath }, 'worker started');
  }

  /**
   * Ends this worker at once, as SIGKILL ends its process, for tests that run workers in-process
   * (the fast workflow tier): nothing starts, finishes, reports or is handed back any more, the
   * beats stop, and the jobs in hand stay active under locks that are no longer renewed, for a
   * successor to take back (`reclaimJobs`) or BullMQ's stalled check. The host's lock and mark are
   * left as they are: the test frees the lock and marks the process dead, as the kernel would.
   */
  async kill(): Promise<void> {
    this.closing = true;
    this.heartbeat.stop();
    await Promise.all([this.worker?.close(true), this.toolbox?.stop(), this.metrics?.close()]);
  }

  /** SIGTERM: running steps are told to stop (they are retried later); then the worker closes. */
  /**
   * Whether a peer host answers over SSH now: a fresh connection (not the shared master, which may
   * be the stuck part), 1 s to connect, 1.5 s in all.
   */
  private async peerAnswers(name: string): Promise<boolean> {
    const peer = await this.registry.get(name).catch(() => null);
    if (!peer) return false;
    const target = { ...sshTargetFor({ sshKey: this.o.host.sshKey, knownHosts: this.o.host.knownHosts }, peer), connectTimeoutSec: 1 };
    return sshRun(target, 'true', [], { timeoutMs: 1500 }).then(
      () => true,
      () => false,
    );
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.closing = true;
    this.heartbeat.stop();
    const closed = Promise.all([this.worker?.close(), this.toolbox?.stop()]);
    const timer = setTimeout(() => this.abort.abort(), graceMs);
    try {
      await closed;
    } finally {
      clearTimeout(timer);
      await this.oplog.drain();
      if (this.worker) await releaseHost(this.o.host.stateDir, this.worker.id);
      await this.metrics?.close();
      await this.queues.close();
    }
  }
}
