import type { ErrorData } from './errors/index.js';
import type { Phase } from './keys.js';
import type { StepName } from './steps/index.js';
import type { OperationKind } from './record.js';
import type { JobAuth } from './trust/signed-job.js';
import type { SignedStepResult } from './trust/signed-result.js';

/** A step job on a host's queue. */
export interface StepJobData {
  migrationId: string;
  phase: Phase;
  index: number;
  run: number;
  step: StepName;
  host: string;
  input: unknown;
  /** Fencing: the container whose ownership epoch guards this step, and that epoch. Mandatory. */
  fence: { container: string; epoch: number };
  /** The control plane's signature (trust/signed-job.ts): a worker runs no job without a valid one. */
  auth?: JobAuth;
}

/** What a worker reports back to the scheduler when a step has finished (for good). */
export interface StepResultData {
  migrationId: string;
  phase: Phase;
  index: number;
  run: number;
  ok: boolean;
  output?: unknown;
  error?: ErrorData;
  attempts: number;
  startedAt?: number;
  endedAt: number;
}

/**
 * Jobs on the scheduler's queue. Requests (submit, retry, cancel) carry the control plane's
 * signature (`auth`); a result carries the signature of the host that ran the step.
 */
export type SchedulerJob =
  | { kind: 'submit'; migrationId: string; request: unknown; op?: OperationKind; auth?: JobAuth }
  | { kind: 'result'; result: SignedStepResult }
  | { kind: 'retry'; migrationId: string; auth?: JobAuth }
  | { kind: 'cancel'; migrationId: string; auth?: JobAuth };

/** A rebalance round's job (queue `rebalance`): automatic (the job scheduler) or asked for now. */
export interface RebalanceJob {
  trigger: 'auto' | 'manual';
  /** Given for a round asked for now (its job id is `roundJobId(roundId)`); auto rounds take theirs from the job id. */
  roundId?: string;
  /** Let this round make moves that restart containers, whatever the policy says (`ferry rebalance --allow-restart`). */
  allowRestart?: boolean;
}
