/**
 * An operation's log stream against a real redis-server: bounded in entries (XADD MAXLEN ~), in
 * bytes per line and in lines per second; logging never waits for Redis nor fails with it; and the
 * tee that feeds it from pino loggers without touching a log call.
 */
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { keys, OPERATION_LOG } from '@ferry/core';
import { OperationLogSink, readOperationLog, teeOperationLog, type RedisClient } from '@ferry/infra';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

const line = (o: Record<string, unknown>) => `${JSON.stringify({ level: 30, time: Date.now(), host: 'h1', migrationId: 'm-1', step: 'rsync-transfer', msg: 'x', ...o })}\n`;

describe("an operation's log stream (OperationLogSink, teeOperationLog)", () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let prefix: string;
  beforeAll(async () => {
    srv = await testRedis();
  });
  afterAll(async () => srv.stop());
  beforeEach(() => {
    redis = connect(srv.url);
    prefix = freshPrefix();
  });
  afterEach(async () => quit(redis));

  it(`stays bounded: at most about ${OPERATION_LOG.maxLen} entries an operation, the newest kept`, async () => {
    const sink = new OperationLogSink(redis, prefix, { perSecond: 1e9, burst: 1e9, maxPending: 1e9 });
    const n = 3 * OPERATION_LOG.maxLen;
    for (let i = 0; i < n; i++) sink.write(line({ msg: `line ${i}` }));
    await sink.drain(10_000);
    const len = await redis.xlen(keys(prefix).operationLog('m-1'));
    // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default): never far above.
    expect(len).toBeGreaterThanOrEqual(OPERATION_LOG.maxLen);
    expect(len).toBeLessThanOrEqual(OPERATION_LOG.maxLen + 100);
    const { lines } = await readOperationLog(redis, prefix, 'm-1');
    expect(lines.at(-1)!.msg).toBe(`line ${n - 1}`);
    expect(sink.lost).toEqual({ rate: 0, pending: 0, redis: 0 });
  });

  it('cuts each line to the byte cap', async () => {
    const sink = new OperationLogSink(redis, prefix);
    sink.write(line({ level: 50, msg: 'y'.repeat(100_000), stderr: 'z'.repeat(100_000) }));
    await sink.drain();
    const [l] = (await readOperationLog(redis, prefix, 'm-1')).lines;
    expect(l).toMatchObject({ host: 'h1', step: 'rsync-transfer', level: 'error' });
    expect(Buffer.byteLength(l!.msg) + Buffer.byteLength(l!.detail ?? '')).toBeLessThanOrEqual(OPERATION_LOG.lineBytes);
  });

  it('bounds the rate per operation and says how many lines it dropped', async () => {
    const sink = new OperationLogSink(redis, prefix, { perSecond: 10, burst: 20 });
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) sink.write(line({ time: t0, msg: `burst ${i}` }));
    sink.write(line({ time: t0, migrationId: 'm-2', msg: 'another operation has its own budget' }));
    sink.write(line({ time: t0 + 1000, msg: 'a second later' }));
    await sink.drain();
    const msgs = (await readOperationLog(redis, prefix, 'm-1')).lines.map((l) => `${l.level} ${l.msg}`);
    expect(msgs).toHaveLength(22);
    expect(msgs.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => `info burst ${i}`));
    expect(msgs.slice(20)).toEqual(['warn 80 log lines dropped here (over 10 lines/s)', 'info a second later']);
    expect((await readOperationLog(redis, prefix, 'm-2')).lines).toHaveLength(1);
    expect(sink.lost.rate).toBe(80);
  });

  it('never throws nor waits when Redis is away: lines are lost, counted, within a bounded queue', async () => {
    const away = connect('redis://127.0.0.1:1');
    away.on('error', () => undefined);
    const sink = new OperationLogSink(away, prefix, { perSecond: 1e9, burst: 1e9, maxPending: 50 });
    const t = Date.now();
    for (let i = 0; i < 1000; i++) expect(sink.write(line({ msg: `line ${i}` }))).toBe(true);
    expect(sink.write('not json\n')).toBe(true);
    expect(Date.now() - t).toBeLessThan(500);
    await sink.drain(200);
    expect(sink.lost.pending).toBeGreaterThan(800);
    away.disconnect();
  });

  it("tees a logger's lines about an operation, info and above, to its log; its own destination still gets all of them", async () => {
    const seen: string[] = [];
    const dest = new Writable({ write: (chunk: Buffer, _e, cb) => (seen.push(chunk.toString()), cb()) });
    const sink = new OperationLogSink(redis, prefix);
    const log = teeOperationLog(pino({ level: 'debug', base: { name: 'worker' } }, dest).child({ host: 'h2' }), sink);
    const step = log.child({ migrationId: 'm-1', step: 'restore', phase: 'forward', index: 4, run: 1, attempt: 1 });
    step.debug('not for the operation log');
    step.info({ ms: 12 }, 'step done');
    log.warn('about no operation');
    // A silent parent (the fast tier's) still feeds the operation's log.
    teeOperationLog(pino({ level: 'silent' }), sink).child({ host: 'h3', migrationId: 'm-1' }).error({ err: new Error('boom') }, 'step failed');
    await sink.drain();
    expect(seen.map((s) => (JSON.parse(s) as { msg: string; name: string }).msg)).toEqual(['not for the operation log', 'step done', 'about no operation']);
    expect((JSON.parse(seen[1]!) as Record<string, unknown>)).toMatchObject({ name: 'worker', host: 'h2', migrationId: 'm-1', ms: 12 });
    const { lines } = await readOperationLog(redis, prefix, 'm-1');
    expect(lines.map(({ id: _, time: __, ...l }) => l)).toEqual([
      { host: 'h2', step: 'restore', phase: 'forward', level: 'info', msg: 'step done', detail: 'ms=12' },
      { host: 'h3', level: 'error', msg: 'step failed', detail: 'err="Error: boom"' },
    ]);
  });
});
