import type { ErrorData } from './errors/index.js';
import type { Phase } from './keys.js';
import type { StepName } from './steps/index.js';
import type { OperationKind } from './record.js';

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

/** Jobs on the scheduler's queue. */
export type SchedulerJob =
  | { kind: 'submit'; migrationId: string; request: unknown; op?: OperationKind }
  | { kind: 'result'; result: StepResultData }
  | { kind: 'retry'; migrationId: string }
  | { kind: 'cancel'; migrationId: string };

/** A rebalance round's job (queue `rebalance`): automatic (the job scheduler) or asked for now. */
export interface RebalanceJob {
  trigger: 'auto' | 'manual';
  /** Given for a round asked for now (its job id is `roundJobId(roundId)`); auto rounds take theirs from the job id. */
  roundId?: string;
  /** Let this round make moves that restart containers, whatever the policy says (`ferry rebalance --allow-restart`). */
  allowRestart?: boolean;
}
