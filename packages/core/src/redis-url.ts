import { z } from 'zod';
import { ValidationError, type Problem } from './errors/index.js';
import { hashTagged } from './keys.js';

/**
 * Where ferry's Redis is: REDIS_URL (or `ferry install --redis-url`), read here and nowhere else.
 *
 *   unix:///run/redis/redis.sock                       one server on a unix socket
 *   redis://[[user]:password@]host[:port][/db]         one server (rediss://: TLS)
 *   redis+sentinel://[[user]:password@]host[:port],host[:port].../<master-name>[/db]
 *                   [?sentinelPassword=...&sentinelUsername=...]
 *                                                      the sentinels of a master (rediss+sentinel://)
 *   redis+cluster://[[user]:password@]host[:port],host[:port]...
 *                                                      seed nodes of a Redis Cluster (rediss+cluster://)
 *
 * The user and password (percent-encoded) are the data nodes' (master, replicas, cluster nodes);
 * sentinels that need their own take them as query parameters. Ports default to 6379, 26379 for
 * sentinels. Problems are reported all at once, each with where it is, never with the password.
 */
export interface RedisNode {
  host: string;
  port: number;
}

interface Auth {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | { kind: 'socket'; path: string }
  | ({ kind: 'single'; node: RedisNode; tls: boolean; db?: number } & Auth)
  | ({ kind: 'sentinel'; sentinels: RedisNode[]; masterName: string; tls: boolean; db?: number; sentinelUsername?: string; sentinelPassword?: string } & Auth)
  | ({ kind: 'cluster'; nodes: RedisNode[]; tls: boolean } & Auth);

const SCHEMES = {
  redis: { kind: 'single', tls: false },
  rediss: { kind: 'single', tls: true },
  'redis+sentinel': { kind: 'sentinel', tls: false },
  'rediss+sentinel': { kind: 'sentinel', tls: true },
  'redis+cluster': { kind: 'cluster', tls: false },
  'rediss+cluster': { kind: 'cluster', tls: true },
} as const;

const SYNTAX = 'unix:///path, redis[s]://host:port[/db], redis[s]+sentinel://host:port,host:port/<master-name>[/db] or redis[s]+cluster://host:port,host:port';

/** A host name, an IPv4 address or an IPv6 address (given in brackets). */
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*|\[[0-9A-Fa-f:.]+\])$/;

const Port = z
  .string()
  .regex(/^\d{1,5}$/, 'the port is not a number')
  .transform(Number)
  .refine((p) => p >= 1 && p <= 65535, 'the port must be 1-65535');

const Node = z.object({
  host: z.string().min(1, { error: 'the host is empty', abort: true }).regex(HOST, 'the host is not a host name or an IP address (IPv6 in brackets)'),
  port: Port,
});

const Db = z
  .string()
  .regex(/^\d{1,5}$/, 'the database must be a number (0, 1, ...)')
  .transform(Number);

const MasterName = z
  .string()
  .min(1, 'names no master: redis+sentinel://host:port,host:port/<master-name>')
  .regex(/^[A-Za-z0-9._-]+$/, "the master name may hold only letters, digits, '.', '_' and '-'");

/** The URL cut into its parts (strings, as written), before the parts are checked. */
interface Parts {
  username?: string;
  password?: string;
  nodes: { host: string; port: string }[];
  /** Path segments after the host list. */
  path: string[];
  query: Map<string, string>;
}

const SENTINEL_PARAMS = ['sentinelPassword', 'sentinelUsername'] as const;

/**
 * REDIS_URL (or another setting named `where`) as a RedisTarget; a ValidationError listing every
 * problem otherwise (exit 2 at the CLI).
 */
