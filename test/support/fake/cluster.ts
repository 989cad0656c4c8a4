import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { pino, type Logger } from 'pino';
import {
  isTerminal,
  JOB_TTL_MS,
  newMigrationId,
  parseRedisUrl,
  prefixFor,
  type CloneRequestInput,
  type MigrationRequestInput,
  type OperationKind,
  type OperationRecord,
  type RecordState,
  type StoredRecord,
  type UnifyRequest,
} from '@ferry/core';
import { connect, OperationStore, Queues, type RedisClient } from '@ferry/infra';
import { holds, Scheduler } from '../../../apps/scheduler/src/scheduler.js';
import { HostWorker } from '../../../apps/worker/src/host-worker.js';
import type { HostConfig } from '../../../apps/worker/src/config.js';
import { readJson, writeJsonAtomic } from '../../../apps/worker/src/json-files.js';
import { releaseHost, type WorkerMark } from '../../../apps/worker/src/predecessor.js';
import { freshPrefix } from '../redis.js';
import { TestKeys } from '../trust.js';
import { FakeRuntime } from '../../../apps/worker/src/sim/runtime.js';
import { FakeMeter } from '../../../apps/worker/src/sim/meter.js';
import { fakeSteps } from '../../../apps/worker/src/sim/steps.js';
import { FakeWorld } from '../../../apps/worker/src/sim/world.js';

/**
 * FAKE hosts, REAL control plane: the real Scheduler (with its reconciler) and one real HostWorker
 * per fake host, against a real redis-server under a fresh prefix, all in this process. Each
 * worker runs the fake steps on a FakeRuntime over the shared FakeWorld; its LXC path and state
 * dir are temp dirs (the runtime never writes there; the worker keeps its host mark there). No
 * root, no LXC, no sshd. This is the fast tier of the workflow tests; the lab tier tests the same
 * behaviour on real hosts.
 */
export interface FakeClusterOptions {
  /** REDIS_URL of the Redis to use: a redis-server (test/support/redis.ts), a Sentinel set or a Cluster (redis-ha.ts). */
  url: string;
  /** Fake hosts, each with a worker (default h1, h2). */
  hosts?: string[];
  world?: FakeWorld;
  /** The reconciler's period (default 60 s: tests call `scheduler.reconcileNow()`). */
  reconcileEveryMs?: number;
  log?: Logger;
  /** Metrics endpoints on 127.0.0.1, ports from the kernel (`metricsUrl`). */
  metrics?: boolean;
  /** The schedulers' leader lease (default 3 s, renewed every 1 s, as in production). */
  leader?: { ttlMs?: number; renewEveryMs?: number };
}

/** A unify request as submitted; `container` (its fence) defaults to the first of `containers`. */
type UnifyRequestInput = Omit<z.input<typeof UnifyRequest>, 'container'> & { container?: string };

const LOCAL_ANY_PORT = { host: '127.0.0.1', port: 0 };

/** The pid of a process that has exited and been reaped (what a killed worker's mark names). */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

export class FakeCluster {
  readonly world: FakeWorld;
  /** A fresh one per cluster; a hash tag on a Redis Cluster (prefixFor), as ferry's own processes make it. */
  readonly prefix: string;
  readonly scheduler: Scheduler;
  readonly store: OperationStore;
  /** The control-plane key and each host's key: submits and every job are signed as in production. */
  readonly keys = new TestKeys();
  private readonly schedulerDir = mkdtempSync(join(tmpdir(), 'ferry-fake-scheduler-'));
  private readonly queues: Queues;
  private readonly redis: RedisClient;
  private readonly log: Logger;
  /** Every scheduler running (the first one and those added), each with its own connection and state dir. */
  private readonly schedulers = new Map<Scheduler, { redis: RedisClient; dir: string }>();
  /** State dirs of the schedulers added (removed at the end, killed ones' too). */
  private readonly addedDirs: string[] = [];
  private named = 1;
  private readonly workers = new Map<string, { worker: HostWorker; redis: RedisClient }>();
  private readonly dirs = new Map<string, { root: string; host: HostConfig }>();
  private readonly crashes = new Map<string, Promise<void>>();

  private constructor(private readonly opts: FakeClusterOptions) {
    this.prefix = prefixFor(parseRedisUrl(opts.url), freshPrefix());
    this.world = opts.world ?? new FakeWorld();
    this.log = opts.log ?? pino({ level: process.env.FERRY_LOG_LEVEL ?? 'silent' });
    this.redis = connect(opts.url, { log: this.log });
    this.store = new OperationStore(this.redis, this.prefix);
    this.queues = new Queues(this.redis, this.prefix);
    this.scheduler = this.newScheduler('s1', this.schedulerDir, opts.metrics === true);
    this.world.faults.onCrash = (host) => {
      this.crashes.set(host, this.crash(host));
    };
  }

