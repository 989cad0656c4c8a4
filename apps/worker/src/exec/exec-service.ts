import { constants } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { RedisClient } from '@ferry/infra';
import type { Logger } from 'pino';
import { capabilityMissing, CommandError, encodeExecEntry, FerryError, ExecJobData, ExecSignal, fields as keyFields, toolboxKeys, toolboxQueues, type ExecEntry, type ToolboxKeys } from '@ferry/core';
import type { HostConfig } from '../config.js';
import type { ContainerExecOptions, Runtime } from '../runtime/runtime.js';
import { signalGroup } from './process-group.js';
import { FreshContexts } from './fresh-context.js';
import { JobRefused, type JobGate } from '../trust/job-gate.js';

/**
 * `ferry exec` on the worker: each job on queue `exec-<host>` runs one command in a running
 * container with the runtime's `exec` (where its capabilities say `exec`; `lxc-attach` on LXC, the
 * `vcontext --migrate` of LXC) and streams it back through Redis. A `ferry run` job (`fresh: true`)
 * is the same session with its command in a fresh throwaway context on the host instead
 * (fresh-context.ts, the seed's `vcontext --create`): same signature check, streaming, signals and end.
 *
 * - Output: every chunk of stdout/stderr is XADDed to `<prefix>:exec:<id>` as it comes (bytes, not
 *   text), then one `exit` entry; the stream expires a few minutes after the end.
 * - Signals: the CLI XADDs `{ signal }` to `<prefix>:exec:<id>:ctl`; the worker delivers it to the
 *   command's process group (the runtime's helper is started as a group leader; it is spared so
 *   that it can report how the command ended). Like a terminal's Ctrl-C, the command's children get it too.
 * - Flow control: when the CLI falls behind (more than `highWater` unread entries, at most 256 KiB
 *   each, or more than `maxQueuedBytes` not yet written to Redis), the group is stopped (SIGSTOP)
 *   until the CLI has caught up (SIGCONT): a `cat` of a big file cannot fill Redis or the worker.
 * - Bounded: the CLI keeps `<prefix>:exec:<id>:client` alive; once it is gone (the CLI was killed,
 *   lost its network) the command is terminated (SIGTERM to the group, SIGKILL 2 s later). The worker
 *   keeps `<prefix>:exec:<id>:worker` alive for the CLI in the same way.
 * - At most once: a job is claimed with SET NX before anything runs, and stalled exec jobs are
 *   failed, never retried: a command is never run twice.
 */

export interface ExecTiming {
  /** How often signals, flow control and liveness are looked at. */
  pollMs: number;
  /** How often the client's liveness is checked and the worker's refreshed. */
  livenessMs: number;
  /** TTL of the worker's liveness key. */
  workerTtlMs: number;
  /** Unread chunks in the output stream that stop the command, and that let it go on. */
  highWater: number;
  lowWater: number;
  /** Output bytes not yet in Redis that stop the command. */
  maxQueuedBytes: number;
  /** Redis unreachable for this long: the command is terminated. */
  redisLostMs: number;
}

const DEFAULT_TIMING: ExecTiming = { pollMs: 100, livenessMs: 2000, workerTtlMs: 15_000, highWater: 16, lowWater: 4, maxQueuedBytes: 1 << 20, redisLostMs: 30_000 };

export interface ExecServiceOptions {
  redis: RedisClient;
  prefix: string;
  host: HostConfig;
  runtime: Runtime;
  log: Logger;
  /** Checks every exec job's control-plane signature first; each runs at most once. */
  gate: JobGate;
  /** Sessions at a time (default 32). */
  concurrency?: number;
  timing?: Partial<ExecTiming>;
  /** Where `ferry run` commands run (default: this host's, made here). */
  fresh?: FreshContexts;
}

/** Largest output entry: chunks waiting to be sent are merged up to this. */
const MAX_ENTRY_BYTES = 256 * 1024;

type Stop = { code: string; message: string; exit: number };

export class ExecService {
  private worker?: Worker<ExecJobData>;
  private readonly sessions = new Set<ExecSession>();
  private readonly timing: ExecTiming;
  private readonly fresh: FreshContexts;

  constructor(private readonly o: ExecServiceOptions) {
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.fresh = o.fresh ?? new FreshContexts(o.host.name, o.log);
  }

