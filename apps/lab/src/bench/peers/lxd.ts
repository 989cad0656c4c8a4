/**
 * LXD driver for the peers benchmark: two LXD daemons side by side on this host (separate
 * LXD_DIRs, 127.0.0.1 HTTPS ports, a private client config), a Debian 12 minbase image built
 * with debootstrap, and one measured `lxc move` between the two per call.
 *
 * Nothing here needs systemd: the daemons are started in the background and stopped by PID.
 * Every command has a timeout; a move that hangs is killed with its whole process group.
 *
 * The container: Debian 12 minbase (no init system) whose /sbin/init is a small bash script
 * that sets a static address on eth0 (a `nic` device bridged to `pbr0`, a bridge this module
 * creates with 198.18.200.1/24 and removes at the end), starts busybox httpd (the host's static
 * /bin/busybox copied in) and a writer that rewrites four small files every 100 ms.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, procId, run, signal, type ProcId, type RunOptions } from '@ferry/infra';
import { compare, describe, manifest } from './manifest.js';
import { emptyResult, type MoveResult } from './result.js';
import { CgroupWatcher } from './watch.js';
import { addData, INIT, WRITER_DIR, writeTree } from './content.js';
import { ClientProbe } from '../../probe/client-probe.js';

export type Method = 'stopped' | 'stateless' | 'live';
export const METHODS: readonly Method[] = ['stopped', 'stateless', 'live'];

export interface PeersConfig {
  /** Work dir: the rootfs cache, the image, both LXD_DIRs, the client config and logs. */
  work: string;
  sizeMiB: number;
  portA?: number;
  portB?: number;
  log?: (line: string) => void;
}

const BRIDGE = 'pbr0';
const BRIDGE_ADDR = '198.18.200.1/24';
const PASSWORD = 'peers-bench';
/** The daemons' own HTTP client honours these: its one outside fetch at start (instance types
 * from images.linuxcontainers.org) goes to a closed loopback port instead of the network.
 * Loopback is never proxied by Go, so the daemon-to-daemon migration is unaffected. */
const NO_NETWORK = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost' };

function errorText(e: unknown): string {
  const f = (e as { failure?: { stderrTail?: string; timedOut?: boolean; exitCode?: number | null; signal?: string | null } }).failure;
  if (f) {
    const what = f.timedOut ? 'timed out' : f.signal ? `killed by ${f.signal}` : `exit ${f.exitCode}`;
    // The first line says what failed (e.g. "Error: Migration operation failure: ..."), the
    // last ones why (CRIU's own errors): keep both ends.
    const lines = (f.stderrTail ?? '').trim().split('\n').map((l) => l.trim()).filter(Boolean);
    const tail = (lines.length > 5 ? [lines[0]!, '...', ...lines.slice(-4)] : lines).join(' | ');
    return `${what}: ${tail}`;
  }
  return (e as Error).message;
}

async function have(cmd: string): Promise<boolean> {
  return run('sh', ['-c', 'command -v "$1"', 'sh', cmd], { timeoutMs: 5000 }).then(
    () => true,
    () => false,
  );
}

async function freePort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Installs what is missing: lxd + lxd-client, debootstrap, busybox-static (for /bin/busybox). */
export async function ensureInstalled(log: (l: string) => void): Promise<void> {
  const missing: string[] = [];
  if (!(await have('lxd')) || !(await have('lxc'))) missing.push('lxd', 'lxd-client');
  if (!(await have('debootstrap'))) missing.push('debootstrap');
  if (!existsSync('/bin/busybox')) missing.push('busybox-static');
  if (!(await have('getfattr'))) missing.push('attr');
  if (!(await have('setfacl'))) missing.push('acl');
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, timeoutMs: 900_000 });
  try {
    await install();
  } catch {
    await run('apt-get', ['update'], { env, timeoutMs: 600_000 });
    await install();
  }
}

