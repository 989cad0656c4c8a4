import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryError, keys, type AuditLine, type HostInfo, type Problem } from '@ferry/core';
import { AuditLog, connect, newSigningKey } from '@ferry/infra';
import { apiEndpoint, type ApiEndpoint } from '../../apps/cli/src/api/remote/endpoint.js';
import { apiRequest } from '../../apps/cli/src/api/remote/http.js';
import { remoteFerry } from '../../apps/cli/src/api/remote/remote-ferry.js';
import { parseApiFlags } from '../../apps/cli/src/api/server/listen.js';
import { startApi, type ApiServer } from '../../apps/cli/src/api/server/start.js';
import { audit } from '../../apps/cli/src/commands/audit.js';
import { waitFor } from '../../apps/cli/src/commands/migrate.js';
import { watch } from '../../apps/cli/src/commands/watch.js';
import { EXIT, ExitError } from '../../apps/cli/src/exit-error.js';
import { FakeCluster, FakeWorld, useFakeClusters } from '../support/fake/index.js';
import { freshPrefix } from '../support/redis.js';
import { until } from '../support/until.js';

/**
 * FAST TIER, FAKE HOSTS: ferry's API (issue 14 item 1) in front of the real scheduler and host
 * workers on fake hosts (test/support/fake), a real redis-server under a fresh prefix, real HTTP on
 * 127.0.0.1 and a real Unix socket. Roles per class of call, container scopes, bad and revoked
 * tokens, a body with several problems, the audit log of allowed and denied requests, a migration
 * submitted through the API to its end, and plain HTTP refused beyond loopback.
 */
