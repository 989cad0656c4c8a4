import { describe, expect, it } from 'vitest';
import { summarize, type OperationRecord } from '@ferry/core';
import { FakeWorld, useFakeClusters, type FakeCluster } from '../support/fake/index.js';
import { matching, scrape, valueOf, type Exposition } from '../support/prom-text.js';

/**
 * FAST TIER, FAKE HOSTS: the scheduler's and the workers' Prometheus endpoints, scraped over HTTP
 * after real migrations through the real scheduler and workers, against the operations' records.
 */
describe('metrics endpoints (fast tier: fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();

  async function cluster(): Promise<FakeCluster> {
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: { 'etc/hostname': 'web\n', 'var/lib/data': 'x'.repeat(65536) } });
    return clusters.start({ world, metrics: true });
  }

  /** How many steps of the record ran on `host`, by step name and outcome. */
  function stepsOn(r: OperationRecord, host: string): Map<string, { n: number; seconds: number }> {
    const out = new Map<string, { n: number; seconds: number }>();
    for (const s of [...r.steps, ...r.rollback]) {
      if (s.host !== host || (s.state !== 'done' && s.state !== 'failed')) continue;
      const key = `${s.name} ${s.state === 'done' ? 'ok' : 'failed'}`;
      const cur = out.get(key) ?? { n: 0, seconds: 0 };
      out.set(key, { n: cur.n + 1, seconds: cur.seconds + (s.endedAt! - s.startedAt!) / 1000 });
    }
    return out;
  }

  /** The worker's step-duration histogram, as the same map. */
  function histogramOf(e: Exposition, host: string): Map<string, { n: number; seconds: number }> {
    const out = new Map<string, { n: number; seconds: number }>();
    for (const c of matching(e, 'ferry_step_duration_seconds_count', { host })) {
      const sum = valueOf(e, 'ferry_step_duration_seconds_sum', c.labels);
      out.set(`${c.labels.step} ${c.labels.outcome}`, { n: c.value, seconds: sum });
    }
    return out;
  }

  function expectSameSteps(actual: Map<string, { n: number; seconds: number }>, expected: Map<string, { n: number; seconds: number }>) {
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, v] of expected) {
      expect(actual.get(k)!.n, k).toBe(v.n);
      expect(actual.get(k)!.seconds, k).toBeCloseTo(v.seconds, 6);
    }
  }

  it('after a migration: counts, bytes, windows and step durations agree with its record', async () => {
    const c = await cluster();
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'done');
    const summary = summarize(r);

    const s = await scrape(c.metricsUrl('scheduler'));
    expect(s.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(valueOf(s, 'ferry_operations_finished_total', { kind: 'migrate', state: 'done' })).toBe(1);
    expect(valueOf(s, 'ferry_operations_finished_total')).toBe(1);
    expect(valueOf(s, 'ferry_operations', { kind: 'migrate', state: 'done' })).toBe(1);
    expect(valueOf(s, 'ferry_operations', { state: 'running' })).toBe(0);
    expect(valueOf(s, 'ferry_operation_duration_seconds_count', { kind: 'migrate', state: 'done' })).toBe(1);
    expect(valueOf(s, 'ferry_operation_duration_seconds_sum')).toBeCloseTo(summary.totalMs! / 1000, 6);

    // Bytes moved: the summary's, sent by the source (pre-copy and final pass).
    expect(summary.bytesTransferred).toBeGreaterThan(65536);
    expect(valueOf(s, 'ferry_bytes_moved_total', { kind: 'migrate' })).toBe(summary.bytesTransferred);
    expect(valueOf(s, 'ferry_bytes_moved_total', { kind: 'migrate', host: 'h1' })).toBe(summary.bytesTransferred);

    // The frozen window is the summary's; the downtime runs on to the end of the restore step.
    const step = (name: string) => r.steps.find((x) => x.name === name)!;
    const frozenAt = (step('checkpoint').output as { frozenAt: number }).frozenAt;
    expect(valueOf(s, 'ferry_frozen_seconds_count', { kind: 'migrate', mode: 'restart' })).toBe(1);
    expect(valueOf(s, 'ferry_frozen_seconds_sum', { kind: 'migrate', mode: 'restart' })).toBeCloseTo(summary.frozenMs! / 1000, 6);
    expect(valueOf(s, 'ferry_downtime_seconds_count', { kind: 'migrate', mode: 'restart' })).toBe(1);
    expect(valueOf(s, 'ferry_downtime_seconds_sum', { kind: 'migrate', mode: 'restart' })).toBeCloseTo((step('restore').endedAt! - frozenAt) / 1000, 6);
    expect(valueOf(s, 'ferry_rollbacks_total')).toBe(0);
    expect(valueOf(s, 'ferry_pauses_total')).toBe(0);

    // Read from Redis at the scrape: nothing waits, both workers beat.
    for (const q of ['scheduler', 'host-h1', 'host-h2']) {
      expect(matching(s, 'ferry_queue_depth', { queue: q })).toHaveLength(3);
      expect(valueOf(s, 'ferry_queue_depth', { queue: q, state: 'waiting' })).toBe(0);
      expect(valueOf(s, 'ferry_queue_oldest_job_age_seconds', { queue: q })).toBe(0);
    }
    for (const h of ['h1', 'h2']) {
      expect(matching(s, 'ferry_worker_heartbeat_age_seconds', { host: h })).toHaveLength(1);
      expect(valueOf(s, 'ferry_worker_heartbeat_age_seconds', { host: h })).toBeLessThan(5);
    }

    // Each worker: one observation per step it ran, summing to the record's durations.
    for (const h of ['h1', 'h2']) {
      const w = await scrape(c.metricsUrl(h));
      expectSameSteps(histogramOf(w, h), stepsOn(r, h));
      expect(valueOf(w, 'ferry_steps_running', { host: h })).toBe(0);
      expect(valueOf(w, 'ferry_step_retries_total')).toBe(0);
      expect(valueOf(w, 'ferry_process_cpu_seconds_total')).toBeGreaterThan(0);
      expectWellFormed(w, r);
    }
    expectWellFormed(s, r);
  });

  /** Every ferry_ metric has its HELP; no label carries an operation id or a container name. */
  function expectWellFormed(e: Exposition, r: OperationRecord) {
    for (const x of e.samples) expect(x.name).toMatch(/^ferry_/);
    for (const name of e.type.keys()) expect(e.help.get(name), name).toBeTruthy();
    const values = new Set(e.samples.flatMap((x) => Object.values(x.labels)));
    expect(values.has(r.id)).toBe(false);
    expect(values.has(r.request.container)).toBe(false);
  }

  it('a retried attempt and a rollback are counted by error code', async () => {
    const c = await cluster();
    c.world.faults.add({ step: 'rsync-transfer', host: 'h1', at: 'middle', kind: 'fail', code: 'TRANSFER_NETWORK', retryable: true, times: 1 });
    c.world.faults.add({ step: 'restore', host: 'h2', at: 'start', kind: 'fail', code: 'FAKE_RESTORE_FAILED' });
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    const r = await c.waitFor(id, 'rolled-back');
    expect(r.error?.code).toBe('FAKE_RESTORE_FAILED');

    const s = await scrape(c.metricsUrl('scheduler'));
    expect(valueOf(s, 'ferry_rollbacks_total', { kind: 'migrate', code: 'FAKE_RESTORE_FAILED' })).toBe(1);
    expect(valueOf(s, 'ferry_operations_finished_total', { kind: 'migrate', state: 'rolled-back' })).toBe(1);
    expect(valueOf(s, 'ferry_operations', { kind: 'migrate', state: 'rolled-back' })).toBe(1);
    expect(valueOf(s, 'ferry_frozen_seconds_count')).toBe(0);
    expect(valueOf(s, 'ferry_bytes_moved_total')).toBe(summarize(r).bytesTransferred);

    const h1 = await scrape(c.metricsUrl('h1'));
    expect(valueOf(h1, 'ferry_step_retries_total', { step: 'rsync-transfer', host: 'h1', code: 'TRANSFER_NETWORK' })).toBe(1);
    expectSameSteps(histogramOf(h1, 'h1'), stepsOn(r, 'h1'));
    const h2 = await scrape(c.metricsUrl('h2'));
    expect(valueOf(h2, 'ferry_step_duration_seconds_count', { step: 'restore', host: 'h2', outcome: 'failed' })).toBe(1);
    expectSameSteps(histogramOf(h2, 'h2'), stepsOn(r, 'h2'));
  });

  it("a host whose worker is down: its queue's waiting step ages, its heartbeat goes stale", async () => {
    const c = await cluster();
    await c.stopWorker('h2');
    const stoppedAt = Date.now();
    const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
    await c.waitFor(id, (x) => x.state === 'running' && x.cursor === 1);
    await new Promise((res) => setTimeout(res, 300));
    const scrapedAt = Date.now();
    const s = await scrape(c.metricsUrl('scheduler'));
    expect(valueOf(s, 'ferry_queue_depth', { queue: 'host-h2', state: 'waiting' })).toBe(1);
    expect(valueOf(s, 'ferry_queue_oldest_job_age_seconds', { queue: 'host-h2' })).toBeGreaterThanOrEqual(0.25);
    expect(valueOf(s, 'ferry_queue_depth', { queue: 'host-h1', state: 'waiting' })).toBe(0);
    // h2 has not beaten since its worker stopped (h1's beat, every 400 ms, is not compared: a loaded machine delays it).
    expect(valueOf(s, 'ferry_worker_heartbeat_age_seconds', { host: 'h2' })).toBeGreaterThanOrEqual((scrapedAt - stoppedAt) / 1000 - 0.001);
    expect(valueOf(s, 'ferry_operations', { kind: 'migrate', state: 'running' })).toBe(1);
    // Back: the step is taken and the migration ends.
    await c.startWorker('h2');
    await c.waitFor(id, 'done', 60_000);
  });
});