/** Split image (metadata tarball + rootfs tarball) at <work>/image, cached (marker: .done). */
async function buildImage(work: string, log: (l: string) => void): Promise<{ meta: string; rootfs: string }> {
  const dir = join(work, 'image');
  const meta = join(dir, 'meta.tar');
  const rootfs = join(dir, 'rootfs.tar');
  const done = join(dir, '.done');
  if (existsSync(done) && (await readFile(done, 'utf8')) === INIT) return { meta, rootfs };
  log('building the image (minbase + busybox + init script)');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'meta'), { recursive: true });
  const tree = join(dir, 'rootfs');
  await writeTree(work, tree, log);
  const created = Math.floor(Date.now() / 1000);
  await writeFile(
    join(dir, 'meta/metadata.yaml'),
    `architecture: x86_64\ncreation_date: ${created}\nproperties:\n  os: debian\n  release: bookworm\n  variant: minbase\n  description: Debian 12 minbase (peers bench)\n`,
  );
  await run('tar', ['-cf', meta, '-C', join(dir, 'meta'), 'metadata.yaml'], { timeoutMs: 60_000 });
  await run('tar', ['--numeric-owner', '--xattrs', '--acls', '-cf', rootfs, '-C', tree, '.'], { timeoutMs: 600_000 });
  await rm(tree, { recursive: true, force: true });
  await writeFile(done, INIT);
  return { meta, rootfs };
}

/** Notes the first rsync process working on a path under the work dir (polls /proc every 200 ms). */
class RsyncSpotter {
  private readonly seen = new Set<string>();
  private busy = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly work: string) {
    this.timer = setInterval(() => void this.scan(), 200);
  }

  private async scan(): Promise<void> {
    if (this.busy || this.seen.size >= 2) return;
    this.busy = true;
    try {
      for (const p of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(p)) continue;
        const argv = (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
        if (argv[0]?.endsWith('rsync') && argv.some((a) => a.includes(this.work))) {
          this.seen.add(argv.join(' '));
        }
      }
    } finally {
      this.busy = false;
    }
  }

  stop(): string | null {
    clearInterval(this.timer);
    return this.seen.size ? [...this.seen].join('\n') : null;
  }
}

interface Daemon {
  name: 'a' | 'b';
  dir: string;
  port: number;
  proc: ProcId | null;
}

/** Two LXD daemons, a client config and a bridge; `close()` leaves nothing running. */
export class LxdPeers {
  private readonly log: (l: string) => void;
  private readonly daemons: Daemon[];
  private readonly conf: string;
  private bridgeMade = false;
  private seq = 0;
  version = '';

  constructor(private readonly cfg: PeersConfig) {
    this.log = cfg.log ?? (() => undefined);
    this.daemons = [
      { name: 'a', dir: join(cfg.work, 'lxd-a'), port: cfg.portA ?? 18443, proc: null },
      { name: 'b', dir: join(cfg.work, 'lxd-b'), port: cfg.portB ?? 18444, proc: null },
    ];
    this.conf = join(cfg.work, 'client');
  }

  private lxc(args: readonly string[], opts: RunOptions = {}) {
    return run('lxc', args, { timeoutMs: 120_000, ...opts, env: { ...process.env, ...NO_NETWORK, LXD_CONF: this.conf } });
  }

  async open(): Promise<void> {
    await mkdir(this.cfg.work, { recursive: true });
    await ensureInstalled(this.log);
    this.version = (await run('lxd', ['--version'], { timeoutMs: 10_000 })).stdout.trim();
    await this.killLeftovers();
    const image = await buildImage(this.cfg.work, this.log);
    for (const d of this.daemons) if (!(await freePort(d.port))) throw new Error(`port 127.0.0.1:${d.port} is in use`);
    await rm(this.conf, { recursive: true, force: true });
    await mkdir(this.conf, { recursive: true });
    for (const d of this.daemons) await this.startDaemon(d);
    await this.bridge();
    this.log('importing the image into server a');
    await this.lxc(['image', 'import', image.meta, image.rootfs, 'a:', '--alias', 'peers-base'], { timeoutMs: 600_000 });
  }

