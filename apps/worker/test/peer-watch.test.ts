import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostRegistry, type RedisClient } from '@ferry/infra';
import { PeerWatch } from '../src/peer-watch.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

const aborted = (s: AbortSignal) => new Promise<number>((resolve) => s.addEventListener('abort', () => resolve(Date.now()), { once: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PeerWatch against real Redis (the peer beats by hand)', () => {
  let srv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let admin: RedisClient;
  beforeAll(async () => {
    srv = await testRedis();
    redis = connect(srv.url);
    admin = connect(srv.url);
  });
  afterAll(async () => {
    await Promise.all([quit(redis), quit(admin)]);
    await srv.stop();
  });

  it('stays quiet while the peer beats, and aborts with PEER_LOST once it falls silent', async () => {
    const registry = new HostRegistry(redis, freshPrefix());
    await registry.markAlive('h2');
    const watch = new PeerWatch(registry, 'h2', 600, 50);
    try {
      let lastBeat = 0;
      for (let i = 0; i < 15; i++) {
        lastBeat = Date.now();
        await registry.markAlive('h2', lastBeat);
        await sleep(100);
      }
      expect(watch.signal.aborted).toBe(false);
      const at = await aborted(watch.signal);
      expect(at - lastBeat).toBeGreaterThanOrEqual(600);
      expect(watch.lost).toMatchObject({ code: 'PEER_LOST', retryable: false });
      expect(watch.signal.reason).toBe(watch.lost);
    } finally {
      watch.stop();
    }
  });

  it('does not count a Redis outage against the peer: the count starts over when Redis answers', async () => {
    const registry = new HostRegistry(redis, freshPrefix());
    await registry.markAlive('h2'); // and never again: the peer is silent throughout
    const watch = new PeerWatch(registry, 'h2', 800, 50);
    try {
      await sleep(200);
      // Every client but `admin` waits 1.5 s: longer than the limit, yet the peer is not to blame.
      await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const pausedAt = Date.now();
      const at = await aborted(watch.signal);
      expect(at - (pausedAt + 1500)).toBeGreaterThanOrEqual(800 - 100); // 100 ms: one poll's slack
      expect(watch.lost?.code).toBe('PEER_LOST');
    } finally {
      watch.stop();
    }
  });

  it('a silent worker on a host that still answers over SSH is not a lost peer: it gives up only once the host stops answering too', async () => {
    const registry = new HostRegistry(redis, freshPrefix());
    await registry.markAlive('h2'); // the worker is gone from here on
    let hostAnswers = true;
    let asked = 0;
    const watch = new PeerWatch(registry, 'h2', 300, 50, async () => {
      asked++;
      return hostAnswers;
    });
    try {
      await sleep(1200);
      expect(asked).toBeGreaterThanOrEqual(2); // asked at each limit, and each answer started over
      expect(watch.signal.aborted).toBe(false);
      hostAnswers = false; // now the host is gone too (sshd, link)
      await aborted(watch.signal);
      expect(watch.lost?.code).toBe('PEER_LOST');
    } finally {
      watch.stop();
    }
  });
});
