import type { Logger } from 'pino';
import { currentSteps, stepJobId, type StepResultData } from '@ferry/core';
import type { Scheduler } from './scheduler.js';

/**
 * Re-drives migrations whose next move was lost: a step job that is gone (Redis restart, a
 * crash between saving the record and enqueueing) is enqueued again under its deterministic id;
 * a step job that finished but whose result never reached the scheduler is replayed from the
 * job's return value.
 */
export class Reconciler {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly s: Scheduler,
    private readonly log: Logger,
    private readonly everyMs: number,
  ) {}

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const r of await this.s.store.list(500)) {
        if (r.state !== 'running' && r.state !== 'rolling-back') continue;
        const step = currentSteps(r)[r.cursor];
        if (!step || step.state !== 'running') continue;
        const queue = this.s.queues.host(step.host);
        const jobId = stepJobId(r.id, r.phase, r.cursor, r.run);
        const job = await queue.getJob(jobId);
        const log = this.log.child({ migrationId: r.id, step: step.name, host: step.host });
        if (!job) {
          log.warn({ jobId }, 'step job missing: enqueueing it again');
          await this.s.carryOut(r, [{ type: 'enqueue', phase: r.phase, index: r.cursor, run: r.run, step }]);
          continue;
        }
        if ((await job.getState()) === 'completed' && job.returnvalue) {
          log.warn({ jobId }, 'step finished but its result was not applied: replaying it');
          await this.s.apply(r.id, { type: 'step-result', ...(job.returnvalue as StepResultData) });
        }
      }
    } catch (e) {
      this.log.error({ err: e }, 'reconcile pass failed');
    } finally {
      this.running = false;
    }
  }
}
