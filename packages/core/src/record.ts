import type { ErrorData } from './errors/index.js';
import type { Peer } from './host.js';
import type { Phase } from './keys.js';
import type { Plan, PlannedStep } from './plan.js';
import type { MigrationRequest } from './request.js';
import type { CloneRequest } from './clone-request.js';
import type { UnifyRequest } from './unify-request.js';
import type { CheckpointRequest, RestoreRequest } from './checkpoint-request.js';

/** What an operation record describes; each kind has its own workflow (workflows/). */
export type OperationKind = 'migrate' | 'clone' | 'unify' | 'checkpoint' | 'restore';
export const OPERATION_KINDS: readonly OperationKind[] = ['migrate', 'clone', 'unify', 'checkpoint', 'restore'];

/** States of an operation that was accepted (a refused one is a RejectedRecord). */
export type OperationState = 'pending' | 'running' | 'paused' | 'rolling-back' | 'done' | 'rolled-back';
/** Every state a stored record can be in. */
export type RecordState = OperationState | 'rejected';
export const TERMINAL_STATES: readonly RecordState[] = ['done', 'rolled-back', 'rejected'];

export type StepState = 'pending' | 'running' | 'done' | 'failed';

/** The journal entry of one step: intent (host, run) and result. */
export interface StepRecord extends PlannedStep {
  state: StepState;
  /** Which run of the operation issued it (raised by `retry`; part of the job id). */
  run: number;
  attempts: number;
  enqueuedAt?: number;
  startedAt?: number;
  endedAt?: number;
  output?: unknown;
  error?: ErrorData;
}

/** The hosts an operation involves, by role, as the registry described them at submission. */
export interface TwoHosts {
  source: Peer;
  target: Peer;
}
export interface OneHost {
  host: Peer;
}

interface OperationBase {
  id: string;
  plan: Plan;
  state: OperationState;
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
  owner: string;
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

export interface MigrateRecord extends OperationBase {
  kind: 'migrate';
  request: MigrationRequest;
  hosts: TwoHosts;
}
export interface CloneRecord extends OperationBase {
  kind: 'clone';
  request: CloneRequest;
  hosts: TwoHosts;
}
export interface UnifyRecord extends OperationBase {
  kind: 'unify';
  request: UnifyRequest;
  hosts: OneHost;
}

export interface CheckpointRecord extends OperationBase {
  kind: 'checkpoint';
  request: CheckpointRequest;
  hosts: OneHost;
}
/** A restore in place has the same host as source and target. */
export interface RestoreRecord extends OperationBase {
  kind: 'restore';
  request: RestoreRequest;
  hosts: TwoHosts;
}

/** An accepted operation of any kind. */
export type OperationRecord = MigrateRecord | CloneRecord | UnifyRecord | CheckpointRecord | RestoreRecord;
/** The record of one kind. */
export type RecordOf<K extends OperationKind> = Extract<OperationRecord, { kind: K }>;
export type RequestOf<K extends OperationKind> = RecordOf<K>['request'];
export type HostsOf<K extends OperationKind> = RecordOf<K>['hosts'];

/** A submission refused before it was planned (bad request, unknown host, container busy). */
export interface RejectedRecord {
  id: string;
  kind: OperationKind;
  state: 'rejected';
  /** What was submitted, as it came. */
  request: unknown;
  error: ErrorData;
  createdAt: number;
  updatedAt: number;
  endedAt: number;
  version: number;
}

/** Whatever the store holds under an operation id. */
export type StoredRecord = OperationRecord | RejectedRecord;

export function isTerminal(state: RecordState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function isRejected(r: StoredRecord): r is RejectedRecord {
  return r.state === 'rejected';
}

export function currentSteps(r: OperationRecord): StepRecord[] {
  return r.phase === 'forward' ? r.steps : r.rollback;
}

/** The container every step of the operation is fenced by (its ownership epoch). */
export function fencedContainer(r: OperationRecord): string {
  return r.request.container;
}
