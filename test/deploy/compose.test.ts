/**
 * docker-compose.yml, read as Compose would read it (no engine runs here): the deployment shape
 * the README describes, and, from issue 14, a Redis that is neither published on every interface
 * without a password nor unbounded.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  network_mode?: string;
  privileged?: boolean;
  pid?: string;
  depends_on?: string[];
  restart?: string;
}
const compose = async () =>
  parse(await readFile(fileURLToPath(new URL('../../docker-compose.yml', import.meta.url)), 'utf8')) as { services: Record<string, Service>; volumes?: Record<string, unknown> };

/** `--flag value` from a redis-server command line. */
const arg = (cmd: string[], flag: string) => {
  const i = cmd.indexOf(flag);
  return i < 0 ? undefined : cmd[i + 1];
};
/** A port mapping's host address: "127.0.0.1:6379:6379" → 127.0.0.1; "6379:6379" or "6379" → every interface. */
const publishedOn = (p: string) => {
  const parts = p.replace(/\/(tcp|udp)$/, '').split(':');
  return parts.length >= 3 ? parts.slice(0, -2).join(':').replace(/^\[|\]$/g, '') : '0.0.0.0';
};
const isLoopback = (a: string) => a === '::1' || a.startsWith('127.') || a === 'localhost';

describe('docker-compose.yml', () => {
  it('has one redis, one scheduler and a worker per host', async () => {
    const { services } = await compose();
    const workers = Object.keys(services).filter((n) => n.startsWith('worker-'));
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['redis', 'scheduler']));
    expect(workers.length).toBeGreaterThanOrEqual(2);
    expect(services.scheduler!.command).toEqual(['node', 'apps/cli/dist/main.js', 'scheduler']);
    expect(services.scheduler!.depends_on).toContain('redis');
    for (const s of Object.values(services)) expect(s.restart).toBe('unless-stopped');
  });

  it('runs each worker on its host: host networking, pid and privileges, its LXC path, cgroups and state', async () => {
    const { services } = await compose();
    const hosts = new Set<string>();
    for (const [name, w] of Object.entries(services).filter(([n]) => n.startsWith('worker-'))) {
      expect(w.network_mode, name).toBe('host');
      expect(w.pid, name).toBe('host');
      expect(w.privileged, name).toBe(true);
      expect(w.command?.slice(0, 3), name).toEqual(['node', 'apps/cli/dist/main.js', 'worker']);
      const host = arg(w.command!, '--host');
      expect(host, name).toBeTruthy();
      hosts.add(host!);
      expect(w.environment?.FERRY_ADDRESS, name).toBeTruthy();
      const lxc = w.environment?.FERRY_LXC_PATH ?? '/var/lib/lxc';
      expect(w.volumes, name).toEqual(expect.arrayContaining([`${lxc}:${lxc}`, '/sys/fs/cgroup:/sys/fs/cgroup']));
      // Its host key and the control plane's public key outlive the container.
      const state = w.environment?.FERRY_STATE_DIR;
      expect(state, name).toBeTruthy();
      expect(w.volumes!.some((v) => v.split(':')[1] === state), name).toBe(true);
    }
    expect(hosts.size).toBe(Object.keys(services).filter((n) => n.startsWith('worker-')).length);
  });

  it('keeps the scheduler\'s keys and Redis\'s data in volumes', async () => {
    const { services, volumes } = await compose();
    const named = (s: Service) => (s.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => !v.startsWith('/'));
    expect(named(services.redis!)).toContain('redis-data');
    const state = services.scheduler!.environment?.FERRY_STATE_DIR;
    expect(state).toBeTruthy();
    expect(services.scheduler!.volumes!.some((v) => v.split(':')[1] === state)).toBe(true);
    for (const v of [...named(services.redis!), ...named(services.scheduler!)]) expect(Object.keys(volumes ?? {})).toContain(v);
  });

  it('runs Redis with AOF, noeviction and maxmemory, and never on every interface without a password', async () => {
    const { services } = await compose();
    const redis = services.redis!;
    const cmd = redis.command!;
    expect(cmd[0]).toBe('redis-server');
    expect(arg(cmd, '--appendonly')).toBe('yes');
    expect(arg(cmd, '--maxmemory-policy')).toBe('noeviction');
    expect(arg(cmd, '--maxmemory')).toMatch(/^[1-9]\d*(b|k|kb|m|mb|g|gb)?$/i);
    const password = arg(cmd, '--requirepass');
    const exposed = (redis.ports ?? []).map(publishedOn).filter((a) => !isLoopback(a));
    if (!password) expect(exposed).toEqual([]);
    else expect(password).toMatch(/^\$\{FERRY_REDIS_PASSWORD:\?/); // required from the environment, never a default
    expect(exposed.filter((a) => a === '0.0.0.0' || a === '::')).toEqual([]);
    expect(redis.network_mode).toBeUndefined();
    // Every client connects with the password.
    for (const s of [services.scheduler!, ...Object.entries(services).filter(([n]) => n.startsWith('worker-')).map(([, w]) => w)]) {
      expect(s.environment?.REDIS_URL).toMatch(/^redis:\/\/:\$\{FERRY_REDIS_PASSWORD\}@/);
    }
  });
});
