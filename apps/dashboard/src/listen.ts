import { isIP } from 'node:net';
import { parseOrThrow, ValidationError } from '@ferry/core';
import { isLoopback, ListenAddress, type MetricsListen } from '@ferry/infra';

/** Whether an address is reachable from this host only (one definition, in @ferry/infra, for every server). */
export { isLoopback };

/** The dashboard's port unless --listen names another (the daemons' metrics use 9470 and 9471). */
export const DASHBOARD_PORT = 9480;
export const DEFAULT_LISTEN = `127.0.0.1:${DASHBOARD_PORT}`;

/**
 * `ferry dashboard --listen ADDR` (default 127.0.0.1:9480): ADDR:PORT, [v6]:PORT or PORT alone
 * (127.0.0.1); port 0 for any free one. The dashboard has no authentication: an address that is
 * not loopback is refused unless `allowRemote` says to serve it there all the same.
 */
export function parseDashboardListen(value: string | undefined, allowRemote = false): MetricsListen {
  const at = parseOrThrow(ListenAddress, value ?? DEFAULT_LISTEN, 'listen');
  if (!allowRemote && !isLoopback(at.host)) {
    throw new ValidationError([
      {
        path: 'listen',
        message: `${at.host} is not a loopback address: the dashboard has no authentication, so it listens on this host only (127.0.0.1, ::1, localhost; reach it from elsewhere with ssh -L ${at.port}:127.0.0.1:${at.port}). --allow-remote serves it on ${at.host} all the same: whoever reaches it sees every host, container, operation and job`,
      },
    ]);
  }
  return at;
}

/** `http://ADDR:PORT/` */
export function dashboardUrl(at: MetricsListen): string {
  return `http://${isIP(at.host) === 6 ? `[${at.host}]` : at.host}:${at.port}/`;
}
