import type { OperationKind, OperationRecord, RecordOf } from '../record.js';
import type { Phase } from '../keys.js';
import type { PlannedStep } from '../plan.js';
import { catalogue, type StepInput, type StepName } from '../steps/catalogue.js';
import { DEFAULT_ATTEMPTS, wiring, type StepDef, type Workflow } from './workflow.js';
import { migrate } from './migrate.js';
import { clone } from './clone.js';
import { unify } from './unify.js';
import { checkpoint } from './checkpoint.js';
import { restore } from './restore.js';

export * from './workflow.js';
export { migrate, clone, unify, checkpoint, restore };
export { hostnameFor } from './clone.js';

/** Every operation kind's workflow. Adding a kind: its request, its record variant, its workflow here. */
export const workflows: { [K in OperationKind]: Workflow<K> } = { migrate, clone, unify, checkpoint, restore };

/**
 * Calls `f` with the workflow of `kind`, typed for that kind (the one place that goes from a kind
 * known at run time to its workflow's types).
 */
export function withWorkflow<T>(kind: OperationKind, f: <K extends OperationKind>(wf: Workflow<K>) => T): T {
  switch (kind) {
    case 'migrate':
      return f(migrate);
    case 'clone':
      return f(clone);
    case 'unify':
      return f(unify);
    case 'checkpoint':
      return f(checkpoint);
    case 'restore':
      return f(restore);
  }
}

/** The same, with the record narrowed to the workflow's kind. */
export function withRecord<T>(r: OperationRecord, f: <K extends OperationKind>(wf: Workflow<K>, r: RecordOf<K>) => T): T {
  switch (r.kind) {
    case 'migrate':
      return f(migrate, r);
    case 'clone':
      return f(clone, r);
    case 'unify':
      return f(unify, r);
    case 'checkpoint':
      return f(checkpoint, r);
    case 'restore':
      return f(restore, r);
  }
}

function defOf<K extends OperationKind>(wf: Workflow<K>, step: PlannedStep): StepDef<K> {
  const def = wf.steps.find((d) => d.name === step.name && d.role === step.role);
  if (!def) throw new Error(`the ${wf.kind} workflow has no step ${step.name} on its ${step.role}`);
  return def;
}

function stepOf(r: OperationRecord, phase: Phase, index: number): PlannedStep {
  const step = (phase === 'forward' ? r.steps : r.rollback)[index];
  if (!step) throw new Error(`operation ${r.id} has no ${phase} step ${index}`);
  return step;
}

/**
 * A step's input, built from the record by its workflow and checked by the step's schema. Pure,
 * so the scheduler can re-issue the same step identically after a crash.
 */
export function stepInput(r: OperationRecord, phase: Phase, index: number): StepInput<StepName> {
  const step = stepOf(r, phase, index);
  return withRecord(r, (wf, rec) => catalogue[step.name].input.parse(defOf(wf, step).input(wiring(rec))));
}

/** How many times the step's job is attempted. */
export function stepAttempts(r: OperationRecord, phase: Phase, index: number): number {
  const step = stepOf(r, phase, index);
  return withRecord(r, (wf) => defOf(wf, step).attempts ?? DEFAULT_ATTEMPTS);
}
