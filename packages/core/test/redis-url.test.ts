import { describe, expect, it } from 'vitest';
import { hashTagged, keys, parseRedisUrl, prefixFor, ValidationError, type Problem } from '../src/index.js';

/** The problems a bad URL is refused with (every one of them). */
function problems(url: string, where?: string): Problem[] {
  try {
    parseRedisUrl(url, where);
  } catch (e) {
    if (e instanceof ValidationError) return e.problems;
    throw e;
  }
  throw new Error(`${url} was accepted`);
}

describe('REDIS_URL', () => {
  it('one server: TCP with user, password and database, TLS, or a unix socket', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380')).toEqual({ kind: 'single', node: { host: '127.0.0.1', port: 6380 }, tls: false });
    expect(parseRedisUrl('rediss://ferry:s%40cret@redis.example:6390/2')).toEqual({ kind: 'single', node: { host: 'redis.example', port: 6390 }, tls: true, db: 2, username: 'ferry', password: 's@cret' });
    expect(parseRedisUrl('redis://:pw@[::1]')).toEqual({ kind: 'single', node: { host: '::1', port: 6379 }, tls: false, password: 'pw' });
    expect(parseRedisUrl('unix:///run/redis/redis.sock')).toEqual({ kind: 'socket', path: '/run/redis/redis.sock' });
  });

  it('a Sentinel set: its sentinels (port 26379 by default), the master name, the data nodes\' and the sentinels\' credentials', () => {
    expect(parseRedisUrl('redis+sentinel://:pw@10.0.0.1,10.0.0.2:26380,[fd00::3]/ferry-main/1?sentinelPassword=s%26p')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: 'fd00::3', port: 26379 },
      ],
      masterName: 'ferry-main',
      tls: false,
      db: 1,
      password: 'pw',
      sentinelPassword: 's&p',
    });
    expect(parseRedisUrl('rediss+sentinel://s1:26379/m')).toMatchObject({ kind: 'sentinel', tls: true, masterName: 'm' });
  });

  it('a Cluster: its seed nodes', () => {
    expect(parseRedisUrl('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
      ],
      tls: false,
    });
  });

  it('refuses a bad URL with every problem at once, each saying where, never echoing the password', () => {
    const p = problems('redis+sentinel://:hunter2@a:99999,b:x,,c/bad name/9z?sentinelPasword=1');
    expect(p).toEqual([
      { path: 'REDIS_URL host 1 (a:99999)', message: 'the port must be 1-65535' },
      { path: 'REDIS_URL host 2 (b:x)', message: 'the port is not a number' },
      { path: 'REDIS_URL host 3 (:26379)', message: 'the host is empty' },
      { path: 'REDIS_URL path', message: "the master name may hold only letters, digits, '.', '_' and '-'" },
      { path: 'REDIS_URL query', message: "unknown parameter 'sentinelPasword' (known: sentinelPassword, sentinelUsername)" },
      { path: 'REDIS_URL path', message: 'the database must be a number (0, 1, ...)' },
    ]);
    expect(JSON.stringify(p)).not.toContain('hunter2');
    expect(problems('redis+sentinel://a,b')).toEqual([{ path: 'REDIS_URL path', message: 'names no master: redis+sentinel://host:port,host:port/<master-name>' }]);
    expect(problems('redis+cluster://a:7000/0')).toEqual([{ path: 'REDIS_URL path', message: 'a cluster has database 0 only: no path after the hosts' }]);
    expect(problems('redis://a:1,b:2')).toEqual([{ path: 'REDIS_URL', message: 'names several hosts; a list of hosts is redis+sentinel://... or redis+cluster://...' }]);
    expect(problems('http://a', '--redis-url')[0]).toMatchObject({ path: '--redis-url', message: expect.stringContaining("the scheme http:// is not one of ferry's") });
    expect(problems('localhost:6379')[0]!.message).toMatch(/^is not a URL; use unix:\/\/\/path, redis\[s\]:\/\//);
    expect(problems('redis+cluster://')).toEqual([{ path: 'REDIS_URL', message: 'names no host' }]);
    expect(problems('unix://relative.sock')).toEqual([{ path: 'REDIS_URL', message: 'unix:// takes an absolute socket path: unix:///run/redis/redis.sock' }]);
    // The CLI's exit 2 comes from the ValidationError's code.
    expect(() => parseRedisUrl('redis://a:0')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', message: 'REDIS_URL host (a:0): the port must be 1-65535' }));
  });
});

describe('key prefix on a Cluster', () => {
  it('is a hash tag there (every key of ferry and BullMQ in one slot), unchanged elsewhere', () => {
    expect(hashTagged('ferry')).toBe('{ferry}');
    expect(hashTagged('{ferry}')).toBe('{ferry}');
    expect(hashTagged('ops:{ferry}:a')).toBe('ops:{ferry}:a');
    expect(hashTagged('odd{}')).toBe('{odd{}}'); // `{}` tags nothing: Redis hashes the whole key
    expect(prefixFor(parseRedisUrl('redis+cluster://a:7000'), 'ferry')).toBe('{ferry}');
    for (const url of ['redis://a', 'unix:///s.sock', 'redis+sentinel://a/m']) expect(prefixFor(parseRedisUrl(url), 'ferry')).toBe('ferry');
    const k = keys(prefixFor(parseRedisUrl('redis+cluster://a:7000'), 'ferry'));
    expect([k.migration('m-1'), k.leaderLease, k.lock('web')]).toEqual(['{ferry}:mig:m-1', '{ferry}:lease:leader', '{ferry}:lock:web']);
  });
});