  /** Hosts in the world (created when missing), their workers, then the scheduler. */
  static async start(opts: FakeClusterOptions): Promise<FakeCluster> {
    const c = new FakeCluster(opts);
    for (const h of opts.hosts ?? ['h1', 'h2']) {
      if (!c.world.hosts.has(h)) c.world.addHost(h);
      await c.startWorker(h);
    }
    await c.scheduler.start();
    return c;
  }

  /** A scheduler on this cluster's Redis and prefix, signing with the cluster's control key. */
  private newScheduler(name: string, dir: string, metrics: boolean): Scheduler {
    const redis = connect(this.opts.url, { log: this.log });
    const s = new Scheduler({
      redis,
      prefix: this.prefix,
      // The first one's lines as ever (tests read them); another's name them.
      log: this.log.child(name === 's1' ? { component: 'scheduler' } : { component: 'scheduler', scheduler: name }),
      trust: this.keys.scheduler(dir),
      reconcileEveryMs: this.opts.reconcileEveryMs ?? 60_000,
      rebalance: { pollMs: 50 },
      ...(this.opts.leader ? { leader: this.opts.leader } : {}),
      ...(metrics ? { metrics: LOCAL_ANY_PORT } : {}),
    });
    this.schedulers.set(s, { redis, dir });
    return s;
  }

  /**
   * Another scheduler process beside the first (`s2`, `s3`...): same Redis, prefix and control key
   * (its public half is what every worker trusts), its own replay record, as a second machine has.
   */
  async addScheduler(): Promise<Scheduler> {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-fake-scheduler-'));
    this.addedDirs.push(dir);
    const s = this.newScheduler(`s${++this.named}`, dir, false);
    await s.start();
    return s;
  }

  /**
   * The scheduler dies as under SIGKILL: its timers stop, its jobs in hand stay active under its
   * locks, its leader lease is not given back, and its Redis connection is dropped without a QUIT.
   */
  async killScheduler(s: Scheduler): Promise<void> {
    const own = this.schedulers.get(s);
    if (!own) return;
    this.schedulers.delete(s);
    await s.kill();
    own.redis.disconnect();
  }

  /** Stops a scheduler as SIGTERM does: the job in hand finished, its leader lease given back. */
  async stopScheduler(s: Scheduler): Promise<void> {
    const own = this.schedulers.get(s);
    if (!own) return;
    this.schedulers.delete(s);
    await s.stop();
    await own.redis.quit().catch(() => own.redis.disconnect());
  }

  hostConfig(name: string): HostConfig {
    let d = this.dirs.get(name);
    if (!d) {
      const root = mkdtempSync(join(tmpdir(), `ferry-fake-${name}-`));
      d = {
        root,
        host: {
          name,
          address: '127.0.0.1',
          sshPort: 22,
          sshUser: 'root',
          lxcPath: root, // the heartbeat reads its free space; the fake runtime writes nothing there
          sshKey: join(root, 'no-ssh-key'),
          knownHosts: join(root, 'no-known-hosts'),
          stateDir: join(root, '.state'),
        },
      };
      this.dirs.set(name, d);
    }
    return d.host;
  }

  /** Starts (or, after a crash, restarts) the host's worker: it takes back what its dead predecessor held. */
  async startWorker(name: string): Promise<HostWorker> {
    if (this.workers.has(name)) throw new Error(`a worker already runs for ${name}`);
    await this.crashes.get(name);
    const host = this.hostConfig(name);
    const redis = connect(this.opts.url, { log: this.log });
    const worker = new HostWorker({
      redis,
      prefix: this.prefix,
      host,
      runtime: new FakeRuntime(this.world, name, host.lxcPath),
      steps: fakeSteps(this.world),
      meter: new FakeMeter(this.world),
      log: this.log.child({ component: 'worker' }),
      trust: this.keys.worker(name),
      ...(this.opts.metrics ? { metrics: LOCAL_ANY_PORT } : {}),
    });
    await worker.start();
    this.workers.set(name, { worker, redis });
    return worker;
  }

  /**
   * The host's worker dies as under SIGKILL (a crash fault does this by itself): its steps in hand
   * stop where they are and stay active in BullMQ under its locks. Then what the kernel does for a
   * dead process: the host's lock is free, and its mark names a process that is gone.
   */
  async crash(name: string): Promise<void> {
    const w = this.workers.get(name);
    if (!w) return;
    this.workers.delete(name);
    await w.worker.kill();
    w.redis.disconnect();
    const { stateDir } = this.hostConfig(name);
    const markFile = join(stateDir, 'worker.json');
    const mark = await readJson<WorkerMark>(markFile);
    if (!mark) throw new Error(`no worker mark in ${stateDir}`);
    await releaseHost(stateDir, mark.workerId);
    await writeJsonAtomic(markFile, { ...mark, pid: deadPid() });
  }

  /** Stops the host's worker as SIGTERM does (a clean stop: its successor has nothing to take back). */
  async stopWorker(name: string): Promise<void> {
    const w = this.workers.get(name);
    if (!w) return;
    this.workers.delete(name);
    await w.worker.stop(1000);
    await w.redis.quit().catch(() => w.redis.disconnect());
  }

