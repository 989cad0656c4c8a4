import type { JobsOptions } from 'bullmq';
import { KEEP_JOBS } from '@ferry/infra';
import { stepInput, stepJobId, type MigrationRecord, type Phase, type PlannedStep, type StepJobData } from '@ferry/core';

/** Transfers ride out longer outages (a cut link, a restarting sshd) than the other steps. */
const ATTEMPTS: Partial<Record<PlannedStep['name'], number>> = { 'rsync-transfer': 8, checkpoint: 6 };

export function stepJob(r: MigrationRecord, phase: Phase, index: number, run: number, step: PlannedStep) {
  const data: StepJobData = {
    migrationId: r.id,
    phase,
    index,
    run,
    step: step.name,
    host: step.host,
    input: stepInput(r, phase, index),
    fence: { container: r.request.container, epoch: r.epoch },
  };
  const opts: JobsOptions = {
    jobId: stepJobId(r.id, phase, index, run),
    attempts: ATTEMPTS[step.name] ?? 5,
    backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
    ...KEEP_JOBS,
  };
  return { name: step.name, data, opts };
}
