import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * A registry of one component's own (not prom-client's global one: the fast tier runs a scheduler
 * and several workers in one process), with Node's process metrics under the `ferry_` prefix too
 * (ferry_process_cpu_seconds_total, ferry_nodejs_eventloop_lag_seconds, ...).
 */
export function metricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ferry_' });
  return registry;
}
