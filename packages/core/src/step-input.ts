import type { Phase } from './keys.js';
import { currentSteps, outputOf, type MigrationRecord } from './record.js';
import type { CheckpointOutput, PreflightOutput, StepInput, StepName } from './steps/index.js';
import { StepSchemas } from './steps/index.js';

/**
 * Builds a step's input from the migration record: the request, the hosts and what earlier
 * steps reported. Pure, so the scheduler can re-issue the same step identically after a crash.
 */
export function stepInput(r: MigrationRecord, phase: Phase, index: number): StepInput<StepName> {
  const step = (phase === 'forward' ? r.steps : r.rollback)[index] ?? currentSteps(r)[index];
  if (!step) throw new Error(`migration ${r.id} has no ${phase} step ${index}`);
  const base = { migrationId: r.id, container: r.request.container, epoch: r.epoch };
  const { source, target } = r.hosts;
  const opts = r.request.options;
  const src = outputOf<PreflightOutput>(r, 'preflight', 'source');
  const cp = outputOf<CheckpointOutput>(r, 'checkpoint');
  const wasRunning = src?.wasRunning ?? true;
  const bw = opts.bwlimitKBps === undefined ? {} : { bwlimitKBps: opts.bwlimitKBps };
  const input = ((): unknown => {
    switch (step.name) {
      case 'preflight':
        return step.role === 'source'
          ? { ...base, role: 'source', peer: target }
          : {
              ...base,
              role: 'target',
              peer: source,
              expect: { ip: src?.ip, mac: src?.mac, sizeBytes: src?.sizeBytes ?? 0, bindMounts: src?.bindMounts ?? [] },
            };
      case 'rsync-transfer':
        return { ...base, peer: target, precopy: opts.precopy, wasRunning, ...bw };
      case 'checkpoint':
        return { ...base, peer: target, mode: r.plan.mode, wasRunning, verify: opts.verify, ...bw };
      case 'restore':
        return {
          ...base,
          source,
          method: cp?.method ?? 'stop',
          start: wasRunning,
          ...(cp?.manifestDigest ? { expectManifestDigest: cp.manifestDigest } : {}),
        };
      case 'arp-refresh':
        return { ...base, ip: src?.ip };
      case 'cleanup':
        return { ...base, keepSource: opts.keepSource };
      case 'discard-target':
        return { ...base, keepCopy: false };
      case 'resume-source':
        return { ...base, wasRunning };
    }
  })();
  return StepSchemas[step.name].input.parse(input);
}
