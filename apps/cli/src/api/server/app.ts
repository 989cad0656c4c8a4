import { randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { auditOutcome, outOfScope, problemsOf, roleAllows, scopeMatcher, ValidationError } from '@ferry/core';
import type { AuditLog, TokenStore } from '@ferry/infra';
import type { Client } from '../../client.js';
import type { Ferry } from '../../service/ferry.js';
import { inputs } from '../../service/inputs.js';
import { ApiRefusal, errorReply } from '../errors.js';
import { ROUTES, type Route } from '../routes.js';
import { bearer, LOCAL_ROOT, type Principal } from './principal.js';
import { containersOfOperation, scopeFilters } from './scope.js';

export interface ApiAppOptions {
  /** What answers each call: localFerry on the server's Redis and control key. */
  ferry: Ferry;
  client: Client;
  tokens: TokenStore;
  audit: AuditLog;
  /** `socket`: the Unix socket, whose peer is root; `tcp`: bearer tokens. */
  via: 'socket' | 'tcp';
  https?: { cert: Buffer; key: Buffer };
  log: Logger;
}

/** What the server knows of a request as it goes, for its checks and its audit entry. */
interface RequestState {
  t0: number;
  principal?: Principal;
  tokenId?: string;
  containers: string[];
  note?: string;
}

/** Largest request body: the largest call (unify with its exclude rules) fits many times over. */
const BODY_LIMIT = 256 * 1024;

/**
 * ferry's API on one listener (Fastify). Every request: who (onRequest: the socket's root, or a
 * bearer token), then its call's input (zod, every problem at once: 400), role (403), container
 * scope (403 naming it), the call itself (localFerry, as the CLI would run it), and an audit entry
 * once it is answered, whatever the answer (onResponse).
 */
export function buildApiApp(o: ApiAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: o.log,
    logController: new LogController({ disableRequestLogging: true }),
    // The id is ours, never the client's: it names the request in the audit log.
    requestIdHeader: false,
    genReqId: () => `q-${randomBytes(8).toString('hex')}`,
    bodyLimit: BODY_LIMIT,
    ...(o.https ? { https: o.https } : {}),
  }) as unknown as FastifyInstance;
  const states = new WeakMap<FastifyRequest, RequestState>();
  const state = (req: FastifyRequest): RequestState => {
    let s = states.get(req);
    if (!s) states.set(req, (s = { t0: Date.now(), containers: [] }));
    return s;
  };

  app.addHook('onRequest', async (req, reply) => {
    const s = state(req);
    void reply.header('x-request-id', req.id);
    s.principal = o.via === 'socket' ? LOCAL_ROOT : await bearer(o.tokens, req.headers.authorization);
  });

  app.addHook('onResponse', async (req, reply) => {
    const s = state(req);
    const p = s.principal;
    const tokenId = p?.tokenId ?? s.tokenId;
    const peer = o.via === 'tcp' ? req.socket.remoteAddress : undefined;
    const outcome = auditOutcome(reply.statusCode);
    // Refusals and failures also go to the server's own log: a second record, outside Redis.
    if (outcome === 'denied' || outcome === 'failed') o.log.warn({ requestId: req.id, who: p?.who ?? 'anonymous', tokenId, method: req.method, path: req.url.split('?')[0], status: reply.statusCode, note: s.note }, `API request ${outcome}`);
    await o.audit
      .append({
        time: s.t0,
        requestId: req.id,
        who: p?.who ?? 'anonymous',
        ...(p ? { role: p.role } : {}),
        ...(tokenId ? { tokenId } : {}),
        via: o.via,
        ...(peer ? { peer } : {}),
        method: req.method,
        route: req.routeOptions.url ?? req.url.split('?')[0]!,
        path: req.url.split('?')[0]!,
        containers: s.containers,
        status: reply.statusCode,
        outcome,
        ...(s.note ? { note: s.note } : {}),
        ms: Date.now() - s.t0,
      })
      .catch((e: unknown) => o.log.error({ err: e, requestId: req.id }, 'audit entry not written'));
  });

  app.setErrorHandler(async (e, req, reply) => {
    const s = state(req);
    const r = errorReply(e, req.id);
    if (e instanceof ApiRefusal && e.tokenId) s.tokenId = e.tokenId;
    s.note = `${r.body.code}: ${r.body.message}`;
    if (r.internal) o.log.error({ err: e, requestId: req.id }, 'API request failed');
    return reply.code(r.status).send({ error: r.body });
  });

  app.setNotFoundHandler(async (req) => {
    throw new ApiRefusal(404, 'NO_SUCH_ROUTE', `no such API route: ${req.method} ${req.url.split('?')[0]} (ferry's API is /v1/...)`);
  });

  for (const name of Object.keys(ROUTES) as (keyof Ferry)[]) {
    const route = ROUTES[name] as Route<keyof Ferry>;
    app.route({
      method: route.method,
      url: route.path,
      handler: async (req) => {
        const s = state(req);
        const p = s.principal!;
        const parsed = inputs[name].safeParse({ ...(req.query as object), ...((req.body as object | null) ?? {}), ...(req.params as object) });
        const input = parsed.success ? (parsed.data as Record<string, unknown>) : undefined;
        const touched = input ? await containersOf(route, input, o.client) : [];
        s.containers = touched ?? [];
        if (!roleAllows(p.role, route.role)) {
          throw new ApiRefusal(403, 'FORBIDDEN', `${route.method} ${route.path} (${name}) needs the ${route.role} role; '${p.who}' is ${p.role}`);
        }
        if (!parsed.success) throw new ValidationError(problemsOf(parsed.error));
        if (p.containers) checkScope(name, route, p, touched, String(input!.id));
        const out = await (o.ferry[name] as (i: unknown) => Promise<unknown>)(input);
        if (out === null && route.nullable) throw new ApiRefusal(404, 'NOT_FOUND', `no ${name === 'round' ? 'round' : 'operation'} with id ${String(input!.id)}`);
        const filter = scopeFilters[name];
        return p.containers && route.scope === 'filter' && filter ? filter(out, scopeMatcher(p.containers)) : out;
      },
    });
  }
  return app;
}

/** The containers a call touches, as far as its input says (null: an operation that does not exist). */
async function containersOf(route: Route<keyof Ferry>, input: Record<string, unknown>, c: Client): Promise<string[] | null> {
  if (route.scope === 'operation') return containersOfOperation(c, String(input.id));
  if (typeof route.scope === 'object') return (route.scope.containers as (i: unknown) => string[])(input);
  return [];
}

/**
 * A scoped token may touch only containers in its scope (`touched`; null: an operation `id` that
 * does not exist), and nothing that reaches every container.
 */
function checkScope(name: string, route: Route<keyof Ferry>, p: Principal, touched: string[] | null, id: string): void {
  const scope = p.containers!.join(', ');
  if (route.scope === 'all') {
    throw new ApiRefusal(403, 'OUT_OF_SCOPE', `${name} reaches every container or ferry itself; token '${p.who}' is limited to containers ${scope}: use a token without a container scope`);
  }
  if (route.scope === 'filter' || route.scope === 'none') return;
  if (touched === null) throw new ApiRefusal(404, 'NOT_FOUND', `no operation with id ${id}`);
  const out = touched.length ? outOfScope(p.containers, touched) : ['(no container)'];
  if (out.length) throw new ApiRefusal(403, 'OUT_OF_SCOPE', `${out.join(', ')} ${out.length > 1 ? 'are' : 'is'} outside token '${p.who}''s container scope (${scope})`);
}
