import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import {
  advanceJobId,
  catalogue,
  FerryError,
  resolveTraits,
  toErrorData,
  type ErrorData,
  type StepInput,
  type StepJobData,
  type StepName,
  type StepOutput,
  type SignedStepResult,
  type StepResultData,
} from '@ferry/core';
import { KEEP_JOBS, type HostRegistry, type OperationStore, type Queues, type VerifiedJob } from '@ferry/infra';
import type { JobGate } from './trust/job-gate.js';
import { KeyedLock } from './keyed-lock.js';
import { PeerWatch } from './peer-watch.js';
import { Semaphore } from './semaphore.js';
import type { Progress, Step, StepContext } from './context.js';
import { steps } from './steps/index.js';

/** An implementation of every catalogue step, by name: the worker's own (`steps/`) unless a test gives fakes. */
export type StepTable = { [N in StepName]: Step<StepInput<N>, StepOutput<N>> };

export interface ProcessorDeps {
  store: OperationStore;
  registry: HostRegistry;
  /** Most bulk transfers this host runs at once (pre-copies and clone copies). */
  maxTransfers: number;
  /** A peer silent for this long is taken as gone: retrying a step against it stops. */
  peerGoneMs: number;
  /** The same, for a step that runs while its container is at rest (frozen or stopped). */
  peerGoneAtRestMs: number;
  queues: Queues;
  log: Logger;
  /** Builds the step context for one job (logger bound to migration, step and host). */
  context(log: Logger, progress: (p: Progress) => void): StepContext;
  /** True once the worker is shutting down: a failing step is handed back, not reported. */
  stopping(): boolean;
  /** True from the moment the worker was asked to stop: no step starts any more. */
  closing(): boolean;
  /** The steps to run (default: the worker's own, `steps/`); the fast tier's tests give fakes. */
  steps?: StepTable;
  /** Whether a peer host answers over SSH now (its worker may be silent while the host is fine). */
  peerAnswers?: (name: string) => Promise<boolean>;
  /** Checks each job's control-plane signature before anything else (trust/job-gate.ts). */
  gate: JobGate;
  /** Signs a result with this host's key: the scheduler accepts it only so, and only from this step's host. */
  signResult(result: StepResultData): SignedStepResult;
}

/** The container a step acts on here: steps on one container never overlap on one host. */
function containerOf(d: StepJobData): string | undefined {
  return d.fence?.container ?? (d.input as { container?: string } | undefined)?.container;
}

export function createProcessor(deps: ProcessorDeps) {
  const transfers = new Semaphore(deps.maxTransfers);
  // A step for a container waits for the one still running on it. A migration paused while its
  // checkpoint hangs on, then cancelled, queues resume-source: it must not thaw or start the
  // container while that checkpoint may still freeze or stop it; run after it, it observes and mends.
  const containers = new KeyedLock();
  return async (job: Job<StepJobData>, token?: string): Promise<SignedStepResult> => {
    // First of all: a job not signed by the control plane (or expired, or finished here before) is
    // refused before any lock, mark or step; BullMQ fails it and it is never retried.
    const verified = await deps.gate.admit(job);
    const d = job.data;
    if (verified.reported !== undefined) return reportAgain(deps, d, verified.reported as SignedStepResult);
    const container = containerOf(d);
    const closing = deps.closing();
    const release = closing ? null : container === undefined ? () => undefined : containers.tryAcquire(container);
    if (!release) {
      // Back to the queue for a moment, not counted as an attempt: the slot stays free for others,
      // and a worker that is stopping starts nothing new.
      deps.log.debug({ migrationId: d.migrationId, step: d.step, container }, closing ? 'worker stopping: step handed back' : 'container busy with another step: step delayed');
      await job.moveToDelayed(Date.now() + BUSY_DELAY_MS, token);
      throw new DelayedError();
    }
    try {
      return await runJob(deps, transfers, job, verified);
    } finally {
      release();
    }
  };
}

/** How long a step whose container is busy waits before it is tried again. */
const BUSY_DELAY_MS = 1000;

/**
 * Runs one step job: validates the input with the step's schema, runs the step, validates its
 * output, and reports the result to the scheduler. Retryable failures with attempts left are
 * thrown back to BullMQ (exponential backoff); everything else becomes a reported result, so the
 * job always completes with a signed StepResultData the reconciler can replay.
 */
