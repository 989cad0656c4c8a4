import type { JobsOptions } from 'bullmq';
import { KEEP_JOBS } from '@ferry/infra';
import { advanceJobId, fencedContainer, stepAttempts, stepInput, stepJobId, type OperationRecord, type Phase, type PlannedStep, type StepJobData } from '@ferry/core';

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

/**
 * The jobs an operation put on the queues: each issued step's job on its host's queue and its
 * result job on the scheduler's, for every run up to the step's last. Once the operation has
 * ended none is needed (its record holds every output and error), and leaving them to the
 * per-queue retention would make Redis grow with the number of hosts, not with the work running.
 */
export function jobsOf(r: OperationRecord): { host: string; stepJob: string; resultJob: string }[] {
  const out: { host: string; stepJob: string; resultJob: string }[] = [];
  for (const [phase, steps] of [['forward', r.steps], ['rollback', r.rollback]] as const) {
    steps.forEach((s, index) => {
      if (s.state === 'pending') return;
      for (let run = 0; run <= s.run; run++) out.push({ host: s.host, stepJob: stepJobId(r.id, phase, index, run), resultJob: advanceJobId(r.id, phase, index, run) });
    });
  }
  return out;
}
