/**
 * `ferry install worker|scheduler` into a temporary prefix: the units pass `systemd-analyze
 * verify`, a second run changes nothing, a dry run writes nothing, a different file is refused
 * unless --force, and bad input exits 2 naming the option. No root needed, no systemd running.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '@ferry/infra';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const LAUNCHER = fileURLToPath(new URL('../../../scripts/ferry', import.meta.url));
const ALL = Array.from({ length: 256 }, (_, i) => i);
const ANALYZE = '/usr/bin/systemd-analyze';

const ferry = async (args: string[]) => {
  const r = await run(process.execPath, [CLI, ...args], { timeoutMs: 60_000, okExitCodes: ALL });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
};

/** Every file below dir, as path → content. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(join(e.parentPath, e.name), await readFile(join(e.parentPath, e.name), 'utf8'));
  }
  return out;
}

/**
 * `systemd-analyze verify` on one unit file. It needs no running systemd for a unit given by
 * path: it loads the unit with the host's unit path for its dependencies and checks every key,
 * value and ExecStart binary. Warnings (an unknown key, a bad value) exit 0, so any output fails.
 */
async function verify(unit: string): Promise<{ code: number; output: string }> {
  const r = await run(ANALYZE, ['verify', '--man=no', unit], { timeoutMs: 60_000, okExitCodes: ALL, env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } });
  return { code: r.exitCode, output: `${r.stdout}${r.stderr}`.trim() };
}

