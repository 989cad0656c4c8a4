/**
 * `ferry run` end to end on this machine without the lab: a real HostWorker in this process (its LXC
 * path empty: no container is involved), a private redis-server, the real `ferry` CLI (apps/cli/dist:
 * `npm run build` first) signing with FERRY_CONTROL_KEY, and real `unshare` and cgroups. Needs root.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadOrCreatePrivateKey, newSigningKey, publicKeyOf, run, type RunOptions, type RedisClient } from '@ferry/infra';
import { HostWorker, type HostConfig } from '@ferry/worker';
import { LxcRuntime } from '../../worker/src/runtime/lxc.js';
import { ContextCgroups, contextCgroupRoots } from '../../worker/src/exec/context-cgroup.js';
import { rand, tempDir, waitFor } from '../../worker/test/helpers.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ALL = Array.from({ length: 256 }, (_, i) => i);

/** Host processes whose command line is `cmdline` exactly (arguments joined by spaces), or holds it. */
function processesWith(cmdline: string, exact = false): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        const c = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
        return exact ? c === cmdline : c.includes(cmdline);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('ferry run: a fresh throwaway context on a host (in-process worker)', () => {
  let redisSrv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let prefix: string;
  let lxcPath: string;
  let stateDir: string;
  let controlKeyFile: string;
  let worker: HostWorker;
  const host = `rh-${rand()}`;
  /** Where this host's context cgroups are made. */
  const roots = contextCgroupRoots(readFileSync('/proc/self/mounts', 'utf8'), host);
  const leftCgroups = () => roots.flatMap((r) => (existsSync(r.dir) ? readdirSync(r.dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(r.dir, d.name)) : []));

  const ferry = async (args: string[], opts: RunOptions = {}) => {
    const r = await run(process.execPath, [CLI, ...args], {
      timeoutMs: 30_000,
      okExitCodes: ALL,
      env: { ...process.env, REDIS_URL: redisSrv.url, FERRY_PREFIX: prefix, FERRY_LOG_FORMAT: 'json', FERRY_CONTROL_KEY: controlKeyFile },
      ...opts,
    });
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    redisSrv = await testRedis();
    redis = connect(redisSrv.url);
    prefix = freshPrefix();
    lxcPath = await tempDir('ferry-run-lxc-');
    stateDir = await tempDir('ferry-run-state-');
    controlKeyFile = join(stateDir, 'keys', 'control.key');
    const { key: controlKey } = await loadOrCreatePrivateKey(controlKeyFile);
    const cfg: HostConfig = { name: host, address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath, sshKey: '/nonexistent', knownHosts: '/nonexistent', stateDir };
    worker = new HostWorker({ redis, prefix, host: cfg, runtime: new LxcRuntime({ lxcPath }), log: pino({ level: 'warn' }), trust: { controlKey: publicKeyOf(controlKey), hostKey: newSigningKey() } });
    await worker.start();
    await waitFor(async () => !!(await worker.registry.get(host)), 15_000, 'worker registers');
  });

  afterAll(async () => {
    await worker?.stop();
    for (const r of roots) await rmdir(r.dir).catch(() => undefined);
    for (const d of [lxcPath, stateDir]) if (d) await rm(d, { recursive: true, force: true });
    if (redis) await quit(redis);
    await redisSrv?.stop();
  });

  it('this machine has a hierarchy to contain contexts in', () => {
    expect(roots.length).toBeGreaterThan(0);
  });

  it('streams stdout and stderr apart and exits with the command’s code', async () => {
    expect(await ferry(['run', host, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'])).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
  });

  it('its own PID, UTS and network namespaces, / read-only, a private /tmp, a clean environment', async () => {
    const probe = `ferry-run-probe-${rand()}`;
    const hostBefore = hostname();
    const script = [
      'echo "self=$$"',
      'echo "init=$(tr "\\0" " " < /proc/1/cmdline | cut -c1-9)"',
      'echo "procs=$(ls /proc | grep -c "^[0-9]")"',
      'hostname ferry-scratch; echo "hostname=$(hostname)"',
      'echo "links=$(ip -o link show | cut -d: -f2 | tr -d " " | tr "\\n" ,)"',
      `echo written > /tmp/${probe} && echo "tmp=$(cat /tmp/${probe})"`,
      `touch /${probe} 2>/dev/null && echo root=writable || echo root=read-only`,
      'echo "env=$(env | cut -d= -f1 | sort | tr "\\n" ,)"',
    ].join('; ');
    const r = await ferry(['run', host, '--', 'sh', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const seen = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
    // PID 1 is the context's init (sh -c <init> ...), the command one of its few children.
    expect(seen.init).toBe('sh -c fai');
    expect(Number(seen.self)).toBeLessThan(20);
    expect(Number(seen.procs)).toBeLessThan(10);
    expect(seen.hostname).toBe('ferry-scratch');
    expect(seen.links).toBe('lo,');
    expect(seen.tmp).toBe('written');
    expect(seen.root).toBe('read-only');
    expect(seen.env).toBe('HOME,PATH,PWD,');
    // Nothing of it on the host.
    expect(hostname()).toBe(hostBefore);
    expect(existsSync(`/tmp/${probe}`)).toBe(false);
    expect(existsSync(`/${probe}`)).toBe(false);
  });

  it('a command ended by a signal: 128+N', async () => {
    expect((await ferry(['run', host, '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(143);
  });

  it('forwards Ctrl-C: the command gets SIGINT, ferry exits 130, the context is gone', async () => {
    const mark = `3${Math.floor(Math.random() * 1000)}.5`;
    const ctl = new AbortController();
    const running = ferry(['run', host, '--', 'sh', '-c', `sleep ${mark} & sleep ${mark}; echo not interrupted`], { signal: ctl.signal, killSignal: 'SIGINT' });
    await waitFor(async () => processesWith(`sleep ${mark}`, true).length === 2, 10_000, 'both sleeps run');
    ctl.abort();
    const r = await running;
    expect(r.code).toBe(130);
    expect(r.stdout).toBe('');
    // The background sleep ignored nothing, but died with the PID namespace's init.
    await waitFor(async () => processesWith(`sleep ${mark}`, true).length === 0, 5000, 'no process of the context left');
  });

  it('--timeout kills it (exit 124)', async () => {
    const r = await ferry(['run', host, '--timeout', '1', '--', 'sleep', '34.25']);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/longer than 1 s/);
    expect(processesWith('sleep 34.25', true)).toEqual([]);
  });

  it('leaves nothing behind: no process of any context, no cgroup', async () => {
    await waitFor(async () => leftCgroups().length === 0, 5000, 'context cgroups removed');
    expect(processesWith('ferry-run')).toEqual([]);
  });

  it('bad input: exit 2 naming the field, nothing run', async () => {
    const cases: [string[], RegExp][] = [
      [['run', 'h9', '--', 'true'], /^ferry: host: unknown host 'h9' \(known hosts: .*\)$/m],
      [['run', host], /missing required argument 'command'/],
      [['run', host, '--', ''], /^ferry: command: the command name is empty$/m],
      [['run', host, '--timeout', '0', '--', 'true'], /^ferry: --timeout: must be/m],
    ];
    const results = await Promise.all(cases.map(([args]) => ferry(args)));
    results.forEach((r, i) => {
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.code).toBe(2);
    });
    expect(leftCgroups()).toEqual([]);
  });

  it('a worker that starts again kills and removes contexts an earlier one left', async () => {
    const otherHost = `rl-${rand()}`;
    const other = new ContextCgroups(otherHost);
    const dirs = await other.create('x-leftover1');
    const mark = `35.${Math.floor(Math.random() * 1000)}`;
    const child = run('sh', ['-c', `echo 0 > "${dirs[0]}/cgroup.procs"; exec sleep ${mark}`], { okExitCodes: ALL }).catch(() => undefined);
    await waitFor(async () => processesWith(`sleep ${mark}`, true).length === 1, 5000, 'the leftover runs');
    expect(await new ContextCgroups(otherHost).sweep()).toEqual(dirs);
    await child;
    expect(processesWith(`sleep ${mark}`, true)).toEqual([]);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
    for (const d of dirs) await rmdir(join(d, '..')).catch(() => undefined);
  });
});
