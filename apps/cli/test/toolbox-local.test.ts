/**
 * The toolbox end to end on this machine without the lab: a real HostWorker in this process (real
 * LXC runtime, busybox containers in a temporary LXC path, no network), a private redis-server, and
 * the real `ferry` CLI (apps/cli/dist: `npm run build` first). Needs root and lxc.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeExecEntry, JOB_TTL_MS, newToolboxId, toolboxKeys, toolboxQueues, type ContainerDetails, type ExecJobData } from '@ferry/core';
import { JobSigner, loadOrCreatePrivateKey, newSigningKey, publicKeyOf, run, type RunOptions, type RedisClient } from '@ferry/infra';
import { HostWorker, type HostConfig } from '@ferry/worker';
import { LxcRuntime, processesInRootfs } from '../../worker/src/runtime/lxc.js';
import { makeContainer, rand, removeLxcPath, tempDir, waitFor } from '../../worker/test/helpers.js';
import { connect, freshPrefix, quit, testRedis } from '../../../test/support/redis.js';
import { execCases } from '../../../test/support/exec-cases.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** The built `ferry` binary: the command as a user runs it is what this file tests (`npm test` builds first). */
const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ALL = Array.from({ length: 256 }, (_, i) => i);

describe('toolbox: exec, mount, umount, show through an in-process worker', () => {
  let redisSrv: Awaited<ReturnType<typeof testRedis>>;
  let redis: RedisClient;
  let prefix: string;
  let lxcPath: string;
  let share: string;
  let stateDir: string;
  let worker: HostWorker;
  /** The control-plane key the CLI signs with (FERRY_CONTROL_KEY) and the worker trusts. */
  let controlKeyFile: string;
  let signer: JobSigner;
  const host = 'th1';
  const a = `ta-${rand()}`;
  const b = `tb-${rand()}`;
  const stopped = `ts-${rand()}`;

  const ferry = async (args: string[], opts: RunOptions = {}) => {
    const r = await run(process.execPath, [CLI, ...args], {
      timeoutMs: 60_000,
      okExitCodes: ALL,
      env: { ...process.env, REDIS_URL: redisSrv.url, FERRY_PREFIX: prefix, FERRY_LOG_FORMAT: 'json', FERRY_CONTROL_KEY: controlKeyFile },
      ...opts,
    });
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };
  const config = (name: string) => readFileSync(join(lxcPath, name, 'config'), 'utf8');
  /** Processes of a container whose command line contains `text`. */
  const inContainer = async (name: string, text: string) => {
    const pids = await processesInRootfs(join(lxcPath, name, 'rootfs'));
    return pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').includes(text);
      } catch {
        return false;
      }
    });
  };

  beforeAll(async () => {
    redisSrv = await testRedis();
    redis = connect(redisSrv.url);
    prefix = freshPrefix();
    lxcPath = await tempDir('ferry-tb-lxc-');
    share = await tempDir('ferry-tb-share-');
    for (const n of [a, b, stopped]) await makeContainer(lxcPath, n);
    for (const n of [a, b]) await run('lxc-start', ['-P', lxcPath, '-n', n, '-d'], { timeoutMs: 30_000 });
    for (const n of [a, b]) await run('lxc-wait', ['-P', lxcPath, '-n', n, '-s', 'RUNNING', '-t', '20'], { timeoutMs: 30_000 });
    stateDir = await tempDir('ferry-tb-state-');
    controlKeyFile = join(stateDir, 'keys', 'control.key');
    const { key: controlKey } = await loadOrCreatePrivateKey(controlKeyFile);
    signer = new JobSigner(controlKey);
    const cfg: HostConfig = { name: host, address: '127.0.0.1', sshPort: 22, sshUser: 'root', lxcPath, sshKey: '/nonexistent', knownHosts: '/nonexistent', stateDir, mountRoots: [share] };
    worker = new HostWorker({ redis, prefix, host: cfg, runtime: new LxcRuntime({ lxcPath, mountRoots: [share] }), log: pino({ level: 'warn' }), trust: { controlKey: publicKeyOf(controlKey), hostKey: newSigningKey() } });
    await worker.start();
    await waitFor(async () => {
      const h = await worker.registry.get(host);
      return !!h && h.containers.filter((c) => c.state === 'RUNNING').length === 2;
    }, 20_000, 'worker publishes its containers');
  });

  let workerStopped = false;
  afterAll(async () => {
    if (!workerStopped) await worker?.stop();
    if (lxcPath) await removeLxcPath(lxcPath);
    for (const d of [share, stateDir]) if (d) await rm(d, { recursive: true, force: true });
    if (redis) await quit(redis);
    await redisSrv?.stop();
  });

  describe('exec', () => {
    it.each(execCases(a))('$what', async ({ args, expected }) => {
      expect(await ferry(args)).toEqual(expected);
    });

    it('--host names the container\'s host', async () => {
      expect(await ferry(['exec', a, '--host', host, '--', 'hostname'])).toEqual({ code: 0, stdout: `${a}\n`, stderr: '' });
    });

    it('runs in the container with a clean environment', async () => {
      const r = await ferry(['exec', a, '--', 'sh', '-c', 'hostname; env | sort; pwd']);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe(a);
      expect(lines).toContain('container=lxc');
      expect(lines.some((l) => l.startsWith('PATH=/usr/local/sbin'))).toBe(true);
      expect(lines.some((l) => /REDIS_URL|FERRY_PREFIX/.test(l))).toBe(false);
      expect(lines.at(-1)).toBe('/');
    });

    it('is binary-safe', async () => {
      const chunks: Buffer[] = [];
      const r = await ferry(['exec', a, '--', 'cat', '/bin/busybox'], { onStdoutBytes: (c) => chunks.push(c) });
      expect(r.code).toBe(0);
      expect(Buffer.concat(chunks).equals(readFileSync(join(lxcPath, a, 'rootfs/bin/busybox')))).toBe(true);
    });

    it('forwards Ctrl-C: the command and its children get SIGINT, ferry exits 130', async () => {
      const ctl = new AbortController();
      const running = ferry(['exec', a, '--', 'sh', '-c', 'sleep 31; echo not interrupted'], { signal: ctl.signal, killSignal: 'SIGINT' });
      await waitFor(async () => (await inContainer(a, 'sleep 31')).length > 0, 10_000, 'sleep runs in the container');
      ctl.abort();
      const r = await running;
      expect(r.code).toBe(130);
      expect(r.stdout).toBe('');
      expect(await inContainer(a, 'sleep 31')).toEqual([]);
    });

    it('a command whose client is gone is terminated (no process left behind)', async () => {
      const ctl = new AbortController();
      const running = ferry(['exec', a, '--', 'sleep', '32'], { signal: ctl.signal, killSignal: 'SIGKILL' }).catch(() => undefined);
      await waitFor(async () => (await inContainer(a, 'sleep 32')).length > 0, 10_000, 'sleep runs in the container');
      ctl.abort();
      await running;
      // The client's key lives 10 s; the worker looks every 2 s.
      await waitFor(async () => (await inContainer(a, 'sleep 32')).length === 0, 20_000, 'the orphaned command ends');
    });

    it('times out with --timeout (exit 124)', async () => {
      const r = await ferry(['exec', a, '--timeout', '1', '--', 'sleep', '33']);
      expect(r.code).toBe(124);
      expect(r.stderr).toMatch(/longer than 1 s/);
      expect(await inContainer(a, 'sleep 33')).toEqual([]);
    });

    it.each([
      ['a missing container', ['exec', 'ghost', '--', 'true'], /'ghost' does not exist on any host/],
      ['a stopped container', ['exec', stopped, '--', 'true'], /is STOPPED on th1, not RUNNING|is not running/],
      ['an unknown host', ['exec', a, '--host', 'h9', '--', 'true'], /unknown host 'h9'/],
      ['a bad container name', ['exec', '../x', '--', 'true'], /container name may hold only/],
      ['no command', ['exec', a], /missing required argument 'command'/],
      ['an option before the command without --', ['exec', a, 'ls', '-l'], /unknown option '-l'/],
    ])('bad input: %s → exit 2, nothing run', async (_w, args, msg) => {
      const before = await redis.keys(toolboxKeys(prefix).execAll);
      const r = await ferry(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(await redis.keys(toolboxKeys(prefix).execAll)).toEqual(before);
    });
  });

  describe('exec protocol (worker side)', () => {
    const k = () => toolboxKeys(prefix);
    const submit = async (argv: string[]) => {
      const id = newToolboxId('x');
      await redis.set(k().execClient(id), '1', 'PX', 60_000);
      const q = new Queue<ExecJobData>(toolboxQueues.exec(host), { connection: redis, prefix });
      await signer.add(q, 'exec', { execId: id, container: a, argv, requestedAt: Date.now() }, { jobId: id, removeOnComplete: true }, JOB_TTL_MS.toolbox);
      await q.close();
      return id;
    };
    const entries = async (id: string) => (await redis.xrangeBuffer(k().execOut(id), '-', '+')).map(([, f]) => decodeExecEntry(f));

    it('stops a command whose output is not read (flow control) and lets it go on once read', async () => {
      const id = await submit(['sh', '-c', 'cat /bin/busybox /bin/busybox /bin/busybox /bin/busybox /bin/busybox /bin/busybox; echo done >&2']);
      await waitFor(async () => (await inContainer(a, 'cat /bin/busybox')).length > 0, 10_000, 'cat runs');
      await sleep(1500);
      const pids = await inContainer(a, 'cat /bin/busybox');
      expect(pids.length).toBeGreaterThan(0);
      for (const pid of pids) expect(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]).toBe('T'); // stopped
      expect(await redis.xlen(k().execOut(id))).toBeLessThanOrEqual(16 + 8);
      // Read and trim as the CLI does, until the end.
      let last = '0-0';
      let bytes = 0;
      let exit: string | undefined;
      const reader = redis.duplicate(); // a blocking read must not hold up the worker's connection
      for (let i = 0; i < 2000 && exit === undefined; i++) {
        const res = await reader.xreadBuffer('COUNT', 64, 'BLOCK', 500, 'STREAMS', k().execOut(id), last);
        for (const [, es] of res ?? []) {
          for (const [eid, f] of es) {
            last = eid.toString();
            const e = decodeExecEntry(f);
            if (e?.type === 'stdout') bytes += e.data.length;
            if (e?.type === 'exit') exit = String(e.code);
          }
        }
        if (res) await redis.xtrim(k().execOut(id), 'MINID', last);
      }
      reader.disconnect();
      expect(exit).toBe('0');
      expect(bytes).toBe(6 * readFileSync(join(lxcPath, a, 'rootfs/bin/busybox')).length);
    });

    it('never runs a job twice (claimed once)', async () => {
      const id = newToolboxId('x');
      await redis.set(k().execClaim(id), 'elsewhere');
      await redis.set(k().execClient(id), '1', 'PX', 60_000);
      const q = new Queue<ExecJobData>(toolboxQueues.exec(host), { connection: redis, prefix });
      await signer.add(q, 'exec', { execId: id, container: a, argv: ['touch', '/ran-twice'], requestedAt: Date.now() }, { jobId: id }, JOB_TTL_MS.toolbox);
      await waitFor(async () => (await q.getJobState(id)) === 'completed', 10_000, 'job completes');
      await q.close();
      expect(existsSync(join(lxcPath, a, 'rootfs/ran-twice'))).toBe(false);
      expect(await entries(id)).toEqual([]);
    });
  });

  describe('bind mounts', () => {
    it('mounts a host directory into two running containers at once; a file written on the host is seen in both', async () => {
      await writeFile(join(share, 'hello.txt'), 'from the host\n');
      const r1 = await ferry(['mount', a, share, '/mnt/share']);
      expect(r1.stderr).toBe('');
      expect(r1.code).toBe(0);
      expect(r1.stdout).toMatch(/mounted .* now and at every start/);
      const r2 = await ferry(['mount', b, share, '/srv/deep/share', '--json']);
      expect(JSON.parse(r2.stdout)).toMatchObject({ container: b, host, source: share, target: '/srv/deep/share', configChanged: true, live: 'applied' });
      await writeFile(join(share, 'later.txt'), 'written after the mount\n');
      expect((await ferry(['exec', a, '--', 'cat', '/mnt/share/hello.txt', '/mnt/share/later.txt'])).stdout).toBe('from the host\nwritten after the mount\n');
      expect((await ferry(['exec', b, '--', 'cat', '/srv/deep/share/later.txt'])).stdout).toBe('written after the mount\n');
      expect(config(a)).toContain(`lxc.mount.entry = ${share} mnt/share none bind,create=dir,nosuid,nodev 0 0`);
      // Written from inside, seen on the host.
      expect((await ferry(['exec', b, '--', 'sh', '-c', 'echo from b > /srv/deep/share/b.txt'])).code).toBe(0);
      expect(await readFile(join(share, 'b.txt'), 'utf8')).toBe('from b\n');
      // The entry is what a migration's preflight checks on the target.
      expect(await new LxcRuntime({ lxcPath }).bindMounts(a)).toContain(share);
    });

    it('show lists state, host and mounts (active or not)', async () => {
      const r = await ferry(['show', a, '--json']);
      expect(r.code).toBe(0);
      const d = JSON.parse(r.stdout) as ContainerDetails;
      expect(d).toMatchObject({ name: a, host, state: 'RUNNING' });
      expect(d.mounts).toContainEqual({ source: share, target: '/mnt/share', readOnly: false, optional: false, active: true });
      const text = (await ferry(['show', a])).stdout;
      expect(text).toContain(`${a}  RUNNING on ${host}`);
      expect(text).toMatch(/\/mnt\/share {2}<- {2}\S+ {2}rw active/);
    });

    it('mounting the same again changes nothing', async () => {
      const before = config(a);
      const r = await ferry(['mount', a, share, '/mnt/share/', '--json']);
      expect(JSON.parse(r.stdout)).toMatchObject({ configChanged: false, live: 'unchanged' });
      expect(config(a)).toBe(before);
    });

    it('--ro: read-only in the container', async () => {
      const r = await ferry(['mount', a, share, '/mnt/ro', '--ro']);
      expect(r.code).toBe(0);
      expect(config(a)).toContain(`lxc.mount.entry = ${share} mnt/ro none bind,create=dir,nosuid,nodev,ro 0 0`);
      const w = await ferry(['exec', a, '--', 'sh', '-c', 'echo x > /mnt/ro/nope']);
      expect(w.code).not.toBe(0);
      expect(w.stderr).toMatch(/Read-only file system/);
      expect((await ferry(['exec', a, '--', 'cat', '/mnt/ro/hello.txt'])).stdout).toBe('from the host\n');
    });

    it('umount: gone from the running container and from the config', async () => {
      const r = await ferry(['umount', a, '/mnt/ro']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/unmounted \/mnt\/ro/);
      expect(config(a)).not.toContain('mnt/ro');
      expect((await ferry(['exec', a, '--', 'ls', '/mnt/ro'])).stdout).toBe('');
      expect((await ferry(['show', a, '--json'])).stdout).not.toContain('/mnt/ro');
    });

    it('a stopped container gets it in its config, mounted at its next start', async () => {
      const r = await ferry(['mount', stopped, share, '/data/share', '--ro']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/is not running: .* is mounted when it starts/);
      await run('lxc-start', ['-P', lxcPath, '-n', stopped, '-d'], { timeoutMs: 30_000 });
      await run('lxc-wait', ['-P', lxcPath, '-n', stopped, '-s', 'RUNNING', '-t', '20'], { timeoutMs: 30_000 });
      await waitFor(async () => (await worker.registry.get(host))?.containers.find((c) => c.name === stopped)?.state === 'RUNNING', 15_000, 'published running');
      expect((await ferry(['exec', stopped, '--', 'cat', '/data/share/hello.txt'])).stdout).toBe('from the host\n');
      const d = JSON.parse((await ferry(['show', stopped, '--json'])).stdout) as ContainerDetails;
      expect(d.mounts).toContainEqual({ source: share, target: '/data/share', readOnly: true, optional: false, active: true });
    });

    describe('bad input: a clear message, exit 2, config unchanged', () => {
      let file: string;
      beforeAll(async () => {
        file = join(share, 'plain-file');
        await writeFile(file, 'x');
        await mkdir(join(share, 'other'), { recursive: true });
        await mkdir(join(lxcPath, a, 'rootfs/var'), { recursive: true });
        await symlink('/etc', join(lxcPath, a, 'rootfs/var/out'));
        await symlink('../tmp', join(lxcPath, a, 'rootfs/var/in'));
        await writeFile(join(lxcPath, a, 'rootfs/var/afile'), 'x');
      });
      const cases: [string, () => string[], RegExp][] = [
        ['a relative container path', () => ['mount', a, share, 'mnt/rel'], /must be an absolute path/],
        ['a path with ..', () => ['mount', a, share, '/mnt/../../etc'], /may not hold '\.\.'/],
        ['the container root', () => ['mount', a, share, '/'], /cannot be \//],
        ['a symlink leading out', () => ['mount', a, share, '/var/out/x'], /\/var\/out in .* is a symbolic link/],
        ['a symlink staying inside', () => ['mount', a, share, '/var/in/x'], /\/var\/in in .* is a symbolic link/],
        ['a file on the way', () => ['mount', a, share, '/var/afile/x'], /\/var\/afile in .* exists and is not a directory/],
        ['a non-directory source', () => ['mount', a, file, '/mnt/f'], /is not a directory/],
        ['a missing source', () => ['mount', a, join(share, 'nope'), '/mnt/f'], /does not exist on th1/],
        ['a relative source', () => ['mount', a, 'share', '/mnt/f'], /host directory must be an absolute path/],
        ['a missing container', () => ['mount', 'ghost', share, '/mnt/f'], /'ghost' does not exist on any host/],
        ['a path taken by another source', () => ['mount', a, join(share, 'other'), '/mnt/share'], /already has a mount at \/mnt\/share/],
        ['a host dir outside the mount roots', () => ['mount', a, '/root', '/mnt/f'], /not shared: \/root lies in \/root \(on th1\)/],
        ["another container's rootfs", () => ['mount', a, join(lxcPath, b, 'rootfs'), '/mnt/f'], /lies in the LXC path/],
        ['umount of a path not mounted', () => ['umount', a, '/mnt/none'], /has no bind mount at \/mnt\/none/],
        ['umount with a relative path', () => ['umount', a, 'mnt/share'], /must be an absolute path/],
      ];
      it.each(cases)('%s', async (_w, args, msg) => {
        const before = config(a);
        const r = await ferry(args());
        expect(r.stderr).toMatch(msg);
        expect(r.code).toBe(2);
        expect(config(a)).toBe(before);
        expect(existsSync('/etc/x')).toBe(false);
      });
    });
  });

  describe('worker shutdown', () => {
    it('terminates running commands and tells their clients (exit 1)', async () => {
      const running = ferry(['exec', a, '--', 'sleep', '34']);
      await waitFor(async () => (await inContainer(a, 'sleep 34')).length > 0, 10_000, 'sleep runs in the container');
      workerStopped = true;
      await worker.stop();
      const r = await running;
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the worker of th1 is stopping: the command was terminated/);
      expect(await inContainer(a, 'sleep 34')).toEqual([]);
    });
  });
});
