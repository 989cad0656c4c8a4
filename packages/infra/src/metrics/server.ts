import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { FerryError } from '@ferry/core';
import { metricsUrl, type MetricsListen } from './listen.js';

export interface MetricsServer {
  /** Where it answers, with the port the kernel gave when 0 was asked for. */
  url: string;
  close(): Promise<void>;
}

/**
 * A Prometheus endpoint: GET /metrics renders the registry (its collect callbacks run then, so
 * what they read is as of the scrape); anything else is 404 or 405. Failing to listen (port taken,
 * address not on this host) throws: the operator asked for the endpoint, so the process does not
 * start without it.
 */
export async function serveMetrics(registry: Registry, at: MetricsListen, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (err: unknown) => {
        log.warn({ err }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new FerryError('METRICS_LISTEN_FAILED', `metrics: cannot listen on ${at.host}:${at.port}: ${e.code ?? e.message}`)));
    server.listen(at.port, at.host, () => resolve());
  });
  const url = metricsUrl({ host: at.host, port: (server.address() as AddressInfo).port });
  log.info({ url }, 'metrics endpoint listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        // A scraper's keep-alive connection must not hold the process up at shutdown.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
