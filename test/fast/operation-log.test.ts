import { describe, expect, it } from 'vitest';
import { OPERATION_LOG, type OperationRecord } from '@ferry/core';
import { connect } from '@ferry/infra';
import { clientOf } from '../../apps/cli/src/client.js';
import { logs } from '../../apps/cli/src/commands/logs.js';
import { localFerry } from '../../apps/cli/src/service/local-ferry.js';
import type { Ferry } from '../../apps/cli/src/service/ferry.js';
import { EXIT, ExitError } from '../../apps/cli/src/exit-error.js';
import { FakeCluster, useFakeClusters, FakeWorld } from '../support/fake/index.js';

/**
 * FAST TIER, FAKE HOSTS: one log for one operation. A migration runs through the real scheduler
 * and host workers (fake runtime and steps); `ferry logs` (its function, on its own connection as
 * the CLI has) shows the lines of every step from the host that ran it, and the scheduler's, in the
 * order they happened; --follow prints until the operation ends and exits by its outcome. The lab
 * tier checks the same on real hosts (test/e2e/migrate.test.ts).
 */
describe('ferry logs (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  async function cluster(): Promise<FakeCluster> {
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: { 'etc/hostname': 'web\n' } });
    return clusters.start({ world });
  }

  /** What the CLI opens (client.ts), on the test's redis-server and the cluster's prefix. */
  async function withCli<T>(c: FakeCluster, fn: (cli: Ferry) => Promise<T>): Promise<T> {
    const redis = connect(clusters.url());
    const cli = clientOf(redis, c.prefix, async () => c.keys.controlKey);
    try {
      return await fn(localFerry(cli));
    } finally {
      await cli.close();
      await redis.quit().catch(() => redis.disconnect());
    }
  }

  /** `ferry logs` as text, or --json (one object a line), with its exit code. */
  async function ferryLogs(c: FakeCluster, id: string, o: { follow?: boolean; json?: boolean } = {}) {
    const out: string[] = [];
    const notes: string[] = [];
    const code = await withCli(c, (cli) => logs(cli, id, { ...o, pollMs: 50, out: (s) => out.push(s), note: (s) => notes.push(s) }));
    return { code, out, notes };
  }
  const parsed = (out: string[]) => out.map((s) => JSON.parse(s) as { host: string; step?: string; phase?: string; level: string; msg: string; detail?: string });
  const names = (r: OperationRecord) => r.steps.map((s) => `${s.name}@${s.host}`);

  it("a migration's log: every step's lines from the host that ran it, and the scheduler's, in order", async () => {
    const c = await cluster();
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'done');
    await new Promise((res) => setTimeout(res, 200)); // the last lines reach Redis just after the record

    const { code, out } = await ferryLogs(c, id, { json: true });
    expect(code).toBe(EXIT.ok);
    const lines = parsed(out);
    const at = (host: string, msg: string, step?: string) => lines.findIndex((l) => l.host === host && l.msg === msg && (step === undefined || l.step === step));
    // Each step started and was done on its own host, in the workflow's order, across both hosts.
    const done = lines.filter((l) => l.msg === 'step done').map((l) => `${l.step}@${l.host}`);
    expect(done).toEqual(names(r));
    expect(new Set(lines.filter((l) => l.host !== 'scheduler').map((l) => l.host))).toEqual(new Set(['h1', 'h2']));
    // The scheduler's lines: planned first, each step enqueued before it started, finished last.
    expect(at('scheduler', 'migrate planned')).toBe(0);
    for (const s of r.steps) {
      const enqueued = lines.findIndex((l) => l.host === 'scheduler' && l.msg === 'step enqueued' && l.step === s.name && l.detail?.includes(`host=${s.host}`));
      expect(enqueued, `${s.name}@${s.host} enqueued`).toBeGreaterThan(0);
      expect(at(s.host, 'step started', s.name)).toBeGreaterThan(enqueued);
    }
    expect(lines.filter((l) => l.host === 'scheduler').map((l) => l.msg)).toEqual(expect.arrayContaining(['now running', 'now done', 'migration finished']));
    expect(at('scheduler', 'migration finished')).toBeGreaterThan(at('h1', 'step done', 'cleanup'));

    // As text: time, host, step, level, message, in the same order.
    const text = await ferryLogs(c, id);
    expect(text.out).toHaveLength(lines.length);
    expect(text.out[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}scheduler +- +info +migrate planned {2}container=web/);
    expect(text.out.find((l) => / h2 +restore +info +step done/.test(l))).toBeDefined();
  });

  it('why it rolled back: the failing step\'s error, from its host, and the rollback steps', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'restore', host: 'h2', at: 'middle', kind: 'fail', code: 'FAKE_RESTORE_FAILED' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'rolled-back');
    const { code, out } = await ferryLogs(c, id, { follow: true, json: true });
    expect(code).toBe(EXIT.failed); // --follow exits by the outcome
    const lines = parsed(out);
    expect(lines.find((l) => l.host === 'h2' && l.step === 'restore' && l.level === 'error')?.detail).toContain('FAKE_RESTORE_FAILED');
    expect(lines.some((l) => l.host === 'scheduler' && l.msg === 'now rolling-back')).toBe(true);
    for (const s of r.rollback) expect(lines.some((l) => l.host === s.host && l.step === s.name && l.phase === 'rollback' && l.msg === 'step done')).toBe(true);
  });

  it('--follow prints lines as they come and ends when the operation has ended', async () => {
    const c = await cluster();
    const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', at: 'middle', kind: 'hang' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' }); // followed at once, before it is planned
    const out: string[] = [];
    let ended = false;
    const following = withCli(c, (cli) => logs(cli, id, { follow: true, pollMs: 50, out: (s) => out.push(s), note: () => undefined })).finally(() => (ended = true));
    await hang.reached;
    await new Promise((res) => setTimeout(res, 300));
    // Following, mid-migration: the pre-copy has started on h1, nothing after it yet.
    expect(ended).toBe(false);
    expect(out.some((l) => / h1 +rsync-transfer +info +step started/.test(l))).toBe(true);
    expect(out.some((l) => /migration finished/.test(l))).toBe(false);
    hang.release();
    await c.waitFor(id, 'done');
    const t = Date.now();
    expect(await following).toBe(EXIT.ok);
    expect(Date.now() - t).toBeLessThan(3000);
    expect(out.some((l) => / h1 +cleanup +info +step done/.test(l))).toBe(true);
    expect(out.at(-1)).toMatch(/scheduler .*migration finished/);
  });

  it('an unknown id is bad input (exit 2), with a message naming it', async () => {
    const c = await cluster();
    const e = await withCli(c, (cli) => logs(cli, 'm-nosuchop', { out: () => undefined })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExitError);
    expect(e).toMatchObject({ exitCode: EXIT.badInput, message: 'no operation with id m-nosuchop' });
  });

  it(`a step that logs in a loop: its operation's log stays within ${OPERATION_LOG.maxLen} lines`, async () => {
    const c = await cluster();
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await c.waitFor(id, 'done');
    // The worker's logger, as a step gets it: a burst far past the rate and the length bounds.
    const redis = connect(clusters.url());
    try {
      const { OperationLogSink } = await import('@ferry/infra');
      const sink = new OperationLogSink(redis, c.prefix, { perSecond: 1e9, burst: 1e9, maxPending: 1e9 });
      for (let i = 0; i < 3 * OPERATION_LOG.maxLen; i++) sink.write(`${JSON.stringify({ level: 30, time: Date.now(), host: 'h1', migrationId: id, step: 'rsync-transfer', msg: `chatty ${i}` })}\n`);
      await sink.drain(10_000);
      expect(await redis.xlen(c.store.k.operationLog(id))).toBeLessThanOrEqual(OPERATION_LOG.maxLen + 100);
    } finally {
      await redis.quit();
    }
  });
});
