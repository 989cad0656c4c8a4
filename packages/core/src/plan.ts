import type { Capabilities } from './capabilities.js';
import type { MigrationRequest } from './request.js';
import type { CloneRequest } from './clone-request.js';
import type { UnifyRequest } from './unify-request.js';
import type { StepName } from './steps/index.js';
import { ValidationError } from './errors/index.js';

export type Role = 'source' | 'target';

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

export interface Plan {
  mode: 'live' | 'restart';
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
}

/**
 * The ordered steps of a migration and the host each runs on. `auto` picks live migration
 * only where both hosts can checkpoint/restore; otherwise the container is restarted.
 */
export function plan(request: MigrationRequest, caps: { source: Capabilities; target: Capabilities }): Plan {
  const canLive = caps.source.checkpoint && caps.target.checkpoint;
  if (request.mode === 'live' && !canLive) {
    const why = [caps.source, caps.target]
      .map((c, i) => (c.checkpoint ? null : `${i === 0 ? request.from : request.to}: ${c.checkpointReason ?? 'cannot checkpoint'}`))
      .filter(Boolean)
      .join('; ');
    throw new ValidationError([{ path: 'mode', message: `live migration needs checkpoint/restore on both hosts (${why})` }]);
  }
  const mode = request.mode === 'restart' || !canLive ? 'restart' : 'live';
  const at = (name: StepName, role: Role): PlannedStep => ({ name, role, host: role === 'source' ? request.from : request.to });
  const steps: PlannedStep[] = [
    at('preflight', 'source'),
    at('preflight', 'target'),
    at('rsync-transfer', 'source'),
    at('checkpoint', 'source'),
    at('restore', 'target'),
  ];
  const pointOfNoReturn = steps.length - 1;
  if (request.options.arpRefresh) steps.push(at('arp-refresh', 'target'));
  steps.push(at('cleanup', 'source'));
  // Once restore has begun the copy may run on the target: it is removed before the source runs
  // again, so the container never runs twice. Before restore nothing runs there (and a late restore
  // is fenced off by the rollback's epoch), so the frozen source comes back first and the copy goes
  // after; a lost target then costs no downtime while its removal waits. Last, the container is
  // announced from the source in case the target had announced it.
  const index = (name: StepName) => steps.findIndex((s) => s.name === name);
  const compensations: Compensation[] = [
    { after: index('restore'), step: at('discard-target', 'target') },
    { after: index('checkpoint'), step: at('resume-source', 'source') },
    { after: index('rsync-transfer'), before: index('restore'), step: at('discard-target', 'target') },
  ];
  if (request.options.arpRefresh) {
    compensations.push({ after: index('restore'), step: at('arp-refresh', 'source'), onlyIfWasRunning: true });
  }
  return { mode, steps, pointOfNoReturn, compensations, downFrom: index('checkpoint') + 1 };
}

/** The compensations due for a forward failure at `failedIndex` (before the point of no return). */
export function rollbackPlan(p: Plan, failedIndex: number, wasRunning: boolean): PlannedStep[] {
  return p.compensations
    .filter((c) => failedIndex >= c.after && (c.before === undefined || failedIndex < c.before) && (wasRunning || !c.onlyIfWasRunning))
    .map((c) => c.step);
}

/**
 * A clone: check both sides, copy (frozen if asked), then give the copy its own identity and start
 * it. Until the clone runs, a failure removes the partial copy and thaws the source.
 */
export function planClone(request: CloneRequest): Plan {
  const at = (name: StepName, role: Role): PlannedStep => ({ name, role, host: role === 'source' ? request.from : request.to });
  const steps: PlannedStep[] = [at('preflight', 'source'), at('preflight', 'target'), at('clone-copy', 'source'), at('clone-identity', 'target')];
  return {
    mode: 'restart',
    steps,
    pointOfNoReturn: 3,
    compensations: [
      { after: 2, step: at('discard-target', 'target') },
      { after: 2, step: at('resume-source', 'source') },
    ],
  };
}

/** Unify: one step on the host; nothing to compensate (hardlink mode is undone by `--revert`). */
export function planUnify(request: UnifyRequest): Plan {
  return { mode: 'restart', steps: [{ name: 'unify', role: 'source', host: request.from }], pointOfNoReturn: 0, compensations: [] };
}
