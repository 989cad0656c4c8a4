import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { OperationEvent, OperationRecord, RejectedRecord } from '@ferry/core';
import { metricsRegistry, serveMetrics, type MetricsListen, type MetricsServer, type OperationStore, type Queues } from '@ferry/infra';
import { FleetGauges, type FleetLimits } from './fleet.js';
import { OperationMetrics } from './operations.js';

/** The scheduler's Prometheus endpoint: its transitions' counters and the fleet's gauges. */
export class SchedulerMetrics {
  readonly registry: Registry = metricsRegistry();
  private readonly ops = new OperationMetrics(this.registry);
  private server?: MetricsServer;

  constructor(src: { store: OperationStore; queues: Queues; prefix: string; log: Logger }, limits?: Partial<FleetLimits>) {
    new FleetGauges(this.registry, src, limits);
  }

  async serve(at: MetricsListen, log: Logger): Promise<string> {
    this.server = await serveMetrics(this.registry, at, log);
    return this.server.url;
  }

  transition(prev: OperationRecord, next: OperationRecord, event: OperationEvent): void {
    this.ops.transition(prev, next, event);
  }

  rejected(r: RejectedRecord): void {
    this.ops.rejected(r);
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
