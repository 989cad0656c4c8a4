import type { z } from 'zod';
import type { Capabilities } from '../capabilities.js';
import type { Peer } from '../host.js';
import type { OperationKind, RecordOf, RequestOf, HostsOf } from '../record.js';
import type { Compensation, Plan, PlannedStep, Role } from '../plan.js';
import { catalogue, type StepName, type StepOutput } from '../steps/catalogue.js';

/** What a step's input is built from: the record (request, hosts) and what earlier steps reported. */
export interface Wiring<K extends OperationKind> {
  record: RecordOf<K>;
  request: RequestOf<K>;
  hosts: HostsOf<K>;
  /** The fields every step input begins with (operation id, container, ownership epoch). */
  on(container: string): { migrationId: string; container: string; epoch: number };
  /** The output of the first finished forward step of this name (and role), as its schema reads it. */
  output<N extends StepName>(name: N, role?: Role): StepOutput<N> | undefined;
}

/** What a step's schema accepts (before defaults are applied). */
export type StepInputShape<N extends StepName> = z.input<(typeof catalogue)[N]['input']>;

/**
 * One step of a workflow: the step from the catalogue, the role of the host it runs on, and how
 * its input is wired from the record. A workflow lists each (name, role) once.
 */
export interface StepDef<K extends OperationKind, N extends StepName = StepName> {
  name: N;
  role: Role;
  input(w: Wiring<K>): StepInputShape<N>;
  /** Attempts of its job (retryable failures back off exponentially); 5 unless set. */
  attempts?: number;
}

export const DEFAULT_ATTEMPTS = 5;

export function step<K extends OperationKind, N extends StepName>(
  name: N,
  role: Role,
  input: (w: Wiring<K>) => StepInputShape<N>,
  opts: { attempts?: number } = {},
): StepDef<K, N> {
  return { name, role, input, ...opts };
}

/** The capabilities of a host, by name, as the registry holds them at submission. */
export type CapabilitiesOf = (host: string) => Capabilities;

/**
 * An operation kind: how its request is read, which hosts and containers it involves, and its
 * steps in order with what undoes them. The scheduler, the worker's processor, the reconciler and
 * the summary read workflows and the step catalogue; nothing else repeats what is here.
 */
export interface Workflow<K extends OperationKind> {
  kind: K;
  /** Reads a submitted request; a ValidationError lists every problem. */
  parse(raw: unknown): RequestOf<K>;
  /** The registry hosts it involves (each must be known). */
  hostNames(request: RequestOf<K>): string[];
  /** Those hosts by role, for the record. */
  hosts(request: RequestOf<K>, peer: (host: string) => Peer): HostsOf<K>;
  /** Containers held for the whole operation: none may be in another operation meanwhile. */
  holds(request: RequestOf<K>): string[];
  plan(request: RequestOf<K>, caps: CapabilitiesOf): Plan;
  /** Every step the plan may use, forward or compensating. */
  steps: readonly StepDef<K>[];
}

/** A compensation as a workflow writes it: after (and before) which forward step, what runs. */
export interface Undo<K extends OperationKind> {
  after: StepDef<K>;
  before?: StepDef<K>;
  run: StepDef<K>;
  onlyIfWasRunning?: boolean;
}

/** Lays out a plan: step definitions become indices and hosts (`hostOf` maps a role to a host). */
export function layout<K extends OperationKind>(
  hostOf: (role: Role) => string,
  spec: {
    mode?: Plan['mode'];
    modeReason?: string;
    forward: StepDef<K>[];
    pointOfNoReturn: StepDef<K>;
    compensations?: Undo<K>[];
    downFrom?: StepDef<K>;
    handoverAt?: StepDef<K>;
    owner: Role;
  },
): Plan {
  const index = (d: StepDef<K>): number => {
    const i = spec.forward.indexOf(d);
    if (i < 0) throw new Error(`step ${d.name}@${d.role} is not in the forward path`);
    return i;
  };
  const at = (d: StepDef<K>): PlannedStep => ({ name: d.name, role: d.role, host: hostOf(d.role) });
  const compensations = (spec.compensations ?? []).map(
    (u): Compensation => ({
      after: index(u.after),
      step: at(u.run),
      ...(u.before ? { before: index(u.before) } : {}),
      ...(u.onlyIfWasRunning ? { onlyIfWasRunning: true } : {}),
    }),
  );
  return {
    ...(spec.mode ? { mode: spec.mode } : {}),
    ...(spec.modeReason ? { modeReason: spec.modeReason } : {}),
    steps: spec.forward.map(at),
    pointOfNoReturn: index(spec.pointOfNoReturn),
    compensations,
    ...(spec.downFrom ? { downFrom: index(spec.downFrom) } : {}),
    owner: hostOf(spec.owner),
    ...(spec.handoverAt ? { handoverAt: index(spec.handoverAt) } : {}),
  };
}

/** What a target's preflight expects of a copy: what the source's preflight reported. */
export function expectFromSource(src: StepOutput<'preflight'> | undefined) {
  return { ip: src?.ip, mac: src?.mac, sizeBytes: src?.sizeBytes ?? 0, bindMounts: src?.bindMounts ?? [] };
}

/** A record's request as its kind's type (TypeScript does not narrow property types of a generic Extract). */
export function requestOf<K extends OperationKind>(r: RecordOf<K>): RequestOf<K> {
  return r.request as RequestOf<K>;
}

/** The wiring view of a record. */
export function wiring<K extends OperationKind>(r: RecordOf<K>): Wiring<K> {
  return {
    record: r,
    request: requestOf(r),
    // As for the request.
    hosts: r.hosts as HostsOf<K>,
    on: (container) => ({ migrationId: r.id, container, epoch: r.epoch }),
    output: (name, role) => {
      const s = r.steps.find((x) => x.name === name && (role === undefined || x.role === role) && x.state === 'done');
      if (!s) return undefined;
      const parsed = catalogue[name].output.safeParse(s.output);
      return parsed.success ? (parsed.data as StepOutput<typeof name>) : undefined;
    },
  };
}
