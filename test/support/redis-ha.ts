import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, succeeds } from '@ferry/infra';

/**
 * Real Redis topologies on this machine for the redis tier, with Debian's `redis-server` and
 * `redis-sentinel`: a Sentinel set (one master, replicas, sentinels) and a Redis Cluster, each on
 * loopback ports picked here, daemonized into a temp dir (their pid files there), all stopped and
 * removed by `stop()`, which the test calls after every outcome.
 */

const HOST = '127.0.0.1';

/** A port nothing listens on now (nor `port + 10000`, a Cluster node's bus port, when `bus`). */
async function freePort(bus: boolean, taken: Set<number>): Promise<number> {
  const listens = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, HOST, () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(port) || (bus && taken.has(port + 10_000))) continue;
    if ((await listens(port)) && (!bus || (await listens(port + 10_000)))) {
      taken.add(port);
      if (bus) taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free loopback port found');
}

async function freePorts(n: number, bus = false): Promise<number[]> {
  const taken = new Set<number>();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freePort(bus, taken));
  return out;
}

const cli = (port: number, ...args: string[]) => run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeoutMs: 5000 });

/** Polls `f` every 50 ms until it holds, or fails saying what was awaited. */
async function waitFor(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One daemonized redis-server or redis-sentinel: its port and how to end it. */
export class RedisProcess {
  constructor(
    readonly port: number,
    private readonly pidFile: string,
  ) {}

  async pid(): Promise<number | null> {
    const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    return pid > 0 ? pid : null;
  }

  /** kill -9: no shutdown, nothing written, the clients' connections cut. */
  async kill(): Promise<void> {
    const pid = await this.pid();
    if (!pid) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
    await waitFor(`pid ${pid} to end`, async () => !alive(pid), 5000);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startProcess(bin: 'redis-server' | 'redis-sentinel', dir: string, name: string, port: number, conf: string[]): Promise<RedisProcess> {
  const pidFile = join(dir, `${name}.pid`);
  const file = join(dir, `${name}.conf`);
  const base = [`port ${port}`, `bind ${HOST}`, 'daemonize yes', `pidfile ${pidFile}`, `logfile ${join(dir, `${name}.log`)}`, `dir ${dir}`];
  await writeFile(file, `${[...base, ...conf].join('\n')}\n`);
  await run(bin, [file], { timeoutMs: 10_000 });
  await waitFor(`${name} on port ${port}`, () => succeeds('redis-cli', ['-h', HOST, '-p', String(port), 'ping'], { timeoutMs: 2000 }));
  return new RedisProcess(port, pidFile);
}

/** Plain data servers: no snapshots, no AOF (nothing survives them here), replicas synced at once. */
const DATA = ['save ""', 'appendonly no', 'repl-diskless-sync yes', 'repl-diskless-sync-delay 0'];

class Topology {
  readonly processes: RedisProcess[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'ferry-redis-ha-'));

  async start(bin: 'redis-server' | 'redis-sentinel', name: string, port: number, conf: string[]): Promise<RedisProcess> {
    const p = await startProcess(bin, this.dir, name, port, conf);
    this.processes.push(p);
    return p;
  }

  /** Every process killed (those still running) and the dir removed. */
  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill().catch(() => undefined)));
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface SentinelSet {
  /** REDIS_URL: `redis+sentinel://127.0.0.1:<port>,.../<master name>`. */
  url: string;
  masterName: string;
  master: RedisProcess;
  replicas: RedisProcess[];
  sentinels: RedisProcess[];
  /** The master's port as the sentinels report it now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * One master, `replicas` replicas and `sentinels` sentinels (quorum: a majority of them), the
 * master declared down after `downAfterMs` without an answer. Ready when every replica is in sync
 * and every sentinel knows the others and the replicas (a failover can happen).
 */
export async function startSentinelSet(opts: { replicas?: number; sentinels?: number; downAfterMs?: number } = {}): Promise<SentinelSet> {
  const nReplicas = opts.replicas ?? 1;
  const nSentinels = opts.sentinels ?? 3;
  const masterName = 'ferry-ha';
  const t = new Topology();
  try {
    const [masterPort, ...rest] = await freePorts(1 + nReplicas + nSentinels);
    const replicaPorts = rest.slice(0, nReplicas);
    const sentinelPorts = rest.slice(nReplicas);
    const master = await t.start('redis-server', 'master', masterPort!, DATA);
    const replicas: RedisProcess[] = [];
    for (const [i, port] of replicaPorts.entries()) replicas.push(await t.start('redis-server', `replica${i + 1}`, port, [...DATA, `replicaof ${HOST} ${masterPort}`]));
    await waitFor('the replicas in sync', async () => {
      const info = (await cli(masterPort!, 'info', 'replication')).stdout;
      return (info.match(/^slave\d+:.*state=online/gm) ?? []).length === nReplicas;
    });
    const quorum = Math.floor(nSentinels / 2) + 1;
    const sentinels: RedisProcess[] = [];
    for (const [i, port] of sentinelPorts.entries()) {
      sentinels.push(
        await t.start('redis-sentinel', `sentinel${i + 1}`, port, [
          `sentinel monitor ${masterName} ${HOST} ${masterPort} ${quorum}`,
          `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
        ]),
      );
    }
    for (const s of sentinels) {
      await waitFor(`sentinel ${s.port} to know the others and the replicas`, async () => {
        const ck = (await cli(s.port, 'sentinel', 'ckquorum', masterName)).stdout;
        const known = (await cli(s.port, 'sentinel', 'replicas', masterName)).stdout;
        return ck.startsWith(`OK ${nSentinels} usable`) && replicaPorts.every((p) => known.includes(String(p)));
      });
    }
    const masterPortNow = async () => Number((await cli(sentinels[0]!.port, 'sentinel', 'get-master-addr-by-name', masterName)).stdout.trim().split('\n')[1]);
    return {
      url: `redis+sentinel://${sentinelPorts.map((p) => `${HOST}:${p}`).join(',')}/${masterName}`,
      masterName,
      master,
      replicas,
      sentinels,
      masterPort: masterPortNow,
      stop: () => t.stop(),
    };
  } catch (e) {
    await t.stop();
    throw e;
  }
}

export interface RedisCluster {
  /** REDIS_URL: `redis+cluster://127.0.0.1:<port>,...`. */
  url: string;
  nodes: RedisProcess[];
  stop(): Promise<void>;
}

/** A Redis Cluster of `masters` masters and no replicas (`redis-cli --cluster create`), every slot served. */
export async function startRedisCluster(opts: { masters?: number } = {}): Promise<RedisCluster> {
  const n = opts.masters ?? 3;
  const t = new Topology();
  try {
    const ports = await freePorts(n, true);
    const nodes: RedisProcess[] = [];
    for (const [i, port] of ports.entries()) {
      nodes.push(await t.start('redis-server', `node${i + 1}`, port, [...DATA, 'cluster-enabled yes', `cluster-config-file nodes-${port}.conf`, 'cluster-node-timeout 2000']));
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-yes'], { timeoutMs: 30_000 });
    for (const port of ports) await waitFor(`node ${port}: cluster_state:ok`, async () => (await cli(port, 'cluster', 'info')).stdout.includes('cluster_state:ok'));
    return { url: `redis+cluster://${ports.map((p) => `${HOST}:${p}`).join(',')}`, nodes, stop: () => t.stop() };
  } catch (e) {
    await t.stop();
    throw e;
  }
}