  /** A daemon of an earlier run that was not stopped (its PID file and cmdline say so). */
  private async killLeftovers(): Promise<void> {
    for (const d of this.daemons) {
      const pidFile = join(this.cfg.work, `lxd-${d.name}.pid`);
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        const cmd = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
        if (cmd.includes(`LXD_DIR=${d.dir}`)) {
          this.log(`stopping a leftover lxd (pid ${pid})`);
          signal(pid, 'SIGKILL');
        }
      }
      await this.killInstanceProcs(d);
      await this.unmountUnder(d.dir);
      await rm(d.dir, { recursive: true, force: true });
    }
  }

  private async startDaemon(d: Daemon): Promise<void> {
    await mkdir(d.dir, { recursive: true });
    const logFile = join(this.cfg.work, `lxd-${d.name}.log`);
    await rm(logFile, { force: true }); // lxd appends to it
    // A long-running daemon does not fit run() (which waits for the exit): spawn it detached
    // in its own session, remember PID + start time, and stop it by PID in close().
    const out = openSync(join(this.cfg.work, `lxd-${d.name}.out`), 'w');
    const child = spawn('lxd', ['--group', 'root', '--logfile', logFile], {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, ...NO_NETWORK, LXD_DIR: d.dir },
    });
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw new Error(`lxd ${d.name} did not start`);
    d.proc = await procId(child.pid);
    await writeFile(join(this.cfg.work, `lxd-${d.name}.pid`), `${child.pid}\n`);
    const env = { ...process.env, LXD_DIR: d.dir };
    await run('lxd', ['waitready', '--timeout', '60'], { env, timeoutMs: 70_000 });
    const preseed = [
      'config:',
      `  core.https_address: 127.0.0.1:${d.port}`,
      `  core.trust_password: ${PASSWORD}`,
      '  images.auto_update_interval: "0"',
      'storage_pools:',
      '- name: default',
      '  driver: dir',
      'profiles:',
      '- name: default',
      '  devices:',
      '    root:',
      '      path: /',
      '      pool: default',
      '      type: disk',
      '',
    ].join('\n');
    await run('lxd', ['init', '--preseed'], { env, input: preseed, timeoutMs: 120_000 });
    await this.lxc(['remote', 'add', d.name, `https://127.0.0.1:${d.port}`, '--accept-certificate', '--password', PASSWORD], { timeoutMs: 60_000 });
    this.log(`lxd ${d.name}: pid ${child.pid}, https 127.0.0.1:${d.port}, LXD_DIR ${d.dir}`);
  }

  private async bridge(): Promise<void> {
    if (existsSync(`/sys/class/net/${BRIDGE}`)) await run('ip', ['link', 'del', BRIDGE], { timeoutMs: 10_000 });
    await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { timeoutMs: 10_000 });
    this.bridgeMade = true;
    await run('ip', ['addr', 'add', BRIDGE_ADDR, 'dev', BRIDGE], { timeoutMs: 10_000 });
    await run('ip', ['link', 'set', BRIDGE, 'up'], { timeoutMs: 10_000 });
  }

  private rootfsOf(server: 'a' | 'b', name: string): string {
    const d = this.daemons.find((x) => x.name === server)!;
    return join(d.dir, 'storage-pools/default/containers', name, 'rootfs');
  }

  private async exists(server: 'a' | 'b', name: string): Promise<boolean> {
    try {
      await this.lxc(['query', `${server}:/1.0/instances/${name}`], { timeoutMs: 15_000 });
      return true;
    } catch {
      return false;
    }
  }

  private async stateOf(server: 'a' | 'b', name: string): Promise<string> {
    try {
      const r = await this.lxc(['query', `${server}:/1.0/instances/${name}`], { timeoutMs: 15_000 });
      return (JSON.parse(r.stdout) as { status?: string }).status ?? '?';
    } catch (e) {
      const t = errorText(e);
      if (/not found/i.test(t)) return 'absent';
      return `no answer (${t})`;
    }
  }

  /** How many operations the server still lists as running (e.g. a failed migration's websockets). */
  private async runningOps(server: 'a' | 'b'): Promise<string> {
    try {
      const r = await this.lxc(['query', `${server}:/1.0/operations?recursion=1`], { timeoutMs: 10_000 });
      const ops = JSON.parse(r.stdout) as { running?: { description?: string }[] };
      const running = ops.running ?? [];
      return running.length ? `${running.length} (${running.map((o) => o.description ?? '?').join(', ')})` : '0';
    } catch (e) {
      return `? (${errorText(e)})`;
    }
  }

  /** Creates a container on a with the data set, returns its name and address. */
  private async create(): Promise<{ name: string; ip: string }> {
    this.seq++;
    const name = `pb${this.seq}`;
    const ip = `198.18.200.${10 + (this.seq % 200)}`;
    await this.lxc(['init', 'a:peers-base', `a:${name}`], { timeoutMs: 300_000 });
    await this.lxc(['config', 'device', 'add', `a:${name}`, 'eth0', 'nic', 'nictype=bridged', `parent=${BRIDGE}`, 'name=eth0'], { timeoutMs: 30_000 });
    const root = this.rootfsOf('a', name);
    await writeFile(join(root, 'etc/peer-ip'), `${ip}\n`);
    await addData(root, this.cfg.sizeMiB);
    return { name, ip };
  }

  private async remove(name: string): Promise<void> {
    for (const s of ['a', 'b'] as const) {
      if (await this.exists(s, name)) await this.lxc(['delete', '--force', `${s}:${name}`], { timeoutMs: 120_000 }).catch((e) => this.log(`delete ${s}:${name}: ${errorText(e)}`));
    }
  }

  /** One measured move of a fresh container from server a to server b. */
  async measure(method: Method): Promise<MoveResult> {
    const { name, ip } = await this.create();
    const res = emptyResult(method);
    try {
      const running = method !== 'stopped';
      // The running methods leave the writer's files changed on purpose: they are left out.
      const exclude = running ? [WRITER_DIR] : [];
      // Boot once first: LXD shifts an unprivileged rootfs to the container's idmap on its first
      // start, and the init script creates /srv/www. The reference is the tree after that, stopped.
      await this.lxc(['start', `a:${name}`], { timeoutMs: 60_000 });
      await this.lxc(['stop', '--force', `a:${name}`], { timeoutMs: 60_000 });
      const before = await manifest(this.rootfsOf('a', name), exclude);
      let prober: ClientProbe | null = null;
      let watcher: CgroupWatcher | null = null;
      if (running) {
        await this.lxc(['start', `a:${name}`], { timeoutMs: 60_000 });
        // The probe ferry's demo and bench use, here from the host's own namespace.
        prober = new ClientProbe(null, `http://${ip}/`, 20, 600_000);
        if (!(await prober.waitForAnswer(20_000))) throw new Error(`the container's httpd (${ip}) never answered before the move`);
        watcher = new CgroupWatcher(name);
        await watcher.start();
        await new Promise((r) => setTimeout(r, 300));
      }
      const args = ['move', ...(method === 'stateless' ? ['--stateless'] : []), `a:${name}`, `b:${name}`];
      const rsync = new RsyncSpotter(this.cfg.work);
      const t0 = Date.now();
      try {
        // Own process group: a hung move is killed with all its children.
        await this.lxc(args, { timeoutMs: 180_000, processGroup: true });
        res.ok = true;
      } catch (e) {
        res.error = errorText(e);
      }
      const t1 = Date.now();
      res.totalMs = t1 - t0;
      res.rsyncArgs = rsync.stop();
      if (prober && watcher) {
        // As for ferry: wait for the moved copy's answer, then one more second of probes.
        const answeredAfter = await prober.waitForAnswer(res.ok ? 30_000 : 2000, t1);
        await new Promise((r) => setTimeout(r, 1000));
        const tEnd = Date.now();
        await prober.stop();
        const c = await watcher.stop();
        res.downtimeMs = answeredAfter ? prober.longestGap(t0, tEnd) : null;
        res.frozenMs = c.sourceFrozenMs;
        res.bothRunningMs = c.bothRunningMs;
        const serving = answeredAfter ? `httpd answers after the move` : 'httpd does NOT answer after the move';
        res.after = `${serving}; source cgroup ${c.sourceFinalState}`;
        if (!res.ok) res.after += `; payload cgroups seen ${JSON.stringify(c.seen)}`;
      }
      const sa = await this.stateOf('a', name);
      const sb = await this.stateOf('b', name);
      const daemonsOk = await Promise.all(
        (['a', 'b'] as const).map((s) =>
          this.lxc(['query', `${s}:/1.0`], { timeoutMs: 10_000 }).then(
            () => `${s} answers`,
            (e) => `${s} HANGS/FAILS (${errorText(e)})`,
          ),
        ),
      );
      const ops = await Promise.all((['a', 'b'] as const).map((s) => this.runningOps(s)));
      res.after = [`a:${sa}`, `b:${sb}`, ...daemonsOk, `running operations a:${ops[0]} b:${ops[1]}`, res.after].filter(Boolean).join('; ');
      if (res.ok) {
        if (running) await this.lxc(['stop', '--force', `b:${name}`], { timeoutMs: 60_000 });
        const after = await manifest(this.rootfsOf('b', name), exclude);
        res.comparison = compare(before, after);
        res.identical = res.comparison.identical;
        res.differences = res.identical ? null : describe(res.comparison);
      }
    } finally {
      await this.remove(name);
    }
    return res;
  }

  /** Deletes all instances, stops both daemons by PID, kills stray instance processes, unmounts, removes the bridge. */
  async close(): Promise<string[]> {
    const notes: string[] = [];
    for (const d of this.daemons) {
      if (d.proc && (await isAlive(d.proc))) {
        try {
          const list = await this.lxc(['list', `${d.name}:`, '--format', 'csv', '-c', 'n'], { timeoutMs: 20_000 });
          for (const n of list.stdout.split('\n').filter(Boolean)) {
            await this.lxc(['delete', '--force', `${d.name}:${n}`], { timeoutMs: 60_000 }).catch((e) => notes.push(`delete ${d.name}:${n}: ${errorText(e)}`));
          }
        } catch (e) {
          notes.push(`list ${d.name}: ${errorText(e)}`);
        }
        // `lxd shutdown` asks the daemon to exit (it has no instances left); the PID says when it has.
        await run('lxd', ['shutdown', '--timeout', '20'], { env: { ...process.env, LXD_DIR: d.dir }, timeoutMs: 25_000 }).catch((e) =>
          notes.push(`lxd shutdown ${d.name}: ${errorText(e)}`),
        );
        for (let i = 0; i < 50 && (await isAlive(d.proc)); i++) await new Promise((r) => setTimeout(r, 100));
        if (await isAlive(d.proc)) signal(d.proc.pid, 'SIGTERM');
        for (let i = 0; i < 150 && (await isAlive(d.proc)); i++) await new Promise((r) => setTimeout(r, 100));
        if (await isAlive(d.proc)) {
          notes.push(`lxd ${d.name} ignored SIGTERM for 15 s: SIGKILL`);
          signal(d.proc.pid, 'SIGKILL');
        }
      }
      notes.push(...(await this.killInstanceProcs(d)));
      await this.unmountUnder(d.dir);
    }
    if (this.bridgeMade || existsSync(`/sys/class/net/${BRIDGE}`)) {
      await run('ip', ['link', 'del', BRIDGE], { timeoutMs: 10_000 }).catch((e) => notes.push(`bridge: ${errorText(e)}`));
      this.bridgeMade = false;
    }
    return notes;
  }

  /** Processes started for this daemon's instances (lxc monitors, forkstart, payloads), by PID. */
  private async killInstanceProcs(d: Daemon): Promise<string[]> {
    const notes: string[] = [];
    const pids = await readdir('/proc').catch(() => [] as string[]);
    for (const p of pids) {
      const pid = Number(p);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
      const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
      const cwd = await readlink(`/proc/${pid}/root`).catch(() => '');
      if (cmd.includes(d.dir) || env.includes(`LXD_DIR=${d.dir}`) || cwd.startsWith(d.dir)) {
        notes.push(`killed leftover pid ${pid}: ${cmd.slice(0, 80)}`);
        signal(pid, 'SIGKILL');
      }
    }
    return notes;
  }

  private async unmountUnder(dir: string): Promise<void> {
    const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m === dir || m.startsWith(`${dir}/`))
      .sort((x, y) => y.length - x.length);
    for (const m of mounts) await run('umount', ['-l', m], { timeoutMs: 10_000 }).catch(() => undefined);
  }
}
