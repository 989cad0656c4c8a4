import { Counter, Histogram, type Registry } from 'prom-client';
import { figuresOf, isTerminal, summarize, type OperationEvent, type OperationKind, type OperationRecord, type RejectedRecord } from '@ferry/core';

// Seconds. A move's window at rest is sub-second to tens of seconds; an operation seconds to hours.
const WINDOW_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300];
const OPERATION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];

/**
 * What the scheduler's own transitions say: counted by the scheduler whose compare-and-set save
 * won, so with several schedulers each event counts once (sum them). Labels are kinds, states,
 * modes, hosts and error codes: never an operation id or a container name.
 */
export class OperationMetrics {
  private readonly finished: Counter<'kind' | 'state'>;
  private readonly duration: Histogram<'kind' | 'state'>;
  private readonly bytes: Counter<'kind' | 'host'>;
  private readonly memoryBytes: Counter<'kind' | 'host'>;
  private readonly frozen: Histogram<'kind' | 'mode'>;
  private readonly downtime: Histogram<'kind' | 'mode'>;
  private readonly rollbacks: Counter<'kind' | 'code'>;
  private readonly pauses: Counter<'kind' | 'code'>;
  private readonly retries: Counter<'kind' | 'code'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.finished = new Counter({ name: 'ferry_operations_finished_total', help: 'Operations that ended, by kind and final state (done, rolled-back, rejected).', labelNames: ['kind', 'state'], registers });
    this.duration = new Histogram({ name: 'ferry_operation_duration_seconds', help: 'Submission to end of an operation, by kind and final state.', labelNames: ['kind', 'state'], buckets: OPERATION_BUCKETS, registers });
    this.bytes = new Counter({
      name: 'ferry_bytes_moved_total',
      help: "File bytes sent by finished forward steps (pre-copy passes, the final pass, clone copies), by kind and the host that sent them; per operation it sums to the summary's bytesTransferred.",
      labelNames: ['kind', 'host'],
      registers,
    });
    this.memoryBytes = new Counter({ name: 'ferry_memory_bytes_moved_total', help: 'Process state (CRIU dumps) sent by live migrations, by kind and the host that sent it.', labelNames: ['kind', 'host'], registers });
    this.frozen = new Histogram({
      name: 'ferry_frozen_seconds',
      help: "The frozen window of each operation that ended done: source frozen (or stopped) until the target started it (the summary's frozenMs), by kind and mode.",
      labelNames: ['kind', 'mode'],
      buckets: WINDOW_BUCKETS,
      registers,
    });
    this.downtime = new Histogram({
      name: 'ferry_downtime_seconds',
      help: 'Downtime as ferry sees it, per operation that ended done: source frozen until the step that started the target ended (started, verified, first gratuitous ARP sent). A client also waits for its service to answer; ferry cannot see that part.',
      labelNames: ['kind', 'mode'],
      buckets: WINDOW_BUCKETS,
      registers,
    });
    this.rollbacks = new Counter({ name: 'ferry_rollbacks_total', help: 'Operations that began rolling back, by kind and the error code that caused it (CANCELLED for ferry cancel).', labelNames: ['kind', 'code'], registers });
    this.pauses = new Counter({ name: 'ferry_pauses_total', help: 'Operations paused for an operator (ferry retry or ferry cancel), by kind and error code.', labelNames: ['kind', 'code'], registers });
    this.retries = new Counter({ name: 'ferry_operation_retries_total', help: 'ferry retry of a paused operation, by kind and the error code it was paused with.', labelNames: ['kind', 'code'], registers });
  }

  /** One applied transition: `prev` as read, `next` as saved. */
  transition(prev: OperationRecord, next: OperationRecord, event: OperationEvent): void {
    const kind = next.kind;
    if (event.type === 'step-result' && event.ok && event.phase === 'forward') {
      const s = next.steps[event.index];
      if (s?.state === 'done') {
        const f = figuresOf(s.name, s.output);
        if (f.bytesTransferred) this.bytes.inc({ kind, host: s.host }, f.bytesTransferred);
        if (f.memoryBytes) this.memoryBytes.inc({ kind, host: s.host }, f.memoryBytes);
      }
    }
    if (prev.phase === 'forward' && next.phase === 'rollback') this.rollbacks.inc({ kind, code: next.error?.code ?? (next.cancelRequested ? 'CANCELLED' : 'UNKNOWN') });
    if (prev.state !== 'paused' && next.state === 'paused') this.pauses.inc({ kind, code: next.error?.code ?? 'UNKNOWN' });
    if (event.type === 'retry' && prev.state === 'paused') this.retries.inc({ kind, code: prev.error?.code ?? 'UNKNOWN' });
    if (!isTerminal(prev.state) && isTerminal(next.state)) this.ended(next);
  }

  /** A submission refused before it was planned. */
  rejected(r: RejectedRecord): void {
    this.end(r.kind, r.state, r.endedAt - r.createdAt);
  }

  private ended(r: OperationRecord): void {
    this.end(r.kind, r.state, (r.endedAt ?? r.updatedAt) - r.createdAt);
    if (r.state !== 'done') return;
    const mode = r.plan.mode ?? 'none';
    const s = summarize(r);
    if (s.frozenMs !== undefined) this.frozen.observe({ kind: r.kind, mode }, s.frozenMs / 1000);
    if (s.downtimeMs !== undefined) this.downtime.observe({ kind: r.kind, mode }, s.downtimeMs / 1000);
  }

  private end(kind: OperationKind, state: string, ms: number): void {
    this.finished.inc({ kind, state });
    this.duration.observe({ kind, state }, Math.max(0, ms) / 1000);
  }
}
