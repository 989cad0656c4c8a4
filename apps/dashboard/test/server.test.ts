/**
 * The dashboard's server over a real redis-server (no browser: apps/cli/test/dashboard-browser.test.ts
 * and test/e2e/dashboard.test.ts open it in chromium): the page as first served, its one event
 * stream, read-only everywhere, loopback only, and the plugin under another server's prefix.
 */
import { request } from 'node:http';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newRecord, parseMigrationRequest, workflows, type Capabilities, type HostInfo, type MigrateRecord } from '@ferry/core';
import { HostRegistry, OperationStore, type RedisClient } from '@ferry/infra';
import { dashboardPlugin, serveDashboard, type DashboardServer } from '../src/index.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

const caps: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'criu check failed' };
const peer = (name: string) => ({ name, address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath: `/lab/${name}/lxc` });
const hostInfo = (name: string, containers: HostInfo['containers']): HostInfo => ({ ...peer(name), capabilities: caps, containers, freeBytes: 2 ** 30, lastSeen: Date.now(), workerPid: 1 });

function migration(): MigrateRecord {
  const request = parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2' });
  const r = newRecord({ id: 'm-served00001', kind: 'migrate', request, plan: workflows.migrate.plan(request, () => caps), hosts: { source: peer('h1'), target: peer('h2') }, epoch: 1, now: Date.now() });
  if (r.kind !== 'migrate') throw new Error('unreachable');
  return r;
}

/** Server-sent events as they arrive: `next(pred)` waits for the first one that matches. */
async function events(url: string) {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const next = async (match: (e: { event: string; data: Record<string, string> }) => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    for (;;) {
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) {
          const e = { event, data: JSON.parse(data) as Record<string, string> };
          if (match(e)) return e;
        }
      }
      if (Date.now() > end) throw new Error('no such event in time');
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buf += value;
    }
  };
  return { res, next, close: () => ac.abort() };
}

/** A GET with a Host header of our choosing (fetch sets its own). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard server (real Redis, no browser)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let store: OperationStore;
  let registry: HostRegistry;
  let server: DashboardServer | undefined;

  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(async () => {
    redis = connect(srv.url);
    const prefix = freshPrefix();
    store = new OperationStore(redis, prefix);
    registry = new HostRegistry(redis, prefix);
    await registry.publish(hostInfo('h1', [{ name: 'web', state: 'RUNNING' }]));
    await registry.markAlive('h1');
    server = await serveDashboard({ store, registry, listen: { host: '127.0.0.1', port: 0 }, refreshMs: 50 });
  });
  afterEach(async () => {
    await server?.close();
    await quit(redis);
  });

  it('serves the page with what Redis holds, then each change on its one event stream', async () => {
    const r = migration();
    await store.save(r, true);
    const page = await fetch(server!.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    const body = await page.text();
    expect(body).toMatch(/<tbody data-host="h1">/);
    expect(body).toMatch(/<article class="operation" data-op="m-served00001" data-state="pending">/);
    expect(body).toMatch(/<script src="dashboard.js" defer><\/script>/);
    expect((await fetch(new URL('dashboard.js', server!.url))).headers.get('content-type')).toMatch(/^text\/javascript/);

    const stream = await events(new URL('events', server!.url).href);
    try {
      expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const first = await stream.next((e) => e.event === 'sections');
      expect(Object.keys(first.data).sort()).toEqual(['history', 'hosts', 'running']); // all of them, to a page just connected
      // The operation ends: it leaves "running now" for the history, on the same stream.
      await store.save({ ...r, state: 'done', endedAt: Date.now() });
      const moved = await stream.next((e) => e.event === 'sections' && e.data.history !== undefined && e.data.history.includes('m-served00001'));
      expect(moved.data.running).toMatch(/nothing running/);
      expect(moved.data.history).toMatch(/<tr data-op="m-served00001" data-state="done">/);
      // A new host shows up, and its queues in the inspector.
      await registry.publish(hostInfo('h2', []));
      await stream.next((e) => e.event === 'sections' && e.data.hosts !== undefined && e.data.hosts.includes('data-host="h2"'));
      const queues = (await (await fetch(new URL('queues/api/queues', server!.url))).json()) as { queues: { name: string; readOnlyMode: boolean }[] };
      expect(queues.queues.map((q) => q.name).sort()).toEqual(['exec-h1', 'exec-h2', 'host-h1', 'host-h2', 'rebalance', 'scheduler', 'toolbox-h1', 'toolbox-h2']);
      expect(queues.queues.every((q) => q.readOnlyMode)).toBe(true);
    } finally {
      stream.close();
    }
  });

  it('is read-only: any method but GET and HEAD is refused, the queue inspector\'s actions too', async () => {
    for (const [method, path] of [
      ['PUT', 'queues/api/queues/scheduler/pause'],
      ['PUT', 'queues/api/queues/host-h1/clean/completed'],
      ['POST', 'queues/api/queues/scheduler/add'],
      ['PUT', 'queues/api/queues/host-h1/retry/failed'],
    ] as const) {
      const res = await fetch(new URL(path, server!.url), { method });
      expect(res.status, `${method} /${path}`).toBe(405);
    }
    // No route takes anything but GET: the rest are not found.
    for (const method of ['POST', 'PUT', 'DELETE']) expect((await fetch(server!.url, { method })).status).toBe(404);
    expect((await fetch(new URL('queues/', server!.url))).status).toBe(200);
  });

  it('answers only to loopback names, and will not listen elsewhere without allowRemote', async () => {
    expect(await getWithHost(server!.url, 'dash.evil.example')).toBe(421);
    expect(await getWithHost(server!.url, 'localhost:9480')).toBe(200);
    expect(await getWithHost(server!.url, '[::1]:9480')).toBe(200);
    await expect(serveDashboard({ store, registry, listen: { host: '0.0.0.0', port: 0 } })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('ends its event streams when it closes', async () => {
    const stream = await events(new URL('events', server!.url).href);
    await stream.next((e) => e.event === 'sections');
    const started = Date.now();
    await server!.close();
    server = undefined;
    await expect(stream.next(() => true, 5000)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('sits under another server\'s prefix: relative links, the inspector at <prefix>/queues/', async () => {
    const app = Fastify();
    await app.register(dashboardPlugin, { store, registry, prefix: '/ferry' });
    try {
      const bare = await app.inject({ method: 'GET', url: '/ferry' });
      expect(bare.statusCode).toBe(302);
      expect(bare.headers.location).toBe('/ferry/');
      const page = await app.inject({ method: 'GET', url: '/ferry/' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toMatch(/href="queues\/"/);
      const board = await app.inject({ method: 'GET', url: '/ferry/queues/' });
      expect(board.statusCode).toBe(200);
      expect(board.body).toMatch(/\/ferry\/queues/);
    } finally {
      await app.close();
    }
  });
});
