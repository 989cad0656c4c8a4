import type { JobsOptions } from 'bullmq';
import { KEEP_JOBS } from '@ferry/infra';
import { fencedContainer, stepAttempts, stepInput, stepJobId, type OperationRecord, type Phase, type PlannedStep, type StepJobData } from '@ferry/core';

/** A step's job for its host's queue: input and attempts from the operation's workflow. */
export function stepJob(r: OperationRecord, phase: Phase, index: number, run: number, step: PlannedStep) {
  const data: StepJobData = {
    migrationId: r.id,
    phase,
    index,
    run,
    step: step.name,
    host: step.host,
    input: stepInput(r, phase, index),
    fence: { container: fencedContainer(r), epoch: r.epoch },
  };
  const opts: JobsOptions & { jobId: string } = {
    jobId: stepJobId(r.id, phase, index, run),
    attempts: stepAttempts(r, phase, index),
    backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
    ...KEEP_JOBS,
  };
  return { name: step.name, data, opts };
}
