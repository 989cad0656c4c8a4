import type { Phase } from './keys.js';
import { currentSteps, kindOf, outputOf, type MigrationRecord } from './record.js';
import type { MigrationRequest } from './request.js';
import type { CloneRequest } from './clone-request.js';
import type { UnifyRequest } from './unify-request.js';
import type { CheckpointOutput, PreflightOutput, StepInput, StepName } from './steps/index.js';
import { StepSchemas } from './steps/index.js';

/**
 * Builds a step's input from the migration record: the request, the hosts and what earlier
 * steps reported. Pure, so the scheduler can re-issue the same step identically after a crash.
 */
export function stepInput(r: MigrationRecord, phase: Phase, index: number): StepInput<StepName> {
  const step = (phase === 'forward' ? r.steps : r.rollback)[index] ?? currentSteps(r)[index];
  if (!step) throw new Error(`migration ${r.id} has no ${phase} step ${index}`);
  if (kindOf(r) === 'clone') return cloneStepInput(r, step.name, step.role);
  if (kindOf(r) === 'unify') {
    const u = r.request as UnifyRequest;
    return StepSchemas.unify.input.parse({
      migrationId: r.id, container: u.container, epoch: r.epoch,
      containers: u.containers, mode: u.mode, dryRun: u.dryRun, revert: u.revert, excludes: u.excludes,
    });
  }
  const base = { migrationId: r.id, container: r.request.container, epoch: r.epoch };
  const { source, target } = r.hosts;
  const opts = (r.request as MigrationRequest).options;
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
          ...(cp?.manifestDigest ? { expectManifestDigest: cp.manifestDigest, verify: cp.verify ?? 'full' } : {}),
          // Announced from restore as soon as it runs only when ARP refresh is asked for.
          ...(src?.ip && opts.arpRefresh ? { ip: src.ip } : {}),
        };
      case 'arp-refresh':
        return { ...base, ip: src?.ip };
      case 'cleanup':
        return { ...base, keepSource: opts.keepSource };
      case 'discard-target':
        return { ...base, keepCopy: false };
      case 'resume-source':
        return { ...base, wasRunning };
      default:
        throw new Error(`a migration has no step ${step.name}`);
    }
  })();
  return StepSchemas[step.name].input.parse(input);
}

/** A hostname from a container name: characters a DNS label cannot hold become '-'. */
export function hostnameFor(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'clone';
}

function cloneStepInput(r: MigrationRecord, name: StepName, role: string): StepInput<StepName> {
  const req = r.request as CloneRequest;
  const { source, target } = r.hosts;
  const src = outputOf<PreflightOutput>(r, 'preflight', 'source');
  const wasRunning = src?.wasRunning ?? false;
  const on = (container: string) => ({ migrationId: r.id, container, epoch: r.epoch });
  const bw = req.bwlimitKBps === undefined ? {} : { bwlimitKBps: req.bwlimitKBps };
  const input = ((): unknown => {
    switch (name) {
      case 'preflight':
        return role === 'source'
          ? { ...on(req.container), role: 'source', peer: target, refuseRunning: !req.freeze }
          : { ...on(req.name), role: 'target', peer: source, expect: { ip: req.ip, mac: req.mac, sizeBytes: src?.sizeBytes ?? 0, bindMounts: src?.bindMounts ?? [] } };
      case 'clone-copy':
        return { ...on(req.container), name: req.name, peer: target, freeze: req.freeze && wasRunning, ...bw };
      case 'clone-identity':
        return { ...on(req.container), name: req.name, source, hostname: req.hostname ?? hostnameFor(req.name), ip: req.ip, mac: req.mac, start: wasRunning };
      case 'discard-target':
        return { ...on(req.name), keepCopy: false };
      case 'resume-source':
        return { ...on(req.container), wasRunning };
      default:
        throw new Error(`a clone has no step ${name}`);
    }
  })();
  return StepSchemas[name].input.parse(input);
}