describe("ferry's API (fast tier: fake hosts, real scheduler, workers, HTTP and socket)", () => {
  const clusters = useFakeClusters();
  let api: ApiServer | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  /** h1 runs web-1 and db-1, h2 is empty; the API on a socket and on 127.0.0.1 (a port from the kernel). */
  async function setup(): Promise<{ c: FakeCluster; socket: ApiEndpoint; as: (token: string) => ApiEndpoint; token: (role: 'viewer' | 'operator' | 'admin', o?: { containers?: string[]; name?: string }) => Promise<string> }> {
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web-1', { state: 'RUNNING', ip: '10.0.3.11', mac: '02:00:00:00:00:11', files: { 'etc/hostname': 'web-1\n' } });
    world.create('h1', 'db-1', { state: 'RUNNING', ip: '10.0.3.12', mac: '02:00:00:00:00:12', files: { 'etc/hostname': 'db-1\n' } });
    const c = await clusters.start({ world });
    const dir = mkdtempSync(join(tmpdir(), 'ferry-api-'));
    api = await startApi({
      redisUrl: clusters.url(),
      prefix: c.prefix,
      controlKey: c.keys.controlKey,
      socket: join(dir, 'api', 'api.sock'),
      tcp: { host: '127.0.0.1', port: 0 },
      log: pino({ level: 'silent' }),
    });
    const socket: ApiEndpoint = { kind: 'unix', socket: api.socket!, shown: 'socket' };
    const as = (token: string) => apiEndpoint({ api: api!.url!, token }, {})!;
    // Tokens are made as root does: on the socket, which needs none.
    const token = async (role: 'viewer' | 'operator' | 'admin', o: { containers?: string[]; name?: string } = {}) => (await remoteFerry(socket).tokenCreate({ role, ...o })).token;
    await until(async () => (await c.scheduler.registry.list()).filter((h) => h.containers.length || h.name === 'h2').length === 2, 10_000);
    return { c, socket, as, token };
  }

  const call = (ep: ApiEndpoint, method: string, path: string, body?: unknown) => apiRequest(ep, method, path, body);
  const errorOf = (body: unknown) => (body as { error: { code: string; message: string; exit: number; problems?: Problem[] } }).error;
  const auditLines = async (ep: ApiEndpoint) => (await remoteFerry(ep).audit({ limit: 1000 })) as AuditLine[];

  it('the Unix socket is root-only (0600) and needs no token: its requests are local-root, admin', async () => {
    const { socket } = await setup();
    expect((await stat(api!.socket!)).mode & 0o777).toBe(0o600);
    const hosts = (await call(socket, 'GET', '/v1/hosts')).body as HostInfo[];
    expect(hosts.map((h) => h.name).sort()).toEqual(['h1', 'h2']);
    // No token over the socket, yet admin calls answer.
    expect((await call(socket, 'GET', '/v1/tokens')).status).toBe(200);
    const last = (await auditLines(socket)).at(-1)!;
    expect(last).toMatchObject({ who: 'local-root', role: 'admin', via: 'socket', method: 'GET', route: '/v1/tokens', status: 200, outcome: 'ok' });
  });

  it('each role is allowed its class of calls and denied the next (403 naming the role needed)', async () => {
    const { as, token } = await setup();
    const t = { viewer: as(await token('viewer', { name: 'v' })), operator: as(await token('operator', { name: 'o' })), admin: as(await token('admin', { name: 'a' })) };
    // A class each: reading (hosts, the plan), placing (pin/unpin: operator), ferry itself (tokens, audit: admin).
    const classes = [
      { need: 'viewer', calls: [['GET', '/v1/hosts'], ['GET', '/v1/operations'], ['GET', '/v1/rebalance/plan']] },
      { need: 'operator', calls: [['PUT', '/v1/pins/web-1'], ['DELETE', '/v1/pins/web-1'], ['PUT', '/v1/cordons/h2'], ['DELETE', '/v1/cordons/h2']] },
      { need: 'admin', calls: [['GET', '/v1/tokens'], ['GET', '/v1/audit']] },
    ] as const;
    const rank = ['viewer', 'operator', 'admin'];
    const seen: string[] = [];
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      for (const cls of classes) {
        for (const [method, path] of cls.calls) {
          const r = await call(t[role], method, path, method === 'PUT' ? {} : undefined);
          seen.push(`${role} ${method} ${path} ${r.status}`);
          if (rank.indexOf(role) >= rank.indexOf(cls.need)) expect(r.status, `${role} ${method} ${path}: ${JSON.stringify(r.body)}`).toBe(200);
          else {
            expect(r.status, `${role} ${method} ${path}`).toBe(403);
            expect(errorOf(r.body)).toMatchObject({ code: 'FORBIDDEN', exit: EXIT.denied });
            expect(errorOf(r.body).message).toContain(`needs the ${cls.need} role; '${role[0]}' is ${role}`);
          }
        }
      }
    }
    // Denied before anything is done: a viewer's migrate leaves no operation.
    const m = await call(t.viewer, 'POST', '/v1/migrations', { container: 'web-1', from: 'h1', to: 'h2' });
    expect(m.status).toBe(403);
    expect(await remoteFerry(t.admin).operations({ limit: 10 })).toEqual([]);
    expect(seen.length).toBe(27);
  });

  it("a container scope: a migrate of db-1 with a 'web-*' token is 403 naming the scope; reads show only web-*; host-wide calls are refused", async () => {
    const { c, as, token } = await setup();
    const web = as(await token('operator', { containers: ['web-*'], name: 'ci' }));
    const r = await call(web, 'POST', '/v1/migrations', { container: 'db-1', from: 'h1', to: 'h2' });
    expect(r.status).toBe(403);
    expect(errorOf(r.body)).toMatchObject({ code: 'OUT_OF_SCOPE', exit: EXIT.denied });
    expect(errorOf(r.body).message).toBe("db-1 is outside token 'ci''s container scope (web-*)");
    // The CLI's error for it: exit 3, the API's message.
    const e = await remoteFerry(web)
      .migrate({ container: 'db-1', from: 'h1', to: 'h2' })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExitError);
    expect((e as ExitError).exitCode).toBe(EXIT.denied);
    expect((e as ExitError).message).toMatch(/^API denied the request: db-1 is outside token 'ci''s container scope \(web-\*\) \(request q-[0-9a-f]{16}\)$/);
    // A clone that would make a container outside the scope is refused too.
    expect((await call(web, 'POST', '/v1/clones', { container: 'web-1', name: 'db-2', freeze: true })).status).toBe(403);
    // Reads: only containers in scope.
    const hosts = await remoteFerry(web).hosts({});
    expect(hosts.flatMap((h) => h.containers.map((x) => x.name))).toEqual(['web-1']);
    // What reaches every container: refused to a scoped token, even for reading.
    for (const [method, path] of [['PUT', '/v1/cordons/h2'], ['POST', '/v1/hosts/h1/drain'], ['GET', '/v1/rebalance/rounds']] as const) {
      const x = await call(web, method, path, method === 'GET' ? undefined : {});
      expect(x.status, `${method} ${path}`).toBe(403);
      expect(errorOf(x.body).message).toContain("token 'ci' is limited to containers web-*");
    }
    // An operation on db-1 (submitted as root): a scoped token may neither see nor cancel it.
    const id = await c.migrate({ container: 'db-1', from: 'h1', to: 'h2' });
    expect((await call(web, 'GET', `/v1/operations/${id}`)).status).toBe(403);
    expect((await call(web, 'POST', `/v1/operations/${id}/cancel`, {})).status).toBe(403);
    expect(await remoteFerry(web).operations({ limit: 10 })).toEqual([]);
    await c.waitFor(id, 'done');
  });

  it('a bad token is 401: none, malformed, unknown, a wrong secret, a record forged in Redis; a revoked one too', async () => {
    const { c, as, token } = await setup();
    const good = await token('viewer', { name: 'later-revoked' });
    const id = good.split('_')[1]!;
    const noToken = await call({ kind: 'http', url: new URL(api!.url!), token: '', shown: 'x' }, 'GET', '/v1/hosts');
    expect(noToken.status).toBe(401);
    expect(errorOf(noToken.body)).toMatchObject({ code: 'UNAUTHENTICATED', exit: EXIT.denied });
    const wrongSecret = `ferry_${id}_${'A'.repeat(43)}`;
    // A record written straight into Redis (as someone who can write to it would), not signed by the control key.
    const forgedId = 'zzzzzzzzzz';
    const forged = `ferry_${forgedId}_${'B'.repeat(43)}`;
    const { createHash } = await import('node:crypto');
    const redis = connect(clusters.url());
    const sig = Buffer.alloc(64).toString('base64');
    await redis.hset(keys(c.prefix).apiTokens, forgedId, JSON.stringify({ v: 1, id: forgedId, name: 'mallory', role: 'admin', createdAt: Date.now(), hash: createHash('sha256').update(forged).digest('hex'), sig }));
    await redis.quit();
    for (const [what, t, why] of [
      ['malformed', 'not-a-token', 'not a ferry token'],
      ['unknown', `ferry_aaaaaaaaaa_${'C'.repeat(43)}`, 'unknown or revoked'],
      ['wrong secret', wrongSecret, 'wrong secret'],
      ['forged in Redis', forged, 'not signed by the control-plane key'],
    ] as const) {
      const r = await call(as(t), 'GET', '/v1/hosts');
      expect(r.status, what).toBe(401);
      expect(errorOf(r.body).message, what).toContain(why);
    }
    expect((await call(as(good), 'GET', '/v1/hosts')).status).toBe(200);
    const socket: ApiEndpoint = { kind: 'unix', socket: api!.socket!, shown: 'socket' };
    expect((await remoteFerry(socket).tokenRevoke({ token: 'later-revoked' })).revoked).toMatchObject({ id, name: 'later-revoked', role: 'viewer' });
    const after = await call(as(good), 'GET', '/v1/hosts');
    expect(after.status).toBe(401);
    expect(errorOf(after.body).message).toContain(`token ${id} is unknown or revoked`);
    // The list shows the forged record as not signed.
    const list = await remoteFerry(socket).tokenList({});
    expect(list.find((t) => t.id === forgedId)).toMatchObject({ valid: false });
    expect(list.some((t) => t.id === id)).toBe(false);
  });

  it('a malformed body is 400 listing every problem, and nothing is submitted', async () => {
    const { as, token } = await setup();
    const op = as(await token('operator'));
    const r = await call(op, 'POST', '/v1/migrations', { container: 'bad name!', from: '', mode: 'teleport', options: { bwlimitKBps: -1 }, colour: 'blue' });
    expect(r.status).toBe(400);
    const e = errorOf(r.body);
    expect(e).toMatchObject({ code: 'INVALID_INPUT', exit: EXIT.badInput });
    const paths = e.problems!.map((p) => p.path).sort();
    expect(paths).toEqual(['', 'container', 'from', 'mode', 'options.bwlimitKBps', 'to']);
    expect(e.problems!.find((p) => p.path === '')!.message).toContain('colour');
    // Not JSON at all: 400 too.
    const raw = await fetch(`${api!.url}/v1/migrations`, { method: 'POST', headers: { authorization: `Bearer ${(op as { token: string }).token}`, 'content-type': 'application/json' }, body: '{"container":' });
    expect(raw.status).toBe(400);
    expect(await remoteFerry(op).operations({ limit: 10 })).toEqual([]);
    // Through the client: a FerryError INVALID_INPUT (the CLI prints it and exits 2).
    const x = await remoteFerry(op)
      .migrate({ container: 'web-1', from: 'h1', to: 'h1' })
      .catch((err: unknown) => err);
    expect(x).toBeInstanceOf(ExitError);
    expect((x as ExitError).exitCode).toBe(EXIT.badInput);
  });

  it('every request is audited, allowed or denied: who, role, route, containers, status, outcome, request id; ferry audit prints them', async () => {
    const { as, token, socket } = await setup();
    const viewer = as(await token('viewer', { name: 'grafana' }));
    const ok = await call(as(await token('operator', { name: 'ci' })), 'PUT', '/v1/pins/web-1', { host: 'h1' });
    const denied = await call(viewer, 'POST', '/v1/migrations', { container: 'db-1', from: 'h1', to: 'h2' });
    const anonymous = await call(as('nope'), 'GET', '/v1/hosts');
    expect([ok.status, denied.status, anonymous.status], JSON.stringify(ok.body)).toEqual([200, 403, 401]);
    const lines = await auditLines(socket);
    const byReq = async (path: string, status: number) => lines.find((l) => l.path === path && l.status === status);
    expect(await byReq('/v1/pins/web-1', 200)).toMatchObject({ who: 'ci', role: 'operator', via: 'tcp', peer: '127.0.0.1', method: 'PUT', route: '/v1/pins/:container', containers: ['web-1'], outcome: 'ok' });
    const d = (await byReq('/v1/migrations', 403))!;
    expect(d).toMatchObject({ who: 'grafana', role: 'viewer', method: 'POST', route: '/v1/migrations', containers: ['db-1'], outcome: 'denied' });
    expect(d.note).toContain('FORBIDDEN');
    expect(d.requestId).toMatch(/^q-[0-9a-f]{16}$/);
    expect(await byReq('/v1/hosts', 401)).toMatchObject({ who: 'anonymous', outcome: 'denied' });
    expect(lines.every((l) => l.time > 0 && l.requestId.startsWith('q-'))).toBe(true);
    // ferry audit (its function, through the API as an admin): one line per entry, oldest first.
    const out: string[] = [];
    await audit(remoteFerry(as(await token('admin'))), { limit: 5, out: (s) => out.push(s) });
    expect(out.length).toBeGreaterThanOrEqual(5);
    expect(out.join('\n')).toMatch(/grafana \(viewer\)\s+POST \/v1\/migrations\s+403 denied\s+\[db-1\]/);
    // Bounded: the stream is trimmed as it grows (XADD MAXLEN ~), whatever the traffic.
    const redis = connect(clusters.url());
    const small = new AuditLog(redis, freshPrefix(), 100);
    for (let i = 0; i < 1000; i++) await small.append({ ...d, requestId: `q-${i}` });
    const len = await redis.xlen(keys(small.prefix).audit);
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(300);
    expect((await small.read({ limit: 1 }))[0]!.requestId).toBe('q-999');
    await redis.quit();
  });

  it('a migration submitted through the API (an operator token over HTTP) runs to its end on the fake hosts', async () => {
    const { c, as, token } = await setup();
    const f = remoteFerry(as(await token('operator', { containers: ['web-*'] })));
    const { id, to } = await f.migrate({ container: 'web-1', from: 'h1', to: 'h2' });
    expect(to).toBe('h2');
    // ferry watch beside it (as on a pipe: each new view after the last), through the same API.
    const written: string[] = [];
    const out = { isTTY: false, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const watching = watch(f, id, out);
    const seen: string[] = [];
    const r = await waitFor(f, id, (rec) => seen.push(rec.state));
    expect(r.state).toBe('done');
    expect(seen).toContain('done');
    expect(await watching).toBe(0);
    const views = written.join('').split('\n\n');
    expect(views.at(-1)).toMatch(/^migrate m-\w+: web-1 h1 → h2 \(restart\) +DONE\n/);
    expect(views.at(-1)).toMatch(/✓ cleanup +h1 +done/);
    expect(c.world.runningOn('web-1')).toEqual(['h2']);
    // Signed by the API's key: the scheduler accepted it as it accepts the CLI's.
    const v = await f.operation({ id });
    expect(v?.record.kind).toBe('migrate');
    const page = await f.log({ id });
    expect(page.lines.some((l) => l.host === 'h2')).toBe(true);
  });

  it('plain HTTP beyond loopback is refused (flags, the server, the client); HTTPS with a certificate works', async () => {
    expect(() => parseApiFlags({ listen: '0.0.0.0:7443' }, {})).toThrow(/plain HTTP on 0\.0\.0\.0:7443 is refused/);
    expect(() => parseApiFlags({ listen: '10.0.0.1:7443', socket: false }, {})).toThrow(/--tls-cert and --tls-key/);
    expect(parseApiFlags({ listen: '127.0.0.1:7443', socket: false }, {})).toEqual({ tcp: { host: '127.0.0.1', port: 7443 } });
    expect(parseApiFlags({ listen: '10.0.0.1:7443', tlsCert: 'c', tlsKey: 'k', socket: '/run/f.sock' }, {})).toEqual({ socket: '/run/f.sock', tcp: { host: '10.0.0.1', port: 7443, tls: { cert: 'c', key: 'k' } } });
    const refused = await startApi({ redisUrl: clusters.url(), prefix: 'unused', controlKey: newSigningKey(), tcp: { host: '0.0.0.0', port: 0 }, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FerryError);
    expect((refused as FerryError).code).toBe('API_PLAIN_HTTP_REFUSED');
    expect(() => apiEndpoint({ api: 'http://10.0.0.1:7443', token: 'x' }, {})).toThrow(/plain http:\/\/ to 10\.0\.0\.1:7443 is refused/);

    // HTTPS on a non-loopback form of this host's address would need a certificate for it; 127.0.0.1 shows the path.
    const { c, token } = await setup();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const tls = await startApi({ redisUrl: clusters.url(), prefix: c.prefix, controlKey: c.keys.controlKey, tcp: { host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } }, log: pino({ level: 'silent' }) });
    try {
      expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ep = apiEndpoint({ api: tls.url!, token: await token('viewer') }, { FERRY_API_CA: join(dir, 'cert.pem') })!;
      expect((await remoteFerry(ep).hosts({})).length).toBe(2);
      // Without the CA the certificate is not trusted: the client says it cannot reach the API.
      const untrusted = apiEndpoint({ api: tls.url!, token: 'x' }, {})!;
      const e = await remoteFerry(untrusted)
        .hosts({})
        .catch((x: unknown) => x);
      expect((e as FerryError).code).toBe('API_UNREACHABLE');
    } finally {
      await tls.close();
    }
  });
});