export function parseRedisUrl(url: string, where = 'REDIS_URL'): RedisTarget {
  const problems: Problem[] = [];
  const add = (message: string, part = '') => problems.push({ path: part ? `${where} ${part}` : where, message });
  const done = <T>(t: T): T => {
    if (problems.length) throw new ValidationError(problems);
    return t;
  };

  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(url.trim());
  if (!m) {
    add(`is not a URL; use ${SYNTAX}`);
    return done(null as never);
  }
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === 'unix') {
    if (!rest.startsWith('/') || rest.length < 2) add('unix:// takes an absolute socket path: unix:///run/redis/redis.sock');
    if (rest.includes('?')) add('unix:// takes no parameters');
    return done({ kind: 'socket', path: rest });
  }
  const s = (SCHEMES as Record<string, { kind: 'single' | 'sentinel' | 'cluster'; tls: boolean }>)[scheme];
  if (!s) {
    add(`the scheme ${scheme}:// is not one of ferry's; use ${SYNTAX}`);
    return done(null as never);
  }
  const parts = cut(rest, s.kind === 'sentinel' ? '26379' : '6379', add);
  if (!parts) return done(null as never);

  // The host list, each entry checked on its own: "host 2 (a:99999): the port must be 1-65535".
  const nodes: RedisNode[] = [];
  parts.nodes.forEach((n, i) => {
    const r = Node.safeParse(n);
    const label = parts.nodes.length > 1 ? `host ${i + 1} (${n.host}:${n.port})` : `host (${n.host}:${n.port})`;
    if (r.success) nodes.push({ host: r.data.host.replace(/^\[(.*)\]$/, '$1'), port: r.data.port });
    else for (const issue of r.error.issues) add(issue.message, label);
  });
  if (!parts.nodes.length) add('names no host');

  const auth: Auth = { ...(parts.username ? { username: parts.username } : {}), ...(parts.password !== undefined ? { password: parts.password } : {}) };
  const onlyParams = (allowed: readonly string[]) => {
    for (const k of parts.query.keys()) {
      if (!allowed.includes(k)) add(allowed.length ? `unknown parameter '${k}' (known: ${allowed.join(', ')})` : `takes no parameters ('${k}')`, 'query');
    }
  };
  const db = (seg: string | undefined): number | undefined => {
    if (seg === undefined || seg === '') return undefined;
    const r = Db.safeParse(seg);
    if (r.success) return r.data;
    add(r.error.issues[0]!.message, 'path');
    return undefined;
  };

  switch (s.kind) {
    case 'single': {
      if (parts.nodes.length > 1) add('names several hosts; a list of hosts is redis+sentinel://... or redis+cluster://...');
      if (parts.path.length > 1) add('the path is the database number only: redis://host:port/0', 'path');
      onlyParams([]);
      const d = db(parts.path[0]);
      return done({ kind: 'single', node: nodes[0]!, tls: s.tls, ...(d !== undefined ? { db: d } : {}), ...auth });
    }
    case 'sentinel': {
      const name = MasterName.safeParse(parts.path[0] ?? '');
      if (!name.success) add(name.error.issues[0]!.message, 'path');
      if (parts.path.length > 2) add('the path is /<master-name>[/db]', 'path');
      onlyParams(SENTINEL_PARAMS);
      const d = db(parts.path[1]);
      const sp = parts.query.get('sentinelPassword');
      const su = parts.query.get('sentinelUsername');
      return done({
        kind: 'sentinel',
        sentinels: nodes,
        masterName: name.success ? name.data : '',
        tls: s.tls,
        ...(d !== undefined ? { db: d } : {}),
        ...auth,
        ...(sp !== undefined ? { sentinelPassword: sp } : {}),
        ...(su !== undefined ? { sentinelUsername: su } : {}),
      });
    }
    case 'cluster': {
      if (parts.path.some((p) => p !== '')) add('a cluster has database 0 only: no path after the hosts', 'path');
      onlyParams([]);
      return done({ kind: 'cluster', nodes, tls: s.tls, ...auth });
    }
  }
}

/** `[[user]:password@]hosts[/path][?query]`, percent-decoded where it may be encoded. */
function cut(rest: string, defaultPort: string, add: (message: string, part?: string) => void): Parts | null {
  const q = rest.indexOf('?');
  const beforeQuery = q < 0 ? rest : rest.slice(0, q);
  const query = new Map<string, string>();
  if (q >= 0) {
    for (const pair of rest.slice(q + 1).split('&')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      const k = eq < 0 ? pair : pair.slice(0, eq);
      const v = decode(eq < 0 ? '' : pair.slice(eq + 1));
      if (v === null) add(`the value of '${k}' is not percent-encoded properly`, 'query');
      else query.set(k, v);
    }
  }
  const at = beforeQuery.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : beforeQuery.slice(0, at);
  const afterUser = at < 0 ? beforeQuery : beforeQuery.slice(at + 1);
  const slash = afterUser.indexOf('/');
  const hostList = slash < 0 ? afterUser : afterUser.slice(0, slash);
  const path = slash < 0 ? [] : afterUser.slice(slash + 1).split('/');
  if (path.length && path[path.length - 1] === '') path.pop();

  const parts: Parts = { nodes: [], path, query };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const pass = colon < 0 ? undefined : decode(userinfo.slice(colon + 1));
    // Never echoed: the message says where, not what.
    if (user === null || pass === null) add('the user or password is not percent-encoded properly', 'userinfo');
    if (user) parts.username = user;
    if (typeof pass === 'string') parts.password = pass;
  }
  if (hostList === '') return parts;
  for (const entry of hostList.split(',')) {
    const v6 = /^(\[[^\]]*\])(?::(.*))?$/.exec(entry);
    if (v6) {
      parts.nodes.push({ host: v6[1]!, port: v6[2] ?? defaultPort });
      continue;
    }
    const colon = entry.lastIndexOf(':');
    parts.nodes.push(colon < 0 ? { host: entry, port: defaultPort } : { host: entry.slice(0, colon), port: entry.slice(colon + 1) });
  }
  return parts;
}

function decode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * The key prefix ferry uses on this Redis: as configured, except on a Cluster, where every key
 * ferry and BullMQ write must hash to one slot (ferry's Lua scripts and BullMQ's touch several
 * keys at once), so the prefix becomes a hash tag (`ferry` → `{ferry}`; see `hashTagged`).
 */
export function prefixFor(target: RedisTarget, prefix: string): string {
  return target.kind === 'cluster' ? hashTagged(prefix) : prefix;
}

/** Human: where this target is, without credentials (`sentinel mymaster via 10.0.0.1:26379,...`). */
export function describeRedisTarget(t: RedisTarget): string {
  const list = (ns: RedisNode[]) => ns.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  switch (t.kind) {
    case 'socket':
      return `unix socket ${t.path}`;
    case 'single':
      return `${list([t.node])}${t.db ? ` db ${t.db}` : ''}`;
    case 'sentinel':
      return `master '${t.masterName}' via sentinels ${list(t.sentinels)}`;
    case 'cluster':
      return `cluster seeded by ${list(t.nodes)}`;
  }
}
