import { FerryError } from '@ferry/core';
import { openClient } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';

export interface DashboardFlags {
  listen?: string;
  allowRemote?: boolean;
}

/**
 * `ferry dashboard`: serves the read-only dashboard until SIGINT or SIGTERM. The address is
 * checked before Redis is touched (bad input: exit 2, nothing started).
 */
export async function dashboardCommand(o: DashboardFlags, say: (line: string) => void): Promise<number> {
  const { parseDashboardListen, serveDashboard } = await import('@ferry/dashboard');
  let listen;
  try {
    listen = parseDashboardListen(o.listen, Boolean(o.allowRemote));
  } catch (e) {
    if (e instanceof FerryError && e.code === 'INVALID_INPUT') throw new ExitError(EXIT.badInput, `dashboard: ${e.message}`);
    throw e;
  }
  const c = await openClient();
  try {
    const server = await serveDashboard({ store: c.store, registry: c.registry, listen, allowRemote: Boolean(o.allowRemote) });
    say(`ferry dashboard: ${server.url} (read-only; Ctrl-C stops it)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await server.close();
    return EXIT.ok;
  } finally {
    await c.close();
  }
}
