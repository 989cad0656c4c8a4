import type { RebalancePolicy } from './policy.js';
import type { Move, RebalancePlan } from './plan-rebalance.js';
import type { SnapshotNote } from './from-registry.js';

/** How a round's move ended, from its migration's record. */
export type MoveOutcome = 'pending' | 'running' | 'done' | 'rolled-back' | 'paused' | 'rejected' | 'timed-out';

export interface RoundMove extends Move {
  /** The ordinary migration that carries the move out (see roundMigrationId). */
  migrationId: string;
  outcome: MoveOutcome;
  /** Why it did not end done, as the migration's error says. */
  error?: string;
  endedAt?: number;
}

/**
 * One rebalance round as recorded in Redis (keys.rebalanceRound): what it saw (the snapshot's
 * digest and what it left out), what it planned and why, and how each move ended.
 */
export interface RebalanceRound {
  id: string;
  trigger: 'auto' | 'manual';
  /** planned: moves recorded, not all submitted yet; moving: waiting for them; done: every move ended (or none). */
  state: 'planned' | 'moving' | 'done';
  startedAt: number;
  endedAt?: number;
  digest: string;
  policy: RebalancePolicy;
  notes: SnapshotNote[];
  plan: Omit<RebalancePlan, 'moves'>;
  moves: RoundMove[];
}

/** A move's outcome once its migration's record is in `state` (terminal or waiting for an operator). */
export function outcomeOf(state: string): MoveOutcome {
  switch (state) {
    case 'done':
    case 'rolled-back':
    case 'paused':
    case 'rejected':
      return state;
    default:
      return 'running';
  }
}

/** Still waiting for it. */
export const moveOpen = (o: MoveOutcome) => o === 'pending' || o === 'running';
