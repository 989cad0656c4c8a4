import type { ErrorData } from './errors/index.js';
import { TransitionError } from './errors/index.js';
import type { Phase } from './keys.js';
import type { StepResultData } from './jobs.js';
import { rollbackPlan, type Plan, type PlannedStep } from './plan.js';
import { currentSteps, isTerminal, type HostsOf, type OperationKind, type OperationRecord, type RecordOf, type RequestOf, type StepRecord } from './record.js';
import { PreflightOutput } from './steps/preflight.js';

export type OperationEvent =
  | { type: 'start' }
  /** A worker's report of a finished step (or the reconciler's, on its behalf). */
  | ({ type: 'step-result' } & Omit<StepResultData, 'migrationId'>)
  | { type: 'retry' }
  | { type: 'cancel' }
  /** The reconciler cannot safely decide (a host gone, replays exhausted): wait for an operator. */
  | { type: 'pause'; error: ErrorData };

export type Command =
  | { type: 'enqueue'; phase: Phase; index: number; run: number; step: PlannedStep; fence: { epoch: number; owner: string } }
  | { type: 'finished'; state: OperationRecord['state'] };

export interface Transition<R extends OperationRecord = OperationRecord> {
  record: R;
  commands: Command[];
  /** False when the event changed nothing (a duplicate or stale delivery). */
  changed: boolean;
}

export function newRecord<K extends OperationKind>(args: {
  id: string;
  kind: K;
  request: RequestOf<K>;
  plan: Plan;
  hosts: HostsOf<K>;
  epoch: number;
  now: number;
}): RecordOf<K> {
  const record = {
    id: args.id,
    kind: args.kind,
    request: args.request,
    hosts: args.hosts,
    plan: args.plan,
    state: 'pending' as const,
    phase: 'forward' as const,
    cursor: 0,
    run: 0,
    epoch: args.epoch,
    owner: args.plan.owner,
    steps: args.plan.steps.map((s): StepRecord => ({ ...s, state: 'pending', run: 0, attempts: 0 })),
    rollback: [],
    cancelRequested: false,
    createdAt: args.now,
    updatedAt: args.now,
    version: 0,
  };
  // Kind, request and hosts are of one kind by the signature; TypeScript cannot follow that
  // correlation through a generic object literal.
  return record as unknown as RecordOf<K>;
}

const unchanged = <R extends OperationRecord>(record: R): Transition<R> => ({ record, commands: [], changed: false });

function enqueueCursor(r: OperationRecord, now: number): Command[] {
  const list = currentSteps(r);
  const step = list[r.cursor];
  if (!step) return [];
  // The handover: the step's host becomes the owner the moment it is asked to start the container.
  if (r.phase === 'forward' && r.cursor === r.plan.handoverAt && r.owner !== step.host) {
    r.epoch += 1;
    r.owner = step.host;
  }
  list[r.cursor] = { ...step, state: 'running', run: r.run, enqueuedAt: now };
  const fence = { epoch: r.epoch, owner: r.owner };
  return [{ type: 'enqueue', phase: r.phase, index: r.cursor, run: r.run, step: { name: step.name, role: step.role, host: step.host }, fence }];
}

function finish(r: OperationRecord, state: 'done' | 'rolled-back', now: number): Command[] {
  r.state = state;
  r.endedAt = now;
  return [{ type: 'finished', state }];
}

function wasRunning(r: OperationRecord): boolean {
  const pre = r.steps.find((s) => s.name === 'preflight' && s.role === 'source' && s.state === 'done');
  const out = PreflightOutput.safeParse(pre?.output);
  return (out.success ? out.data.wasRunning : undefined) ?? true;
}

/** Switch to the rollback phase for a forward step at `failedIndex`; rolled back at once if nothing to undo. */
function beginRollback(r: OperationRecord, failedIndex: number, now: number): Command[] {
  const steps = rollbackPlan(r.plan, failedIndex, wasRunning(r));
  r.phase = 'rollback';
  r.cursor = 0;
  // Ownership goes back to the source under a new epoch: a late step of the forward path (say a
  // restore retried on the target) is refused from here on.
  r.epoch += 1;
  r.owner = r.plan.owner;
  r.rollback = steps.map((s): StepRecord => ({ ...s, state: 'pending', run: r.run, attempts: 0 }));
  if (r.rollback.length === 0) return finish(r, 'rolled-back', now);
  r.state = 'rolling-back';
  return enqueueCursor(r, now);
}

