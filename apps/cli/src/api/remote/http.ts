import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FerryError } from '@ferry/core';
import type { ApiEndpoint } from './endpoint.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** Longer than the longest wait a call may ask for (25 s). */
const TIMEOUT_MS = 60_000;
/** Largest answer read: a generous bound on lists (operations, hosts, audit). */
const MAX_BODY = 64 * 1024 * 1024;

/**
 * One request to ferry's API: JSON in, JSON out. Cannot connect (or no answer in time): a FerryError
 * API_UNREACHABLE (exit 1) naming where it tried.
 */
export function apiRequest(ep: ApiEndpoint, method: string, pathAndQuery: string, body?: unknown): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(payload.length) });
  if (ep.kind !== 'unix') headers.authorization = `Bearer ${ep.token}`;
  const opts: RequestOptions =
    ep.kind === 'unix'
      ? { socketPath: ep.socket, path: pathAndQuery, method, headers }
      : { protocol: ep.url.protocol, hostname: ep.url.hostname.replace(/^\[(.*)\]$/, '$1'), port: ep.url.port || (ep.kind === 'https' ? 443 : 80), path: pathAndQuery, method, headers, ...(ep.kind === 'https' && ep.ca ? { ca: ep.ca } : {}) };
  const send = ep.kind === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const unreachable = (why: string) => reject(new FerryError('API_UNREACHABLE', `cannot reach ferry's API at ${ep.shown}: ${why}`, { retryable: true }));
    const req = send(opts, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = { error: { kind: 'api', code: 'BAD_ANSWER', message: `not JSON: ${text.slice(0, 200)}` } };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', (e) => unreachable(e.message));
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => unreachable(e.code ? `${e.code}: ${e.message}` : e.message));
    req.end(payload);
  });
}