describe.skipIf(!existsSync(CLI))('ferry install (built CLI)', () => {
  let prefix: string;
  beforeEach(async () => {
    prefix = await mkdtemp(join(tmpdir(), 'ferry-install-'));
  });
  afterEach(async () => {
    await rm(prefix, { recursive: true, force: true });
    await rm(`${prefix}.pw`, { force: true });
  });

  const worker = (...more: string[]) => ['install', 'worker', '--host', 'h1', '--address', '10.0.0.11', '--ferry-bin', LAUNCHER, '--prefix', prefix, ...more];
  const scheduler = (...more: string[]) => ['install', 'scheduler', '--ferry-bin', LAUNCHER, '--prefix', prefix, ...more];

  it('writes units that systemd-analyze verify accepts, with the stop and restart behaviour a worker needs', async (ctx) => {
    await writeFile(`${prefix}.pw`, 'k1Jd9xPq0Lw2Rt5Yv8Zb3Nc6Ma4Sf7Gh\n');
    expect((await ferry(worker('--metrics', '10.0.0.11:9471', '--mount-root', '/srv/shared'))).code).toBe(0);
    expect((await ferry(scheduler('--redis-bind', '10.0.0.1', '--redis-password-file', `${prefix}.pw`))).code).toBe(0);
    const units = join(prefix, 'etc/systemd/system');
    expect((await readdir(units)).sort()).toEqual(['ferry-scheduler.service', 'ferry-worker.service']);

    const w = await readFile(join(units, 'ferry-worker.service'), 'utf8');
    expect(w).toMatch(/^ExecStart=\S+ worker$/m);
    expect(w).toMatch(/^KillMode=process$/m); // SIGTERM to the worker alone; containers never killed
    expect(w).toMatch(/^Restart=on-failure$/m);
    expect(w).toMatch(/^RestartSec=5s$/m);
    expect(w).toMatch(/^EnvironmentFile=\/etc\/ferry\/worker\.env$/m);
    expect(w).toMatch(/^StandardError=journal$/m);
    // Inherited by the containers lxc-start makes: never set on the worker.
    for (const k of ['NoNewPrivileges', 'CapabilityBoundingSet', 'SystemCallFilter', 'ProtectSystem', 'ProtectHome', 'PrivateDevices', 'ProtectControlGroups']) expect(w).not.toMatch(new RegExp(`^${k}=`, 'm'));
    const s = await readFile(join(units, 'ferry-scheduler.service'), 'utf8');
    expect(s).toMatch(/^KillMode=mixed$/m);
    for (const k of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'CapabilityBoundingSet=']) expect(s).toMatch(new RegExp(`^${k}$`, 'm'));
    expect(s).toMatch(/^Wants=.*redis-server@ferry\.service/m);

    const env = await readFile(join(prefix, 'etc/ferry/worker.env'), 'utf8');
    for (const line of ['REDIS_URL=unix:///run/redis-ferry/redis-server.sock', 'FERRY_STATE_DIR=/var/lib/ferry', 'FERRY_HOST=h1', 'FERRY_ADDRESS=10.0.0.11', 'FERRY_WORKER_METRICS=10.0.0.11:9471', 'FERRY_CONTROL_PUB=/var/lib/ferry/keys/control.pub', 'FERRY_HOST_KEYS=/var/lib/ferry/keys/hosts', 'FERRY_MOUNT_ROOTS=/srv/shared']) {
      expect(env.split('\n')).toContain(line);
    }
    expect((await stat(join(prefix, 'etc/ferry/worker.env'))).mode & 0o777).toBe(0o600);
    const senv = await readFile(join(prefix, 'etc/ferry/scheduler.env'), 'utf8');
    expect(senv.split('\n')).toContain('REDIS_URL=redis://:k1Jd9xPq0Lw2Rt5Yv8Zb3Nc6Ma4Sf7Gh@127.0.0.1:6380');
    expect(senv.split('\n')).toContain('FERRY_CONTROL_KEY=/var/lib/ferry/keys/control.key');
    const conf = await readFile(join(prefix, 'etc/redis/redis-ferry.conf'), 'utf8');
    for (const line of ['appendonly yes', 'maxmemory-policy noeviction', 'maxmemory 1gb', 'bind 127.0.0.1 -::1 10.0.0.1', 'port 6380', 'requirepass k1Jd9xPq0Lw2Rt5Yv8Zb3Nc6Ma4Sf7Gh']) expect(conf.split('\n')).toContain(line);
    expect((await stat(join(prefix, 'etc/redis/redis-ferry.conf'))).mode & 0o777).toBe(0o640);

    if (!existsSync(ANALYZE)) return ctx.skip(`${ANALYZE} is not installed: the units were not verified`);
    for (const u of ['ferry-worker.service', 'ferry-scheduler.service']) {
      const v = await verify(join(units, u));
      expect({ unit: u, ...v }).toEqual({ unit: u, code: 0, output: '' });
    }
    // The check is real: a unit with a wrong value does not pass.
    await writeFile(join(units, 'ferry-bad.service'), w.replace(/^KillMode=process$/m, 'KillMode=procesz'));
    expect((await verify(join(units, 'ferry-bad.service'))).output).toMatch(/kill mode.*procesz/i);
  });

  it('takes a Sentinel set or a Redis Cluster as --redis-url', async () => {
    for (const url of ['redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/ferry', 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000']) {
      const r = await ferry(worker('--redis-url', url, '--force'));
      expect(r.code).toBe(0);
      expect((await readFile(join(prefix, 'etc/ferry/worker.env'), 'utf8')).split('\n')).toContain(`REDIS_URL=${url}`);
    }
  });

  it('is idempotent: a second run changes nothing', async () => {
    expect((await ferry(worker())).code).toBe(0);
    expect((await ferry(scheduler())).code).toBe(0);
    const before = await tree(prefix);
    const again = await ferry([...worker(), '--json']);
    expect(again.code).toBe(0);
    const out = JSON.parse(again.stdout) as { files: { action: string }[] };
    expect(out.files.map((f) => f.action)).toEqual(['unchanged', 'unchanged']);
    expect((await ferry(scheduler())).stdout).not.toMatch(/^created/m);
    expect(await tree(prefix)).toEqual(before);
  });

  it('--dry-run prints what it would write and writes nothing', async () => {
    const r = await ferry(scheduler('--dry-run'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`--- ${join(prefix, 'etc/systemd/system/ferry-scheduler.service')} (0644, would create)`);
    expect(r.stdout).toMatch(/^ExecStart=\S+ scheduler$/m);
    expect(r.stdout).toContain('maxmemory-policy noeviction');
    expect(r.stdout).toContain('dry run: nothing written');
    expect(await readdir(prefix)).toEqual([]);
  });

  it('refuses to replace a different file unless --force, and writes nothing then', async () => {
    expect((await ferry(worker())).code).toBe(0);
    const env = join(prefix, 'etc/ferry/worker.env');
    await writeFile(env, 'REDIS_URL=redis://elsewhere:6379\n');
    const unit = join(prefix, 'etc/systemd/system/ferry-worker.service');
    const unitBefore = await readFile(unit, 'utf8');
    const r = await ferry(worker('--address', '10.0.0.99')); // the unit would change too
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('INSTALL_CONFLICT');
    expect(r.stderr).toContain(env);
    expect(await readFile(env, 'utf8')).toBe('REDIS_URL=redis://elsewhere:6379\n');
    expect(await readFile(unit, 'utf8')).toBe(unitBefore);
    const forced = await ferry(worker('--force'));
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^replaced\s+\S+worker\.env/m);
    expect(await readFile(env, 'utf8')).toContain('FERRY_HOST=h1');
  });

  it('bad input exits 2 naming the option, and writes nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['install', 'worker', '--address', '10.0.0.11', '--prefix', prefix], /--host: required/],
      [worker('--lxc-path', 'var/lib/lxc'), /--lxc-path: /],
      [worker('--metrics', ':9471'), /--metrics: /],
      [worker('--redis-url', 'http://x'), /--redis-url: /],
      [worker('--redis-url', 'redis+cluster://a:7000,b:0/0'), /--redis-url host 2 \(b:0\): the port must be 1-65535; --redis-url path: a cluster has database 0 only/],
      [['install', 'worker', '--host', 'h 1', '--address', '10.0.0.11', '--prefix', prefix], /--host: /],
      [worker('--mount-root', '/var/lib/lxc'), /--mount-root: /],
      [worker('--prefix', 'relative/dir'), /--prefix: /],
      [scheduler('--redis-bind', '10.0.0.1'), /--redis-password-file: required/],
      [scheduler('--redis-bind', 'example.com', '--redis-password-file', '/nonexistent'), /--redis-bind: .*--redis-password-file: cannot read/],
      [scheduler('--redis-port', '70000'), /--redis-port: /],
      [scheduler('--redis-maxmemory', 'lots'), /--redis-maxmemory: /],
      [scheduler('--redis-url', 'redis://r:6379', '--redis-port', '6390'), /--redis-port: is for ferry's own Redis/],
      [scheduler('--control-key', '/root/control.key'), /--control-key: .*ProtectHome/],
    ];
    for (const [args, message] of cases) {
      const r = await ferry(args);
      expect({ args: args.join(' '), code: r.code }).toEqual({ args: args.join(' '), code: 2 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
    expect(await readdir(prefix)).toEqual([]);
  });
});
