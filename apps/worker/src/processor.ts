import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import {
  advanceJobId,
  StepSchemas,
  toErrorData,
  type StepJobData,
  type StepResultData,
} from '@ferry/core';
import { KEEP_JOBS, type MigrationStore, type Queues } from '@ferry/infra';
import type { Progress, StepContext } from './context.js';
import { steps } from './steps/index.js';

export interface ProcessorDeps {
  store: MigrationStore;
  queues: Queues;
  log: Logger;
  /** Builds the step context for one job (logger bound to migration, step and host). */
  context(log: Logger, progress: (p: Progress) => void): StepContext;
  /** True once the worker is shutting down: a failing step is handed back, not reported. */
  stopping(): boolean;
}

/**
 * Runs one step job: validates the input with the step's schema, runs the step, validates its
 * output, and reports the result to the scheduler. Retryable failures with attempts left are
 * thrown back to BullMQ (exponential backoff); everything else becomes a reported result, so the
 * job always completes with a StepResultData the reconciler can replay.
 */
export function createProcessor(deps: ProcessorDeps) {
  return async (job: Job<StepJobData>): Promise<StepResultData> => {
    const d = job.data;
    const attempt = job.attemptsMade + 1;
    const log = deps.log.child({ migrationId: d.migrationId, step: d.step, host: d.host, phase: d.phase, index: d.index, run: d.run, attempt });
    const startKey = `start.${d.phase}.${d.index}.${d.run}`;
    const progressKey = deps.store.k.progress(d.migrationId);
    await deps.store.redis.hsetnx(progressKey, startKey, String(Date.now()));
    const startedAt = Number(await deps.store.redis.hget(progressKey, startKey));
    let last = 0;
    const progress = (p: Progress) => {
      const now = Date.now();
      if (now - last < 250 && p.percent !== 100) return; // progress is advisory: at most 4 writes/s
      last = now;
      void deps.store.setProgress(d.migrationId, { phase: d.phase, index: d.index, at: now, ...p }).catch(() => undefined);
    };
    const schemas = StepSchemas[d.step];
    let result: StepResultData;
    log.info('step started');
    try {
      const input = schemas.input.parse(d.input);
      const output = await (steps[d.step] as (c: StepContext, i: unknown) => Promise<unknown>)(deps.context(log, progress), input);
      result = { ...ids(d), ok: true, output: schemas.output.parse(output), attempts: attempt, startedAt, endedAt: Date.now() };
      log.info({ ms: Date.now() - startedAt }, 'step done');
    } catch (e) {
      const error = toErrorData(e);
      const max = job.opts.attempts ?? 1;
      if (deps.stopping() || (error.retryable && attempt < max)) {
        log.warn({ error, attempt, max }, 'step failed; it will be retried');
        throw e;
      }
      log.error({ error, attempt }, 'step failed');
      result = { ...ids(d), ok: false, error, attempts: attempt, startedAt, endedAt: Date.now() };
    }
    await deps.queues.scheduler.add(
      'result',
      { kind: 'result', result },
      { jobId: advanceJobId(d.migrationId, d.phase, d.index, d.run), ...KEEP_JOBS },
    );
    return result;
  };
}

function ids(d: StepJobData) {
  return { migrationId: d.migrationId, phase: d.phase, index: d.index, run: d.run };
}
