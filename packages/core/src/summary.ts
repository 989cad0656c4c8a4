import type { ErrorData } from './errors/index.js';
import type { RecordState, StoredRecord } from './record.js';
import { figuresOf, type StepFigures } from './steps/catalogue.js';

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

export interface OperationSummary {
  id: string;
  kind: string;
  /** A clone's name. */
  name?: string;
  container: string;
  /** The source host (a unify's one host). */
  from: string;
  /** The target host (a unify's one host). */
  to: string;
  mode?: string;
  /** Why that mode (what was asked, or what the hosts allowed). */
  modeReason?: string;
  state: RecordState;
  createdAt: number;
  endedAt?: number;
  totalMs?: number;
  bytesTransferred: number;
  precopyPasses: number;
  /** Bytes of process state (the CRIU dump) sent by a live migration; `bytesTransferred` is files. */
  memoryBytes?: number;
  /** Source frozen → target started: the window in which the container did not run. */
  frozenMs?: number;
  /**
   * Downtime as ferry sees it: source frozen → the end of the step that started the target (it
   * sends the first gratuitous ARP before it reports). A client also waits for its service to answer.
   */
  downtimeMs?: number;
  checkpointMethod?: string;
  steps: StepSummary[];
  error?: ErrorData;
}

/** Figures of an operation from its record: pure, shared by status, watch and the demo. */
export function summarize(r: StoredRecord): OperationSummary {
  if (r.state === 'rejected') {
    const req = typeof r.request === 'object' && r.request !== null ? (r.request as Record<string, unknown>) : {};
    const text = (k: string) => (typeof req[k] === 'string' ? req[k] : '?');
    return {
      id: r.id,
      kind: r.kind,
      container: text('container'),
      from: typeof req.host === 'string' ? req.host : text('from'),
      to: typeof req.host === 'string' ? req.host : text('to'),
      state: r.state,
      createdAt: r.createdAt,
      endedAt: r.endedAt,
      totalMs: r.endedAt - r.createdAt,
      bytesTransferred: 0,
      precopyPasses: 0,
      steps: [],
      error: r.error,
    };
  }
  const steps: StepSummary[] = [
    ...r.steps.map((s) => ({ ...s, phase: 'forward' as const })),
    ...r.rollback.map((s) => ({ ...s, phase: 'rollback' as const })),
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
  // What each finished forward step contributes, as the step catalogue says.
  const f: StepFigures = {};
  let bytes = 0;
  let announcedAt: number | undefined;
  for (const s of r.steps) {
    if (s.state !== 'done') continue;
    const g = figuresOf(s.name, s.output);
    bytes += g.bytesTransferred ?? 0;
    if (g.startedAt !== undefined) announcedAt = s.endedAt;
    Object.assign(f, g);
  }
  const [from, to] = 'host' in r.hosts ? [r.hosts.host.name, r.hosts.host.name] : [r.hosts.source.name, r.hosts.target.name];
  return {
    id: r.id,
    kind: r.kind,
    ...(r.kind === 'clone' ? { name: r.request.name } : {}),
    container: r.request.container,
    from,
    to,
    ...(r.plan.mode ? { mode: r.plan.mode } : {}),
    ...(r.plan.modeReason ? { modeReason: r.plan.modeReason } : {}),
    state: r.state,
    createdAt: r.createdAt,
    ...(r.endedAt !== undefined ? { endedAt: r.endedAt, totalMs: r.endedAt - r.createdAt } : {}),
    bytesTransferred: bytes,
    precopyPasses: f.precopyPasses ?? 0,
    ...(f.frozenAt !== undefined && f.startedAt !== undefined ? { frozenMs: f.startedAt - f.frozenAt } : {}),
    ...(f.frozenAt !== undefined && announcedAt !== undefined ? { downtimeMs: announcedAt - f.frozenAt } : {}),
    ...(f.checkpointMethod ? { checkpointMethod: f.checkpointMethod } : {}),
    ...(f.memoryBytes !== undefined ? { memoryBytes: f.memoryBytes } : {}),
    steps,
    ...(r.error ? { error: r.error } : {}),
  };
}