  /** Where the scheduler's (`scheduler`) or a host worker's metrics endpoint answers (option `metrics`). */
  metricsUrl(of: 'scheduler' | string): string {
    const url = of === 'scheduler' ? this.scheduler.metricsUrl : this.workers.get(of)?.worker.metricsUrl;
    if (!url) throw new Error(`no metrics endpoint for ${of}: start the cluster with metrics: true`);
    return url;
  }

  /** The schedulers' queue (to pause it, say, and hold results back from every scheduler). */
  schedulerQueue() {
    return this.queues.scheduler;
  }

  /** The host's step queue (to look at, or lose, its jobs). */
  hostQueue(name: string) {
    return this.queues.host(name);
  }

  /** Resolves once the crash a fault caused on `name` is complete. */
  async crashed(name: string): Promise<void> {
    const end = Date.now() + 10_000;
    while (!this.crashes.has(name)) {
      if (Date.now() > end) throw new Error(`${name}'s worker did not crash`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.crashes.get(name);
  }

  async submit(op: OperationKind, request: object): Promise<string> {
    const id = newMigrationId(Date.now());
    await this.keys.signer.add(this.queues.scheduler, 'submit', { kind: 'submit', op, migrationId: id, request }, { jobId: `submit.${id}` }, JOB_TTL_MS.request);
    return id;
  }

  migrate(request: MigrationRequestInput): Promise<string> {
    return this.submit('migrate', request);
  }

  clone(request: CloneRequestInput): Promise<string> {
    return this.submit('clone', request);
  }

  unify(request: UnifyRequestInput): Promise<string> {
    return this.submit('unify', { container: request.containers[0], ...request });
  }

  /** `ferry retry` / `ferry cancel`: onto the scheduler's queue, as the CLI puts them. */
  async control(id: string, kind: 'retry' | 'cancel'): Promise<void> {
    const r = await this.store.mustGet(id);
    await this.keys.signer.add(this.queues.scheduler, kind, { kind, migrationId: id }, { jobId: `${kind}.${id}.${r.version}` }, JOB_TTL_MS.request);
  }

  async record(id: string): Promise<OperationRecord> {
    const r = await this.store.mustGet(id);
    if (r.state === 'rejected') throw new Error(`${id} was rejected: ${r.error.code}: ${r.error.message}`);
    return r;
  }

  /** Waits until the operation's record satisfies `until` (a state, or a predicate). */
  async waitFor(id: string, until: RecordState | ((r: StoredRecord) => boolean), ms = 15_000): Promise<OperationRecord> {
    const ok = typeof until === 'string' ? (r: StoredRecord) => r.state === until : until;
    const end = Date.now() + ms;
    let last: StoredRecord | null = null;
    for (;;) {
      last = await this.store.get(id);
      // A terminal record is saved first, its containers' locks released just after: both seen.
      if (last && ok(last) && !(isTerminal(last.state) && (await this.holding(last)))) return this.record(id);
      if (last && typeof until === 'string' && (last.state === 'rejected' || (isTerminal(last.state) && last.state !== until))) break;
      if (Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`operation ${id}: wanted ${typeof until === 'string' ? until : 'a condition'}, have ${describe(last)}`);
  }

  /** True while a container of this ended operation is still locked by it. */
  private async holding(r: StoredRecord): Promise<boolean> {
    if (r.state === 'rejected') return false;
    for (const name of holds(r)) if ((await this.store.lockHolder(name)) === r.id) return true;
    return false;
  }

  async stop(): Promise<void> {
    this.world.faults.clear();
    await Promise.all([...this.crashes.values()]);
    await Promise.all(
      [...this.workers.values()].map(async ({ worker, redis }) => {
        await worker.stop(1000);
        await redis.quit().catch(() => redis.disconnect());
      }),
    );
    this.workers.clear();
    for (const [s, { redis }] of this.schedulers) {
      await s.stop();
      await redis.quit().catch(() => redis.disconnect());
    }
    this.schedulers.clear();
    for (const dir of this.addedDirs) await rm(dir, { recursive: true, force: true });
    await this.queues.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
    for (const { root } of this.dirs.values()) await rm(root, { recursive: true, force: true });
    await rm(this.schedulerDir, { recursive: true, force: true });
  }
}

function describe(r: StoredRecord | null): string {
  if (!r) return 'no record';
  if (r.state === 'rejected') return `rejected (${r.error.code}: ${r.error.message})`;
  const steps = (list: OperationRecord['steps']) => list.map((s) => `${s.name}@${s.host}:${s.state}${s.error ? `(${s.error.code})` : ''}`).join(' ');
  return `${r.state} [${steps(r.steps)}]${r.rollback.length ? ` rollback [${steps(r.rollback)}]` : ''}${r.error ? ` error ${r.error.code}: ${r.error.message}` : ''}`;
}
