/**
 * Where the lab's daemons serve Prometheus metrics: fixed ports, so a test or an operator trying
 * things finds them without asking. The scheduler runs in this machine's namespace, on loopback;
 * each worker in its host's network namespace, where 0.0.0.0 is that host's own interfaces only
 * (http://<host address>:9471/metrics from the client or another host).
 */
export const LAB_METRICS = {
  scheduler: { host: '127.0.0.1', port: 9470 },
  workerPort: 9471,
} as const;

/** The variables that turn them on (each daemon reads its own). */
export function labMetricsEnv(): NodeJS.ProcessEnv {
  return {
    FERRY_SCHEDULER_METRICS: `${LAB_METRICS.scheduler.host}:${LAB_METRICS.scheduler.port}`,
    FERRY_WORKER_METRICS: `0.0.0.0:${LAB_METRICS.workerPort}`,
  };
}
