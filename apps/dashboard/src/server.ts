import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { FerryError } from '@ferry/core';
import type { MetricsListen } from '@ferry/infra';
import { dashboardUrl, isLoopback } from './listen.js';
import { dashboardPlugin, type DashboardOptions } from './plugin.js';

export interface ServeDashboardOptions extends DashboardOptions {
  listen: MetricsListen;
  /** Serve on an address that is not loopback (parseDashboardListen refuses one without it). */
  allowRemote?: boolean;
}

export interface DashboardServer {
  /** Where it answers, with the port the kernel gave when 0 was asked for. */
  url: string;
  close(): Promise<void>;
}

/**
 * The dashboard on its own server (`ferry dashboard`). Bound to loopback, it also answers only
 * requests addressed to a loopback name: a web page elsewhere cannot read it through a DNS name
 * of its own that resolves to 127.0.0.1.
 */
export async function serveDashboard(o: ServeDashboardOptions): Promise<DashboardServer> {
  const local = isLoopback(o.listen.host);
  if (!local && !o.allowRemote) throw new FerryError('INVALID_INPUT', `dashboard: ${o.listen.host} is not a loopback address (allowRemote not given)`);
  const app = Fastify({ logger: false, forceCloseConnections: true });
  if (local) {
    app.addHook('onRequest', async (req, reply) => {
      const host = /^(\[[^\]]*\]|[^:]*)/.exec(req.headers.host ?? '')?.[1] ?? '';
      if (!isLoopback(host)) return reply.code(421).type('text/plain').send('the ferry dashboard answers to localhost, 127.0.0.1 or [::1] only\n');
    });
  }
  await app.register(dashboardPlugin, o);
  try {
    await app.listen({ host: o.listen.host, port: o.listen.port });
  } catch (e) {
    await app.close();
    throw new FerryError('DASHBOARD_LISTEN_FAILED', `dashboard: cannot listen on ${o.listen.host}:${o.listen.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { port } = app.server.address() as AddressInfo;
  return { url: dashboardUrl({ host: o.listen.host, port }), close: () => app.close() };
}
