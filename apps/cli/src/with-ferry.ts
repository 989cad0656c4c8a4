import type { Client } from './client.js';
import { EXIT, ExitError } from './exit-error.js';
import type { Ferry } from './service/ferry.js';

/** `--api` and `--token` (the program's options), over FERRY_API and FERRY_TOKEN. */
export interface ApiFlags {
  api?: string;
  token?: string;
}

/**
 * Runs a command's calls through ferry's API when one is set (`--api` or FERRY_API: remoteFerry),
 * else on Redis with the control key (localFerry: root where the scheduler runs). Redis and the
 * queues load only when used: --help and --version stay quick.
 */
export async function withFerry<T>(flags: ApiFlags, fn: (f: Ferry) => Promise<T>): Promise<T> {
  const ep = (await import('./api/remote/endpoint.js')).apiEndpoint(flags);
  if (ep) return fn((await import('./api/remote/remote-ferry.js')).remoteFerry(ep));
  const [{ withClient }, { localFerry }] = await Promise.all([import('./client.js'), import('./service/local-ferry.js')]);
  return withClient((c) => fn(localFerry(c)));
}

/** A command that talks to Redis itself (exec, run: streams through Redis): refused, saying why, when an API is set. */
export async function withRedisOnly<T>(flags: ApiFlags, command: string, fn: (c: Client) => Promise<T>): Promise<T> {
  if ((await import('./api/remote/endpoint.js')).apiEndpoint(flags)) {
    throw new ExitError(EXIT.badInput, `ferry ${command} does not go through ferry's API: run it as root where the scheduler runs, without FERRY_API (or --api)`);
  }
  return (await import('./client.js')).withClient(fn);
}
