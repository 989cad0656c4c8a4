import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KeyObject } from 'node:crypto';
import type { RedisClient as Redis } from '@ferry/infra';
import {
  advanceJobId,
  bullmqKeys,
  DEFAULT_RETENTION,
  fields,
  isTerminal,
  JOB_TTL_MS,
  keys,
  newMigrationId,
  queueNames,
  stepJobId,
  type OperationRecord,
  type StoredRecord,
} from '@ferry/core';
import { collectGarbage, JobSigner, Queues, usedMemory } from '@ferry/infra';
import { cliMain } from '../../lab/services.js';
import { Fleet, groups, hostNames, type Move } from './fleet.js';
import { cpuMs, memory, startChild, type Child } from './procs.js';
import { Samples, type Dist } from './stats.js';
import type { StepTimes } from './step-times.js';

export interface SizeOptions {
  redis: Redis;
  url: string;
  /** Where this size's hosts, scheduler and logs live. */
  dir: string;
  controlKey: KeyObject;
  controlKeyFile: string;
  controlPubFile: string;
  hostKeysDir: string;
  hosts: number;
  migrations: number;
  /** The light phase first: this many migrations, at most `lightInflight` at once. */
  lightMigrations: number;
  lightInflight: number;
  processes: number;
  perHost: number;
  containersPerHost: number;
  times: StepTimes;
  /** The scheduler's automatic gc during the run (FERRY_GC_EVERY, FERRY_GC_MIN_AGE). */
  gcEvery: string;
  gcMinAge: string;
  /** Profile the scheduler (node --cpu-prof) into this directory. */
  schedulerProf?: string;
  /**
   * Keep ended operations' jobs (the scheduler's FERRY_KEEP_ENDED_JOBS) to split each step's
   * dispatch and advance into their parts from the jobs' times; Redis's memory then holds them.
   */
  parts?: boolean;
  progress: (line: string) => void;
}

/** The parts of dispatch (a step enqueued → started) and of advance (a step ended → the next enqueued). */
export type Part =
  | 'dispatch'
  | 'dispatch.schedule' // scheduler: record saved, fence set, job signed (decision → add)
  | 'dispatch.queue' // BullMQ: add → taken by the host's worker
  | 'dispatch.admit' // worker: signature, replay record, container lock (taken → start)
  | 'advance'
  | 'advance.report' // worker: result signed and added (step end → result job added)
  | 'advance.queue' // BullMQ: result added → taken by the scheduler
  | 'advance.handle' // scheduler: result checked, record read, transition (taken → next step's decision)
  | 'first' // submit → first step's decision (planning)
  | 'migration'; // submit → done

/** What one run of migrations through the fleet gave. */
export interface PhaseResult {
  migrations: number;
  /** Most migrations at once (besides `perHost`). */
  maxInflight: number;
  states: Record<string, number>;
  wallMs: number;
  steps: number;
  stepsPerSec: number;
  dist: Record<Part, Dist>;
}

export interface SizeResult {
  hosts: number;
  processes: number;
  perHost: number;
  /** A few migrations at once first: dispatch with the scheduler not saturated. */
  light: PhaseResult;
  /** Then `migrations`, as many at once as the hosts take: throughput, and what it costs. */
  full: PhaseResult;
  /** The machine's 1-minute load average, sampled at each quarter of the full run (other work on it shows here). */
  load: number[];
  scheduler: { cpuMs: number; cpuMsPerStep: number; cores: number; rssPeak: number; rssEnd: number };
  hostsCpuMsPerStep: number;
  /** Cores used with no migration running (5 s before the first): the fleet's own beats. */
  atRest: { scheduler: number; hosts: number; redis: number };
  redis: { cpuMsPerStep: number; before: number; samples: { finished: number; bytes: number; records: number }[]; after: number; afterGc: number; gcRemoved: number; recordsAfterGc: number; keysAfter: number; keysAfterGc: number };
}

const PARTS: Part[] = ['dispatch', 'dispatch.schedule', 'dispatch.queue', 'dispatch.admit', 'advance', 'advance.report', 'advance.queue', 'advance.handle', 'first', 'migration'];

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const f = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (f('used_cpu_user') + f('used_cpu_sys')) * 1000;
}

/** How long the fleet is watched at rest before the migrations. */
const IDLE_MS = 5000;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * One size: `hosts` simulated hosts in `processes` processes, a scheduler process (`ferry
 * scheduler`, as deployed), and `migrations` migrations driven closed-loop (a new one as soon as
 * one ends and its hosts have room), on the bench's Redis emptied first.
 */
