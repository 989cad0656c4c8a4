import { createPublicKey, type KeyObject } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import {
  MigrationId,
  OPERATION_KINDS,
  toErrorData,
  TRUST_CODES,
  trustError,
  type ErrorData,
  type HostInfo,
  type OperationKind,
  type OperationRecord,
  type RejectedRecord,
  type SchedulerJob,
  type StepResultData,
} from '@ferry/core';
import { verifyHostEntry, verifyJob, verifyResult, type HostKeySource, type HostRegistry, type OperationStore, type ReplayGuard } from '@ferry/infra';

/** What the scheduler trusts, none of it from Redis. */
export interface SchedulerTrust {
  /** The control plane's private key: signs every job this scheduler enqueues; its public half checks requests. */
  controlKey: KeyObject;
  /** Trusted host public keys (a directory on this machine, never the Redis registry). */
  hostKeys: HostKeySource;
  /** Requests this scheduler has handled, on local disk: a handled request re-added is a replay. */
  seen: ReplayGuard;
}

/**
 * A scheduler job once admitted: a request as signed, or a result with its host's signature checked
 * and removed, with the record it was checked against (as read then: it may have moved on since).
 */
export type AdmittedJob = Exclude<SchedulerJob, { kind: 'result' }> | { kind: 'result'; result: StepResultData; record: OperationRecord };

/**
 * The scheduler's door. Requests (submit, retry, cancel) must be signed by the control-plane key,
 * unexpired and not handled here before; a result must come, signed, from the host its step was
 * planned on (its public key from `hostKeys`). A refused job is logged with its code and failed
 * (BullMQ's failedReason `CODE: message`); a refused submit also leaves a rejected record (if the
 * id has none), so `ferry status` says why. Nothing else is done.
 */
export class SchedulerGate {
  private readonly publicKey: KeyObject;

  constructor(
    private readonly trust: SchedulerTrust,
    private readonly store: Pick<OperationStore, 'get' | 'save'>,
    private readonly log: Logger,
  ) {
    this.publicKey = createPublicKey(trust.controlKey);
  }

  async admit(job: Job<SchedulerJob>): Promise<{ job: AdmittedJob; done: () => Promise<void> }> {
    const d = job.data as SchedulerJob | undefined;
    try {
      if (d?.kind === 'result') return { job: { kind: 'result', ...(await this.checkResult(d.result)) }, done: async () => undefined };
      const v = verifyJob(this.publicKey, { queue: job.queueName, jobId: job.id, name: job.name, data: job.data });
      if (await this.trust.seen.has(v.sig)) throw trustError(TRUST_CODES.replayed, `request ${job.id} (${job.name}) was already handled by this scheduler; refused as a replay`);
      return { job: v.payload as AdmittedJob, done: () => this.trust.seen.record(v.sig, v.exp) };
    } catch (e) {
      const error = toErrorData(e);
      this.log.error({ code: error.code, jobId: job.id, name: job.name, error, ...(d && 'migrationId' in d ? { migrationId: d.migrationId } : {}) }, d?.kind === 'result' ? 'step result refused' : 'request refused');
      if (d?.kind === 'submit') await this.rejectSubmit(d, error);
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    }
  }

  /** A reported result (a result job, or a step job's return value), accepted only from its step's planned host. */
  async result(reported: unknown): Promise<StepResultData> {
    return (await this.checkResult(reported)).result;
  }

  /** The same, with the record read to check it (the scheduler applies the result to it first). */
  private async checkResult(reported: unknown): Promise<{ result: StepResultData; record: OperationRecord }> {
    const r = reported as Partial<StepResultData> | null;
    const rec = typeof r?.migrationId === 'string' ? await this.store.get(r.migrationId) : null;
    const record = rec && rec.state !== 'rejected' ? rec : undefined;
    const list = r?.phase === 'rollback' ? record?.rollback : record?.steps;
    const step = typeof r?.index === 'number' ? list?.[r.index] : undefined;
    // No such step: nothing to apply it to, and no host to check it against.
    if (!record || !step) throw trustError(TRUST_CODES.wrongHost, `a result for ${r?.migrationId ?? '?'} ${r?.phase ?? '?'}.${r?.index ?? '?'}, a step that was never planned; refused`);
    return { result: await verifyResult(this.trust.hostKeys, step.host, reported), record };
  }

  /** Refuses to plan on a host whose key this scheduler does not trust: none of its results could be accepted. */
  async requireHostKey(host: string): Promise<void> {
    if (!(await this.trust.hostKeys.get(host))) {
      throw trustError(TRUST_CODES.noHostKey, `no trusted public key for host ${host} in ${this.trust.hostKeys.where} (copy ${host}.pub there from that worker's --host-keys dir)`);
    }
  }

  /**
   * A host's registry entry as planning may use it: signed by that host's trusted key over every
   * field stored (verifyHostEntry); null when the host has no entry.
   */
  async hostEntry(registry: Pick<HostRegistry, 'raw'>, host: string): Promise<HostInfo | null> {
    const raw = await registry.raw(host);
    if (raw === null) return null;
    await this.requireHostKey(host);
    return verifyHostEntry(this.trust.hostKeys, host, raw);
  }

  private async rejectSubmit(d: Extract<SchedulerJob, { kind: 'submit' }>, error: ErrorData): Promise<void> {
    if (!MigrationId.safeParse(d.migrationId).success) return;
    const kind: OperationKind = OPERATION_KINDS.includes(d.op as OperationKind) ? (d.op as OperationKind) : 'migrate';
    const now = Date.now();
    const r: RejectedRecord = { id: d.migrationId, kind, state: 'rejected', request: d.request, error, createdAt: now, updatedAt: now, endedAt: now, version: 0 };
    await this.store.save(r, true).catch(() => undefined); // only where the id has no record
  }
}
