import { Worker, type Job } from 'bullmq';
import type { RedisClient } from '@ferry/infra';
import type { Logger } from 'pino';
import { parseToolboxJob, PreconditionError, toErrorData, toolboxKeys, toolboxQueues, ValidationError, type ToolboxReply } from '@ferry/core';
import type { HostConfig } from '../config.js';
import { BindMountOps } from '../mounts/mount-ops.js';
import type { Runtime } from '../runtime/runtime.js';
import { ExecService, type ExecTiming } from './exec-service.js';
import { JobRefused, type JobGate } from '../trust/job-gate.js';

export interface ToolboxOptions {
  redis: RedisClient;
  prefix: string;
  host: HostConfig;
  runtime: Runtime;
  log: Logger;
  /** Checks every exec and toolbox job's control-plane signature first. */
  gate: JobGate;
  /** Migration holding a container, if any: mounts are not changed under a migration. */
  lockHolder?: (container: string) => Promise<string | null>;
  execConcurrency?: number;
  execTiming?: Partial<ExecTiming>;
}

/**
 * The container toolbox of one host, next to its step worker: `exec` sessions (queue `exec-<host>`)
 * and short operations — mount, umount, show — on queue `toolbox-<host>`, each answered on a reply
 * list the CLI waits on. These act on one container on one host and need no workflow: they go
 * straight to the host's worker instead of through the scheduler.
 */
export class Toolbox {
  private readonly exec: ExecService;
  private admin?: Worker;
  private readonly mounts: BindMountOps;

  constructor(private readonly o: ToolboxOptions) {
    this.exec = new ExecService({
      redis: o.redis,
      prefix: o.prefix,
      host: o.host,
      runtime: o.runtime,
      log: o.log,
      gate: o.gate,
      ...(o.execConcurrency ? { concurrency: o.execConcurrency } : {}),
      ...(o.execTiming ? { timing: o.execTiming } : {}),
    });
    // Refuses each operation (MOUNTS_UNSUPPORTED) where the runtime's capabilities say no mounts.
    this.mounts = new BindMountOps({
      runtime: o.runtime,
      host: o.host.name,
      log: o.log,
      policy: { roots: o.host.mountRoots ?? [], lxcPath: o.host.lxcPath, protectedDirs: [o.host.stateDir] },
      ...(o.lockHolder ? { lockHolder: o.lockHolder } : {}),
    });
  }

  start(): void {
    this.exec.start();
    this.admin = new Worker(toolboxQueues.admin(this.o.host.name), (job) => this.process(job), {
      connection: this.o.redis,
      prefix: this.o.prefix,
      concurrency: 4,
      lockDuration: 30_000,
    });
    this.admin.on('error', (err) => this.o.log.error({ err }, 'toolbox worker error'));
  }

  async stop(): Promise<void> {
    await Promise.all([this.exec.stop(), this.admin?.close()]);
  }

  private async process(job: Job): Promise<void> {
    const requestId = (job.data as { requestId?: unknown })?.requestId;
    let reply: ToolboxReply;
    let refusal: JobRefused | undefined;
    try {
      // At most once, as the CLI sends it (attempts 1); refused before anything is looked at.
      await this.o.gate.admit(job, { once: true });
      const j = parseToolboxJob(job.data);
      const result = j.kind === 'show' ? await this.mounts.show(j.container) : j.kind === 'mount' ? await this.mounts.mount(j) : await this.mounts.umount(j);
      reply = { ok: true, result };
    } catch (e) {
      const badInput = e instanceof PreconditionError || e instanceof ValidationError;
      if (e instanceof JobRefused) {
        refusal = e;
        reply = { ok: false, error: e.error, exit: 1 };
      } else {
        if (!badInput) this.o.log.error({ err: e, jobId: job.id }, 'toolbox operation failed');
        reply = { ok: false, error: toErrorData(e), exit: badInput ? 2 : 1 };
      }
    }
    if (typeof requestId === 'string' && /^r-[0-9a-z]+$/.test(requestId)) {
      const key = toolboxKeys(this.o.prefix).reply(requestId);
      await this.o.redis.multi().rpush(key, JSON.stringify(reply)).expire(key, 300).exec();
    }
    if (refusal) throw refusal; // the job fails, with the refusal as its reason
  }
}
