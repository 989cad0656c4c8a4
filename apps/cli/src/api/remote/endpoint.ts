import { readFileSync } from 'node:fs';
import { EXIT, ExitError } from '../../exit-error.js';
import { isLoopback } from '@ferry/infra';
import { defaultApiSocket } from '../server/listen.js';

/** Where the CLI finds ferry's API, and how it proves who it is. */
export type ApiEndpoint =
  | { kind: 'unix'; socket: string; shown: string }
  | { kind: 'http' | 'https'; url: URL; token: string; ca?: Buffer; shown: string };

/**
 * The API the CLI talks to: `--api` or FERRY_API (`https://HOST:PORT`, `http://127.0.0.1:PORT`,
 * `unix:/path`, or `unix` for the default socket), with `--token` or FERRY_TOKEN over TCP and
 * FERRY_API_CA for a certificate authority of its own. Undefined without either: the CLI talks to
 * Redis itself. Bad settings are bad input (exit 2), said before anything is sent.
 */
export function apiEndpoint(flags: { api?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): ApiEndpoint | undefined {
  const api = (flags.api ?? env.FERRY_API ?? '').trim();
  if (!api) return undefined;
  if (api === 'unix' || api.startsWith('unix:')) {
    const socket = api.slice('unix:'.length) || defaultApiSocket(env);
    if (!socket.startsWith('/')) throw new ExitError(EXIT.badInput, `FERRY_API: unix:${socket}: give the socket's absolute path (unix:/path)`);
    return { kind: 'unix', socket, shown: `unix:${socket}` };
  }
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new ExitError(EXIT.badInput, `FERRY_API: '${api}' is not https://HOST:PORT, http://127.0.0.1:PORT or unix:/path`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ExitError(EXIT.badInput, `FERRY_API: '${api}': only https://, http:// (loopback) and unix: are understood`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.protocol === 'http:' && !isLoopback(host)) {
    throw new ExitError(EXIT.badInput, `FERRY_API: plain http:// to ${url.host} is refused: the token would cross the network in the clear; use https://`);
  }
  const token = (flags.token ?? env.FERRY_TOKEN ?? '').trim();
  if (!token) throw new ExitError(EXIT.badInput, `FERRY_TOKEN (or --token) is needed with FERRY_API=${api} (ferry token create, as an admin)`);
  let ca: Buffer | undefined;
  if (env.FERRY_API_CA) {
    try {
      ca = readFileSync(env.FERRY_API_CA);
    } catch (e) {
      throw new ExitError(EXIT.badInput, `FERRY_API_CA: ${(e as Error).message}`);
    }
  }
  return { kind: url.protocol === 'https:' ? 'https' : 'http', url, token, ...(ca ? { ca } : {}), shown: url.origin };
}