export async function runSize(o: SizeOptions): Promise<SizeResult> {
  const run = new SizeRun(o);
  try {
    return await run.run();
  } finally {
    await run.stop();
  }
}

/** One run of migrations: what it has submitted and seen end. */
class Phase {
  submitted = 0;
  finished = 0;
  steps = 0;
  readonly samples = new Samples<Part>();
  readonly states: Record<string, number> = {};
  t0 = Date.now();
  tEnd = this.t0;
  ended: () => void = () => undefined;
  readonly done = new Promise<void>((r) => (this.ended = r));

  constructor(
    readonly migrations: number,
    readonly maxInflight: number,
    /** Called as each quarter of it has ended. */
    readonly quarter?: (finished: number) => void,
  ) {}

  result(): PhaseResult {
    const wallMs = this.tEnd - this.t0;
    return {
      migrations: this.migrations,
      maxInflight: this.maxInflight,
      states: this.states,
      wallMs,
      steps: this.steps,
      stepsPerSec: (this.steps * 1000) / wallMs,
      dist: Object.fromEntries(PARTS.map((p) => [p, this.samples.dist(p)])) as Record<Part, Dist>,
    };
  }
}

class SizeRun {
  private readonly prefix: string;
  private readonly k: ReturnType<typeof keys>;
  private readonly fleet: Fleet;
  private readonly parts: string[][];
  private readonly hostProcs: Child[] = [];
  private scheduler?: Child;
  private readonly queues: Queues;
  private readonly signer: JobSigner;
  private fatal: (e: unknown) => void = () => undefined;
  private readonly failed: Promise<never>;
  private readonly timers: NodeJS.Timeout[] = [];

  private readonly inflight = new Map<string, { move: Move; at: number; phase: Phase }>();
  /** Migrations whose last forward step has returned: looked at until their record has ended. */
  private readonly pending = new Set<string>();
  private phase?: Phase;
  private collecting = Promise.resolve();

  constructor(private readonly o: SizeOptions) {
    this.prefix = `scale${o.hosts}`;
    this.k = keys(this.prefix);
    const names = hostNames(o.hosts);
    this.parts = groups(names, o.processes);
    this.fleet = new Fleet(names, this.parts, o.containersPerHost, o.perHost);
    this.queues = new Queues(o.redis, this.prefix);
    this.signer = new JobSigner(o.controlKey);
    this.failed = new Promise<never>((_, reject) => (this.fatal = reject));
    this.failed.catch(() => undefined);
  }

