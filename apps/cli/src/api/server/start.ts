import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { FerryError } from '@ferry/core';
import { AuditLog, createLogger, openRedis, TokenStore } from '@ferry/infra';
import { clientOf } from '../../client.js';
import { controlKeyFromFiles } from '../../control-key.js';
import { localFerry } from '../../service/local-ferry.js';
import { buildApiApp } from './app.js';
import { assertTransport, type ApiListen } from './listen.js';
import { listenOnSocket, removeSocket } from './socket.js';

export interface ApiServerOptions extends ApiListen {
  /** Redis (default: REDIS_URL or the embedded one). */
  redisUrl?: string;
  prefix?: string;
  /** The control-plane private key (default: its file, made if missing, as the scheduler does). */
  controlKey?: KeyObject;
  /** Entries the audit log keeps (default AUDIT.maxLen). */
  auditMaxLen?: number;
  log?: Logger;
}

export interface ApiServer {
  /** The socket's path, when it serves one. */
  socket?: string;
  /** `http(s)://ADDR:PORT` of the TCP listener (the port the kernel gave for 0), when it serves one. */
  url?: string;
  close(): Promise<void>;
}

/**
 * Starts ferry's API: the Unix socket and/or TCP (HTTPS with a certificate, plain HTTP on loopback
 * only), answering every call with localFerry on its own Redis connection and the control-plane
 * key, which it holds so that its clients never need either.
 */
export async function startApi(o: ApiServerOptions): Promise<ApiServer> {
  assertTransport(o);
  const log = o.log ?? createLogger('api');
  const tls = o.tcp?.tls ? await readTls(o.tcp.tls) : undefined;
  const key = o.controlKey ?? (await controlKeyFromFiles());
  // REDIS_URL (a server, Sentinel or Cluster; a Cluster's prefix is a hash tag) or the embedded one.
  const opened = await openRedis(o.redisUrl ? { ...process.env, REDIS_URL: o.redisUrl } : process.env);
  const redis = opened.redis;
  const prefix = o.prefix ?? opened.prefix;
  const client = clientOf(redis, prefix, async () => key);
  const shared = { ferry: localFerry(client), client, tokens: new TokenStore(redis, prefix, key), audit: new AuditLog(redis, prefix, o.auditMaxLen), log };
  const apps: FastifyInstance[] = [];
  let socket: string | undefined;
  const close = async () => {
    for (const app of apps) await app.close().catch(() => undefined);
    if (socket) await removeSocket(socket);
    await client.close();
    redis.disconnect();
  };
  try {
    let url: string | undefined;
    if (o.socket) {
      const app = buildApiApp({ ...shared, via: 'socket' });
      apps.push(app);
      await listenOnSocket(o.socket, async (path) => void (await app.listen({ path })));
      socket = o.socket;
    }
    if (o.tcp) {
      const app = buildApiApp({ ...shared, via: 'tcp', ...(tls ? { https: tls } : {}) });
      apps.push(app);
      await app.listen({ host: o.tcp.host, port: o.tcp.port });
      const port = (app.server.address() as AddressInfo).port;
      url = `${tls ? 'https' : 'http'}://${isIP(o.tcp.host) === 6 ? `[${o.tcp.host}]` : o.tcp.host}:${port}`;
    }
    log.info({ socket: o.socket, url, prefix }, 'ferry API listening');
    return { ...(o.socket ? { socket: o.socket } : {}), ...(url ? { url } : {}), close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function readTls(t: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (what: string, path: string) =>
    readFile(path).catch((e: Error) => {
      throw new FerryError('API_TLS_UNREADABLE', `--tls-${what} ${path}: ${e.message}`);
    });
  return { cert: await read('cert', t.cert), key: await read('key', t.key) };
}
