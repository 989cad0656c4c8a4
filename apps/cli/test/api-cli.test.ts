import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run, type RunOptions } from '@ferry/infra';
import { remoteFerry } from '../src/api/remote/remote-ferry.js';
import { startApi, type ApiServer } from '../src/api/server/start.js';
import { testRedis } from '../../../test/support/redis.js';
import { FakeCluster, FakeWorld } from '../../../test/support/fake/index.js';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 });

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ALL = Array.from({ length: 256 }, (_, i) => i);

/**
 * The real `ferry` CLI (apps/cli/dist: `npm run build` first) through ferry's API, with no Redis
 * and no control key of its own (REDIS_URL points nowhere, an empty state dir): the API server in
 * this process in front of the fast tier's cluster (real scheduler and host workers on FAKE hosts,
 * test/support/fake; real Redis under a fresh prefix). Its errors print and exit as without the API:
 * 2 bad input, 1 failure, 3 when the API refuses (401, 403). No root needed.
 */
describe('ferry through its API (built CLI; fake hosts, real scheduler, workers and API)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let c: FakeCluster;
  let api: ApiServer;
  let nowhere: string;
  let keyFile: string;

  /** The CLI as a client on another machine would run it: FERRY_API (and FERRY_TOKEN), nothing else. */
  const ferry = async (args: string[], env: Record<string, string>, opts: RunOptions = {}) => {
    const r = await run(process.execPath, [CLI, ...args], {
      timeoutMs: 60_000,
      okExitCodes: ALL,
      env: { PATH: process.env.PATH ?? '', HOME: nowhere, FERRY_STATE_DIR: nowhere, REDIS_URL: 'redis://127.0.0.1:1', ...env },
      ...opts,
    });
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };
  /** The same command as root on the scheduler's host runs it: Redis and the control key. */
  const local = (args: string[]) => run(process.execPath, [CLI, ...args], { timeoutMs: 60_000, okExitCodes: ALL, env: { ...process.env, REDIS_URL: srv.url, FERRY_PREFIX: c.prefix, FERRY_CONTROL_KEY: keyFile } });
  const socket = () => ({ FERRY_API: `unix:${api.socket}` });
  const tcp = (token: string) => ({ FERRY_API: api.url!, FERRY_TOKEN: token });
  /** A token, made in this process over the socket (as `ferry token create` does, tested once below). */
  const tokenFor = async (role: 'viewer' | 'operator' | 'admin', o: { containers?: string[]; name?: string } = {}) => (await remoteFerry({ kind: 'unix', socket: api.socket!, shown: 'socket' }).tokenCreate({ role, ...o })).token;

  beforeAll(async () => {
    srv = await testRedis();
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web-1', { state: 'RUNNING', ip: '10.0.3.11', mac: '02:00:00:00:00:11', files: { 'etc/hostname': 'web-1\n' } });
    world.create('h1', 'db-1', { state: 'RUNNING', ip: '10.0.3.12', mac: '02:00:00:00:00:12', files: { 'etc/hostname': 'db-1\n' } });
    c = await FakeCluster.start({ url: srv.url, world });
    const dir = await mkdtemp(join(tmpdir(), 'ferry-api-cli-'));
    nowhere = join(dir, 'client');
    keyFile = join(dir, 'control.key');
    await writeFile(keyFile, c.keys.controlKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    api = await startApi({ redisUrl: srv.url, prefix: c.prefix, controlKey: c.keys.controlKey, socket: join(dir, 'api', 'api.sock'), tcp: { host: '127.0.0.1', port: 0 }, log: pino({ level: 'silent' }) });
    const end = Date.now() + 15_000;
    while ((await c.scheduler.registry.list()).length < 2) {
      if (Date.now() > end) throw new Error('hosts did not register');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    await api?.close();
    await c?.stop();
    await srv?.stop();
    expect(c.world.violations).toEqual([]);
  });

  it('ferry token create over the socket (root, no token) prints a token once; token list never shows it', async () => {
    const r = await ferry(['token', 'create', '--role', 'operator', '--containers', 'web-*', '--name', 'ci'], socket());
    expect(r.code).toBe(0);
    const [token, about] = r.stdout.split('\n');
    expect(token).toMatch(/^ferry_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    expect(about).toMatch(/^token [a-z0-9]{10} 'ci': role operator, containers web-\*$/);
    const list = await ferry(['token', 'list'], socket());
    expect(list.stdout).toMatch(/^[a-z0-9]{10}\s+ci\s+operator\s+web-\*\s+\d{4}-/m);
    expect(list.stdout).not.toContain(token!.split('_')[2]!);
    const bad = await ferry(['token', 'create', '--role', 'root'], socket());
    expect(bad.code).toBe(2);
  });

  it('a migration through the API with --wait: exit 0, done, the container on the target', async () => {
    const r = await ferry(['migrate', 'web-1', '--from', 'h1', '--to', 'h2', '--wait'], tcp(await tokenFor('operator', { containers: ['web-*'] })));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^migrate m-\w+: web-1 h1 → h2 \(restart\) +DONE$/m);
    expect(c.world.runningOn('web-1')).toEqual(['h2']);
    const hosts = await ferry(['hosts', '--json'], tcp(await tokenFor('viewer')));
    expect(hosts.code).toBe(0);
    expect((JSON.parse(hosts.stdout) as { name: string }[]).map((h) => h.name).sort()).toEqual(['h1', 'h2']);
  });

  it('errors print and exit as without the API: 2 bad input (the same line), 3 for a role or scope (403) and a bad token (401)', async () => {
    const op = tcp(await tokenFor('operator', { containers: ['web-*'], name: 'web-ops' }));
    const viaApi = await ferry(['migrate', 'web-1', '--from', 'h2', '--to', 'h9'], op);
    const direct = await local(['migrate', 'web-1', '--from', 'h2', '--to', 'h9']);
    expect(viaApi.code).toBe(2);
    expect(direct.exitCode).toBe(2);
    expect(viaApi.stderr).toBe(direct.stderr);
    expect(viaApi.stderr).toContain("to: unknown host 'h9'");

    const scope = await ferry(['migrate', 'db-1', '--from', 'h1', '--to', 'h2'], op);
    expect(scope.code).toBe(3);
    expect(scope.stderr).toMatch(/^ferry: API denied the request: db-1 is outside token 'web-ops''s container scope \(web-\*\) \(request q-[0-9a-f]{16}\)\n$/);
    const role = await ferry(['token', 'list'], op);
    expect(role.code).toBe(3);
    expect(role.stderr).toContain("needs the admin role; 'web-ops' is operator");
    const unknown = await ferry(['hosts'], tcp(`ferry_aaaaaaaaaa_${'A'.repeat(43)}`));
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/^ferry: API refused the token: token aaaaaaaaaa is unknown or revoked/);
    const none = await ferry(['hosts'], { FERRY_API: api.url! });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('FERRY_TOKEN (or --token) is needed');
    const exec = await ferry(['exec', 'web-1', '--', 'true'], op);
    expect(exec.code).toBe(2);
    expect(exec.stderr).toContain("ferry exec does not go through ferry's API");
    // --api and --token, before the command, stand for the variables.
    const flags = await ferry(['--api', api.url!, '--token', `ferry_aaaaaaaaaa_${'A'.repeat(43)}`, 'hosts'], {});
    expect(flags.code).toBe(3);
  });

  it('ferry audit shows allowed and denied requests with who, route, outcome and request id', async () => {
    const denied = await ferry(['cordon', 'h2'], tcp(await tokenFor('viewer', { name: 'looker' })));
    expect(denied.code).toBe(3);
    const id = /request (q-[0-9a-f]{16})/.exec(denied.stderr)![1]!;
    const r = await ferry(['audit', '--limit', '200', '--json'], tcp(await tokenFor('admin')));
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { requestId: string; who: string; route: string; status: number; outcome: string });
    expect(lines.find((l) => l.requestId === id)).toMatchObject({ who: 'looker', route: '/v1/cordons/:host', status: 403, outcome: 'denied' });
    expect(lines.some((l) => l.route === '/v1/migrations' && l.status === 200)).toBe(true);
    const text = await ferry(['audit', '--limit', '3'], socket());
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n').filter((l) => !l.startsWith('    '))).toHaveLength(3);
  });
});