  private until<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.failed]);
  }

  async run(): Promise<SizeResult> {
    const o = this.o;
    await mkdir(o.dir, { recursive: true });
    await o.redis.flushall();
    await this.startHosts();
    await this.startScheduler();
    this.timers.push(
      setInterval(() => this.lookPending(), 20),
      setInterval(() => void this.look([...this.inflight.keys()]).catch(this.fatal), 5000),
    );

    // The fleet at rest first (heartbeats, liveness beats, the scheduler's reconciler): what it
    // costs before any migration, in cores.
    const cpuNow = async () => ({ sched: await cpuMs(this.scheduler!.pid), hosts: sum(await Promise.all(this.hostProcs.map((c) => cpuMs(c.pid)))), redis: await redisCpuMs(o.redis), at: Date.now() });
    const rest0 = await cpuNow();
    await this.until(new Promise((r) => setTimeout(r, IDLE_MS)));
    const rest1 = await cpuNow();
    const idle = (k: 'sched' | 'hosts' | 'redis') => (rest1[k] - rest0[k]) / (rest1.at - rest0.at);
    const atRest = { scheduler: idle('sched'), hosts: idle('hosts'), redis: idle('redis') };

    const light = await this.drive(new Phase(o.lightMigrations, o.lightInflight));
    o.progress(`  light: ${light.steps} steps at most ${o.lightInflight} migrations at once, dispatch p50 ${light.dist.dispatch.p50} ms`);

    const before = await usedMemory(o.redis);
    const memSamples: SizeResult['redis']['samples'] = [];
    const load: number[] = [];
    const cpu0 = await cpuNow();
    const full = await this.drive(
      new Phase(o.migrations, Infinity, (finished) => {
        load.push(loadavg()[0]!);
        const at = memSamples.push({ finished, bytes: NaN, records: NaN }) - 1;
        void Promise.all([usedMemory(o.redis), o.redis.zcard(this.k.migrations)]).then(([bytes, records]) => (memSamples[at] = { finished, bytes, records }), this.fatal);
        o.progress(`  ${finished}/${o.migrations} ended`);
      }),
    );
    const [cpu1, schedMem, after, keysAfter] = await Promise.all([cpuNow(), memory(this.scheduler!.pid), usedMemory(o.redis), o.redis.dbsize()]);
    // What `ferry gc` does with FERRY_GC_MIN_AGE=0: only the retention set is kept.
    const gc = await collectGarbage(o.redis, this.prefix, { policy: { ...DEFAULT_RETENTION, minAgeMs: 0 } });
    const schedCpuMs = cpu1.sched - cpu0.sched;
    const steps = full.steps;
    return {
      hosts: o.hosts,
      processes: this.parts.length,
      perHost: o.perHost,
      light,
      full,
      load,
      scheduler: { cpuMs: schedCpuMs, cpuMsPerStep: schedCpuMs / steps, cores: schedCpuMs / full.wallMs, rssPeak: schedMem.peak, rssEnd: schedMem.rss },
      hostsCpuMsPerStep: (cpu1.hosts - cpu0.hosts) / steps,
      atRest,
      redis: {
        cpuMsPerStep: (cpu1.redis - cpu0.redis) / steps,
        before,
        samples: memSamples,
        after,
        afterGc: gc.memory.after,
        gcRemoved: gc.operations.removed,
        recordsAfterGc: await o.redis.zcard(this.k.migrations),
        keysAfter,
        keysAfterGc: await o.redis.dbsize(),
      },
    };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.queues.close();
    await this.scheduler?.stop();
    await Promise.all(this.hostProcs.map((c) => c.stop(10_000)));
  }

  /** Runs a phase to its end: migrations submitted closed-loop, each figure gathered as one ends. */
  private async drive(phase: Phase): Promise<PhaseResult> {
    this.phase = phase;
    phase.t0 = phase.tEnd = Date.now();
    this.pump();
    await this.until(phase.done);
    await this.until(this.collecting);
    return phase.result();
  }

  /** The simulated hosts' processes, each with its share of the hosts; resolves once every worker runs. */
  private async startHosts(): Promise<void> {
    const o = this.o;
    const script = fileURLToPath(new URL('./hosts.js', import.meta.url));
    let ready = 0;
    let allReady: () => void = () => undefined;
    const readyP = new Promise<void>((r) => (allReady = r));
    const t = Date.now();
    for (const [i, group] of this.parts.entries()) {
      const argv = [process.execPath, script, '--redis', o.url, '--prefix', this.prefix, '--hosts', group.join(','), '--dir', join(o.dir, 'hosts'), '--control-pub', o.controlPubFile, '--host-keys', o.hostKeysDir, '--containers', String(o.containersPerHost), '--step-ms', JSON.stringify(o.times), '--log', join(o.dir, `hosts-${i}.log`)];
      this.hostProcs.push(
        await startChild(argv, {
          onLine: (line) => {
            if (line === 'ready' && ++ready === this.parts.length) allReady();
            else if (line.startsWith('end ') && this.inflight.has(line.slice(4))) this.pending.add(line.slice(4));
          },
          onExit: (e) => this.fatal(new Error(`simulated hosts ${i} exited: ${String(e)}`)),
        }),
      );
    }
    await this.until(readyP);
    o.progress(`${o.hosts} hosts up in ${this.parts.length} processes (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  }

  /** `ferry scheduler` as deployed (its logs at info, to a file); resolves once it leads. */
  private async startScheduler(): Promise<void> {
    const o = this.o;
    const argv = [process.execPath, ...(o.schedulerProf ? ['--cpu-prof', '--cpu-prof-dir', o.schedulerProf] : []), cliMain(), 'scheduler', '--control-key', o.controlKeyFile, '--host-keys', o.hostKeysDir];
    this.scheduler = await startChild(argv, {
      env: { ...process.env, REDIS_URL: o.url, FERRY_PREFIX: this.prefix, FERRY_STATE_DIR: join(o.dir, 'scheduler'), FERRY_GC_EVERY: o.gcEvery, FERRY_GC_MIN_AGE: o.gcMinAge, FERRY_LOG_FORMAT: 'json', ...(o.parts ? { FERRY_KEEP_ENDED_JOBS: '1' } : {}) },
      outputFile: join(o.dir, 'scheduler.log'),
      onExit: (e) => this.fatal(new Error(`the scheduler exited: ${String(e)}`)),
    });
    while (!(await o.redis.exists(this.k.leaderLease))) await this.until(new Promise((r) => setTimeout(r, 50)));
  }

  /** Submits migrations (as the CLI does: a signed submit job) while the phase and the fleet have room. */
  private pump(): void {
    const phase = this.phase!;
    while (phase.submitted < phase.migrations && this.inflight.size < phase.maxInflight) {
      const move = this.fleet.take();
      if (!move) return;
      phase.submitted++;
      const id = newMigrationId(Date.now());
      this.inflight.set(id, { move, at: Date.now(), phase });
      const request = { container: move.container, from: move.from, to: move.to };
      this.signer.add(this.queues.scheduler, 'submit', { kind: 'submit', migrationId: id, request }, { jobId: `submit.${id}` }, JOB_TTL_MS.request).catch(this.fatal);
    }
  }

  private lookingPending = false;
  private lookPending(): void {
    if (this.lookingPending || !this.pending.size) return;
    this.lookingPending = true;
    this.look([...this.pending]).then(() => (this.lookingPending = false), this.fatal);
  }

  /** Reads these migrations' records; those that have ended are finished. */
  private async look(ids: string[]): Promise<void> {
    if (!ids.length) return;
    const pipe = this.o.redis.pipeline();
    for (const id of ids) pipe.hget(this.k.migration(id), fields.record);
    const raws = (await pipe.exec()) ?? [];
    ids.forEach((id, i) => {
      const raw = raws[i]?.[1];
      if (typeof raw !== 'string') return;
      const r = JSON.parse(raw) as StoredRecord;
      if (isTerminal(r.state)) this.finish(id, r);
    });
  }

  private finish(id: string, r: StoredRecord): void {
    const f = this.inflight.get(id);
    if (!f) return;
    const phase = f.phase;
    this.inflight.delete(id);
    this.pending.delete(id);
    phase.finished++;
    phase.tEnd = Date.now();
    phase.states[r.state] = (phase.states[r.state] ?? 0) + 1;
    this.fleet.ended(f.move, r.state === 'done' ? f.move.to : r.state === 'rolled-back' ? f.move.from : null);
    if (r.state !== 'rejected') {
      phase.steps += [...r.steps, ...r.rollback].filter((s) => s.state === 'done' || s.state === 'failed').length;
      if (r.state === 'done') this.collecting = this.collecting.then(() => this.collect(phase, r, f.at)).catch(this.fatal);
    }
    if (phase.quarter && Math.floor((phase.finished * 4) / phase.migrations) > Math.floor(((phase.finished - 1) * 4) / phase.migrations)) phase.quarter(phase.finished);
    if (phase.finished === phase.migrations) phase.ended();
    else this.pump();
  }

  /** A migration's figures from its record and the BullMQ jobs of its steps (kept: `parts`). */
  private async collect(phase: Phase, r: OperationRecord, submittedAt: number): Promise<void> {
    const pipe = this.o.redis.pipeline();
    if (this.o.parts) {
      r.steps.forEach((s, i) => {
        pipe.hmget(bullmqKeys.job(this.prefix, queueNames.host(s.host), stepJobId(r.id, 'forward', i, s.run)), 'timestamp', 'processedOn');
        pipe.hmget(bullmqKeys.job(this.prefix, queueNames.scheduler, advanceJobId(r.id, 'forward', i, s.run)), 'timestamp', 'processedOn');
      });
    }
    const got = this.o.parts ? ((await pipe.exec()) ?? []).map(([, v]) => (v as (string | null)[]).map((x) => (x === null ? undefined : Number(x)))) : [];
    const add = (p: Part, x: number | undefined) => phase.samples.add(p, x);
    add('migration', (r.endedAt ?? NaN) - submittedAt);
    add('first', (r.steps[0]?.enqueuedAt ?? NaN) - submittedAt);
    r.steps.forEach((s, i) => {
      const [jobAt, takenAt] = got[2 * i] ?? [];
      const e = s.enqueuedAt;
      if (e === undefined || s.startedAt === undefined) return;
      add('dispatch', s.startedAt - e);
      if (jobAt !== undefined) add('dispatch.schedule', jobAt - e);
      if (jobAt !== undefined && takenAt !== undefined) add('dispatch.queue', takenAt - jobAt);
      if (takenAt !== undefined) add('dispatch.admit', s.startedAt - takenAt);
      const prev = r.steps[i - 1];
      if (prev?.endedAt === undefined) return;
      add('advance', e - prev.endedAt);
      const [resultAt, resultTaken] = got[2 * (i - 1) + 1] ?? [];
      if (resultAt !== undefined) add('advance.report', resultAt - prev.endedAt);
      if (resultAt !== undefined && resultTaken !== undefined) add('advance.queue', resultTaken - resultAt);
      if (resultTaken !== undefined) add('advance.handle', e - resultTaken);
    });
  }
}
