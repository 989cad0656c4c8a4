import type { StepName } from './steps/catalogue.js';

/** A step's host by its role in the operation: a move's source and target, or the one host. */
export type Role = 'source' | 'target' | 'host';

export interface PlannedStep {
  name: StepName;
  role: Role;
  host: string;
}

/** A step that undoes forward work, due once the forward step at index `after` has been reached. */
export interface Compensation {
  after: number;
  step: PlannedStep;
  /** Due only for failures before this forward index. */
  before?: number;
  /** Only when the container was running at the start (e.g. announcing it again). */
  onlyIfWasRunning?: boolean;
}

/**
 * An operation's steps as its workflow laid them out at submission (workflows/), stored in its
 * record: what runs where, what undoes what, and where ownership of the container changes hands.
 */
export interface Plan {
  /** A migration's mode (live: CRIU dump and restore; restart: stop and start). */
  mode?: 'live' | 'restart';
  /** Why this mode: what was asked, or for `auto` what the hosts' capabilities allowed. */
  modeReason?: string;
  steps: PlannedStep[];
  /** Index of the step after whose success the operation only goes forward. */
  pointOfNoReturn: number;
  /** What undoes a failure before the point of no return, in the order to run it. */
  compensations: Compensation[];
  /**
   * Forward steps from this index up to the point of no return run while the container is down
   * (frozen or stopped at the source, not yet started at the target): a host silent for
   * seconds there is given up on at once, since every second waited is an outage.
   */
  downFrom?: number;
  /** The host that owns the container at the start; a rollback hands ownership back to it. */
  owner: string;
  /** The forward step whose host becomes the owner when it is enqueued (a migration's restore). */
  handoverAt?: number;
}

/** The compensations due for a forward failure at `failedIndex` (before the point of no return). */
export function rollbackPlan(p: Plan, failedIndex: number, wasRunning: boolean): PlannedStep[] {
  return p.compensations
    .filter((c) => failedIndex >= c.after && (c.before === undefined || failedIndex < c.before) && (wasRunning || !c.onlyIfWasRunning))
    .map((c) => c.step);
}
