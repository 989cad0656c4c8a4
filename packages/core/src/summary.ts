import type { ErrorData } from './errors/index.js';
import type { MigrationRecord, MigrationState } from './record.js';
import type { CheckpointOutput, RsyncTransferOutput } from './steps/index.js';

export interface StepSummary {
  name: string;
  phase: 'forward' | 'rollback';
  role: string;
  host: string;
  state: string;
  attempts: number;
  startedAt?: number;
  endedAt?: number;
  ms?: number;
  error?: ErrorData;
}

export interface MigrationSummary {
  id: string;
  kind: string;
  /** A clone's name. */
  name?: string;
  container: string;
  from: string;
  to: string;
  mode?: string;
  state: MigrationState;
  createdAt: number;
  endedAt?: number;
  totalMs?: number;
  bytesTransferred: number;
  precopyPasses: number;
  /** Source frozen → target started: the window in which the container did not run. */
  frozenMs?: number;
  checkpointMethod?: string;
  steps: StepSummary[];
  error?: ErrorData;
}

/** Figures of a migration from its record: pure, shared by status, watch and the demo. */
export function summarize(r: MigrationRecord): MigrationSummary {
  const req = (r.request ?? {}) as Partial<MigrationRecord['request']>;
  const steps: StepSummary[] = [
    ...(r.steps ?? []).map((s) => ({ ...s, phase: 'forward' as const })),
    ...(r.rollback ?? []).map((s) => ({ ...s, phase: 'rollback' as const })),
  ].map((s) => ({
    name: s.name,
    phase: s.phase,
    role: s.role,
    host: s.host,
    state: s.state,
    attempts: s.attempts,
    ...(s.startedAt !== undefined ? { startedAt: s.startedAt } : {}),
    ...(s.endedAt !== undefined ? { endedAt: s.endedAt } : {}),
    ...(s.startedAt !== undefined && s.endedAt !== undefined ? { ms: s.endedAt - s.startedAt } : {}),
    ...(s.error ? { error: s.error } : {}),
  }));
  const out = (name: string) => (r.steps ?? []).find((s) => s.name === name && s.state === 'done')?.output;
  const transfer = out('rsync-transfer') as RsyncTransferOutput | undefined;
  const copy = out('clone-copy') as { bytesSent: number } | undefined;
  const cp = out('checkpoint') as CheckpointOutput | undefined;
  const restore = (r.steps ?? []).find((s) => s.name === 'restore' && s.state === 'done');
  const startedAt = (restore?.output as { startedAt?: number } | undefined)?.startedAt;
  return {
    id: r.id,
    kind: r.kind ?? 'migrate',
    ...((r.request as { name?: string } | undefined)?.name ? { name: (r.request as { name: string }).name } : {}),
    container: req.container ?? '?',
    from: req.from ?? '?',
    to: req.to ?? '?',
    ...(r.plan ? { mode: r.plan.mode } : {}),
    state: r.state,
    createdAt: r.createdAt,
    ...(r.endedAt !== undefined ? { endedAt: r.endedAt, totalMs: r.endedAt - r.createdAt } : {}),
    bytesTransferred: (transfer?.bytesTransferred ?? 0) + (cp?.finalPass.bytesSent ?? 0) + (copy?.bytesSent ?? 0),
    precopyPasses: transfer?.passes.length ?? 0,
    ...(cp?.frozenAt !== undefined && startedAt !== undefined ? { frozenMs: startedAt - cp.frozenAt } : {}),
    ...(cp ? { checkpointMethod: cp.method } : {}),
    steps,
    ...(r.error ? { error: r.error } : {}),
  };
}