/** Past the point of no return the container runs on the target: only forward from here. */
export function pastPointOfNoReturn(r: OperationRecord): boolean {
  const ponr = r.steps[r.plan.pointOfNoReturn];
  return ponr?.state === 'done';
}

/**
 * The migration state machine: pure. Given a record and an event, the next record and the
 * commands the scheduler must carry out. Duplicate or stale step results change nothing,
 * which makes at-least-once delivery safe. Refused events throw a TransitionError.
 */
export function transition<R extends OperationRecord>(prev: R, event: OperationEvent, now: number): Transition<R> {
  const r: R = structuredClone(prev);
  r.updatedAt = now;
  switch (event.type) {
    case 'start': {
      if (r.state !== 'pending') throw new TransitionError(r.state, 'start', 'it has already started');
      r.state = 'running';
      return { record: r, commands: enqueueCursor(r, now), changed: true };
    }
    case 'step-result': {
      if (isTerminal(r.state) || r.state === 'paused' || r.state === 'pending') return unchanged(prev);
      if (event.phase !== r.phase || event.index !== r.cursor || event.run !== r.run) return unchanged(prev);
      const list = currentSteps(r);
      const step = list[event.index];
      if (!step || step.state !== 'running') return unchanged(prev);
      const { error: _previous, ...rest } = step;
      const done: StepRecord = {
        ...rest,
        state: event.ok ? 'done' : 'failed',
        attempts: event.attempts,
        endedAt: event.endedAt,
        ...(event.startedAt !== undefined ? { startedAt: event.startedAt } : {}),
        ...(event.ok ? { output: event.output } : {}),
        ...(event.error ? { error: event.error } : {}),
      };
      list[event.index] = done;

      if (r.phase === 'forward') {
        if (!event.ok) {
          r.error = event.error;
          if (pastPointOfNoReturn(r)) {
            r.state = 'paused';
            return { record: r, commands: [], changed: true };
          }
          return { record: r, commands: beginRollback(r, event.index, now), changed: true };
        }
        if (r.cancelRequested && !pastPointOfNoReturn(r)) {
          return { record: r, commands: beginRollback(r, event.index, now), changed: true };
        }
        r.cursor += 1;
        if (r.cursor >= r.steps.length) return { record: r, commands: finish(r, 'done', now), changed: true };
        return { record: r, commands: enqueueCursor(r, now), changed: true };
      }
      // rollback phase
      if (!event.ok) {
        r.error = event.error;
        r.state = 'paused';
        return { record: r, commands: [], changed: true };
      }
      r.cursor += 1;
      if (r.cursor >= r.rollback.length) return { record: r, commands: finish(r, 'rolled-back', now), changed: true };
      return { record: r, commands: enqueueCursor(r, now), changed: true };
    }
    case 'pause': {
      if (r.state !== 'running' && r.state !== 'rolling-back') throw new TransitionError(r.state, 'pause', 'only a running migration can be paused');
      const list = currentSteps(r);
      const step = list[r.cursor];
      if (step && step.state === 'running') list[r.cursor] = { ...step, state: 'failed', error: event.error, endedAt: now };
      r.error = event.error;
      r.state = 'paused';
      return { record: r, commands: [], changed: true };
    }
    case 'retry': {
      if (r.state !== 'paused') throw new TransitionError(r.state, 'retry', 'only a paused migration can be retried');
      r.run += 1;
      r.state = r.phase === 'forward' ? 'running' : 'rolling-back';
      delete r.error;
      return { record: r, commands: enqueueCursor(r, now), changed: true };
    }
    case 'cancel': {
      if (isTerminal(r.state)) throw new TransitionError(r.state, 'cancel', 'it has already ended');
      if (pastPointOfNoReturn(r)) {
        throw new TransitionError(r.state, 'cancel', 'the container already runs on the target; only retry can finish it');
      }
      if (r.state === 'rolling-back') throw new TransitionError(r.state, 'cancel', 'it is already rolling back');
      if (r.state === 'pending') return { record: r, commands: finish(r, 'rolled-back', now), changed: true };
      if (r.state === 'paused') {
        // Paused in the forward phase: undo from the failed step. (Rollback-phase pauses take `retry`.)
        if (r.phase === 'rollback') throw new TransitionError(r.state, 'cancel', 'it is paused while rolling back; retry finishes the rollback');
        r.run += 1;
        return { record: r, commands: beginRollback(r, r.cursor, now), changed: true };
      }
      // running: the step in flight finishes first, then the rollback begins
      r.cancelRequested = true;
      return { record: r, commands: [], changed: true };
    }
  }
}
