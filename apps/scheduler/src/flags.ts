import { parseOrThrow } from '@ferry/core';
import { MetricsFlag, type MetricsListen } from '@ferry/infra';

export interface SchedulerRunOptions {
  /** A Prometheus endpoint: `--metrics`, else FERRY_SCHEDULER_METRICS; off when neither is given. */
  metrics?: MetricsListen;
}

/** `ferry scheduler`'s flags, falling back to FERRY_* variables. */
export function parseSchedulerFlags(flags: { metrics?: string }, env: NodeJS.ProcessEnv = process.env): SchedulerRunOptions {
  const metrics = parseOrThrow(MetricsFlag, flags.metrics ?? env.FERRY_SCHEDULER_METRICS ?? 'off', 'metrics');
  return metrics ? { metrics } : {};
}