  start(): void {
    this.worker = new Worker<ExecJobData>(toolboxQueues.exec(this.o.host.name), (job) => this.process(job), {
      connection: this.o.redis,
      prefix: this.o.prefix,
      concurrency: this.o.concurrency ?? 32,
      // The lock is renewed while the command runs; a worker that dies loses it, and the job is
      // then failed (maxStalledCount 0), not run again.
      lockDuration: 30_000,
      stalledInterval: 15_000,
      maxStalledCount: 0,
    });
    this.worker.on('error', (err) => this.o.log.error({ err }, 'exec worker error'));
  }

  /** Terminates every running command (it cannot outlive its worker's watch), then closes. */
  async stop(): Promise<void> {
    for (const s of this.sessions) {
      s.terminate({ code: 'WORKER_STOPPING', message: `the worker of ${this.o.host.name} is stopping: the command was terminated`, exit: 1 });
    }
    const worker = this.worker;
    if (!worker) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([worker.close(), new Promise<void>((r) => (timer = setTimeout(r, 6000)))]);
    clearTimeout(timer);
    await worker.close(true).catch(() => undefined);
  }

  private async process(job: Job<ExecJobData>): Promise<void> {
    const keys = toolboxKeys(this.o.prefix);
    try {
      await this.o.gate.admit(job, { once: true });
    } catch (e) {
      // The CLI waiting on this session (a real one whose key is not this worker's) is told why.
      if (e instanceof JobRefused) await this.tellError(job, e.error.code, e.error.message, 1).catch(() => undefined);
      throw e;
    }
    const parsed = ExecJobData.safeParse(job.data);
    if (!parsed.success) {
      this.o.log.warn({ jobId: job.id, issues: parsed.error.issues }, 'invalid exec job');
      await this.tellError(job, 'INVALID_INPUT', parsed.error.issues[0]?.message ?? 'invalid exec job', 2);
      return;
    }
    const s = new ExecSession(this.o, this.timing, keys, parsed.data, this.fresh);
    this.sessions.add(s);
    try {
      await s.run();
    } finally {
      this.sessions.delete(s);
    }
  }

  /** An `error` entry on the session's output stream, when the job names a session. */
  private async tellError(job: Job, code: string, message: string, exit: number): Promise<void> {
    const id = (job.data as { execId?: unknown })?.execId;
    if (typeof id !== 'string' || !/^x-[0-9a-z]+$/.test(id)) return;
    const out = toolboxKeys(this.o.prefix).execOut(id);
    await this.o.redis.xadd(out, '*', ...encodeExecEntry({ type: 'error', code, message, exit }));
    await this.o.redis.expire(out, 300);
  }
}

class ExecSession {
  private readonly log: Logger;
  private readonly out: string;
  private pgid?: number;
  private running = false;
  private paused = false;
  private stop?: Stop | 'client-gone';
  private readonly abort = new AbortController();
  /** Entries waiting for Redis; output entries gather chunks until sent. */
  private readonly outbox: ({ entry: Exclude<ExecEntry, { data: Buffer }> } | { stream: 'stdout' | 'stderr'; data: Buffer[]; bytes: number })[] = [];
  private sending?: Promise<void>;
  /** Bytes of output waiting to be written to Redis. */
  private queued = 0;
  private lastCtl = '0-0';
  /** Signals asked for that found no process yet (the runtime's helper had not forked): tried again. */
  private pendingSignals: { signal: ExecSignal; until: number }[] = [];
  private lastLiveness = 0;
  private redisFailingSince = 0;
  private ticking = false;

  constructor(
    private readonly o: ExecServiceOptions,
    private readonly t: ExecTiming,
    private readonly k: ToolboxKeys,
    private readonly d: ExecJobData,
    private readonly fresh: FreshContexts,
  ) {
    this.log = o.log.child({ execId: d.execId, ...(d.fresh ? { fresh: true } : { container: d.container }) });
    this.out = k.execOut(d.execId);
  }

  terminate(reason: Stop | 'client-gone'): void {
    if (!this.running || this.stop) return;
    this.stop = reason;
    this.log.info({ reason: reason === 'client-gone' ? reason : reason.code }, 'terminating exec');
    this.abort.abort();
    // A group stopped for flow control takes SIGTERM only once continued (SIGKILL follows anyway).
    if (this.pgid) void signalGroup(this.pgid, 'SIGCONT');
  }

  /** Queues an entry for the output stream. */
  private push(entry: Exclude<ExecEntry, { data: Buffer }>): void {
    this.outbox.push({ entry });
    this.kick();
  }