async function runJob(deps: ProcessorDeps, transfers: Semaphore, job: Job<StepJobData>, verified: VerifiedJob): Promise<SignedStepResult> {
  const d = job.data;
  const attempt = job.attemptsMade + 1;
  const log = deps.log.child({ migrationId: d.migrationId, step: d.step, host: d.host, phase: d.phase, index: d.index, run: d.run, attempt });
  let startedAt = Date.now();
  let last = 0;
  const progress = (p: Progress) => {
    const now = Date.now();
    if (now - last < 250 && p.percent !== 100) return; // progress is advisory: at most 4 writes/s
    last = now;
    void deps.store.setProgress(d.migrationId, { phase: d.phase, index: d.index, at: now, ...p }).catch(() => undefined);
  };
  const schemas = catalogue[d.step];
  // What the step catalogue says of this step: bulk copies wait for a transfer slot (they share the
  // host's disk and link; the frozen final pass never waits); at rest every second waiting on a
  // dead peer is downtime.
  const traits = resolveTraits(d.step, d.input);
  let result: StepResultData;
  const peer = traits.peer;
  const goneMs = traits.atRest ? deps.peerGoneAtRestMs : deps.peerGoneMs;
  const answers = peer && deps.peerAnswers ? () => deps.peerAnswers!(peer) : undefined;
  const watch = peer ? new PeerWatch(deps.registry, peer, goneMs, Math.min(1000, goneMs / 8), answers) : undefined;
  log.info('step started');
  try {
    await checkFence(deps.store, d, traits.ownerOnly);
    // The start mark tells the reconciler this host began the step (so it may have acted).
    startedAt = await deps.store.markStarted(d.migrationId, d.phase, d.index, d.run, startedAt);
    const input = schemas.input.parse(d.input);
    const step = (deps.steps ?? steps)[d.step] as (c: StepContext, i: unknown) => Promise<unknown>;
    const base = deps.context(log, progress);
    const ctx = watch ? { ...base, signal: AbortSignal.any([base.signal, watch.signal]) } : base;
    const output = traits.bulk ? await transfers.use(() => step(ctx, input)) : await step(ctx, input);
    result = { ...ids(d), ok: true, output: schemas.output.parse(output), attempts: attempt, startedAt, endedAt: Date.now() };
    log.info({ ms: Date.now() - startedAt }, 'step done');
  } catch (e) {
    let error = toErrorData(watch?.lost ?? e);
    // A write of this worker's own that met a full disk: say whose disk.
    if (error.code === 'DISK_FULL') error = { ...error, message: `${d.host}: ${error.message}` };
    const max = job.opts.attempts ?? 1;
    if (error.retryable && !deps.stopping()) error = await peerGone(deps, peer, error, goneMs);
    if (error.retryable && traits.atRest && LINK_LOST.has(error.code)) {
      // Frozen means hurry: the link to the peer failed (ssh's keepalive gives up within ~2 s at
      // rest); retrying would keep the container frozen. Failing now rolls back: it runs again.
      error = { ...error, retryable: false, message: `${error.message} (at rest: not retried, the source resumes)` };
    }
    if (deps.stopping() || (error.retryable && attempt < max)) {
      log.warn({ error, attempt, max }, 'step failed; it will be retried');
      throw e;
    }
    if (error.code === 'PEER_LOST') log.error({ error }, 'peer gone: not retrying');
    log.error({ error, attempt }, 'step failed');
    result = { ...ids(d), ok: false, error, attempts: attempt, startedAt, endedAt: Date.now() };
  } finally {
    watch?.stop();
  }
  const signed = deps.signResult(result);
  await report(deps, d, signed);
  await deps.gate.finished(verified, signed); // reported: the same signed job again is a replay, answered with this
  return signed;
}

/** A step's result to the scheduler's queue (a deterministic job id: reported twice, added once). */
async function report(deps: ProcessorDeps, d: StepJobData, signed: SignedStepResult): Promise<void> {
  await deps.queues.scheduler.add('result', { kind: 'result', result: signed }, { jobId: advanceJobId(d.migrationId, d.phase, d.index, d.run), ...KEEP_JOBS });
}

/**
 * A step job this worker finished before, back on its queue: Redis lost what followed its end (a
 * failover to a replica that had not received the job's completion, nor perhaps its result). The
 * step is not run again; its recorded result is reported again and is the job's return value.
 */
async function reportAgain(deps: ProcessorDeps, d: StepJobData, signed: SignedStepResult): Promise<SignedStepResult> {
  await report(deps, d, signed);
  return signed;
}

/** Failures that say the peer's sshd or the link to it is gone (not the peer's worker). */
const LINK_LOST = new Set(['TRANSFER_NETWORK', 'PEER_UNREACHABLE']);

/** A retryable failure against a peer whose worker has gone silent will not heal by retrying. */
async function peerGone(deps: ProcessorDeps, peer: string | undefined, error: ErrorData, goneMs: number): Promise<ErrorData> {
  if (!peer) return error;
  const seen = await deps.registry.lastAlive(peer).catch(() => null);
  const silentMs = seen !== null ? Date.now() - seen : Infinity;
  if (silentMs < goneMs) return error;
  return {
    name: 'FerryError',
    code: 'PEER_LOST',
    message: `host ${peer} has not reported for ${Math.round(silentMs / 1000)} s (last error: ${error.code}: ${error.message})`,
    retryable: false,
  };
}

/**
 * Fencing: a step issued under an older ownership epoch was superseded (a handover or a rollback
 * happened since) and must not start, stop, freeze or announce anything.
 */
async function checkFence(store: OperationStore, d: StepJobData, ownerOnly: boolean): Promise<void> {
  // A job without a fence was not issued by a scheduler: nothing says it may act on anything.
  if (!d.fence || typeof d.fence.container !== 'string' || !Number.isInteger(d.fence.epoch)) {
    throw new FerryError('UNFENCED_STEP', `step ${d.step} of ${d.migrationId} carries no ownership fence; refused`);
  }
  const owner = await store.owner(d.fence.container);
  if (owner.epoch > d.fence.epoch) {
    throw new FerryError('STALE_EPOCH', `step ${d.step} of ${d.migrationId} was issued under epoch ${d.fence.epoch}; ${d.fence.container} is at epoch ${owner.epoch} now`);
  }
  if (owner.epoch < d.fence.epoch) {
    throw new FerryError('FENCE_PENDING', `ownership of ${d.fence.container} has not reached epoch ${d.fence.epoch} yet`, { retryable: true });
  }
  // Steps that start or announce the container: only its owner may run them.
  if (ownerOnly && owner.host !== d.host) {
    throw new FerryError('NOT_OWNER', `${d.host} does not own ${d.fence.container} (owner: ${owner.host}); it may not start or announce it`);
  }
}

function ids(d: StepJobData) {
  return { migrationId: d.migrationId, phase: d.phase, index: d.index, run: d.run };
}
