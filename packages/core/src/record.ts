import type { ErrorData } from './errors/index.js';
import type { Peer } from './host.js';
import type { Phase } from './keys.js';
import type { Plan, PlannedStep } from './plan.js';
import type { MigrationRequest } from './request.js';
import type { CloneRequest } from './clone-request.js';
import type { UnifyRequest } from './unify-request.js';

/** What an operation record describes; each kind has its own plan and step inputs. */
export type OperationKind = 'migrate' | 'clone' | 'unify';

export type MigrationState = 'pending' | 'running' | 'paused' | 'rolling-back' | 'done' | 'rolled-back' | 'rejected';
export const TERMINAL_STATES: readonly MigrationState[] = ['done', 'rolled-back', 'rejected'];

export type StepState = 'pending' | 'running' | 'done' | 'failed';

/** The journal entry of one step: intent (host, run) and result. */
export interface StepRecord extends PlannedStep {
  state: StepState;
  /** Which run of the migration issued it (raised by `retry`; part of the job id). */
  run: number;
  attempts: number;
  enqueuedAt?: number;
  startedAt?: number;
  endedAt?: number;
  output?: unknown;
  error?: ErrorData;
}

export interface MigrationRecord {
  id: string;
  /** Absent on records written before kinds existed: those are migrations. */
  kind?: OperationKind;
  request: MigrationRequest | CloneRequest | UnifyRequest;
  /** The hosts as the registry described them at submission. */
  hosts: { source: Peer; target: Peer };
  plan: Plan;
  state: MigrationState;
  phase: Phase;
  /** Index of the current step in the current phase's list. */
  cursor: number;
  run: number;
  /**
   * Ownership epoch of the container (fencing): raised at the handover to the target and again
   * when a rollback hands it back. Workers refuse to act on a step issued under an older epoch.
   */
  epoch: number;
  /** The host that owns the container at `epoch`: the only one that may run or announce it. */
  owner?: string;
  steps: StepRecord[];
  rollback: StepRecord[];
  cancelRequested: boolean;
  /** The failure that stopped the forward path or the rollback. */
  error?: ErrorData;
  createdAt: number;
  updatedAt: number;
  endedAt?: number;
  /** Optimistic-concurrency version; bumped on every save. */
  version: number;
}

export function isTerminal(state: MigrationState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function currentSteps(r: MigrationRecord): StepRecord[] {
  return r.phase === 'forward' ? r.steps : r.rollback;
}

/** Output of the first forward step with this name and role that has finished. */
export function outputOf<T>(r: MigrationRecord, name: string, role?: string): T | undefined {
  const s = r.steps.find((x) => x.name === name && (role === undefined || x.role === role) && x.state === 'done');
  return s?.output as T | undefined;
}

export function kindOf(r: MigrationRecord): OperationKind {
  return r.kind ?? 'migrate';
}
