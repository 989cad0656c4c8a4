import { DelayedError } from 'bullmq';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { toErrorData, type StepJobData, type StepResultData } from '@ferry/core';
import { metricsRegistry, serveMetrics, type MetricsListen, type MetricsServer } from '@ferry/infra';

// Seconds: an arp-refresh or preflight is well under a second, a first pre-copy pass can take an hour.
const STEP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * A worker's Prometheus endpoint: the steps this host runs. The queue, heartbeat and operation
 * figures are the scheduler's (they come from Redis, the same whoever reads them).
 */
export class WorkerMetrics {
  readonly registry: Registry = metricsRegistry();
  private readonly duration: Histogram<'step' | 'host' | 'outcome'>;
  private readonly running: Gauge<'host'>;
  private readonly retries: Counter<'step' | 'host' | 'code'>;
  private server?: MetricsServer;

  constructor(private readonly host: string) {
    const registers = [this.registry];
    this.duration = new Histogram({
      name: 'ferry_step_duration_seconds',
      help: "Step runs on this host, start to end as the operation's record has them (a step re-run after a crash counts from its first start), by step, host and outcome (ok, failed).",
      labelNames: ['step', 'host', 'outcome'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.running = new Gauge({ name: 'ferry_steps_running', help: 'Step jobs this worker has in hand now.', labelNames: ['host'], registers });
    this.running.set({ host }, 0);
    this.retries = new Counter({
      name: 'ferry_step_retries_total',
      help: 'Failed attempts of a step that BullMQ tries again (with backoff), by step, host and error code.',
      labelNames: ['step', 'host', 'code'],
      registers,
    });
  }

  async serve(at: MetricsListen, log: Logger): Promise<string> {
    this.server = await serveMetrics(this.registry, at, log);
    return this.server.url;
  }

  /**
   * Runs one delivery of a step job and counts it: a reported result (ok or failed for good) is a
   * step run; a failure thrown back for another attempt is a retry, unless the worker is stopping
   * (handed back, not failed); a job put off for a busy container is neither.
   */
  async track(d: StepJobData, run: () => Promise<StepResultData>, stopping: () => boolean): Promise<StepResultData> {
    const host = this.host;
    this.running.inc({ host });
    try {
      const r = await run();
      const ms = r.startedAt !== undefined ? r.endedAt - r.startedAt : 0;
      this.duration.observe({ step: d.step, host, outcome: r.ok ? 'ok' : 'failed' }, Math.max(0, ms) / 1000);
      return r;
    } catch (e) {
      if (!(e instanceof DelayedError) && !stopping()) this.retries.inc({ step: d.step, host, code: toErrorData(e).code });
      throw e;
    } finally {
      this.running.dec({ host });
    }
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
