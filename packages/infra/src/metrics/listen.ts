import { isIP } from 'node:net';
import { z } from 'zod';

/** Where a metrics endpoint listens. */
export interface MetricsListen {
  host: string;
  /** 0 asks the kernel for a free port (tests); a flag or variable must name one. */
  port: number;
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * `ADDR:PORT` (`[v6]:PORT` for IPv6), or `PORT` alone for 127.0.0.1:PORT. A bare `:PORT` is refused
 * rather than read as every interface: ferry's HTTP endpoints have no authentication, so listening
 * beyond this host has to be written out (0.0.0.0:PORT). `anyPort` lets 0 ask the kernel for one.
 */
function listenAt(v: string, ctx: z.RefinementCtx, o: { forms: string; anyPort?: boolean }): MetricsListen {
  const m = /^(?:(\[[^\]]+\]|[^:[\]]*):)?(\d+)$/.exec(v);
  const host = m?.[1] === undefined ? '127.0.0.1' : m[1].replace(/^\[(.*)\]$/, '$1');
  const port = Number(m?.[2]);
  const low = o.anyPort ? 0 : 1;
  if (!m || !Number.isInteger(port) || port < low || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `must be ${o.forms}, with a port ${low}-65535${o.anyPort ? ' (0: any free one)' : ''}; not '${v}'` });
    return z.NEVER;
  }
  if (host === '') {
    ctx.addIssue({ code: 'custom', message: `name the address: 0.0.0.0:${port} for every interface, 127.0.0.1:${port} for this host only` });
    return z.NEVER;
  }
  if (!isIP(host) && !HOSTNAME.test(host)) {
    ctx.addIssue({ code: 'custom', message: `'${host}' is not an IP address or host name` });
    return z.NEVER;
  }
  return { host, port };
}

/** `--metrics` / FERRY_*_METRICS: where a daemon's Prometheus endpoint listens (listenAt), or `off`. */
export const MetricsFlag = z
  .string()
  .trim()
  .transform((v, ctx): MetricsListen | undefined => (v === '' || v === 'off' ? undefined : listenAt(v, ctx, { forms: 'ADDR:PORT, PORT (127.0.0.1) or off' })));

/** Where a server such as the dashboard listens (listenAt); port 0 for any free one. */
export const ListenAddress = z
  .string()
  .trim()
  .transform((v, ctx): MetricsListen => listenAt(v, ctx, { forms: 'ADDR:PORT or PORT (127.0.0.1)', anyPort: true }));

/** 127.0.0.0/8, ::1 (and 127.x mapped into IPv6), or the name localhost: reachable from this host only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Shown in logs and used by tests: `http://ADDR:PORT/metrics`. */
export function metricsUrl(at: MetricsListen): string {
  return `http://${isIP(at.host) === 6 ? `[${at.host}]` : at.host}:${at.port}/metrics`;
}