  /** Queues output; chunks of the same stream waiting to be sent are merged (fewer, larger entries). */
  private pushData(type: 'stdout' | 'stderr', chunk: Buffer): void {
    this.queued += chunk.length;
    const last = this.outbox.at(-1);
    if (last && 'stream' in last && last.stream === type && last.bytes + chunk.length <= MAX_ENTRY_BYTES) {
      last.data.push(chunk);
      last.bytes += chunk.length;
    } else this.outbox.push({ stream: type, data: [chunk], bytes: chunk.length });
    // Output arrives faster than Redis takes it: stop the command at once, not after the fact.
    if (!this.paused && this.queued > this.t.maxQueuedBytes) this.pause();
    this.kick();
  }

  /** Sends the outbox in order, one entry at a time, watching the stream's length (flow control). */
  private kick(): void {
    if (this.sending) return;
    this.sending = (async () => {
      for (let e = this.outbox.shift(); e; e = this.outbox.shift()) {
        try {
          const r = await this.o.redis
            .multi()
            .xadd(this.out, '*', ...encodeExecEntry('entry' in e ? e.entry : { type: e.stream, data: Buffer.concat(e.data) }))
            .xlen(this.out)
            .exec();
          const len = r?.[1]?.[1];
          if (typeof len === 'number' && len > this.t.highWater) this.pause();
        } catch (err) {
          this.log.warn({ err }, 'exec output could not be written to redis');
        }
        if ('bytes' in e) this.queued -= e.bytes;
      }
      this.sending = undefined;
    })();
  }

