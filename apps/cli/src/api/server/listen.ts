import { join } from 'node:path';
import { FerryError, ValidationError, type Problem } from '@ferry/core';
import { isLoopback, ListenAddress, stateDir } from '@ferry/infra';

/** Where ferry's API listens: a Unix socket (local root, no token), TCP (bearer tokens), or both. */
export interface ApiListen {
  socket?: string;
  tcp?: { host: string; port: number; tls?: { cert: string; key: string } };
}

/** The API's Unix socket by default: `<state dir>/api/api.sock`, in a directory only its owner enters. */
export function defaultApiSocket(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), 'api', 'api.sock');
}

/** Refuses plain HTTP beyond loopback: a bearer token would cross the network in the clear. */
export function plainHttpProblem(tcp: ApiListen['tcp']): string | undefined {
  if (!tcp || tcp.tls || isLoopback(tcp.host)) return undefined;
  return `plain HTTP on ${tcp.host}:${tcp.port} is refused: tokens would cross the network in the clear; give --tls-cert and --tls-key for HTTPS, or listen on loopback (127.0.0.1:${tcp.port})`;
}

export interface ApiServeFlags {
  /** ADDR:PORT, or PORT alone for 127.0.0.1:PORT (0: any free port). */
  listen?: string;
  /** A path; false: no socket (`--no-socket`). */
  socket?: string | boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * `ferry api`'s flags (and `ferry scheduler --api-*`): the socket unless `--no-socket`, TCP with
 * `--listen`. Every problem at once (ValidationError: exit 2); plain HTTP beyond loopback is one.
 */
export function parseApiFlags(f: ApiServeFlags, env: NodeJS.ProcessEnv = process.env): ApiListen {
  const problems: Problem[] = [];
  let tcp: ApiListen['tcp'];
  if (f.listen !== undefined) {
    const l = ListenAddress.safeParse(f.listen);
    if (!l.success) problems.push({ path: 'listen', message: l.error.issues[0]?.message ?? 'invalid' });
    else tcp = { ...l.data };
  }
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) problems.push({ path: f.tlsCert === undefined ? 'tls-cert' : 'tls-key', message: '--tls-cert and --tls-key go together' });
  else if (f.tlsCert !== undefined && f.tlsKey !== undefined) {
    if (f.listen === undefined) problems.push({ path: 'tls-cert', message: 'HTTPS needs --listen ADDR:PORT' });
    else if (tcp) tcp.tls = { cert: f.tlsCert, key: f.tlsKey };
  }
  const plain = plainHttpProblem(tcp);
  if (plain) problems.push({ path: 'listen', message: plain });
  const socket = f.socket === false ? undefined : typeof f.socket === 'string' ? f.socket : defaultApiSocket(env);
  if (socket !== undefined && !socket.startsWith('/')) problems.push({ path: 'socket', message: `'${socket}' is not an absolute path` });
  if (!socket && !tcp && !problems.length) problems.push({ path: 'listen', message: 'with --no-socket, give --listen ADDR:PORT: the API must listen somewhere' });
  if (problems.length) throw new ValidationError(problems);
  return { ...(socket ? { socket } : {}), ...(tcp ? { tcp } : {}) };
}

/** The same refusal where the server starts (whatever built its options): FerryError API_PLAIN_HTTP_REFUSED. */
export function assertTransport(l: ApiListen): void {
  const plain = plainHttpProblem(l.tcp);
  if (plain) throw new FerryError('API_PLAIN_HTTP_REFUSED', plain);
}
