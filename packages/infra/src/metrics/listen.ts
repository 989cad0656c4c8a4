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
 * `--metrics` / FERRY_*_METRICS: `ADDR:PORT` (`[v6]:PORT` for IPv6), or `PORT` alone for
 * 127.0.0.1:PORT, or `off`. A bare `:PORT` is refused rather than read as every interface: the
 * endpoint has no authentication, so listening beyond this host has to be written out (0.0.0.0:PORT).
 */
export const MetricsFlag = z
  .string()
  .trim()
  .transform((v, ctx): MetricsListen | undefined => {
    if (v === '' || v === 'off') return undefined;
    const m = /^(?:(\[[^\]]+\]|[^:[\]]*):)?(\d+)$/.exec(v);
    const host = m?.[1] === undefined ? '127.0.0.1' : m[1].replace(/^\[(.*)\]$/, '$1');
    const port = Number(m?.[2]);
    if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `must be ADDR:PORT, PORT (127.0.0.1) or off, with a port 1-65535; not '${v}'` });
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
  });

/** Shown in logs and used by tests: `http://ADDR:PORT/metrics`. */
export function metricsUrl(at: MetricsListen): string {
  return `http://${isIP(at.host) === 6 ? `[${at.host}]` : at.host}:${at.port}/metrics`;
}