  /** Resolves once everything queued is in Redis. */
  private async flushed(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private pause(): void {
    if (this.paused || !this.pgid) return;
    this.paused = true;
    void signalGroup(this.pgid, 'SIGSTOP');
    this.log.debug('exec output not read fast enough: command stopped');
  }

  private async resume(): Promise<void> {
    if (!this.paused || !this.pgid) return;
    this.paused = false;
    await signalGroup(this.pgid, 'SIGCONT');
  }

  private async error(e: Stop): Promise<void> {
    this.push({ type: 'error', code: e.code, message: e.message, exit: e.exit });
    await this.flushed();
  }

  async run(): Promise<void> {
    const { redis, host } = this.o;
    const d = this.d;
    const claimed = await redis.set(this.k.execClaim(d.execId), host.name, 'EX', 24 * 3600, 'NX');
    if (claimed !== 'OK') {
      this.log.warn('exec job delivered again: not run twice');
      return;
    }
    try {
      if (!(await redis.exists(this.k.execClient(d.execId)))) {
        this.log.info('the client went away before the command started: not run');
        return;
      }
      await redis.set(this.k.execWorker(d.execId), host.name, 'PX', this.t.workerTtlMs);
      await redis.expire(this.out, 3600);
      if (d.fresh) return await this.attach();
      const rt = this.o.runtime;
      const caps = await rt.capabilities();
      if (!caps.exec) {
        const e = capabilityMissing(caps, 'exec', `ferry exec ${d.container}`, host.name);
        return await this.error({ code: e.code, message: e.message, exit: 1 });
      }
      const info = await rt.info(d.container);
      if (!info) {
        return await this.error({ code: 'CONTAINER_MISSING', message: `container ${d.container} does not exist on ${host.name}`, exit: 2 });
      }
      if (info.state !== 'RUNNING') {
        return await this.error({ code: 'CONTAINER_NOT_RUNNING', message: `container ${d.container} is ${info.state} on ${host.name}, not RUNNING`, exit: 2 });
      }
      await this.attach();
    } finally {
      await this.flushed();
      await redis
        .multi()
        .expire(this.out, 300)
        .del(this.k.execCtl(d.execId), this.k.execWorker(d.execId))
        .exec()
        .catch(() => undefined);
    }
  }

  private async attach(): Promise<void> {
    const d = this.d;
    const timer = setInterval(() => void this.tick(), this.t.pollMs);
    this.running = true;
    this.log.info({ argv0: d.argv[0], args: d.argv.length }, 'exec started');
    let end: { code: number; signal?: string } | Stop;
    try {
      // Every exit code is the command's; a CommandError is a timeout, a signal or a helper that did not start.
      const r = await this.launch({
        onSpawn: (pid) => {
          this.pgid = pid;
          this.push({ type: 'started', pid });
        },
        onStdoutBytes: (b) => this.pushData('stdout', b),
        onStderrBytes: (b) => this.pushData('stderr', b),
        // The output goes to Redis as it comes; keep only a tail for error messages.
        keep: 8192,
        signal: this.abort.signal,
        ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}),
      });
      end = { code: r.exitCode };
    } catch (e) {
      if (!(e instanceof FerryError)) throw e;
      const f = e instanceof CommandError ? e.failure : undefined;
      if (!f) {
        // A fresh context that cannot be contained (no cgroup): refused before anything ran.
        end = { code: e.code, message: e.message, exit: 1 };
      } else if (f.timedOut) {
        end = { code: 'EXEC_TIMEOUT', message: `the command ran longer than ${Math.round((d.timeoutMs ?? 0) / 1000)} s and was killed`, exit: 124 };
      } else if (f.signal) {
        const n = constants.signals[f.signal as NodeJS.Signals] ?? 0;
        end = { code: 128 + n, signal: f.signal };
      } else {
        end = { code: 'RUNTIME_MISSING', message: `cannot run ${f.command[0] ?? 'the runtime'} on ${this.o.host.name}: ${f.stderrTail.trim()}`, exit: 1 };
      }
    } finally {
      this.running = false;
      clearInterval(timer);
    }
    if (this.stop && this.stop !== 'client-gone') end = this.stop;
    else if (this.stop === 'client-gone') end = { code: 'CLIENT_GONE', message: 'the client went away: the command was terminated', exit: 1 };
    if ('exit' in end) {
      this.log.info({ code: end.code }, 'exec ended');
      await this.error(end);
    } else {
      this.log.info({ exitCode: end.code, signal: end.signal }, 'exec ended');
      this.push({ type: 'exit', code: end.code, ...(end.signal ? { signal: end.signal } : {}) });
      await this.flushed();
    }
  }

  /** The command where its job says: in its container (`ferry exec`), or in a fresh context on this host (`ferry run`). */
  private launch(opts: ContainerExecOptions): Promise<{ exitCode: number }> {
    const d = this.d;
    return d.fresh ? this.fresh.run(d.execId, d.argv, opts) : this.o.runtime.exec(d.container, d.argv, opts);
  }

  private async deliver(signal: ExecSignal): Promise<boolean> {
    if (!this.pgid) return false;
    const n = await signalGroup(this.pgid, signal, { exceptLeader: true });
    if (n > 0) {
      this.log.info({ signal, processes: n }, 'signal forwarded');
      // A command stopped for flow control must see it now, not once the client has caught up.
      if (this.paused) await this.resume();
    }
    return n > 0;
  }

  private async tick(): Promise<void> {
    if (this.ticking || !this.running) return;
    this.ticking = true;
    const { redis } = this.o;
    const d = this.d;
    try {
      const entries = await redis.xrange(this.k.execCtl(d.execId), `(${this.lastCtl}`, '+', 'COUNT', 16);
      for (const [id, fields] of entries) {
        this.lastCtl = id;
        const sig = ExecSignal.safeParse(fields[fields.indexOf(keyFields.execSignal) + 1]);
        if (sig.success) this.pendingSignals.push({ signal: sig.data, until: Date.now() + 3000 });
      }
      const pending = this.pendingSignals;
      this.pendingSignals = [];
      for (const p of pending) {
        if (!(await this.deliver(p.signal)) && Date.now() < p.until) this.pendingSignals.push(p);
      }
      if (this.paused && this.queued <= this.t.maxQueuedBytes / 2 && (await redis.xlen(this.out)) <= this.t.lowWater) await this.resume();
      const now = Date.now();
      if (now - this.lastLiveness >= this.t.livenessMs) {
        this.lastLiveness = now;
        const [, , alive] = (await redis
          .multi()
          .set(this.k.execWorker(d.execId), this.o.host.name, 'PX', this.t.workerTtlMs)
          .expire(this.out, 3600)
          .exists(this.k.execClient(d.execId))
          .exec()) ?? [];
        if (alive && !alive[0] && alive[1] === 0) this.terminate('client-gone');
      }
      this.redisFailingSince = 0;
    } catch (err) {
      const now = Date.now();
      if (!this.redisFailingSince) {
        this.redisFailingSince = now;
        this.log.warn({ err }, 'exec: redis unreachable');
      } else if (now - this.redisFailingSince > this.t.redisLostMs) {
        this.terminate({ code: 'REDIS_LOST', message: 'redis unreachable: the command was terminated', exit: 1 });
      }
    } finally {
      this.ticking = false;
    }
  }
}
