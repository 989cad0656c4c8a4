import type { Capabilities } from './capabilities.js';
import type { MigrationRequest } from './request.js';
import type { StepName } from './steps/index.js';
import { ValidationError } from './errors/index.js';

export type Role = 'source' | 'target';

export interface PlannedStep {
  name: StepName;
  role: Role;
  host: string;
}

export interface Plan {
  mode: 'live' | 'restart';
  steps: PlannedStep[];
  /** Index of the step after whose success the migration only goes forward. */
  pointOfNoReturn: number;
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
  return { mode, steps, pointOfNoReturn };
}

/**
 * What undoes a forward failure at `failedIndex` (before the point of no return): remove the
 * target's copy first, so the container can never run twice, then resume the source, then
 * announce it from the source in case the target had announced it.
 */
export function rollbackPlan(p: Plan, failedIndex: number, request: MigrationRequest, wasRunning: boolean): PlannedStep[] {
  const reached = (name: StepName) => {
    const i = p.steps.findIndex((s) => s.name === name);
    return i >= 0 && failedIndex >= i;
  };
  const out: PlannedStep[] = [];
  if (reached('rsync-transfer')) out.push({ name: 'discard-target', role: 'target', host: request.to });
  if (reached('checkpoint')) out.push({ name: 'resume-source', role: 'source', host: request.from });
  if (reached('restore') && wasRunning && request.options.arpRefresh) {
    out.push({ name: 'arp-refresh', role: 'source', host: request.from });
  }
  return out;
}
